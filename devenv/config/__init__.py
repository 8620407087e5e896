"""devenv.yaml: its typed model and the one place it is read (see docs/config.md)."""

from devenv.config.loader import Overrides, Project, load_project
from devenv.config.model import StackConfig

__all__ = ["Overrides", "Project", "StackConfig", "load_project"]
