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
    count: int = 1  # problems expected, all on ``line``: a value an alias repeats is reported per use


def mutate(defect: str, id: str, old: str, new: str, path: str, fragment: str, *,
           after: str = "", shift: int = 0, warning: bool = False, count: int = 1) -> Case:
    """The repo's devenv.yaml with the first ``old`` (after ``after``, if given) replaced by
    ``new``; the problem is expected on the line ``old`` started on, plus ``shift``."""
    base = REPO_TEXT.index(after) if after else 0
    at = REPO_TEXT.index(old, base)
    line = REPO_TEXT.count("\n", 0, at) + 1 + shift
    return Case(defect, id, REPO_TEXT[:at] + new + REPO_TEXT[at + len(old):], line, path, fragment, warning, count)


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
           "double-quoted string opened at column 22 is not closed on its line; it runs on to line 106"),
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
           "services.placement-service", "duplicate key 'placement-service' (first defined on line 118)"),
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

# A stack with a function and a service, for sections the repo's file does not use.
SMALL = """name: demo
queues:
  jobs: {visibility_timeout: 30}
functions:
  worker:
    handler: app.handler
    code: src
services:
  web:
    command: [python, -m, http.server, --bind, "${TASK_IP}", "${PORT}"]
    environment: {MODE: plain}
"""


BLUE_GREEN = """name: demo
functions:
  gate:
    handler: app.handler
    code: src
load_balancer: {port: 9000}
services:
  web:
    command: [serve]
    load_balancer: {paths: ["/web/*"], priority: 1}
    deployment_controller: CODE_DEPLOY
    blue_green:
      deployment_config: CodeDeployDefault.ECSCanary10Percent5Minutes
      time_scale: 0.01
      test_listener_port: 9001
      hooks:
        BeforeAllowTraffic: gate
"""


def small(defect: str, id: str, old: str, new: str, path: str, fragment: str, *, warning: bool = False) -> Case:
    """SMALL with ``old`` replaced by ``new``; expected on the line ``new`` starts on."""
    at = SMALL.index(old)
    text = SMALL[:at] + new + SMALL[at + len(old):]
    return Case(defect, id, text, SMALL.count("\n", 0, at) + 1, path, fragment, warning)


def pattern(id: str, text: str, path: str, fragment: str, shift: int = 0) -> Case:
    """The first rule's `source: [...]` line (43) replaced by ``text``."""
    return mutate("patterns", id, "          source: [nedlia.placement-service]\n", text,
                  "event_buses.nedlia-events.rules.placement-created.pattern" + path, fragment, shift=shift)


RULE = "event_buses.nedlia-events.rules.placement-created"
WEB = "services.placement-service"
API_FN = "functions.api"

