"""moto's server, as devenv runs it: ``python -m devenv.infra.moto_server -H HOST -p PORT``.

Two changes for speed, both caches of work moto repeats on every request (measured here):
- moto 5 parses the same JSONPath expressions (EventBridge's default input paths) with
  jsonpath_ng on every event delivered to a target, and jsonpath_ng rebuilds its LALR parser
  tables on every parse: ~300 ms of CPU per PutEvents that matches a rule. Parsed
  expressions are immutable, so they are cached; the first parse is done in the background
  while the server starts.
- moto's request dispatcher lists moto's package folder (listdir + isdir of every entry) on
  every request to find the service; the list never changes while the server runs.
"""

from __future__ import annotations

import functools
import sys
import threading

import jsonpath_ng.ext

jsonpath_ng.ext.parse = functools.lru_cache(maxsize=512)(jsonpath_ng.ext.parse)


def _cache_module_list() -> None:
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _warm() -> None:
    try:
        from moto.events.utils import EventTemplateParser

        for path in EventTemplateParser.DEFAULT_EVENT_INPUT_PATHS_MAP.values():
            jsonpath_ng.ext.parse(path)
    except Exception:  # an optimisation only: a moto without these names still works
        pass


if __name__ == "__main__":
    _cache_module_list()
    threading.Thread(target=_warm, daemon=True).start()
    from moto.server import main

    sys.exit(main(sys.argv[1:]))
