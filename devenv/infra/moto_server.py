"""moto's server, as devenv runs it: ``python -m devenv.infra.moto_server -H HOST -p PORT``.

The emulator is moto's own WSGI application (every service, model and response of moto,
unchanged), hosted with keep-alive: moto's ``run_simple`` is werkzeug's development server,
which answers every request with ``Connection: close``, so each boto3 call paid a new TCP
connection and thread. devenv serves the same application with waitress (persistent
connections, a fixed thread pool sized for long polls). Everything devenv changes inside moto
is in ``moto_patches``, one module, each patch named there; ``moto_ingest`` serves the
stack's two per-second ingest calls (PutLogEvents, PutTraceSegments) into moto's backends
without moto's request dispatch.

In front of it, ``runtime/guard.py``: no DNS-rebinding Host, no cross-site page (moto's own
CORS echoed any ``Origin``, so any web site could read and write the stack's queues and
buckets from the developer's browser). Loopback origins pass, and each ``--cors-origin``;
``--allow-host`` names a Host accepted besides this machine's (the container alias).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from devenv.runtime.exit import exit_now

# Enough for every event source poller's long poll plus the callers of the stack.
THREADS = 128
# Open connections waitress accepts. Every poller, task, Lambda instance and background
# sender keeps its keep-alive connections between calls; past the limit (waitress's default
# is 100) waitress stops accepting until idle ones time out, and a new client hangs.
CONNECTIONS = 2000


def connection_limit(wanted: int = CONNECTIONS) -> int:
    """Raises the open-files limit towards ``wanted`` connections (as far as the hard limit
    allows) and answers how many connections fit in it, with room for the process's files."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = 128  # moto's own files, the journal, the guard's logs
    target = wanted + room if hard == resource.RLIM_INFINITY else min(wanted + room, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return wanted if soft == resource.RLIM_INFINITY else max(16, min(wanted, soft - room))



def application(*, hosts: tuple[str, ...] = (), origins: tuple[str, ...] = (), state_dir: str | None = None,
                sync: bool = False) -> Any:
    """moto's WSGI application with devenv's patches applied (``moto_patches``: caches of pure
    work, trace context through EventBridge and SQS as AWS carries it), behind the guard.
    With ``state_dir``, moto's state is durable (``moto_durability``): restored from there
    before this returns, every acknowledged change journaled there before it is answered."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    # Import the modules devenv's stack uses before memoising, so their by-name imports
    # of the helpers are replaced too (modules moto loads later import the memoised ones).
    import moto.events.models  # noqa: F401
    import moto.events.responses  # noqa: F401
    import moto.s3.models  # noqa: F401
    import moto.s3.responses  # noqa: F401
    import moto.sqs.models  # noqa: F401
    import moto.sqs.responses  # noqa: F401

    from devenv.infra import moto_ingest, moto_patches
    from devenv.observe.spans import sink_from_environment
    from devenv.runtime import guard

    moto_patches.apply(DomainDispatcherApplication, sink_from_environment("emulator"))
    app = DomainDispatcherApplication(moto_patches.patching_on_first_use(create_backend_app))
    if state_dir is not None:
        from pathlib import Path

        from devenv.infra import moto_durability

        durability, restored = moto_durability.open_state(Path(state_dir), sync=sync)
        for warning in restored.warnings:
            print(f"warning: {warning}", flush=True)
        print(restored.summary() + f" ({state_dir})", flush=True)
        app = moto_durability.wsgi_middleware(app, durability)
    app = moto_ingest.wsgi_middleware(app)
    return guard.wsgi_middleware(moto_patches.wsgi_middleware(app), hosts=hosts, origins=origins)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="devenv.infra.moto_server")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--allow-host", action="append", default=[], help="a Host accepted besides this machine's")
    parser.add_argument("--cors-origin", action="append", default=[], help="a web origin allowed besides loopback")
    parser.add_argument("--state-dir", help="keep moto's state durable in this folder (journal, snapshot, S3 bodies)")
    parser.add_argument("--sync", action="store_true", help="fdatasync each journal record (survives an OS crash)")
    args = parser.parse_args(argv)

    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds queue URLs with it
    app = application(hosts=tuple(args.allow_host), origins=tuple(args.cors_origin), state_dir=args.state_dir,
                      sync=args.sync)
    # Nothing to save at exit: every acknowledged change is already in the journal (or, without
    # --state-dir, moto's state is in memory only).
    signal.signal(signal.SIGTERM, lambda *_: exit_now(0))

    import moto

    try:
        import waitress
    except ImportError:  # a moto image without it (runtime: docker): werkzeug, as moto_server does
        from werkzeug.serving import run_simple

        print(f"moto {moto.__version__} serving on http://{args.host}:{args.port} (werkzeug: no waitress here)",
              flush=True)
        run_simple(args.host, args.port, app, threaded=True)
        return 0
    # Requests are not logged (werkzeug's per-request line cost ~5% of moto's CPU).
    print(f"moto {moto.__version__} serving on http://{args.host}:{args.port} "
          f"(waitress, keep-alive, {THREADS} threads)", flush=True)
    waitress.serve(app, host=args.host, port=args.port, threads=THREADS, ident="moto",
                   connection_limit=connection_limit(), channel_timeout=120, asyncore_use_poll=True, _quiet=True)
    return 0


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
