"""The broken-config corpus of issue 14: one defect per file, each with the message it must give.

Most cases are the repo's own devenv.yaml with one line changed (``mutate``), so line numbers
are those of a real, 250-line file; the rest are small files written out (``written``), for
defects that need a section the repo does not have, or raw bytes. Every case names its class
of defect (``DEFECTS``); ``test_corpus.py`` loads each one and checks the error (or, for a
``warning``, the warning) is the one given: file, line, field path and a fragment of the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_CONFIG = Path(__file__).resolve().parents[3] / "devenv.yaml"
REPO_TEXT = REPO_CONFIG.read_text()
MARK = "# <-"  # in a written case: the line the problem must be reported at

DEFECTS = {
    "syntax": "YAML that does not parse: quotes, brackets, indentation, tabs, duplicate keys",
    "bytes": "what is not text: NUL and control characters, bytes that are not UTF-8",
    "limits": "files built to exhaust devenv: nesting depth, alias bombs, size",
    "shape": "the wrong kind of value: a list for a mapping, a scalar for a section, a missing field",
    "keys": "unknown or misspelt keys",
    "types": "strict types: YAML 1.1 booleans and strings where numbers go, numbers where text goes",
    "finite": "infinite and NaN numbers",
    "aws-limits": "numbers outside what AWS allows: tasks per service, memory, timeout, batch size...",
    "names": "names AWS refuses: queues, buckets, functions, rules, services, variables",
    "runtimes": "Lambda runtimes AWS does not support",
    "patterns": "EventBridge patterns AWS's PutRule refuses",
    "interpolation": "${...} in a service's command or environment: unclosed, or an unknown name",
    "references": "a name used that is not defined, or defined twice",
    "warnings": "what AWS accepts but fails later: a missing handler module, a DLQ cycle",
}


@dataclass(frozen=True)
class Case:
    defect: str
    id: str
    content: str | bytes
    line: int | None
    path: str
    fragment: str
    warning: bool = False


def mutate(defect: str, id: str, old: str, new: str, path: str, fragment: str, *,
           after: str = "", shift: int = 0, warning: bool = False) -> Case:
    """The repo's devenv.yaml with the first ``old`` (after ``after``, if given) replaced by
    ``new``; the problem is expected on the line ``old`` started on, plus ``shift``."""
    base = REPO_TEXT.index(after) if after else 0
    at = REPO_TEXT.index(old, base)
    line = REPO_TEXT.count("\n", 0, at) + 1 + shift
    return Case(defect, id, REPO_TEXT[:at] + new + REPO_TEXT[at + len(old):], line, path, fragment, warning)


def written(defect: str, id: str, content: str | bytes, path: str, fragment: str, *,
            line: int | None = None, warning: bool = False) -> Case:
    """A small file of its own; without ``line``, the line marked ``# <-`` is expected."""
    if line is None and isinstance(content, str) and MARK in content:
        line = next(n for n, text in enumerate(content.splitlines(), 1) if MARK in text)
    return Case(defect, id, content, line, path, fragment, warning)


