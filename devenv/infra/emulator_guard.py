"""ministack (both runtimes) and LocalStack (native) behind devenv's guard:
``python -m devenv.infra.emulator_guard [--allow-host H] [--cors-origin O] -- MODULE [ARG...]``.

Both serve their ASGI application with hypercorn and answer any Host, so without this a
DNS-rebinding page could read and change the stack's queues and buckets (moto has the same
guard through ``moto_server``). The launcher runs in the emulator's own environment (on docker
the image's Python, the package mounted read-only), with only the ``devenv`` package on its
path (``runtime/guard.py`` needs nothing but the standard library): it wraps
``hypercorn.asyncio.serve`` so that whatever application the emulator serves is wrapped in
``guard.asgi_middleware``, then runs MODULE as ``python -m`` would. Both emulators import
``serve`` from there when their server starts, after this has run.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from typing import Any


def install(hosts: tuple[str, ...] = (), origins: tuple[str, ...] = ()) -> None:
    """Wrap every application hypercorn serves from now on in the guard."""
    import hypercorn.asyncio

    from devenv.runtime import guard

    policy = guard.Policy.of(hosts=(*guard.EMULATOR_HOSTS, *hosts), origins=origins)
    serve = hypercorn.asyncio.serve
    if getattr(serve, "devenv_guarded", False):
        return

    def guarded_serve(app: Any, config: Any, *args: Any, **kwargs: Any) -> Any:
        return serve(guard.asgi_middleware(app, policy), config, *args, **kwargs)

    guarded_serve.devenv_guarded = True  # type: ignore[attr-defined]
    hypercorn.asyncio.serve = guarded_serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devenv.infra.emulator_guard")
    parser.add_argument("--allow-host", action="append", default=[], help="a Host accepted besides this machine's")
    parser.add_argument("--cors-origin", action="append", default=[], help="a web origin accepted besides loopback ones")
    parser.add_argument("module", help="the emulator's module, run as `python -m` runs it")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    install(tuple(options.allow_host), tuple(options.cors_origin))
    args = options.args[1:] if options.args[:1] == ["--"] else options.args  # `--` only ends our options
    sys.argv = [options.module, *args]
    runpy.run_module(options.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
