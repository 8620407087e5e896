"""Hot reload keeps the loop free: the bytecode walk runs on a thread of its own, and the
instances are retired only once the caches are gone."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

from devenv.compute.lambda_ import runtime as runtime_module
from devenv.compute.lambda_.runtime import LambdaRuntime
from tests.unit.compute.lambda_.test_pool import SPEC


def test_reload_drops_bytecode_off_the_loop_before_retiring_instances(tmp_path, monkeypatch):
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    (cache / "app.cpython-312.pyc").write_bytes(b"stale")
    spec = dataclasses.replace(SPEC, code_dir=tmp_path)
    seen: list[tuple[str, bool]] = []
    real = runtime_module._drop_bytecode

    def drop(code_dir):
        seen.append(("drop on the loop's thread", threading.current_thread() is threading.main_thread()))
        real(code_dir)

    monkeypatch.setattr(runtime_module, "_drop_bytecode", drop)

    async def scenario():
        runtime = LambdaRuntime({"fn": spec}, aws_env={})
        pool = runtime.pool("fn")
        retire = pool.state.reload
        monkeypatch.setattr(pool.state, "reload", lambda: (seen.append(("retire", cache_gone())), retire())[1])
        await pool.reload()

    def cache_gone() -> bool:
        return not (cache / "app.cpython-312.pyc").exists()

    asyncio.run(scenario())
    assert seen == [("drop on the loop's thread", False), ("retire", True)]  # off the loop, then retired
    assert cache_gone()