CASES += [
    # ------------------------------------------------------------------------------ shape
    written("shape", "queues-as-scalar", "name: demo\nqueues: many  # <-\n", "queues", "expected a mapping"),
    written("shape", "routes-as-mapping", "name: demo\napi:\n  routes: {}  # <-\n", "api.routes", "expected a list"),
    mutate("shape", "command-as-mapping", "    command: [python, -m, uvicorn, placement.app:app, --host, "
           "\"${TASK_IP}\", --port, \"8000\",\n              --timeout-keep-alive, \"75\", --no-access-log, "
           "--log-level, warning]\n", "    command: {python: app}\n", WEB + ".command", "expected a list"),
    mutate("shape", "missing-handler", "    handler: api/app.handler\n", "", API_FN + ".handler",
           "required field 'handler' is missing", shift=-1),
    mutate("shape", "missing-priority", "      priority: 10\n", "", WEB + ".load_balancer.priority",
           "required field 'priority' is missing", shift=-2),
    mutate("shape", "missing-name", "name: nedlia\n", "", "name", "required field 'name' is missing"),
    mutate("shape", "target-both-queue-and-function", "          - queue: nedlia-validation\n",
           "          - {queue: nedlia-validation, function: api}\n", RULE + ".targets[0]",
           "exactly one of 'queue' or 'function'"),
    mutate("shape", "rule-without-targets", "        targets:\n          - queue: nedlia-validation\n",
           "        targets: []\n", RULE + ".targets", "expected at least 1 item"),
    mutate("shape", "six-targets", "          - queue: nedlia-validation\n", "".join(
        f"          - {{queue: nedlia-validation, id: t{n}}}\n" for n in range(6)), RULE + ".targets",
           "expected at most 5 items", shift=-1),
    mutate("shape", "dlq-without-count", "    max_receive_count: 5\n", "", "queues.nedlia-validation",
           "dlq and max_receive_count go together: max_receive_count is missing", shift=-3),
    mutate("shape", "health-check-not-cmd", '[CMD-SHELL, "curl', '[RUN, "curl', WEB + ".health_check.command",
           "starts with 'CMD' or 'CMD-SHELL'", count=3),
    mutate("shape", "route-greedy-not-last", 'path: "/placements/{id}/score"', 'path: "/{proxy+}/score"',
           "api.routes[2].path", "must be the last segment"),
    mutate("shape", "listener-without-condition", '      paths: ["/placement/*"]\n', "", WEB + ".load_balancer",
           "a listener rule needs at least one condition: paths, hosts, headers", shift=-1),
    mutate("shape", "autoscaling-min-above-max", "      min: 2\n      max: 10\n", "      min: 20\n      max: 10\n",
           WEB + ".autoscaling", "min (20) is greater than max (10)", shift=-1),
    # ------------------------------------------------------------------------------ keys
    mutate("keys", "misspelt-top-level", "event_buses:", "event_busses:", "event_busses",
           "did you mean 'event_buses'?"),
    mutate("keys", "misspelt-queue-field", "    visibility_timeout: 30\n    dlq: nedlia-validation-dlq",
           "    visiblity_timeout: 30\n    dlq: nedlia-validation-dlq", "queues.nedlia-validation.visiblity_timeout",
           "did you mean 'visibility_timeout'?"),
    mutate("keys", "misspelt-function-field", "    memory: 256\n", "    memroy: 256\n", API_FN + ".memroy",
           "did you mean 'memory'?"),
    mutate("keys", "misspelt-service-field", "    desired_count: 2\n", "    desired_cout: 2\n",
           WEB + ".desired_cout", "did you mean 'desired_count'?"),
    mutate("keys", "misspelt-autoscaling-field", "      scale_in_cooldown: 300\n", "      scale_in_cooldwn: 300\n",
           WEB + ".autoscaling.scale_in_cooldwn", "did you mean 'scale_in_cooldown'?"),
    mutate("keys", "misspelt-route-field", "- {method: POST, path: /placements, function: api}",
           "- {method: POST, path: /placements, fuction: api}", "api.routes[0].fuction", "did you mean 'function'?",
           count=2),
    mutate("keys", "misspelt-event-source", "          batch_size: 10\n", "          batchsize: 10\n",
           "functions.validation-worker.events[0].sqs.batchsize", "did you mean 'batch_size'?"),
    mutate("keys", "misspelt-tour-field", "    status: 201\n", "    statuss: 201\n", "tour.request.statuss",
           "did you mean 'status'?"),
    mutate("keys", "misspelt-seed-field", "  migrations: seed/migrations\n", "  migration: seed/migrations\n",
           "seed.migration", "did you mean 'migrations'?"),
    # ------------------------------------------------------------------------------ types
    mutate("types", "desired-count-yes", "    desired_count: 2\n", "    desired_count: yes\n",
           WEB + ".desired_count", "expected an integer, got true (boolean)"),
    mutate("types", "desired-count-on", "    desired_count: 2\n", "    desired_count: on\n",
           WEB + ".desired_count", "expected an integer, got true (boolean)"),
    mutate("types", "max-no", "      max: 10\n", "      max: no\n", WEB + ".autoscaling.max",
           "expected an integer, got false (boolean)"),
    mutate("types", "memory-off", "    memory: 256\n", "    memory: off\n", API_FN + ".memory",
           "expected an integer, got false (boolean)"),
    mutate("types", "timeout-true", "    timeout: 10\n", "    timeout: true\n", API_FN + ".timeout",
           "expected a number, got true (boolean)"),
    mutate("types", "batch-size-yes", "          batch_size: 10\n", "          batch_size: yes\n",
           "functions.validation-worker.events[0].sqs.batch_size", "expected an integer, got true (boolean)"),
    mutate("types", "visibility-string", "    visibility_timeout: 30\n", "    visibility_timeout: '30'\n",
           "queues.nedlia-validation.visibility_timeout", "expected an integer, got '30' (string)"),
    mutate("types", "cpu-float", "    cpu: 512      # 0.5 vCPU\n", "    cpu: 512.5\n", WEB + ".cpu",
           "expected an integer, got 512.5 (number)"),
    mutate("types", "priority-float", "      priority: 10\n", "      priority: 10.0\n",
           WEB + ".load_balancer.priority", "expected an integer, got 10.0 (number)"),
    mutate("types", "port-string", "    container_port: 8000\n", "    container_port: '8000'\n",
           WEB + ".container_port", "expected an integer, got '8000' (string)"),
    mutate("types", "retries-yes", "      retries: 3\n", "      retries: yes\n", WEB + ".health_check.retries",
           "expected an integer, got true (boolean)", count=3),
    mutate("types", "cooldown-string", "      scale_in_cooldown: 300\n", "      scale_in_cooldown: 5m\n",
           WEB + ".autoscaling.scale_in_cooldown", "expected a number, got '5m' (string)"),
    mutate("types", "enabled-number", "    description: New placements go to validation.\n",
           "    description: New placements go to validation.\n        enabled: 1\n", RULE + ".enabled",
           "expected true or false, got 1 (integer)", shift=1),
    mutate("types", "report-failures-string", "          report_batch_item_failures: true\n",
           "          report_batch_item_failures: 'true'\n",
           "functions.validation-worker.events[0].sqs.report_batch_item_failures", "expected true or false"),
    mutate("types", "name-number", "name: nedlia\n", "name: 42\n", "name", "put it in quotes to make it a string"),
    mutate("types", "handler-list", "    handler: api/app.handler\n", "    handler: [api/app.handler]\n",
           API_FN + ".handler", "expected a string, got a list"),
    mutate("types", "python-version-float", "    dockerfile: placement/Dockerfile\n",
           "    dockerfile: placement/Dockerfile\n    python: 3.10\n", WEB + ".python",
           "write the Python version as a string in quotes", shift=1),
    # ------------------------------------------------------------------------------ finite
    mutate("finite", "cooldown-inf", "      scale_in_cooldown: 300\n", "      scale_in_cooldown: .inf\n",
           WEB + ".autoscaling.scale_in_cooldown", "expected a finite number, got .inf (number)"),
    mutate("finite", "cooldown-out-inf", "      scale_out_cooldown: 60\n", "      scale_out_cooldown: .Inf\n",
           WEB + ".autoscaling.scale_out_cooldown", "expected a finite number"),
    mutate("finite", "target-cpu-nan", "      target_cpu: 70\n", "      target_cpu: .nan\n",
           WEB + ".autoscaling.target_cpu", "expected a finite number, got .nan (number)"),
    mutate("finite", "grace-period-inf", "    desired_count: 2\n", "    desired_count: 2\n    "
           "health_check_grace_period: .inf\n", WEB + ".health_check_grace_period", "expected a finite number",
           shift=1),
    mutate("finite", "deregistration-inf", "      deregistration_delay: 30\n", "      deregistration_delay: .inf\n",
           WEB + ".load_balancer.deregistration_delay", "expected a finite number"),
    mutate("finite", "health-interval-nan", "      interval: 30\n      timeout: 5\n      retries",
           "      interval: .NaN\n      timeout: 5\n      retries", WEB + ".health_check.interval",
           "expected a finite number", count=3),
    mutate("finite", "function-timeout-inf", "    timeout: 10\n", "    timeout: .inf\n", API_FN + ".timeout",
           "expected a finite number"),
    mutate("finite", "start-period-negative-inf", "      start_period: 60\n", "      start_period: -.inf\n",
           WEB + ".health_check.start_period", "expected a finite number, got -.inf (number)", count=3),
    mutate("finite", "batching-window-inf", "          batch_size: 10\n",
           "          batch_size: 10\n          maximum_batching_window: .inf\n",
           "functions.validation-worker.events[0].sqs.maximum_batching_window", "expected a finite number",
           shift=1),
    mutate("finite", "idle-timeout-inf", "  idle_timeout: 60\n", "  idle_timeout: .inf\n",
           "load_balancer.idle_timeout", "expected a finite number"),
    # ------------------------------------------------------------------------------ aws-limits
    mutate("aws-limits", "desired-count-100000", "    desired_count: 2\n", "    desired_count: 100000\n",
           WEB + ".desired_count", "expected a value from 0 to 5000, got 100000"),
    mutate("aws-limits", "autoscaling-max-100000", "      max: 10\n", "      max: 100000\n",
           WEB + ".autoscaling.max", "expected a value from 1 to 5000, got 100000"),
    mutate("aws-limits", "autoscaling-min-6000", "      min: 2\n      max: 10\n", "      min: 6000\n      max: 10\n",
           WEB + ".autoscaling.min", "expected a value from 0 to 5000, got 6000"),
    mutate("aws-limits", "desired-count-negative", "    desired_count: 2\n", "    desired_count: -1\n",
           WEB + ".desired_count", "expected a value from 0 to 5000, got -1"),
    mutate("aws-limits", "lambda-memory-64", "    memory: 256\n", "    memory: 64\n", API_FN + ".memory",
           "expected a value from 128 to 10240, got 64"),
    mutate("aws-limits", "lambda-memory-20000", "    memory: 256\n", "    memory: 20000\n", API_FN + ".memory",
           "expected a value from 128 to 10240, got 20000"),
    mutate("aws-limits", "lambda-timeout-901", "    timeout: 10\n", "    timeout: 901\n", API_FN + ".timeout",
           "expected a value greater than 0 and at most 900, got 901"),
    mutate("aws-limits", "lambda-timeout-zero", "    timeout: 10\n", "    timeout: 0\n", API_FN + ".timeout",
           "expected a value greater than 0 and at most 900, got 0"),
    mutate("aws-limits", "batch-size-zero", "          batch_size: 10\n", "          batch_size: 0\n",
           "functions.validation-worker.events[0].sqs.batch_size", "expected a value from 1 to 10000, got 0"),
    mutate("aws-limits", "batch-size-20000", "          batch_size: 10\n", "          batch_size: 20000\n",
           "functions.validation-worker.events[0].sqs.batch_size", "expected a value from 1 to 10000, got 20000"),
    mutate("aws-limits", "batch-size-needs-window", "          batch_size: 10\n", "          batch_size: 100\n",
           "functions.validation-worker.events[0].sqs", "needs maximum_batching_window of at least 1 second",
           shift=-2),
    mutate("aws-limits", "visibility-13h", "    visibility_timeout: 30\n", "    visibility_timeout: 43201\n",
           "queues.nedlia-validation.visibility_timeout", "expected a value from 0 to 43200, got 43201"),
    mutate("aws-limits", "retention-15-days", "    message_retention: 1209600\n", "    message_retention: 1296000\n",
           "queues.nedlia-validation-dlq.message_retention", "expected a value from 60 to 1209600"),
    mutate("aws-limits", "max-receive-count-0", "    max_receive_count: 5\n", "    max_receive_count: 0\n",
           "queues.nedlia-validation.max_receive_count", "expected a value from 1 to 1000, got 0"),
    mutate("aws-limits", "fargate-cpu-300", "    cpu: 512      # 0.5 vCPU\n", "    cpu: 300\n", WEB + ".cpu",
           "Fargate has no task size with cpu 300"),
    mutate("aws-limits", "fargate-memory-for-cpu", "    memory: 1024  # 1 GB\n", "    memory: 512\n",
           WEB + ".memory", "Fargate allows memory 1024 to 4096 in steps of 1024 with cpu 512, got 512"),
    mutate("aws-limits", "priority-50001", "      priority: 10\n", "      priority: 50001\n",
           WEB + ".load_balancer.priority", "expected a value from 1 to 50000"),
    mutate("aws-limits", "healthy-threshold-1", "        healthy_threshold: 5\n", "        healthy_threshold: 1\n",
           WEB + ".load_balancer.health_check.healthy_threshold", "expected a value from 2 to 10, got 1"),
    mutate("aws-limits", "maximum-percent-300", "      maximum_percent: 200\n", "      maximum_percent: 300\n",
           WEB + ".deployment.maximum_percent", "expected a value from 100 to 200, got 300", count=3),
    mutate("aws-limits", "port-70000", "  stage: local\n", "  stage: local\n  port: 70000\n", "api.port",
           "expected a value from 1 to 65535, got 70000", shift=1),
    mutate("aws-limits", "function-retries-3", "    timeout: 10\n", "    timeout: 10\n    maximum_retry_attempts: 3\n",
           API_FN + ".maximum_retry_attempts", "expected a value from 0 to 2, got 3", shift=1),
    mutate("aws-limits", "six-layers", "    timeout: 10\n", "    timeout: 10\n    layers: [a, b, c, d, e, f]\n",
           API_FN + ".layers", "expected at most 5 items, got 6", shift=1),
    mutate("aws-limits", "visibility-below-function-timeout", "    visibility_timeout: 30\n",
           "    visibility_timeout: 3\n", "functions.validation-worker.events[0].sqs.queue",
           "has visibility_timeout 3, less than this function's timeout 5", shift=53),
    # ------------------------------------------------------------------------------ names
    mutate("names", "queue-name-space", "  nedlia-validation-dlq:\n", "  nedlia validation dlq:\n",
           "queues['nedlia validation dlq']", "is not a valid queue name"),
    mutate("names", "queue-name-81", "  nedlia-notification-dlq:\n", "  " + "q" * 81 + ":\n", "queues." + "q" * 81,
           "at most 80 characters"),
    mutate("names", "bucket-uppercase", "  nedlia-videos: {}\n", "  Nedlia-Videos: {}\n", "buckets.Nedlia-Videos",
           "is not a valid bucket name"),
    mutate("names", "bucket-two-chars", "  nedlia-videos: {}\n", "  nv: {}\n", "buckets.nv",
           "3 to 63 lowercase letters"),
    mutate("names", "function-name-dot", "  api:\n    handler", "  api.v2:\n    handler", "functions['api.v2']",
           "is not a valid function name"),
    mutate("names", "function-name-65", "  notification-worker:\n", "  " + "f" * 65 + ":\n", "functions." + "f" * 65,
           "is not a valid function name"),
    mutate("names", "rule-name-slash", "      placement-decided:\n", "      placement/decided:\n",
           "event_buses.nedlia-events.rules.placement/decided", "is not a valid rule name"),
    mutate("names", "service-name-dot", "  notification-service:\n", "  notification.service:\n",
           "services['notification.service']", "is not a valid service name"),
    mutate("names", "env-var-dash", "      EVENT_BUS: nedlia-events\n", "      EVENT-BUS: nedlia-events\n",
           WEB + ".environment.EVENT-BUS", "is not a valid environment variable name", count=3),
    mutate("names", "env-var-digit", "      ALB_URL: alb.url\n    events", "      1ALB_URL: alb.url\n    events",
           "functions.validation-worker.secrets.1ALB_URL", "is not a valid environment variable name"),
    mutate("names", "stack-name-upper", "name: nedlia\n", "name: Nedlia\n", "name", "is not a valid stack name"),
    mutate("names", "region-mars", "region: us-east-1\n", "region: mars\n", "region", "is not a valid region"),
    mutate("names", "stage-space", "  stage: local\n", "  stage: my stage\n", "api.stage",
           "is not a valid stage name"),
    mutate("names", "database-dash", "    database: nedlia\n", "    database: ned-lia\n", "infra.postgres.database",
           "is not a valid PostgreSQL identifier"),
    mutate("names", "handler-no-function", "    handler: api/app.handler\n", "    handler: app\n",
           API_FN + ".handler", "is not a valid handler"),
    mutate("names", "target-id-space", "          - queue: nedlia-notification\n",
           "          - {queue: nedlia-notification, id: my target}\n",
           "event_buses.nedlia-events.rules.placement-decided.targets[0].id", "is not a valid target id"),
    # ------------------------------------------------------------------------------ runtimes
    mutate("runtimes", "python3.99", "    runtime: python3.11\n", "    runtime: python3.99\n", API_FN + ".runtime",
           "expected one of: python3.10, python3.11, python3.12, python3.13, python3.14; got 'python3.99'"),
    mutate("runtimes", "python3.9-deprecated", "    runtime: python3.11\n", "    runtime: python3.9\n",
           API_FN + ".runtime", "python3.9 is deprecated on AWS Lambda"),
    mutate("runtimes", "python2.7", "    runtime: python3.11\n", "    runtime: python2.7\n", API_FN + ".runtime",
           "python2.7 is deprecated on AWS Lambda"),
    mutate("runtimes", "nodejs", "    runtime: python3.11\n", "    runtime: nodejs20.x\n", API_FN + ".runtime",
           "expected one of: python3.10"),
    mutate("runtimes", "python-typo", "    runtime: python3.11\n", "    runtime: pyhton3.11\n", API_FN + ".runtime",
           "did you mean 'python3.11'?"),
    mutate("runtimes", "runtime-number", "    runtime: python3.11\n", "    runtime: 3.11\n", API_FN + ".runtime",
           "expected one of: python3.10"),
    mutate("runtimes", "stack-runtime-podman", "runtime: native\n", "runtime: podman\n", "runtime",
           "expected one of: native, docker; got 'podman'"),
    mutate("runtimes", "emulator-typo", "emulator: moto\n", "emulator: mott\n", "emulator.kind",
           "did you mean 'moto'?"),
    # ------------------------------------------------------------------------------ patterns
    pattern("numeric-zero", '          detail: {score: [{numeric: [">", "zero"]}]}\n', ".detail.score[0]",
            "expected [operator, number, ...] with <, <=, >, >= or ="),
    pattern("operator-prefixx", "          source: [{prefixx: nedlia.}]\n", ".source[0]",
            "unsupported pattern operator 'prefixx', did you mean 'prefix'?"),
    pattern("numeric-odd", '          detail: {score: [{numeric: [">", 1, "<"]}]}\n', ".detail.score[0]",
            "expected [operator, number, ...]"),
    pattern("numeric-bad-operator", '          detail: {score: [{numeric: ["=>", 1]}]}\n', ".detail.score[0]",
            "expected [operator, number, ...]"),
    pattern("exists-string", "          detail: {reason: [{exists: 'yes'}]}\n", ".detail.reason[0]",
            "expected true or false"),
    pattern("cidr-bad", "          detail: {ip: [{cidr: 10.0.0.0/33}]}\n", ".detail.ip[0]",
            "expected an IPv4 or IPv6 network"),
    pattern("two-operators", "          source: [{prefix: a, suffix: b}]\n", ".source[0]",
            "expected one operator per object"),
    pattern("empty-list", "          source: []\n", ".source", "an empty list matches nothing"),
    pattern("scalar-field", "          source: nedlia.placement-service\n", ".source",
            "must be a list of values or a nested mapping"),
    pattern("anything-but-mapping", "          source: [{anything-but: {exists: true}}]\n", ".source[0]",
            "anything-but"),
    pattern("prefix-number", "          source: [{prefix: 5}]\n", ".source[0]", 'expected a string or'),
    pattern("or-single", "          $or: [{source: [a]}]\n", "['$or']", "'$or' takes a list of at least two patterns"),
    pattern("or-nested-bad", "          $or: [{source: [a]}, {source: [{sufix: b}]}]\n", "['$or'][1].source[0]",
            "did you mean 'suffix'?"),
    pattern("nested-empty", "          detail: {}\n", ".detail", "matches on at least one field"),
    pattern("list-in-list", "          source: [[a, b]]\n", ".source[0]",
            "expected a string, number, boolean, null or operator"),
    pattern("wildcard-number", "          source: [{wildcard: 5}]\n", ".source[0]", "expected a string"),
    # ------------------------------------------------------------------------------ interpolation
    mutate("interpolation", "unclosed-task-ip", '--host, "${TASK_IP}", --port', '--host, "${TASK_IP", --port',
           WEB + ".command[5]", "'${' is not closed in '${TASK_IP': write ${NAME} with a closing brace"),
    mutate("interpolation", "typo-task-pi", '--host, "${TASK_IP}", --port', '--host, "${TASK_PI}", --port',
           WEB + ".command[5]", "unknown variable ${TASK_PI}, did you mean ${TASK_IP}? (known: "),
    mutate("interpolation", "unknown-in-environment", "      EVENT_BUS: nedlia-events\n",
           "      EVENT_BUS: ${BUS_NAME}\n", WEB + ".environment.EVENT_BUS", "unknown variable ${BUS_NAME}",
           count=3),
    mutate("interpolation", "empty-name", '--host, "${TASK_IP}", --port', '--host, "${}", --port',
           WEB + ".command[5]", "unknown variable ${}"),
    mutate("interpolation", "lowercase-typo", '--port, "8000",\n              --timeout-keep-alive',
           '--port, "${port}",\n              --timeout-keep-alive', WEB + ".command[7]",
           "unknown variable ${port}, did you mean ${PORT}?"),
    small("interpolation", "unclosed-in-environment", "{MODE: plain}", '{MODE: "${TASK_IP and more"}',
          "services.web.environment.MODE", "'${' is not closed"),
    small("interpolation", "unknown-second-of-two", '"${PORT}"]', '"${PORT}:${PROT}"]', "services.web.command[5]",
          "unknown variable ${PROT}, did you mean ${PORT}?"),
    # ------------------------------------------------------------------------------ references
    mutate("references", "target-queue-undefined", "          - queue: nedlia-validation\n",
           "          - queue: nedlia-validaton\n", RULE + ".targets[0].queue", "did you mean 'nedlia-validation'?"),
    mutate("references", "dlq-undefined", "    dlq: nedlia-validation-dlq\n", "    dlq: nedlia-dlq\n",
           "queues.nedlia-validation.dlq", "dead-letter queue 'nedlia-dlq' is not defined"),
    mutate("references", "own-dlq", "    dlq: nedlia-validation-dlq\n", "    dlq: nedlia-validation\n",
           "queues.nedlia-validation.dlq", "cannot be its own dead-letter queue"),
    mutate("references", "route-function-undefined", "- {method: POST, path: /videos, function: api}",
           "- {method: POST, path: /videos, function: ap}", "api.routes[4].function", "function 'ap' is not defined"),
    mutate("references", "event-source-queue-undefined", "          queue: nedlia-validation\n",
           "          queue: nedlia-valid\n", "functions.validation-worker.events[0].sqs.queue",
           "queue 'nedlia-valid' is not defined"),
    mutate("references", "seed-bucket-undefined", "    - {bucket: nedlia-videos,", "    - {bucket: nedlia-video,",
           "seed.s3[0].bucket", "bucket 'nedlia-video' is not defined"),
    mutate("references", "priority-reused", "      priority: 20\n", "      priority: 10\n",
           "services.validation-service.load_balancer.priority", "listener rule priority 10 is already used"),
    mutate("references", "route-defined-twice", "- {method: POST, path: /videos, function: api}",
           "- {method: POST, path: /placements, function: api}", "api.routes[4]",
           "route POST /placements is already defined at api.routes[0]"),
    mutate("references", "secret-unknown", "      ALB_URL: alb.url\n", "      ALB_URL: alb.uri\n",
           API_FN + ".secrets.ALB_URL", "expected one of: postgres.url"),
    mutate("references", "tour-hop-undefined", "    - at: service placement-service\n",
           "    - at: service placement\n", "tour.steps[1].at", "service 'placement' is not defined"),
    mutate("references", "code-folder-missing", "    code: services/functions\n", "    code: services/funcs\n",
           API_FN + ".code", "directory 'services/funcs' not found"),
    mutate("syntax", "duplicate-section-key", "  redis: {}\n", "  redis: {}\n  postgres: false\n",
           "infra.postgres", "duplicate key 'postgres'", shift=1),
    # ------------------------------------------------------------------------------ capacity providers
    mutate("runtimes", "capacity-provider-typo", "{capacity_provider: FARGATE_SPOT, weight: 80}",
           "{capacity_provider: FARGATE_SPOTT, weight: 80}", WEB + ".capacity_provider_strategy[0].capacity_provider",
           "did you mean 'FARGATE_SPOT'?"),
    mutate("aws-limits", "capacity-weight-1001", "{capacity_provider: FARGATE_SPOT, weight: 80}",
           "{capacity_provider: FARGATE_SPOT, weight: 1001}", WEB + ".capacity_provider_strategy[0].weight",
           "expected a value from 0 to 1000, got 1001"),
    mutate("aws-limits", "capacity-negative-base", "{capacity_provider: FARGATE, weight: 20}",
           "{capacity_provider: FARGATE, weight: 20, base: -1}", WEB + ".capacity_provider_strategy[1].base",
           "expected a value from 0 to 100000, got -1"),
    mutate("references", "capacity-two-bases", "      - {capacity_provider: FARGATE_SPOT, weight: 80}\n"
           "      - {capacity_provider: FARGATE, weight: 20}\n",
           "      - {capacity_provider: FARGATE_SPOT, weight: 80, base: 2}\n"
           "      - {capacity_provider: FARGATE, weight: 20, base: 1}\n", WEB + ".capacity_provider_strategy[1].base",
           "only one capacity provider of a strategy can have a base; FARGATE_SPOT (capacity_provider_strategy[0]) "
           "already has base 2", shift=1),
    mutate("references", "capacity-provider-twice", "{capacity_provider: FARGATE, weight: 20}",
           "{capacity_provider: FARGATE_SPOT, weight: 20}", WEB + ".capacity_provider_strategy[1].capacity_provider",
           "capacity provider FARGATE_SPOT is already in this strategy (capacity_provider_strategy[0])"),
    mutate("references", "capacity-no-weight", "      - {capacity_provider: FARGATE_SPOT, weight: 80}\n"
           "      - {capacity_provider: FARGATE, weight: 20}\n",
           "      - {capacity_provider: FARGATE_SPOT, weight: 0}\n      - {capacity_provider: FARGATE, base: 1}\n",
           WEB + ".capacity_provider_strategy", "needs a weight above 0", shift=-1),
    mutate("keys", "capacity-misspelt-weight", "{capacity_provider: FARGATE, weight: 20}",
           "{capacity_provider: FARGATE, wieght: 20}", WEB + ".capacity_provider_strategy[1].wieght",
           "did you mean 'weight'?"),
    small("aws-limits", "capacity-21-providers", "    environment: {MODE: plain}\n",
          "    capacity_provider_strategy: [" + ", ".join(["{capacity_provider: FARGATE, weight: 1}"] * 21) + "]\n",
          "services.web.capacity_provider_strategy", "expected at most 20 items"),
    written("aws-limits", "spot-warning-above-two-minutes", "name: demo\nfargate_spot:\n  warning: 300  # <-\n",
            "fargate_spot.warning", "at most 120"),
    written("keys", "spot-misspelt-rate", "name: demo\nfargate_spot:\n  interruptions_per_hour: 2  # <-\n",
            "fargate_spot.interruptions_per_hour", "did you mean 'interruptions_per_task_hour'?"),
    # ------------------------------------------------------------------------------ the edge
    mutate("aws-limits", "edge-negative-ttl", "    default_ttl: 0\n", "    default_ttl: -1\n",
           "edge.default_behavior.default_ttl", "expected a value from 0", after="\nedge:"),
    mutate("aws-limits", "edge-ttls-out-of-order", "      default_ttl: 10\n", "      default_ttl: 100\n",
           "edge.behaviors[0]", "min_ttl <= default_ttl <= max_ttl; got 0, 100, 60", after="\nedge:", shift=-2),
    mutate("aws-limits", "edge-allowed-methods-not-a-cloudfront-set", "[GET, HEAD, OPTIONS]", "[GET, POST]",
           "edge.behaviors[0].allowed_methods", "CloudFront's allowed methods are one of these sets",
           after="\nedge:"),
    mutate("aws-limits", "edge-cached-methods-not-allowed", "      allowed_methods: [GET, HEAD, OPTIONS]\n",
           "      allowed_methods: [GET, HEAD]\n      cached_methods: [GET, HEAD, OPTIONS]\n", "edge.behaviors[0]",
           "cached_methods (GET, HEAD, OPTIONS) must be among allowed_methods (GET, HEAD)", after="\nedge:",
           shift=-1),
    mutate("names", "edge-hostname-not-localhost", "edge:\n", "edge:\n  hostname: nedlia.example.com\n",
           "edge.hostname", "localhost", after="\nedge:", shift=1),
    mutate("keys", "edge-misspelt-ttl", "      max_ttl: 60\n", "      max_tll: 60\n", "edge.behaviors[0].max_tll",
           "did you mean 'max_ttl'?", after="\nedge:"),
    mutate("shape", "edge-behaviour-without-pattern", "    - path_pattern: /videos/*/placements\n",
           "    - path_patern: /videos/*/placements\n", "edge.behaviors[0].path_patern", "did you mean",
           after="\nedge:", count=2),
    written("types", "edge-query-strings-word", """name: demo
edge:
  default_behavior:
    cache_key: {query_strings: some}  # <-
""",
            "edge.default_behavior.cache_key.query_strings",
            "expected 'none', 'all' or a list of 1 to 10 names, got 'some'"),
    written("references", "edge-without-api", "name: demo\nedge: {}  # <-\n", "edge",
            "the edge forwards to the API Gateway stage: it needs an `api:` section"),
    written("references", "edge-port-clash", "name: demo\napi: {port: 4443}\nedge:\n  port: 4443  # <-\n",
            "edge.port", "port 4443 is also used by api.port"),
    # ------------------------------------------------------------------------------ blue/green (CodeDeploy)
    written("shape", "blue-green-without-code-deploy", BLUE_GREEN.replace("    deployment_controller: CODE_DEPLOY\n", ""
                                                                           ).replace("  web:\n", "  web:  # <-\n"),
            "services.web", "blue_green needs deployment_controller: CODE_DEPLOY"),
    written("shape", "code-deploy-without-load-balancer",
            "name: demo\nservices:\n  web:  # <-\n    command: [serve]\n    deployment_controller: CODE_DEPLOY\n",
            "services.web", "the service needs a load_balancer section"),
    written("keys", "deployment-config-unknown", BLUE_GREEN.replace(
        "deployment_config: CodeDeployDefault.ECSCanary10Percent5Minutes",
        "deployment_config: CodeDeployDefault.ECSCanary10Percent3Minutes  # <-"),
        "services.web.blue_green.deployment_config", "CodeDeployDefault.ECSCanary10Percent5Minutes"),
    written("types", "controller-lowercase", BLUE_GREEN.replace("deployment_controller: CODE_DEPLOY",
                                                                "deployment_controller: codedeploy  # <-"),
            "services.web.deployment_controller", "expected one of: ECS, CODE_DEPLOY; got 'codedeploy'"),
    written("aws-limits", "canary-percentage-100", BLUE_GREEN.replace(
        "      deployment_config: CodeDeployDefault.ECSCanary10Percent5Minutes\n",
        "      traffic_routing: {type: TimeBasedCanary, percentage: 100, interval: 5}  # <-\n"),
        "services.web.blue_green.traffic_routing.percentage", "expected a value from 1 to 99"),
    written("shape", "both-configurations", BLUE_GREEN.replace(
        "      deployment_config: CodeDeployDefault.ECSCanary10Percent5Minutes\n",
        "      deployment_config: CodeDeployDefault.ECSCanary10Percent5Minutes\n"
        "      traffic_routing: {type: TimeBasedLinear, percentage: 10, interval: 1}\n").replace(
        "    blue_green:\n", "    blue_green:  # <-\n"),
        "services.web.blue_green", "give either deployment_config"),
    written("keys", "hook-event-misspelt", BLUE_GREEN.replace("BeforeAllowTraffic: gate", "BeforeAllowTrafic: gate  # <-"),
            "services.web.blue_green.hooks.BeforeAllowTrafic", "BeforeAllowTraffic"),
    written("references", "hook-function-undefined", BLUE_GREEN.replace("BeforeAllowTraffic: gate",
                                                                        "BeforeAllowTraffic: gat  # <-"),
            "services.web.blue_green.hooks.BeforeAllowTraffic", "function 'gat' is not defined under functions, "
                                                                "did you mean 'gate'?"),
    written("references", "test-listener-port-clash", BLUE_GREEN.replace("test_listener_port: 9001",
                                                                         "test_listener_port: 9000  # <-"),
            "services.web.blue_green.test_listener_port", "port 9000 is also used by load_balancer.port"),
    # ------------------------------------------------------------------------------ warnings
    mutate("warnings", "handler-module-missing", "    handler: api/app.handler\n", "    handler: api/ap.handler\n",
           API_FN + ".handler", "no module 'api/ap' in services/functions/", warning=True),
    mutate("warnings", "handler-package-missing", "    handler: validation_worker/app.handler\n",
           "    handler: validation/app.handler\n", "functions.validation-worker.handler",
           "no module 'validation/app'", warning=True),
    mutate("warnings", "handler-function-missing", "    handler: api/app.handler\n", "    handler: api/app.handle\n",
           API_FN + ".handler", "services/functions/api/app.py defines no 'handle'", warning=True),
    small("warnings", "dotted-handler-missing", "handler: app.handler", "handler: pkg.app.handler",
          "functions.worker.handler", "no module 'pkg.app' in src/ (looked for pkg/app.py", warning=True),
    mutate("warnings", "dlq-cycle-of-two", "  nedlia-validation-dlq:\n    message_retention: 1209600\n",
           "  nedlia-validation-dlq:\n    message_retention: 1209600\n    dlq: nedlia-validation\n"
           "    max_receive_count: 5\n", "queues.nedlia-validation.dlq",
           "dead-letter queues form a cycle: nedlia-validation -> nedlia-validation-dlq -> nedlia-validation",
           shift=-2, warning=True),
    written("warnings", "dlq-cycle-of-three", """name: demo
queues:
  a: {dlq: b, max_receive_count: 3}
  b: {dlq: c, max_receive_count: 3}
  c:
    dlq: a
    max_receive_count: 3
  d: {dlq: b, max_receive_count: 3}
""", "queues.a.dlq", "dead-letter queues form a cycle: a -> b -> c -> a", line=3, warning=True),
]
