"""Configs for the managed-plane unit tests: the repo's devenv.yaml and small variations."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from devenv.config.model import StackConfig

REPO_YAML = Path(__file__).resolve().parents[3] / "devenv.yaml"


@pytest.fixture
def nedlia_data() -> dict[str, Any]:
    """devenv.yaml as plain data, to be varied by a test before validation."""
    return yaml.safe_load(REPO_YAML.read_text())


@pytest.fixture
def nedlia(nedlia_data) -> StackConfig:
    return StackConfig.model_validate(nedlia_data)


@pytest.fixture
def vary(nedlia_data) -> Callable[[Callable[[dict], None]], StackConfig]:
    """``vary(edit)``: devenv.yaml after ``edit`` changed a deep copy of its data."""

    def make(edit: Callable[[dict], None]) -> StackConfig:
        data = copy.deepcopy(nedlia_data)
        edit(data)
        return StackConfig.model_validate(data)

    return make
