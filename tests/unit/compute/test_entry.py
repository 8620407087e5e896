"""The compute processes' entry: the ecs process's event loop (uvloop when installed)."""

from __future__ import annotations

import asyncio

from devenv.compute.entry import fast_loop, run


def test_the_fast_loop_is_uvloops_unless_asyncios_is_asked_for(monkeypatch):
    import uvloop  # a dependency where it has wheels

    monkeypatch.delenv("DEVENV_EVENT_LOOP", raising=False)
    assert fast_loop() is uvloop.new_event_loop
    monkeypatch.setenv("DEVENV_EVENT_LOOP", "asyncio")
    assert fast_loop() is None


def test_run_serves_on_the_loop_it_is_given(tmp_path):
    seen = []

    async def serve(file, overrides):
        seen.append((file.name, type(asyncio.get_running_loop()).__module__))

    assert run(serve, "m", ["m", str(tmp_path / "devenv.yaml")], loop_factory=fast_loop()) == 0
    assert run(serve, "m", ["m", str(tmp_path / "devenv.yaml")]) == 0
    assert seen == [("devenv.yaml", "uvloop"), ("devenv.yaml", "asyncio.unix_events")]


def test_both_compute_processes_ask_for_the_fast_loop(monkeypatch):
    import uvloop

    from devenv.compute import ecs_process, lambda_process

    for module in (ecs_process, lambda_process):
        asked: list[object] = []
        monkeypatch.setattr(module, "run", lambda serve, name, argv, loop_factory=None: asked.append(loop_factory) or 0)
        assert module.main(["m", "devenv.yaml"]) == 0
        assert asked == [uvloop.new_event_loop], module.__name__