def _bomb(levels: int) -> str:
    lines = ["name: demo", 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


def _lines_then(count: int, last: str) -> str:
    return "name: demo\n" + "".join(f"# filler {n}\n" for n in range(count)) + last


CASES: list[Case] = [
    # ------------------------------------------------------------------------------ syntax
    mutate("syntax", "unclosed-quote-line-41", "description: New placements", 'description: "New placements', "",
           "double-quoted string opened at column 22 is not closed on its line; it runs on to line 100"),
    mutate("syntax", "unclosed-single-quote", "description: Validated", "description: 'Validated", "",
           "single-quoted string opened at column 22 is not closed on its line"),
    mutate("syntax", "unclosed-quote-in-flow-list", 'paths: ["/placement/*"]', 'paths: ["/placement/*]', "",
           "double-quoted string opened at column 15 is not closed on its line"),
    mutate("syntax", "unclosed-bracket", "source: [nedlia.placement-service]", "source: [nedlia.placement-service",
           "", "invalid YAML"),
    mutate("syntax", "unclosed-brace", "- {method: POST, path: /videos, function: api}",
           "- {method: POST, path: /videos, function: api", "", "a '{' mapping opened at column 7 is not closed"),
    mutate("syntax", "tab-indent", "    database: nedlia", "\tdatabase: nedlia", "",
           "YAML indents with spaces, not tabs"),
    mutate("syntax", "bad-indent", "    user: nedlia", "     user: nedlia", "", "invalid YAML"),
    mutate("syntax", "colon-in-value", "description: New placements go to validation.",
           "description: New placements: go to validation.", "", "a value containing ': ' must be quoted"),
    mutate("syntax", "duplicate-key", "    dlq: nedlia-validation-dlq\n",
           "    dlq: nedlia-validation-dlq\n    dlq: nedlia-validation-dlq\n", "queues.nedlia-validation.dlq",
           "duplicate key 'dlq' (first defined on line 26)", shift=1),
    mutate("syntax", "duplicate-service", "  validation-service:\n", "  placement-service:\n",
           "services.placement-service", "duplicate key 'placement-service' (first defined on line 112)"),
    mutate("syntax", "undefined-alias", "environment: *environment", "environment: *enviroment", "",
           "found undefined alias 'enviroment'"),
    mutate("syntax", "unclosed-quote-at-end", "    - at: service notification-service\n",
           '    - at: "service notification-service\n', "", "never closed", shift=0),
    written("syntax", "empty-file", "", "", "the file is empty"),
    written("syntax", "top-level-list", "- name: demo  # <-\n", "", "the top level must be a mapping"),
    written("syntax", "recursive-alias", "name: demo\nqueues: &q  # <-\n  jobs: *q\n", "queues.jobs",
            "an alias refers to the node that contains it", line=3),
    written("syntax", "non-scalar-key", "name: demo\nqueues:\n  ? [a, b]  # <-\n  : {}\n", "queues",
            "a key must be a plain name"),
    # ------------------------------------------------------------------------------ shape
    # Line 100 is where rich would read `devenv.yaml:100:` as the emoji code :100:.
    mutate("shape", "route-path-line-100", 'path: "/placements/{id}"', 'path: "placements/{id}"',
           "api.routes[1].path", "a route path starts with '/'"),
    # Text that looks like rich markup is printed as written.
    mutate("names", "markup-in-a-name", "dlq: nedlia-validation-dlq", 'dlq: "[red]dlq[/red]"',
           "queues.nedlia-validation.dlq", "'[red]dlq[/red]' is not a valid queue name"),
    # ------------------------------------------------------------------------------ bytes
    written("bytes", "nul-byte", "name: demo\nregion: us-\x00east-1\n", "", "control character U+0000 (NUL)",
            line=2),
    written("bytes", "nul-byte-at-start", "\x00name: demo\n", "", "at column 1: control character U+0000",
            line=1),
    written("bytes", "bell-character", "name: demo\n# a comment \x07 here\n", "",
            "at column 13: control character U+0007", line=2),
    written("bytes", "escape-character", "name: demo\nqueues: {jobs: {}}\nregion: \x1b[31mus\n", "",
            "control character U+001B (ESC)", line=3),
    written("bytes", "delete-character", "name: demo\x7f\n", "", "control character U+007F (DEL)", line=1),
    written("bytes", "latin-1", b"name: demo\nqueues:\n  caf\xe9: {}\n", "",
            "not UTF-8 text: byte 0xe9 at column 6", line=3),
    written("bytes", "truncated-utf8", b"name: demo\n# \xc3\n", "", "not UTF-8 text: byte 0xc3 at column 3",
            line=2),
    written("bytes", "utf16", "name: demo\n".encode("utf-16"), "", "not UTF-8 text: byte 0xff at column 1",
            line=1),
    # ------------------------------------------------------------------------------ limits
    written("limits", "lists-5000-deep", "name: demo\nqueues: " + "[" * 5000 + "]" * 5000 + "\n", "",
            "nest more than 64 levels deep", line=2),
    written("limits", "mappings-5000-deep", "name: demo\ntour: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", "",
            "nest more than 64 levels deep", line=2),
    written("limits", "block-lists-100-deep", "name: demo\nq:\n" + "".join(
        " " * (2 * n) + "-\n" for n in range(100)) + " " * 200 + "- x\n", "", "nest more than 64 levels deep",
            line=66),
    written("limits", "billion-laughs", _bomb(9), "l4", "expands to more than 50,000 values", line=6),
    written("limits", "alias-depth-chain", "name: demo\n" + "".join(
        f"a{n}: &a{n} [[[[[[[[[[{f'*a{n - 1}' if n else '1'}]]]]]]]]]]\n" for n in range(12)), "a6",
            "aliases nest lists and mappings more than 64 levels deep", line=8),
    written("limits", "wide-alias-bomb", "name: demo\nm0: &m0 {" + ", ".join(f"k{i}: v" for i in range(300))
            + "}\nm1: {" + ", ".join(f"x{i}: *m0" for i in range(300)) + "}\n", "m1",
            "expands to more than 50,000 values", line=3),
    written("limits", "huge-file", "name: demo\n" + "#" * 1_000_001 + "\n", "",
            "larger than 1,000,000 bytes", line=None),
]
