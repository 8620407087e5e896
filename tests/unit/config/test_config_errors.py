"""Bad devenv.yaml files and the exact problem each must report: file, line, field path, message.

A line written as MARK means "the line of the file that carries the comment `# <-`", so the
expectation sits next to the YAML it is about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

import pytest

from devenv.config import load_project
from devenv.errors import ConfigError, ConfigIssue

MARK = "mark"
BASE = "devenv.yaml"
LOCAL = "devenv.local.yaml"


@dataclass
class Case:
    id: str
    base: str
    expect: list[tuple[str, int | None | str, str, str]]  # (file, line, path, message substring)
    overlay: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def param(self):
        return pytest.param(self, id=self.id)


def marked_line(text: str) -> int:
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if "# <-" in line]
    assert len(lines) == 1, "a case marks exactly one line per file"
    return lines[0]


def y(text: str) -> str:
    return dedent(text).lstrip("\n")


CASES = [
    # ------------------------------------------------------------ unknown keys, at several depths
    Case("unknown-top-level-key", y("""
        name: demo
        queue:            # <-
          jobs: {}
        """), [(BASE, MARK, "queue", "unknown key 'queue', did you mean 'queues'?")]),
    Case("unknown-queue-key", y("""
        name: demo
        queues:
          jobs:
            visibilty_timeout: 30   # <-
        """), [(BASE, MARK, "queues.jobs.visibilty_timeout",
                "unknown key 'visibilty_timeout', did you mean 'visibility_timeout'? "
                "(expected one of: visibility_timeout, message_retention, delay")]),
    Case("unknown-target-key-in-list", y("""
        name: demo
        queues: {jobs: {}}
        event_buses:
          nedlia-events:
            rules:
              placement-created:
                pattern: {source: [app]}
                targets:
                  - queeu: jobs     # <-
        """), [(BASE, MARK, "event_buses.nedlia-events.rules.placement-created.targets[0].queeu",
                "did you mean 'queue'?")]),
    Case("unknown-key-four-deep", y("""
        name: demo
        load_balancer: {}
        services:
          web:
            image: web:latest
            command: [python, app.py]
            load_balancer:
              priority: 1
              paths: /web/*
              health_check:
                intervall: 10     # <-
        """), [(BASE, MARK, "services.web.load_balancer.health_check.intervall",
                "unknown key 'intervall', did you mean 'interval'?")]),
    Case("unknown-key-without-suggestion", y("""
        name: demo
        queues:
          jobs:
            colour: blue      # <-
        """), [(BASE, MARK, "queues.jobs.colour",
                "unknown key 'colour' (expected one of: visibility_timeout")]),
    # ------------------------------------------------------------ wrong types
    Case("int-given-a-word", y("""
        name: demo
        queues:
          jobs:
            visibility_timeout: thirty   # <-
        """), [(BASE, MARK, "queues.jobs.visibility_timeout", "expected an integer, got 'thirty' (string)")]),
    Case("int-given-a-fraction", y("""
        name: demo
        queues:
          jobs:
            delay: 1.5   # <-
        """), [(BASE, MARK, "queues.jobs.delay", "expected an integer, got 1.5 (number)")]),
    Case("int-given-nothing", y("""
        name: demo
        queues:
          jobs:
            delay:     # <-
        """), [(BASE, MARK, "queues.jobs.delay", "expected an integer, got an empty value")]),
    Case("bool-given-a-word", y("""
        name: demo
        buckets:
          videos:
            versioning: maybe   # <-
        """), [(BASE, MARK, "buckets.videos.versioning", "expected true or false, got 'maybe' (string)")]),
    Case("string-given-a-number", y("""
        name: demo
        functions:
          worker:
            handler: app.handler
            code: 3       # <-
        """), [(BASE, MARK, "functions.worker.code", "expected a string, got 3 (integer); put it in quotes")]),
    Case("mapping-given-a-number", y("""
        name: demo
        queues: 5    # <-
        """), [(BASE, MARK, "queues", "expected a mapping, got 5 (integer)")]),
    Case("list-given-a-mapping", y("""
        name: demo
        queues: {jobs: {}}
        event_buses:
          bus:
            rules:
              r:
                pattern: {source: [app]}
                targets:       # <-
                  queue: jobs
        """), [(BASE, MARK, "event_buses.bus.rules.r.targets", "expected a list, got a mapping")]),
    # ------------------------------------------------------------ ranges and sizes
    Case("out-of-range-int", y("""
        name: demo
        queues:
          jobs:
            visibility_timeout: 50000   # <-
        """), [(BASE, MARK, "queues.jobs.visibility_timeout", "expected a value from 0 to 43200, got 50000")]),
    Case("out-of-range-exclusive", y("""
        name: demo
        functions:
          worker:
            handler: app.handler
            code: src
            timeout: 0      # <-
        """), [(BASE, MARK, "functions.worker.timeout",
                "expected a value greater than 0 and at most 900, got 0")]),
    Case("out-of-range-port", y("""
        name: demo
        infra:
          postgres:
            port: 70000   # <-
        """), [(BASE, MARK, "infra.postgres.port", "expected a value from 1 to 65535, got 70000")]),
    Case("too-many-targets", y("""
        name: demo
        queues: {a: {}}
        event_buses:
          bus:
            rules:
              r:
                pattern: {source: [app]}
                targets:     # <-
                  - {queue: a, id: t1}
                  - {queue: a, id: t2}
                  - {queue: a, id: t3}
                  - {queue: a, id: t4}
                  - {queue: a, id: t5}
                  - {queue: a, id: t6}
        """), [(BASE, MARK, "event_buses.bus.rules.r.targets", "expected at most 5 items, got 6")]),
    Case("too-few-targets", y("""
        name: demo
        event_buses:
          bus:
            rules:
              r:
                pattern: {source: [app]}
                targets: []    # <-
        """), [(BASE, MARK, "event_buses.bus.rules.r.targets", "expected at least 1 item, got 0")]),
    # ------------------------------------------------------------ choices and name formats
    Case("literal-with-suggestion", y("""
        name: demo
        runtime: dokcer   # <-
        """), [(BASE, MARK, "runtime", "expected one of: native, docker; got 'dokcer' (string), did you mean 'docker'?")]),
    Case("emulator-shorthand-typo", y("""
        name: demo
        emulator: localstak   # <-
        """), [(BASE, MARK, "emulator.kind", "did you mean 'localstack'?")]),
    Case("emulator-cors-origin-with-a-path", y("""
        name: demo
        emulator:
          cors_origins:
            - http://localhost:3000/app   # <-
        """), [(BASE, MARK, "emulator.cors_origins[0]", "is not an origin: expected scheme://host[:port]")]),
    Case("secret-ref-typo", y("""
        name: demo
        services:
          api:
            image: api:latest
            command: [python, app.py]
            secrets:
              DATABASE_URL: postgres.uri   # <-
        """), [(BASE, MARK, "services.api.secrets.DATABASE_URL",
                "expected one of: postgres.url, postgres.password, redis.url, redis.password, alb.url, "
                "aws.endpoint, lambda.endpoint, api.url; got 'postgres.uri'")]),
    Case("bad-bucket-name-key", y("""
        name: demo
        buckets:
          Videos: {}    # <-
        """), [(BASE, MARK, "buckets.Videos", "'Videos' is not a valid bucket name: use 3 to 63 lowercase")]),
    Case("bad-bucket-name-in-list-shorthand", y("""
        name: demo
        buckets:
          - ok-bucket
          - Bad_Bucket   # <-
        """), [(BASE, MARK, "buckets.Bad_Bucket", "not a valid bucket name")]),
    Case("bad-queue-name-with-space", y("""
        name: demo
        queues:
          my queue: {}   # <-
        """), [(BASE, MARK, "queues['my queue']", "'my queue' is not a valid queue name")]),
    Case("bad-stack-name", y("""
        name: Demo_Stack   # <-
        """), [(BASE, MARK, "name", "'Demo_Stack' is not a valid stack name")]),
    # ------------------------------------------------------------ missing required fields
    Case("missing-name", y("""
        # no name here
        region: us-east-1
        """), [(BASE, 2, "name", "required field 'name' is missing")]),
    Case("missing-handler", y("""
        name: demo
        functions:
          worker:          # <-
            code: src
        """), [(BASE, MARK, "functions.worker.handler", "required field 'handler' is missing")]),
    # ------------------------------------------------------------ model validators keep their message
    Case("redrive-incomplete", y("""
        name: demo
        queues:
          jobs:             # <-
            dlq: jobs-dlq
          jobs-dlq: {}
        """), [(BASE, MARK, "queues.jobs", "dlq and max_receive_count go together: max_receive_count is missing")]),
    Case("target-with-two-destinations", y("""
        name: demo
        queues: {jobs: {}}
        functions: {worker: {handler: app.handler, code: src}}
        event_buses:
          bus:
            rules:
              r:
                pattern: {source: [app]}
                targets:
                  - queue: jobs     # <-
                    function: worker
        """), [(BASE, MARK, "event_buses.bus.rules.r.targets[0]", "exactly one of 'queue' or 'function'")]),
    Case("autoscaling-min-above-max", y("""
        name: demo
        services:
          web:
            image: web:latest
            command: [python, app.py]
            autoscaling:    # <-
              min: 5
              max: 2
        """), [(BASE, MARK, "services.web.autoscaling", "min (5) is greater than max (2)")]),
    Case("route-path-without-slash", y("""
        name: demo
        functions: {worker: {handler: app.handler, code: src}}
        api:
          routes:
            - method: get
              path: items    # <-
              function: worker
        """), [(BASE, MARK, "api.routes[0].path", "a route path starts with '/'")]),
    Case("batch-size-needs-window", y("""
        name: demo
        queues: {jobs: {}}
        functions:
          worker:
            handler: app.handler
            code: src
            events:
              - sqs:       # <-
                  queue: jobs
                  batch_size: 100
        """), [(BASE, MARK, "functions.worker.events[0].sqs",
                "a batch_size above 10 needs maximum_batching_window of at least 1 second")]),
    Case("fifo-batch-size", y("""
        name: demo
        queues: {jobs.fifo: {}}
        functions:
          worker:
            handler: app.handler
            code: src
            events:
              - sqs: {queue: jobs.fifo, batch_size: 20, maximum_batching_window: 5}   # <-
        """), [(BASE, MARK, "functions.worker.events[0].sqs", "batch_size is at most 10 for a FIFO queue, got 20")]),
    Case("queue-name-too-long", "name: demo\nqueues:\n  " + "q" * 76 + ".fifo: {}   # <-\n",
         [(BASE, MARK, "queues['" + "q" * 76 + ".fifo']", "is too long: at most 80 characters, got 81")]),
    # ------------------------------------------------------------ dangling references
    Case("dlq-not-defined", y("""
        name: demo
        queues:
          jobs:
            dlq: jobs-dql     # <-
            max_receive_count: 3
          jobs-dlq: {}
        """), [(BASE, MARK, "queues.jobs.dlq",
                "dead-letter queue 'jobs-dql' is not defined under queues, did you mean 'jobs-dlq'?")]),
    Case("dlq-is-itself", y("""
        name: demo
        queues:
          jobs:
            dlq: jobs       # <-
            max_receive_count: 3
        """), [(BASE, MARK, "queues.jobs.dlq", "queue 'jobs' cannot be its own dead-letter queue")]),
    Case("fifo-queue-standard-dlq", y("""
        name: demo
        queues:
          orders.fifo:
            dlq: orders-dlq     # <-
            max_receive_count: 3
          orders-dlq: {}
        """), [(BASE, MARK, "queues['orders.fifo'].dlq",
                "'orders.fifo' is a FIFO queue, so its dead-letter queue must be FIFO too")]),
    Case("standard-queue-fifo-dlq", y("""
        name: demo
        queues:
          orders:
            dlq: orders-dlq.fifo     # <-
            max_receive_count: 3
          orders-dlq.fifo: {}
        """), [(BASE, MARK, "queues.orders.dlq",
                "'orders' is a standard queue, so its dead-letter queue must be standard too")]),
    Case("rule-target-queue-missing", y("""
        name: demo
        queues: {nedlia-validation: {}}
        event_buses:
          nedlia-events:
            rules:
              placement-created:
                pattern: {source: [app]}
                targets:
                  - queue: nedlia-validaton    # <-
        """), [(BASE, MARK, "event_buses.nedlia-events.rules.placement-created.targets[0].queue",
                "queue 'nedlia-validaton' is not defined under queues, did you mean 'nedlia-validation'?")]),
    Case("rule-target-function-missing", y("""
        name: demo
        event_buses:
          bus:
            rules:
              r:
                pattern: {source: [app]}
                targets:
                  - function: notify    # <-
        """), [(BASE, MARK, "event_buses.bus.rules.r.targets[0].function",
                "function 'notify' is not defined under functions (there are no functions)")]),
    Case("rule-target-dlq-missing", y("""
        name: demo
        queues: {jobs: {}}
        event_buses:
          bus:
            rules:
              r:
                pattern: {source: [app]}
                targets:
                  - queue: jobs
                    dead_letter_queue: events-dlq    # <-
        """), [(BASE, MARK, "event_buses.bus.rules.r.targets[0].dead_letter_queue",
                "dead-letter queue 'events-dlq' is not defined under queues")]),
    Case("rule-target-dlq-fifo", y("""
        name: demo
        queues: {jobs: {}, events-dlq.fifo: {}}
        event_buses:
          bus:
            rules:
              r:
                pattern: {source: [app]}
                targets:
                  - queue: jobs
                    dead_letter_queue: events-dlq.fifo    # <-
        """), [(BASE, MARK, "event_buses.bus.rules.r.targets[0].dead_letter_queue",
                "an EventBridge dead-letter queue must be a standard queue")]),
    Case("rule-duplicate-target-ids", y("""
        name: demo
        queues: {jobs: {}}
        event_buses:
          bus:
            rules:
              r:
                pattern: {source: [app]}
                targets:
                  - queue: jobs
                  - queue: jobs    # <-
        """), [(BASE, MARK, "event_buses.bus.rules.r.targets[1]",
                "target id 'queue-jobs' is already used by targets[0] of this rule")]),
    Case("function-event-queue-missing", y("""
        name: demo
        functions:
          worker:
            handler: app.handler
            code: src
            events:
              - sqs:
                  queue: jobs    # <-
        """), [(BASE, MARK, "functions.worker.events[0].sqs.queue",
                "queue 'jobs' is not defined under queues (there are no queues)")]),
    Case("function-event-queue-visibility-too-short", y("""
        name: demo
        queues: {jobs: {visibility_timeout: 30}}
        functions:
          worker:
            handler: app.handler
            code: src
            timeout: 60
            events:
              - sqs:
                  queue: jobs    # <-
        """), [(BASE, MARK, "functions.worker.events[0].sqs.queue",
                "queue 'jobs' has visibility_timeout 30, less than this function's timeout 60")]),
    Case("function-on-failure-missing", y("""
        name: demo
        queues: {failures: {}}
        functions:
          worker:
            handler: app.handler
            code: src
            on_failure:
              queue: failurs    # <-
        """), [(BASE, MARK, "functions.worker.on_failure.queue",
                "queue 'failurs' is not defined under queues, did you mean 'failures'?")]),
    Case("function-dlq-missing", y("""
        name: demo
        functions:
          worker:
            handler: app.handler
            code: src
            dead_letter_queue: worker-dlq    # <-
        """), [(BASE, MARK, "functions.worker.dead_letter_queue",
                "dead-letter queue 'worker-dlq' is not defined under queues")]),
    Case("route-function-missing", y("""
        name: demo
        functions: {items: {handler: app.handler, code: src}}
        api:
          routes:
            - {method: GET, path: /items, function: item}    # <-
        """), [(BASE, MARK, "api.routes[0].function",
                "function 'item' is not defined under functions, did you mean 'items'?")]),
    Case("route-duplicate", y("""
        name: demo
        functions: {items: {handler: app.handler, code: src}}
        api:
          routes:
            - {method: GET, path: /items, function: items}
            - {method: get, path: /items/, function: items}    # <-
        """), [(BASE, MARK, "api.routes[1]", "route GET /items is already defined at api.routes[0]")]),
    Case("route-parameter-clash", y("""
        name: demo
        functions: {items: {handler: app.handler, code: src}}
        api:
          routes:
            - {method: GET, path: "/items/{id}", function: items}
            - {method: PUT, path: "/items/{itemId}", function: items}    # <-
        """), [(BASE, MARK, "api.routes[1].path", "path parameter {itemId} clashes with {id}")]),
    Case("service-load-balancer-without-section", y("""
        name: demo
        services:
          web:
            image: web:latest
            command: [python, app.py]
            load_balancer:     # <-
              priority: 10
              paths: /web/*
        """), [(BASE, MARK, "services.web.load_balancer",
                "there is no top-level 'load_balancer' section; add 'load_balancer: {}'")]),
    Case("listener-priority-clash", y("""
        name: demo
        load_balancer:
        services:
          web:
            image: web:latest
            command: [python, app.py]
            load_balancer: {priority: 10, paths: /web/*}
          admin:
            image: admin:latest
            command: [python, app.py]
            load_balancer:
              priority: 10     # <-
              paths: /admin/*
        """), [(BASE, MARK, "services.admin.load_balancer.priority",
                "listener rule priority 10 is already used by services.web.load_balancer.priority")]),
    Case("port-clash", y("""
        name: demo
        emulator:
          kind: moto
          port: 5432      # <-
        infra:
          postgres:
            port: 5432
        """), [(BASE, MARK, "emulator.port",
                "port 5432 is also used by infra.postgres.port; emulator.port and infra.postgres.port must differ")]),
    Case("secret-needs-postgres", y("""
        name: demo
        infra:
          postgres: false
        services:
          api:
            image: api:latest
            command: [python, app.py]
            secrets:
              DATABASE_URL: postgres.url   # <-
        """), [(BASE, MARK, "services.api.secrets.DATABASE_URL",
                "'postgres.url' needs infra.postgres, which is turned off")]),
    Case("secret-needs-redis", y("""
        name: demo
        infra: {redis: false}
        services:
          api:
            image: api:latest
            command: [python, app.py]
            secrets: {REDIS_URL: redis.url}   # <-
        """), [(BASE, MARK, "services.api.secrets.REDIS_URL", "'redis.url' needs infra.redis")]),
    Case("seed-bucket-missing", y("""
        name: demo
        buckets: [nedlia-videos]
        seed:
          s3:
            - bucket: nedlia-video    # <-
              path: src
        """), [(BASE, MARK, "seed.s3[0].bucket",
                "bucket 'nedlia-video' is not defined under buckets, did you mean 'nedlia-videos'?")]),
    Case("seed-migrations-need-postgres", y("""
        name: demo
        infra: {postgres: false}
        seed:
          migrations: src    # <-
        """), [(BASE, MARK, "seed.migrations", "migrations run against PostgreSQL, but infra.postgres is turned off")]),
    Case("fargate-size", y("""
        name: demo
        services:
          web:
            image: web:latest
            command: [python, app.py]
            cpu: 256
            memory: 4096    # <-
        """), [(BASE, MARK, "services.web.memory", "Fargate allows memory 512, 1024, 2048 with cpu 256, got 4096")]),
    # ------------------------------------------------------------ files and folders the config names
    Case("function-code-missing", y("""
        name: demo
        functions:
          worker:
            handler: app.handler
            code: functions/worker    # <-
        """), [(BASE, MARK, "functions.worker.code", "directory 'functions/worker' not found at ")]),
    Case("service-build-is-a-file", y("""
        name: demo
        services:
          web:
            build: devenv.yaml    # <-
            command: [python, app.py]
        """), [(BASE, MARK, "services.web.build", "'devenv.yaml' is a file, expected a directory")]),
    Case("seed-s3-path-missing", y("""
        name: demo
        buckets: [media]
        seed:
          s3:
            - bucket: media
              path: seed/media    # <-
        """), [(BASE, MARK, "seed.s3[0].path", "file or directory 'seed/media' not found")]),
    # ------------------------------------------------------------ YAML itself
    Case("yaml-syntax-error", y("""
        name: demo
        queues:
          jobs: {visibility_timeout: 30     # <-
          other: {}
        """), [(BASE, MARK, "", "invalid YAML: a '{' mapping opened at column 9 is not closed on its line")]),
    Case("yaml-bad-indentation", y("""
        name: demo
        queues:
          jobs: {}
           other: {}    # <-
        """), [(BASE, MARK, "", "invalid YAML at column 4: expected <block end>, but found '<block mapping start>' "
                               "(while parsing a block mapping, line 3); check the indentation of this line")]),
    Case("yaml-unquoted-colon", y("""
        name: demo
        event_buses:
          bus:
            rules:
              r:
                description: note: quote me    # <-
        """), [(BASE, MARK, "", "invalid YAML at column 26: mapping values are not allowed here; "
                               "a value containing ': ' must be quoted")]),
    Case("yaml-tab", "name: demo\nqueues:\n\tjobs: {}   # <-\n",
         [(BASE, MARK, "", "YAML indents with spaces, not tabs")]),
    Case("yaml-unclosed-quote", y("""
        name: demo
        queues:
          jobs: {}
        region: 'us-east-1     # <-
        """), [(BASE, MARK, "", "invalid YAML: the file ends inside a quoted string that is never closed")]),
    Case("yaml-impossible-date", y("""
        name: demo
        infra:
          postgres:
            version: 2024-13-45     # <-
        """), [(BASE, MARK, "infra.postgres.version", "cannot read '2024-13-45': month must be in 1..12")]),
    Case("duplicate-key", y("""
        name: demo
        queues:
          jobs: {delay: 5}
          jobs: {delay: 10}   # <-
        """), [(BASE, MARK, "queues.jobs", "duplicate key 'jobs' (first defined on line 3)")]),
    Case("empty-file", "", [(BASE, None, "", "the file is empty")]),
    Case("comments-only-file", "# nothing yet\n", [(BASE, None, "", "the file is empty")]),
    Case("top-level-list", y("""
        - name: demo    # <-
        """), [(BASE, MARK, "", "the top level must be a mapping of sections")]),
    Case("top-level-scalar", "just words   # <-\n", [(BASE, MARK, "", "got the scalar 'just words'")]),
    # ------------------------------------------------------------ the overlay: its problems are its own
    Case("overlay-unknown-key", y("""
        name: demo
        queues:
          jobs: {}
        """), [(LOCAL, MARK, "queues.jobs.visibilty_timeout", "did you mean 'visibility_timeout'?")],
         overlay=y("""
        queues:
          jobs:
            visibilty_timeout: 5   # <-
        """)),
    Case("overlay-bad-value-over-base", y("""
        name: demo
        queues:
          jobs:
            visibility_timeout: 30
        """), [(LOCAL, MARK, "queues.jobs.visibility_timeout", "expected a value from 0 to 43200, got -1")],
         overlay=y("""
        # scale time down locally
        queues:
          jobs:
            visibility_timeout: -1   # <-
        """)),
    Case("overlay-dangling-reference", y("""
        name: demo
        queues:
          jobs: {}
        """), [(LOCAL, MARK, "queues.jobs.dlq", "dead-letter queue 'nope' is not defined")],
         overlay=y("""
        queues:
          jobs:
            dlq: nope   # <-
            max_receive_count: 2
        """)),
    Case("overlay-syntax-error", "name: demo\n", [(LOCAL, MARK, "", (
        "invalid YAML: the file ends inside a '[' list that is never closed"))],
         overlay=y("""
        runtime: [docker   # <-
        """)),
    Case("overlay-duplicate-key", "name: demo\n", [(LOCAL, MARK, "runtime", "duplicate key 'runtime'")],
         overlay=y("""
        runtime: docker
        runtime: native   # <-
        """)),
    Case("overlay-top-level-list", "name: demo\n", [(LOCAL, MARK, "", "the top level must be a mapping")],
         overlay="- runtime: docker   # <-\n"),
    Case("errors-in-both-files", y("""
        name: demo
        region: mars    # <-
        """), [(BASE, MARK, "region", "'mars' is not a valid region"),
               (LOCAL, MARK, "runtime", "expected one of: native, docker")],
         overlay=y("""
        runtime: podman    # <-
        """)),
    # ------------------------------------------------------------ environment overrides
    Case("env-runtime-invalid", "name: demo\n",
         [("environment variable DEVENV_RUNTIME", None, "runtime", "expected one of: native, docker; got 'podman'")],
         env={"DEVENV_RUNTIME": "podman"}),
    Case("env-emulator-invalid", "name: demo\nemulator: moto\n",
         [("environment variable DEVENV_EMULATOR", None, "emulator.kind", "did you mean 'localstack'?")],
         env={"DEVENV_EMULATOR": "localstak"}),
    # A typo the override replaces is still the file's: it bites the day the variable is unset.
    Case("env-override-hides-no-emulator-typo", y("""
        name: demo
        emulator: mot0    # <-
        """), [(BASE, MARK, "emulator.kind", "did you mean 'moto'?")], env={"DEVENV_EMULATOR": "ministack"}),
    Case("env-override-hides-no-runtime-typo", y("""
        name: demo
        runtime: podman    # <-
        """), [(BASE, MARK, "runtime", "expected one of: native, docker; got 'podman'")],
         env={"DEVENV_RUNTIME": "docker"}),
]


def _write(tmp_path: Path, case: Case) -> None:
    (tmp_path / BASE).write_text(case.base)
    if case.overlay is not None:
        (tmp_path / LOCAL).write_text(case.overlay)
    (tmp_path / "src").mkdir()


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_file_reports_where_and_what(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _write(tmp_path, case)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigError) as raised:
        load_project(environ=case.env)

    issues = raised.value.issues
    texts = {BASE: case.base, LOCAL: case.overlay or ""}
    expected = [(file, marked_line(texts[file]) if line == MARK else line, path, message)
                for file, line, path, message in case.expect]
    got = [(i.file, i.line, i.path, i.message) for i in issues]
    assert len(issues) == len(expected), got
    for issue, (file, line, path, message) in zip(issues, expected):
        assert (issue.file, issue.line, issue.path) == (file, line, path), got
        assert message in issue.message, got


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_messages_are_for_people(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No pydantic wording or URLs, no Python reprs of classes leak into any message."""
    _write(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(environ=case.env)
    for issue in raised.value.issues:
        assert isinstance(issue, ConfigIssue)
        for leak in ("Input should", "errors.pydantic.dev", "Value error,", "<class", "Traceback"):
            assert leak not in issue.message
    assert raised.value.exit_code == 2
    assert len(raised.value.details) == len(raised.value.issues)


def test_case_count_is_substantial():
    assert len(CASES) >= 30
