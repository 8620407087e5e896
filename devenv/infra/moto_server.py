"""moto's server, as devenv runs it: ``python -m devenv.infra.moto_server -H HOST -p PORT``.

The emulator is moto's own WSGI application (every service, model and response of moto,
unchanged). What differs from ``moto_server`` is how it is hosted, and caches of pure work
moto repeats on every request (each measured here, see benchmarks/RESULTS.md):

- **Keep-alive HTTP/1.1.** moto's ``run_simple`` is werkzeug's development server, which
  answers every request with ``Connection: close``: each boto3 call paid a new TCP
  connection and a new thread. devenv serves the same application with waitress (a
  production WSGI server with persistent connections and a fixed thread pool). Long polls
  (ReceiveMessage with WaitTimeSeconds) hold a thread each, so the pool is sized for many.
- **camelcase_to_underscores** runs per attribute name, ~20 times per SQS call (every
  ``Queue.attributes`` read converts every name again): memoised; it is a pure function of
  its string.
- **method_names_from_class** runs ``inspect.getmembers`` over the response class on every
  request to find the action: memoised per class (classes do not change while serving).
- jsonpath_ng rebuilds its LALR parser tables on every parse, and moto parses EventBridge's
  default input paths for every event delivered to a target (~300 ms each): parsed
  expressions are immutable, so they are cached; the first parse is warmed in the background.
- moto's dispatcher lists its package folder (listdir + isdir per entry) on every request
  to find the service, then matches the host against every backend's URL patterns (twice
  per request); both depend only on the host and moto's static tables: cached.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import threading
from typing import Any, Callable

import jsonpath_ng.ext

from devenv.runtime.exit import exit_now

# Enough for every event source poller's long poll plus the callers of the stack.
THREADS = 128

jsonpath_ng.ext.parse = functools.lru_cache(maxsize=512)(jsonpath_ng.ext.parse)


def _memoise_pure_helpers() -> None:
    """Replace moto's pure helpers by memoised ones, wherever a module imported them by name."""
    from moto.core import utils

    replacements: dict[int, Callable[..., Any]] = {}
    for name, size in (("camelcase_to_underscores", 4096), ("method_names_from_class", None)):
        original = getattr(utils, name, None)
        if original is None:  # an optimisation only: another moto may not have it
            continue
        cached = functools.lru_cache(maxsize=size)(original)
        setattr(utils, name, cached)
        replacements[id(original)] = cached
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not namespace or not (module.__name__ or "").startswith("moto"):
            continue
        for attribute, value in list(namespace.items()):
            cached = replacements.get(id(value))
            if cached is not None and not isinstance(value, functools._lru_cache_wrapper):
                setattr(module, attribute, cached)


def _cache_module_list() -> None:
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _cache_backend_lookup(dispatcher: type) -> None:
    lookup = dispatcher.get_backend_for_host
    found: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host in found:
            return found[host]
        backend = lookup(self, host)
        if len(found) < 1024:
            found[host] = backend
        return backend

    dispatcher.get_backend_for_host = get_backend_for_host


def _warm() -> None:
    try:
        from moto.events.utils import EventTemplateParser

        for path in EventTemplateParser.DEFAULT_EVENT_INPUT_PATHS_MAP.values():
            jsonpath_ng.ext.parse(path)
    except Exception:  # an optimisation only: a moto without these names still works
        pass


def application() -> Any:
    """moto's WSGI application with the caches above installed, and trace context carried
    through EventBridge and SQS as AWS does (``moto_tracing``)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    # Import the modules devenv's stack uses before memoising, so their by-name imports
    # of the helpers are replaced too (modules moto loads later import the memoised ones).
    import moto.events.models  # noqa: F401
    import moto.events.responses  # noqa: F401
    import moto.s3.models  # noqa: F401
    import moto.s3.responses  # noqa: F401
    import moto.sqs.models  # noqa: F401
    import moto.sqs.responses  # noqa: F401

    from devenv.infra import moto_tracing
    from devenv.observe.spans import sink_from_environment

    _cache_module_list()
    _cache_backend_lookup(DomainDispatcherApplication)
    _memoise_pure_helpers()
    moto_tracing.install(sink_from_environment("emulator"))
    return moto_tracing.wsgi_middleware(DomainDispatcherApplication(create_backend_app))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="devenv.infra.moto_server")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)

    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds queue URLs with it
    app = application()
    threading.Thread(target=_warm, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: exit_now(0))  # moto's state is in memory only

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
                   channel_timeout=120, asyncore_use_poll=True, _quiet=True)
    return 0


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
