"""The `devenv` command: parse arguments, call the Stack, render the result.

This is the only module that prints or imports typer/rich. Every DevenvError is caught once
here and shown without a traceback, with its hint and context lines.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .cli_table import Column, render
from .errors import DevenvError, EndpointStatusError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="A faithful local copy of Nedlia's AWS backend: `devenv up`, then build.")
# emoji=False: rich would turn text such as `devenv.yaml:100:` into `devenv.yaml💯`. User text
# (file paths, messages, log lines, names) never goes through markup: it is escaped, printed
# with markup=False, or a Text.
out = Console(soft_wrap=True, emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)

STATE_STYLE = {
    "ready": "green", "starting": "yellow", "pending": "dim", "restarting": "yellow",
    "failed": "bold red", "stopping": "yellow", "stopped": "dim",
}


def _show_version(value: bool) -> None:
    if value:
        from . import __version__

        out.print(f"devenv {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="print devenv's version and exit")) -> None:
    pass  # the app's help is the Typer's; this callback only carries the root options


_file_option = typer.Option(None, "--file", "-f", help="devenv.yaml to use (default: search upwards)",
                            envvar=None, show_default=False)


def _stack(file: Optional[Path], *, runtime: Optional[str] = None, emulator: Optional[str] = None):
    from .config.loader import Overrides, load_project
    from .stack import Stack

    return Stack(load_project(file, overrides=Overrides(runtime=runtime, emulator=emulator)))


# ---------------------------------------------------------------- up / down


@app.command()
def up(file: Optional[Path] = _file_option,
       foreground: bool = typer.Option(False, "--foreground", help="run the supervisor in this terminal"),
       timeout: float = typer.Option(180.0, min=0, help="seconds to wait for every component to be ready"),
       runtime: Optional[str] = typer.Option(None, "--runtime", show_default=False,
                                             help="native or docker (default: $DEVENV_RUNTIME, else devenv.yaml's)"),
       emulator: Optional[str] = typer.Option(None, "--emulator", show_default=False,
                                              help="moto, ministack or localstack (default: $DEVENV_EMULATOR, "
                                                   "else devenv.yaml's)"),
       ) -> None:
    """Start the stack (detached: returns once everything is healthy)."""
    stack = _stack(file, runtime=runtime, emulator=emulator)
    _print_warnings(stack.project)
    started = time.monotonic()
    if foreground:
        out.print(f"[bold]{stack.config.name}[/]: starting in the foreground (Ctrl-C stops it)")
        reporter = _LineReporter()

        def deployed(report) -> None:
            _print_deploy(report)
            _print_ready(stack, time.monotonic() - started)

        stack.run_foreground(on_record=reporter, on_deployed=deployed, on_build=_build_line)
        out.print("stopped")
        return
    with _Progress(stack.config.name) as progress:
        try:
            result = stack.up(on_record=progress.update, timeout=timeout, on_build=_build_line)
        except KeyboardInterrupt:
            progress.stop()
            err.print("[yellow]interrupted: stopped what had started[/]")
            raise typer.Exit(130)
    for note in result.notes:
        out.print(f"[yellow]![/] {escape(note)}")
    if result.already_running:
        out.print(f"[bold]{stack.config.name}[/] is already running")
    _print_deploy(result.deploy)
    if not result.already_running:
        for line in (*result.record.seed, *result.record.seed_objects):
            out.print(f"seed: {line}", highlight=False, markup=False)
    _print_ready(stack, time.monotonic() - started, record=result.record)


@app.command()
def build(file: Optional[Path] = _file_option) -> None:
    """Build every function and service environment that is missing or changed (parallel)."""
    stack = _stack(file)
    if stack.docker is not None:
        out.print("runtime: docker builds its images when the stack starts; nothing to build here")
        return
    started = time.monotonic()
    envs = stack.environments()
    specs = envs.specs
    if out.is_terminal:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from .build.store import BuildState

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=out,
                      transient=False) as bar:
            tasks: dict[str, int] = {}

            def on_event(event) -> None:
                spec = event.spec
                if event.state is BuildState.STARTED:
                    tasks[spec.digest] = bar.add_task(f"{spec.purpose} (Python {spec.python.version})", total=1)
                else:
                    bar.update(tasks[spec.digest], completed=1, description=(
                        f"{spec.purpose} (Python {spec.python.version}): {event.state.value}"))

            events = stack.build(on_event=on_event)
    else:
        events = stack.build(on_event=_build_line)
    store = stack.env_store()
    out.print(f"{len(specs)} environment(s), {len(events)} built, {len(specs) - len(events)} up to date "
              f"in {time.monotonic() - started:.1f}s ({store.root})", highlight=False)
    for name, env in envs.functions.items():
        out.print(f"  function {name}: {env.runtime.purpose}, {store.python(env.runtime)}", highlight=False)
    for name, env in envs.services.items():
        source = f"requirements {env.requirements_from}" if env.requirements_from else "no requirements file"
        out.print(f"  service {name}: Python {env.venv.python.version}, {source}, {store.path(env.venv)}",
                  highlight=False)
    if envs.emulator is not None:
        out.print(f"  emulator {stack.config.emulator.kind}: Python {envs.emulator.python.version}, "
                  f"{' '.join(envs.emulator.packages)}, {store.path(envs.emulator)}", highlight=False)


def _build_line(event) -> None:
    """One line per environment built during `up` (nothing when all are up to date)."""
    from .build.store import BuildState

    spec = event.spec
    if event.state is BuildState.STARTED:
        out.print(f"  building {spec.purpose} (Python {spec.python.version})…", highlight=False)
    elif event.state is BuildState.BUILT:
        out.print(f"  built {spec.purpose} in {event.seconds:.1f}s", highlight=False)
    else:
        err.print(f"  [red]failed[/] {spec.purpose}", highlight=False)


@app.command()
def down(file: Optional[Path] = _file_option,
         volumes: bool = typer.Option(False, "--volumes", "-v", help="also wipe data, secrets and logs")) -> None:
    """Stop everything (data is kept unless --volumes)."""
    stack = _stack(file)
    started = time.monotonic()
    result = stack.down(volumes=volumes)
    for note in result.notes:
        out.print(f"[yellow]![/] {escape(note)}")
    if result.was_running:
        out.print(f"stopped {', '.join(result.stopped) or 'the supervisor'} "
                  f"in {time.monotonic() - started:.1f}s")
    else:
        out.print("nothing was running")
    if result.wiped:
        out.print(f"wiped {stack.state.root}")


# ---------------------------------------------------------------- observation


def _print_components(record, running: bool, now: float) -> None:
    rows = []
    for c in record.components:
        state = c.state.value if running else ("stopped" if c.state.value != "failed" else "failed")
        runs_as = str(c.pid or c.container or "") if running else ""  # a container: its id
        uptime = _duration(now - c.started_at) if (c.started_at and runs_as) else "-"
        note = c.message or (f"last: {c.last_exit}" if c.last_exit else "")
        rows.append((c.name, Text(state, style=STATE_STYLE.get(state, "")), c.address,
                     runs_as or "-", uptime, str(c.restarts), note))
    title = f"{record.stack} — {'running' if running else 'not running'} ({record.phase.value})"
    out.print(render(out, STATUS_COLUMNS, rows, title=title))


STATUS_COLUMNS = (Column("component", whole=True), Column("state", whole=True), Column("address", whole=True),
                  Column("pid", whole=True, drop=2), Column("uptime", drop=3), Column("restarts", numeric=True, drop=1),
                  Column("note"))


@app.command()
def status(file: Optional[Path] = _file_option) -> None:
    """Show each component: state, address, pid, uptime."""
    stack = _stack(file)
    view = stack.status()
    record = view.record
    if record is None:
        out.print("not running (never started here)")
        raise typer.Exit(3)
    _print_components(record, view.running, time.time())
    if view.running:
        api = stack.api_url(record.ports)
        if api:
            out.print(f"API: {api}")
        if "ecs" in record.ports:
            _print_services(stack.ecs(record).services())
    for note in view.notes:
        out.print(f"[yellow]![/] {escape(note)}")
    if not view.running or record.phase.value != "ready":
        raise typer.Exit(3)


@app.command()
def logs(components: Optional[list[str]] = typer.Argument(None, help="components, functions or services "
                                                                     "(default: all)"),
         follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new lines"),
         lines: int = typer.Option(50, "--lines", "-n", min=0, help="lines of history to show (per log)"),
         trace_id: Optional[str] = typer.Option(None, "--trace", "-t", help="only lines of this trace (id or prefix)"),
         level: Optional[str] = typer.Option(None, "--level", "-l", help="minimum level: debug, info, warning, error"),
         file: Optional[Path] = typer.Option(None, "--file", help="devenv.yaml to use")) -> None:
    """Show logs merged, a colour per component, each line with its trace where known (`-f` follows)."""
    from .observe.logs import LEVELS, LogFilter, LogFollower, LogStream, normal_level
    from .observe.span_index import SpanIndex

    stack = _stack(file)
    available = _log_files(stack)
    names = sorted(available)
    if components:
        unknown = [c for c in components if c not in available]
        if unknown:
            raise DevenvError(f"no logs for {', '.join(repr(c) for c in unknown)}",
                              hint=f"components, functions and services with logs: {', '.join(names) or 'none yet'}")
        names = list(dict.fromkeys(components))
    wanted_level = None if level is None else normal_level(level)
    if level is not None and wanted_level is None:
        raise DevenvError(f"unknown level '{level}'", hint=f"levels: {', '.join(LEVELS)} (or warn, critical, ...)")
    spans = SpanIndex(stack.state.traces) if stack.config.tracing.enabled else None  # no spans: nothing to wait for
    stream = LogStream(LogFollower({n: available[n] for n in names}), spans)
    wanted = LogFilter(trace=trace_id, level=wanted_level)
    width = max((len(n) for n in names), default=0)
    colours = ["cyan", "magenta", "green", "blue", "yellow", "bright_cyan", "bright_magenta", "bright_green",
               "bright_blue", "bright_yellow"]
    style = {n: colours[i % len(colours)] for i, n in enumerate(names)}
    level_style = {"error": "red", "warning": "yellow", "debug": "dim"}

    def show(line) -> None:
        if not wanted(line):
            return
        text = Text()
        if len(names) > 1:
            text += Text(f"{line.source:<{width}} | ", style=style[line.source])
        if line.trace_id:
            text += Text(f"[{line.trace_id.split('-')[-1][:8]}] ", style="dim")
        text += Text(line.text, style=level_style.get(line.level, ""))
        out.print(text, highlight=False)

    for line in stream.history(lines):
        show(line)
    if follow:
        err.print(f"following {len(names)} log(s) (Ctrl-C to stop)", highlight=False)
        try:
            for line in stream.follow():
                show(line)
        except KeyboardInterrupt:
            pass


@app.command()
def seed(file: Optional[Path] = _file_option) -> None:
    """Apply pending migrations, seed data and seed objects (idempotent)."""
    for line in _stack(file).seed().lines():
        out.print(f"seed: {line}", highlight=False, markup=False)


@app.command()
def reset(file: Optional[Path] = _file_option) -> None:
    """Return the running stack to its seeded state: empty tables, queues, buckets and cache, then seed."""
    started = time.monotonic()
    for line in _stack(file).seed(reset=True).lines():
        out.print(f"reset: {line}", highlight=False, markup=False)
    out.print(f"[green]✓[/] back to the seeded state in {time.monotonic() - started:.1f}s")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def e2e(ctx: typer.Context, file: Optional[Path] = _file_option,
        keep: bool = typer.Option(False, "--keep", help="leave the stack up afterwards for inspection"),
        reuse: bool = typer.Option(False, "--reuse", help="run against the project's own stack (`devenv up`'s) "
                                                          "instead of the separate test instance"),
        junit: Path = typer.Option(Path("test-results/e2e.xml"), "--junit", help="JUnit XML report for CI"),
        suite: Path = typer.Option(Path("tests/e2e"), "--suite", help="the end-to-end tests, under the project")) -> None:
    """Bring up the stack's test instance (its own state, ports and data: a stack you have running is left
    as it is), run the end-to-end suite against it, write JUnit XML; non-zero on failure.

    Extra arguments go to pytest (e.g. `devenv e2e -k lifecycle`)."""
    import subprocess
    import sys

    from .config.loader import ENV_INSTANCE, TEST_INSTANCE, load_project
    from .stack import Stack

    stack = Stack(load_project(file, instance=None if reuse else TEST_INSTANCE))
    tests = stack.project.root / suite
    if not tests.exists():
        raise DevenvError(f"no end-to-end suite at {tests}", hint="pass --suite PATH")
    started = not stack.is_running()
    clock = time.monotonic()
    if started:
        with _Progress(stack.config.name) as progress:
            stack.up(on_record=progress.update)
        out.print(f"[green]✓[/] stack up in {time.monotonic() - clock:.1f}s"
                  + ("" if reuse else f" (test instance: {stack.state.root})"), highlight=False)
    junit_path = stack.project.root / junit
    junit_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pytest", str(tests), "-q", "-p", "no:cacheprovider",
               f"--junitxml={junit_path}", "--devenv-file", str(stack.project.files[0]),
               *(["--devenv-reuse"] if reuse else ["--devenv-instance", TEST_INSTANCE]), *ctx.args]
    try:
        code = subprocess.call(command, cwd=stack.project.root)
    finally:
        if started and not keep:
            stack.down()
    left = ""
    if keep and started:
        left = " · stack left running (--keep)" + ("" if reuse else f"; address it with {ENV_INSTANCE}={TEST_INSTANCE}")
    out.print(f"{'[green]✓ passed' if code == 0 else '[red]✗ failed'}[/] in {time.monotonic() - clock:.1f}s "
              f"· JUnit: {junit_path}{left}", highlight=False)
    raise typer.Exit(code)


@app.command()
def tour(file: Optional[Path] = _file_option) -> None:
    """A first-day walkthrough: the architecture devenv.yaml declares, then one request's trip, hop by hop."""
    from .tour.architecture import how_to_add_a_request, overview
    from .tour.run import steps

    stack = _stack(file)
    config = stack.config
    title = config.tour.title if config.tour and config.tour.title else f"A tour of {config.name}"
    out.print(Text(title, style="bold"))
    out.print(Text.assemble("\n", ("The architecture", "bold"), f" (from {stack.project.files[0].name})\n"))
    for number, step in enumerate(overview(config), 1):
        _print_step(number, step)
    if config.tour is None:
        _print_step(None, how_to_add_a_request(config))
        return
    request = config.tour.request
    out.print(Text.assemble(("One request's trip:", "bold"), f" {request.method} {request.path}\n"))
    if not stack.is_running():
        out.print("Starting the stack first (devenv up)…")
        with _Progress(config.name) as progress:
            stack.up(on_record=progress.update)
    with err.status("sending the request and following its trace…"):
        walked = list(steps(stack))
    for number, step in enumerate(walked, 1):
        _print_step(number, step)
    out.print("Next: `devenv logs -f`, `devenv ps`, `devenv trace`, `devenv dashboard`.")


def _print_step(number: Optional[int], step) -> None:
    """A tour step wrapped to the terminal (80 columns when piped), continuation lines indented
    under their paragraph, no trailing blanks."""
    import textwrap

    def para(text: str, indent: int, hang: int, style: str = "", label: int = 0) -> None:
        lines = textwrap.wrap(text, max(out.width, 40), initial_indent=" " * indent,
                              subsequent_indent=" " * hang, break_on_hyphens=False) or [""]
        block = Text("\n".join(lines), style=style)
        if label:
            block.stylize("green", indent, indent + label)
        out.print(block, soft_wrap=True)

    para(f"{number}. {step.title}" if number else step.title, 0, 3, "bold cyan")
    if step.say:
        para(step.say, 2, 2)
    para(step.explanation, 2, 2, "dim" if step.say else "")
    for label, value in step.facts:
        if not label:
            out.print(Text("    " + value), soft_wrap=True)  # a code line, kept as written
        else:
            para(f"{label}: {value}", 4, 6 + min(len(label) - len(label.lstrip()), 12), label=len(label) + 1)
    out.print()


# When narrow: drop the task set (blue/green), started, then show each service as a heading over its tasks,
# then drop the figures.
PS_COLUMNS = (Column("service", whole=True, group=True, drop=6), Column("task", whole=True),
              Column("rev", numeric=True, drop=3), Column("set", whole=True, drop=8),
              Column("provider", whole=True, drop=1), Column("address", whole=True), Column("status", whole=True),
              Column("health", whole=True), Column("cpu %", numeric=True, drop=4),
              Column("mem MiB", numeric=True, drop=5), Column("started", drop=7), Column("stopped reason", drop=2))


@app.command()
def ps(file: Optional[Path] = _file_option,
       all_tasks: bool = typer.Option(False, "--all", "-a", help="include stopped tasks")) -> None:
    """List ECS tasks: service, task id, capacity provider, address, status, health, CPU, memory, started."""
    _print_tasks(_stack(file).ecs().tasks(stopped=all_tasks), time.time())


def _task_set(task: dict) -> str:
    """A CODE_DEPLOY service's task: its task set (blue, green) and that set's share of traffic."""
    if not task.get("taskSet"):
        return ""
    return f"{task['taskSet']} {task['traffic']}%" if task.get("traffic") is not None else task["taskSet"]


def _print_tasks(tasks: list[dict], now: float) -> None:
    rows = []
    for t in sorted(tasks, key=lambda t: (t["service"], t["lastStatus"] == "STOPPED", -(t["startedAt"] or 0))):
        health_style = {"HEALTHY": "green", "UNHEALTHY": "bold red"}.get(t["healthStatus"], "dim")
        started = _duration(now - t["startedAt"]) + " ago" if t["startedAt"] else "-"
        rows.append((t["service"], t["taskId"], str(t["revision"]), _task_set(t),
                     t.get("capacityProvider", "FARGATE"), t["address"], t["lastStatus"],
                     Text(t["healthStatus"], style=health_style), f"{t['cpuPercent']:.0f}",
                     f"{t['memoryMiB']:.0f}", started, t["stoppedReason"] or ""))
    columns = PS_COLUMNS
    if not any(row[3] for row in rows):  # no CODE_DEPLOY service: no task set column
        columns = PS_COLUMNS[:3] + PS_COLUMNS[4:]
        rows = [row[:3] + row[4:] for row in rows]
    out.print(render(out, columns, rows))


@app.command()
def deploy(service: str = typer.Argument(..., help="the service to roll out"),
           watch: bool = typer.Option(False, "--watch", "-w", help="deploy again whenever its code changes"),
           file: Optional[Path] = _file_option) -> None:
    """Start a rolling deployment of a service (a new revision of its code)."""
    stack = _stack(file)
    if service not in stack.config.services:
        raise DevenvError(f"no service '{service}' in devenv.yaml",
                          hint=f"services: {', '.join(stack.config.services) or 'none'}")
    control = stack.ecs()

    def roll_out(why: str = "") -> None:
        try:
            result = control.deploy(service)
        except EndpointStatusError as exc:
            if not (watch and why and exc.status == 409):
                raise
            # --watch on a blue/green service: CodeDeploy runs one deployment at a time
            out.print(f"{service}: {why}not deployed: {exc}", highlight=False, markup=False)
            return
        blue_green = result.get("codeDeploy")
        if blue_green:
            out.print(f"{service}: {why}blue/green deployment {blue_green['deploymentId']} of revision "
                      f"{result['revision']} started ({blue_green['deploymentConfig']}); `devenv ps` shows the "
                      "task sets and their traffic", highlight=False)
            return
        out.print(f"{service}: {why}deployment {result['deployment']} of revision {result['revision']} started")

    if not watch:
        roll_out()
        return
    from devenv.runtime.watch import changes

    config = stack.config.services[service]
    source = (stack.project.root / config.build) if config.build else stack.project.root
    try:
        # The first deployment starts once the folder is watched, so no edit falls in between.
        for _ in changes([source], on_ready=lambda: (roll_out(), out.print(f"watching {source} (Ctrl-C to stop)"))):
            roll_out("code changed; ")
    except KeyboardInterrupt:
        pass


@app.command()
def scale(service: str = typer.Argument(..., help="the service"),
          count: int = typer.Argument(..., min=0, help="desired count"),
          file: Optional[Path] = _file_option) -> None:
    """Set a service's desired count (autoscaling's min and max still apply; target tracking may change it)."""
    for line in _scale_report(service, _stack(file).ecs().scale(service, count)):
        out.print(line, highlight=False)


def _scale_report(service: str, result: dict) -> list[str]:
    """What `devenv scale` did, in words: the count set, why it differs from the one asked
    for, and that target tracking may change it (as it would after `aws ecs update-service`)."""
    desired, requested, bound = result["desiredCount"], result.get("requestedCount"), result.get("clampedTo")
    setting = f"services.{service}.autoscaling.{bound}"
    lines = [f"{service}: desired count {desired}"]
    if bound == "max":
        lines = [f"{service}: requested {requested}, desired count set to {desired} = autoscaling max; "
                 f"raise {setting} in devenv.yaml to run more"]
    elif bound == "min":
        lines = [f"{service}: requested {requested}, desired count set to {desired} = autoscaling min; "
                 f"lower {setting} in devenv.yaml to run fewer"]
    tracking = result.get("autoscaling")
    if tracking:
        lines.append(f"[yellow]![/] target tracking (average CPU {tracking['targetCpu']:g}%, "
                     f"{tracking['min']}-{tracking['max']} tasks, cooldowns: out {tracking['scaleOutCooldown']:g}s, "
                     f"in {tracking['scaleInCooldown']:g}s) may change this count at its next evaluation "
                     f"(an idle service scales back in); to keep at least {desired} tasks, "
                     f"set services.{service}.autoscaling.min in devenv.yaml")
    return lines


@app.command()
def interrupt(service: str = typer.Argument(..., help="the service"),
              tasks: int = typer.Option(1, "--tasks", "-n", min=1, help="how many of its FARGATE_SPOT tasks"),
              file: Optional[Path] = _file_option) -> None:
    """Interrupt FARGATE_SPOT tasks of a service as Fargate Spot does (notice, drain, SIGTERM, replacement)."""
    stack = _stack(file)
    if service not in stack.config.services:
        raise DevenvError(f"no service '{service}' in devenv.yaml",
                          hint=f"services: {', '.join(stack.config.services) or 'none'}")
    for line in _interrupt_report(service, tasks, stack.ecs().interrupt(service, tasks)):
        out.print(line, highlight=False)


def _interrupt_report(service: str, wanted: int, result: dict) -> list[str]:
    """What `devenv interrupt` did, in words; no FARGATE_SPOT task to interrupt is an error."""
    interrupted, spot = result["interrupted"], result["spotRunning"]
    if not interrupted:
        strategy = ", ".join(f"{i['capacity_provider']} weight {i['weight']}" + (f" base {i['base']}" if i["base"] else "")
                             for i in result["capacityProviderStrategy"])
        raise DevenvError(f"{service} has no running FARGATE_SPOT task to interrupt",
                          hint=(f"its capacity provider strategy: {strategy}" if strategy else
                                f"set services.{service}.capacity_provider_strategy in devenv.yaml "
                                "(its tasks run on FARGATE)"))
    lines = [f"{service}: Spot interruption of {len(interrupted)} FARGATE_SPOT task"
             f"{'s' if len(interrupted) > 1 else ''}: {' '.join(interrupted)}"]
    if len(interrupted) < wanted:
        lines.append(f"[yellow]![/] {wanted} asked for, {spot} running on FARGATE_SPOT")
    lines.append(f"each drains from its target group, gets SIGTERM, and is replaced by the capacity provider "
                 f"strategy; whatever still runs {result['warning']:g}s after the notice is killed "
                 "(fargate_spot.warning)")
    return lines


@app.command()
def env(file: Optional[Path] = _file_option,
        json_output: bool = typer.Option(False, "--json", help="print a JSON object instead")) -> None:
    """Print `export` lines for the running stack: eval "$(devenv env)"."""
    values = _stack(file).environment()
    if json_output:
        import json

        print(json.dumps(values))
        return
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}")


@app.command()
def validate(file: Optional[Path] = _file_option) -> None:
    """Check devenv.yaml (and devenv.local.yaml) without starting anything."""
    stack = _stack(file)
    if stack.docker is None:
        stack.environments()  # every function's and service's Python is on this machine
    c = stack.config
    rules = sum(len(b.rules) for b in c.event_buses.values())
    parts = [f"{len(c.buckets)} buckets", f"{len(c.queues)} queues", f"{len(c.event_buses)} buses",
             f"{rules} rules", f"{len(c.functions)} functions",
             f"{len(c.api.routes) if c.api else 0} routes", f"{len(c.services)} services"]
    files = " + ".join(str(_relative(p)) for p in stack.project.files)
    _print_warnings(stack.project)
    out.print(f"[green]✓[/] {escape(files)} is valid: {', '.join(parts)}"
              + (f" ({len(stack.project.warnings)} warning(s))" if stack.project.warnings else ""))


def _print_warnings(project) -> None:
    """What the config allows but AWS will fail on later (a missing handler module, a DLQ cycle)."""
    for warning in project.warnings:
        out.print(f"[yellow]warning:[/] {escape(warning.render())}", highlight=False)


@app.command()
def doctor(file: Optional[Path] = _file_option) -> None:
    """Check prerequisites and say how to fix each missing one."""
    from .doctor import run_checks

    checks = run_checks(file)
    failed = False
    for check in checks:
        mark = "[green]✓[/]" if check.ok else ("[yellow]![/]" if check.optional else "[red]✗[/]")
        out.print(f"{mark} {check.name}: {check.detail}")
        if not check.ok and check.hint:
            out.print(f"    [dim]fix:[/] {check.hint}")
        failed |= not check.ok and not check.optional
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------- observability (issue #7)

COMPONENT_STYLE = {"apigateway": "magenta", "lambda": "cyan", "event-source": "blue", "sqs": "yellow",
                   "eventbridge": "green", "alb": "bright_magenta", "ecs": "bright_cyan"}


@app.command()
def trace(trace_id: Optional[str] = typer.Argument(None, help="a trace id (or a prefix, a header with Root=, "
                                                               "a request/message/event id)"),
          last: bool = typer.Option(False, "--last", help="the most recent trace"),
          list_: bool = typer.Option(False, "--list", help="list recent traces"),
          errors: bool = typer.Option(False, "--errors", help="list recent traces with a failed hop"),
          limit: int = typer.Option(20, "--limit", "-n", min=1, help="traces to list"),
          otlp: Optional[str] = typer.Option(None, "--otlp", help="also export the trace(s) shown to this OTLP/HTTP "
                                                                  "collector, e.g. http://127.0.0.1:4318"),
          file: Optional[Path] = _file_option) -> None:
    """Draw a trace as a waterfall (`devenv trace ID`, `--last`), or list recent traces (`--list`, `--errors`)."""
    from .observe.spans import find_trace, group_traces, read_spans, recent_traces

    stack = _stack(file)
    spans = list(read_spans(stack.state.traces))
    if list_ or errors or (trace_id is None and not last):
        summaries = recent_traces(spans, limit, errors_only=errors)
        if not summaries:
            out.print("no traces with errors recorded" if errors else
                      f"no traces recorded yet (spans are kept in {_relative(stack.state.traces)})")
            return
        _print_trace_list(summaries)
        if otlp:
            traces = group_traces(spans)
            _export_otlp(otlp, [s for summary in summaries for s in traces[summary.trace_id]], len(summaries))
        return
    if last:
        summaries = recent_traces(spans, 1)
        if not summaries:
            raise DevenvError("no traces recorded yet", hint="make a request, e.g. through the API, then try again")
        trace_id = summaries[0].trace_id
    found = find_trace(spans, trace_id or "")
    if found is None:
        raise DevenvError(f"no single trace matches '{trace_id}'",
                          hint="`devenv trace --list` shows recent traces; give more of the id")
    _print_waterfall(*found)
    if otlp:
        _export_otlp(otlp, found[1], 1)


def _export_otlp(endpoint: str, spans, traces: int) -> None:
    from .observe.otlp import export

    sent = export(spans, endpoint)
    out.print(f"exported {traces} trace(s), {sent} span(s) to {endpoint}", highlight=False)


def _print_trace_list(summaries) -> None:
    rows = []
    for s in summaries:
        style = "bold red" if s.errors else ""
        rows.append((Text(s.trace_id, style=style), time.strftime("%H:%M:%S", time.localtime(s.start)),
                     f"{s.duration_ms:.1f} ms", str(s.spans), Text(str(s.errors), style=style), s.first,
                     " → ".join(s.components)))
    out.print(render(out, TRACE_LIST_COLUMNS, rows, title="recent traces (newest first)"))


TRACE_LIST_COLUMNS = (Column("trace", whole=True), Column("started", whole=True, drop=3),
                      Column("duration", numeric=True, drop=2), Column("spans", numeric=True, drop=4),
                      Column("errors", numeric=True), Column("first hop"), Column("components", drop=5))


def _print_waterfall(trace_id: str, spans) -> None:
    from .observe.trace_view import bars, cells, details

    rows = bars(spans)
    total = max(s.end for s in spans) - min(s.start for s in spans)
    failed = sum(1 for s in spans if s.failed)
    out.print(f"[bold]trace {trace_id}[/]  {len(spans)} spans · {total * 1000:.1f} ms"
              + (f" · [bold red]{failed} failed[/]" if failed else ""), highlight=False)
    track = max(20, min(60, out.width - 90)) if out.width else 40
    label_width = max(len("  " * r.depth + f"{r.span.component} {r.span.operation}") for r in rows)
    label_width = min(label_width, 60)
    for row in rows:
        span = row.span
        colour = "bold red" if span.failed else COMPONENT_STYLE.get(span.component, "white")
        label = ("  " * row.depth + f"{span.component} {span.operation}")[:label_width]
        first, length = cells(row, track)
        bar = Text(" " * first) + Text("█" * length, style=colour) + Text(" " * (track - first - length))
        line = Text(f"{label:<{label_width}} ", style="red" if span.failed else "")
        line += Text("│") + bar + Text("│")
        line += Text(f" {row.offset_ms:8.1f} +{span.duration_ms:8.1f} ms ")
        line += Text("✗ " if span.failed else "✓ ", style="bold red" if span.failed else "green")
        line += Text(" ".join(f"{k}={v}" for k, v in details(span)), style="dim")
        out.print(line, highlight=False)


def _aws(stack, read_timeout: float = 10.0):
    """boto3 clients bound to the running stack's emulator."""
    from .aws.endpoint import AwsClients, AwsEndpoint, ClientSettings
    from .errors import NotRunningError

    view = stack.status()
    if not view.running or view.record is None or "emulator" not in view.record.ports:
        raise NotRunningError("the stack is not running", hint="start it with `devenv up`")
    return AwsClients(AwsEndpoint(stack.endpoint_url(view.record.ports), stack.config.region),
                      ClientSettings(read_timeout=read_timeout))


@app.command()
def queues(file: Optional[Path] = _file_option) -> None:
    """SQS queues: visible, in-flight and delayed messages, and each queue's dead-letter queue depth."""
    from .observe.queues import emulator_errors, read_depths

    aws = _aws(_stack(file))
    with emulator_errors(aws.endpoint.url):
        rows = read_depths(aws.sqs)
    _print_queues(rows)


def _print_queues(rows, title: str = "queues") -> None:
    cells = []
    for r in rows:
        dlq = f"{r.dlq} (after {r.max_receive_count})" if r.dlq and r.max_receive_count else (r.dlq or "")
        if r.is_dlq:
            dlq = f"DLQ of {', '.join(r.sources)}"
        depth = "" if r.dlq_depth is None else Text(str(r.dlq_depth), style="bold red" if r.dlq_depth else "green")
        visible = Text(str(r.visible), style="bold red" if r.is_dlq and r.visible else "")
        cells.append((r.name, visible, str(r.in_flight), str(r.delayed), dlq, depth))
    out.print(render(out, QUEUE_COLUMNS, cells, title=title))


QUEUE_COLUMNS = (Column("queue", whole=True), Column("visible", numeric=True), Column("in flight", numeric=True),
                 Column("delayed", numeric=True, drop=1), Column("dead-letter queue"),
                 Column("DLQ depth", numeric=True))


dlq_app = typer.Typer(no_args_is_help=True, help="Dead-letter queues: list, show messages, redrive.")
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list(file: Optional[Path] = _file_option) -> None:
    """Dead-letter queues (queues some queue's redrive policy names), with their depth."""
    from .observe.queues import dead_letter_queues, emulator_errors, read_depths

    aws = _aws(_stack(file))
    with emulator_errors(aws.endpoint.url):
        rows = dead_letter_queues(read_depths(aws.sqs))
    if not rows:
        out.print("no dead-letter queues (no queue has a redrive policy)")
        return
    _print_queues(rows, title="dead-letter queues")


@dlq_app.command("show")
def dlq_show(queue: str = typer.Argument(..., help="the dead-letter queue"),
             limit: int = typer.Option(10, "--limit", "-n", min=1, help="messages to show"),
             file: Optional[Path] = _file_option) -> None:
    """The messages in a dead-letter queue (they stay there): id, receives, sent, trace, body."""
    from .observe.queues import emulator_errors, find_queue, peek, read_depths

    aws = _aws(_stack(file))
    with emulator_errors(aws.endpoint.url):
        row = find_queue(read_depths(aws.sqs), queue)
        messages = peek(aws.sqs, row.url, limit=limit)
    out.print(f"[bold]{queue}[/]: {row.visible} visible, {row.in_flight} in flight"
              + (f" · DLQ of {', '.join(row.sources)}" if row.sources else ""), highlight=False)
    for m in messages:
        sent = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.sent_at)) if m.sent_at else "?"
        out.print(f"[bold]{m.message_id}[/]  received {m.receive_count}×  sent {sent}"
                  + (f"  trace {m.trace_id}" if m.trace_id else ""), highlight=False)
        for name, value in m.message_attributes.items():
            out.print(f"  attribute {name} = {value.get('StringValue', '<binary>')}", highlight=False, markup=False)
        body = m.body if len(m.body) <= 500 else m.body[:500] + f"… ({len(m.body)} bytes)"
        out.print(f"  {body}", markup=False, highlight=False)
    if not messages:
        out.print("no visible messages")


@dlq_app.command("redrive")
def dlq_redrive(queue: str = typer.Argument(..., help="the dead-letter queue"),
                to: Optional[str] = typer.Option(None, "--to", help="target queue (default: the queue whose "
                                                                     "redrive policy names this DLQ)"),
                limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="move at most this many"),
                file: Optional[Path] = _file_option) -> None:
    """Move messages back from a dead-letter queue (body, attributes and trace kept; deleted only once sent)."""
    from .observe.queues import emulator_errors, find_queue, read_depths, redrive, redrive_target

    aws = _aws(_stack(file))
    with emulator_errors(aws.endpoint.url):
        rows = read_depths(aws.sqs)
        source = find_queue(rows, queue)
        target = redrive_target(rows, queue, to)
        result = redrive(aws.sqs, source.url, target.url, limit=limit)
    out.print(f"moved {len(result.moved)} message(s) from {queue} to {target.name}")
    if result.not_deleted:
        out.print(f"[yellow]![/] {len(result.not_deleted)} sent but not deleted from {queue} "
                  f"(they will be delivered twice if redriven again): {', '.join(result.not_deleted)}")
    if result.error:
        raise DevenvError(f"redrive stopped: {result.error}")


events_app = typer.Typer(no_args_is_help=True, help="EventBridge events on the stack's buses.")
app.add_typer(events_app, name="events")


@events_app.command("tail")
def events_tail(bus: Optional[list[str]] = typer.Option(None, "--bus", "-b", help="a bus (repeatable; default: "
                                                                                   "every bus in devenv.yaml)"),
                pattern: Optional[str] = typer.Option(None, "--pattern", "-p", help="an EventBridge pattern (JSON)"),
                count: Optional[int] = typer.Option(None, "--count", min=1, help="stop after this many events"),
                timeout: Optional[float] = typer.Option(None, "--timeout", min=0, help="stop after this many seconds"),
                show_detail: bool = typer.Option(True, "--detail/--no-detail", help="print each event's detail"),
                file: Optional[Path] = _file_option) -> None:
    """Show events as they pass on the buses (a temporary rule and queue per bus, removed on exit)."""
    from .observe.events_tail import EventTail, parse_pattern
    from .observe.queues import emulator_errors

    stack = _stack(file)
    wanted = parse_pattern(pattern)
    buses = list(bus or [b for b in stack.config.event_buses] or ["default"])
    aws = _aws(stack, read_timeout=30.0)
    tail = EventTail(aws.sqs, aws.events, buses, wanted)
    seen = 0
    deadline = time.monotonic() + timeout if timeout is not None else None
    with emulator_errors(aws.endpoint.url), _interrupted_by(signal.SIGTERM, signal.SIGHUP):
        tail.start()
        err.print(f"tailing {', '.join(buses)} (Ctrl-C to stop)", highlight=False)
        try:
            while (count is None or seen < count) and (deadline is None or time.monotonic() < deadline):
                wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
                for event in tail.poll(wait=wait):
                    seen += 1
                    line = Text(time.strftime("%H:%M:%S", time.localtime(event.received)) + " ", style="dim")
                    line += Text(f"{event.bus} ", style="blue") + Text(event.source, style="green")
                    line += Text(f" {event.detail_type}", style="bold") + Text(f" id={event.event_id}")
                    if event.trace_id:
                        line += Text(f" trace={event.trace_id}", style="cyan")
                    out.print(line, highlight=False)
                    if show_detail and event.detail is not None:
                        import json

                        out.print("  " + json.dumps(event.detail, separators=(",", ":"), default=str),
                                  markup=False, highlight=False)
                    if count is not None and seen >= count:
                        break
        except KeyboardInterrupt:
            pass
        finally:
            tail.stop()


@contextlib.contextmanager
def _interrupted_by(*signals: int):
    """These signals stop the command as Ctrl-C does, so its cleanup runs (a terminal closed,
    a `kill`); once stopping, a repeated one waits for the cleanup to end."""

    def interrupt(signum, frame):
        for number in signals:
            signal.signal(number, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@app.command()
def dashboard(web: bool = typer.Option(False, "--web", help="serve the web dashboard on 127.0.0.1 instead"),
              port: int = typer.Option(0, "--port", min=0, max=65535, help="port for --web (default: a free one)"),
              once: bool = typer.Option(False, "--once", help="print one frame and exit (terminal dashboard)"),
              interval: float = typer.Option(2.0, "--interval", min=0.1, help="seconds between refreshes"),
              file: Optional[Path] = _file_option) -> None:
    """A live view: components, services (desired/running/healthy), queues, recent traces; `--web` adds the graph."""
    from .observe.dashboard import LiveSources, snapshot

    sources = LiveSources(_stack(file))
    if web:
        from .observe.webapp import DashboardServer

        server = DashboardServer(sources, port=port)
        url = server.start()
        out.print(f"dashboard: {url}  (Ctrl-C to stop)", highlight=False)
        try:
            while True:
                time.sleep(3600)  # serving until Ctrl-C
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
        return
    if once or not out.is_terminal:
        out.print(_dashboard_frame(snapshot(sources)))
        return
    with Live(_dashboard_frame(snapshot(sources)), console=out, screen=False, refresh_per_second=4) as live:
        try:
            while True:
                time.sleep(interval)  # the refresh interval of a view the user stops
                live.update(_dashboard_frame(snapshot(sources)))
        except KeyboardInterrupt:
            pass


def _dashboard_frame(snap):
    from rich.console import Group

    parts: list = []
    phase = ("running, " + (snap.phase or "?")) if snap.running else "not running"
    parts.append(Text.assemble((snap.stack, "bold"), f" — {phase} · {time.strftime('%H:%M:%S')}"))
    for note in snap.notes:
        parts.append(Text(f"! {note}", style="yellow"))
    if snap.components:
        parts.append(render(out, DASHBOARD_COMPONENTS, [
            (c.name, Text(c.state, style=STATE_STYLE.get(c.state, "")), c.address, str(c.restarts), c.note)
            for c in snap.components], title="components"))
    if snap.services:
        parts.append(render(out, DASHBOARD_SERVICES, [
            (s.name, str(s.desired), str(s.running),
             Text(str(s.healthy), style="green" if s.healthy >= s.desired else "bold yellow"), s.rollout, s.capacity)
            for s in snap.services], title="services"))
    if snap.queues:
        rows = []
        for q in snap.queues:
            alarm = (q.is_dlq and q.visible) or bool(q.dlq_depth)
            rows.append((q.name, Text(str(q.visible), style="bold red" if q.is_dlq and q.visible else ""),
                         str(q.in_flight), f"DLQ of {', '.join(q.sources)}" if q.is_dlq else (q.dlq or ""),
                         Text("" if q.dlq_depth is None else str(q.dlq_depth), style="bold red" if alarm else "")))
        parts.append(render(out, DASHBOARD_QUEUES, rows, title="queues"))
    busy = [e for e in snap.graph.get("edges", []) if e["count"]]
    if busy:
        parts.append(render(out, DASHBOARD_TRAFFIC, [
            (e["source"], e["target"], str(e["count"]), Text(str(e["errors"]), style="bold red" if e["errors"] else "dim"))
            for e in sorted(busy, key=lambda e: -e["count"])[:12]], title=f"traffic (last {snap.window / 60:.0f} min)"))
    rows = []
    for t in snap.traces:
        style = "bold red" if t.errors else ""
        rows.append((Text(t.trace_id, style=style), time.strftime("%H:%M:%S", time.localtime(t.start)),
                     f"{t.duration_ms:.1f}", str(t.spans), Text(str(t.errors), style=style), t.first))
    parts.append(render(out, DASHBOARD_TRACES, rows, title="recent traces (devenv trace ID)",
                        caption=None if snap.traces else "no traces yet"))
    return Group(*parts)


DASHBOARD_COMPONENTS = (Column("component", whole=True), Column("state", whole=True), Column("address", whole=True),
                        Column("restarts", numeric=True, drop=1), Column("note"))
DASHBOARD_SERVICES = (Column("service", whole=True), Column("desired", numeric=True), Column("running", numeric=True),
                      Column("healthy", numeric=True), Column("rollout"), Column("capacity", drop=1))
DASHBOARD_QUEUES = (Column("queue", whole=True), Column("visible", numeric=True),
                    Column("in flight", numeric=True, drop=1), Column("DLQ"), Column("DLQ depth", numeric=True))
DASHBOARD_TRAFFIC = (Column("from", whole=True), Column("to", whole=True), Column("count", numeric=True),
                     Column("failed", numeric=True))
DASHBOARD_TRACES = (Column("trace", whole=True), Column("started", whole=True, drop=2),
                    Column("ms", numeric=True, drop=1), Column("spans", numeric=True, drop=3),
                    Column("errors", numeric=True), Column("first hop"))


# ---------------------------------------------------------------- rendering helpers


class _Progress:
    """Live component states while `up` waits (plain lines when not on a terminal)."""

    def __init__(self, stack_name: str):
        self._name = stack_name
        self._live: Live | None = None
        self._plain = _LineReporter()

    def __enter__(self) -> "_Progress":
        if out.is_terminal:
            self._live = Live(Text(f"{self._name}: starting…"), console=out, transient=False,
                              refresh_per_second=12)
            self._live.__enter__()
        return self

    def update(self, record) -> None:
        if self._live is None:
            self._plain(record)
            return
        table = Table.grid(padding=(0, 2))
        for whole in (True, True, True, True, False):  # mark, name, state, address whole; the note wraps
            table.add_column(no_wrap=whole, overflow="fold")
        for c in record.components:
            mark = {"ready": "[green]✓[/]", "failed": "[red]✗[/]"}.get(c.state.value, "[yellow]…[/]")
            took = f"{c.ready_after:.2f}s" if c.ready_after is not None else (c.message or "")
            table.add_row(Text.from_markup(mark), c.name, Text(c.state.value, style=STATE_STYLE.get(
                c.state.value, "")), c.address, took)
        self._live.update(table)

    def stop(self) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def __exit__(self, *exc) -> None:
        self.stop()


class _LineReporter:
    """Prints a line whenever a component changes state."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def __call__(self, record) -> None:
        for c in record.components:
            if self._seen.get(c.name) != c.state.value:
                self._seen[c.name] = c.state.value
                extra = f" in {c.ready_after:.2f}s" if c.state.value == "ready" and c.ready_after else ""
                out.print(f"  {c.name:<10} {c.state.value}{extra}  {c.address}", highlight=False)


def _log_files(stack) -> dict[str, Path]:
    """Component logs (.devenv/logs/*.log) and function logs (.devenv/logs/functions/*.log);
    a component's name wins over a function's."""
    found: dict[str, Path] = {}
    logs = stack.state.logs
    for sub in ("functions", "services"):
        if (logs / sub).exists():
            found.update({p.stem: p for p in (logs / sub).glob("*.log")})
    if logs.exists():
        found.update({p.stem: p for p in logs.glob("*.log")})
    return found


def _print_services(services: list[dict]) -> None:
    rows = []
    for s in services:
        last = s["deployments"][-1] if s["deployments"] else None
        rollout = "-"
        if last:
            rollout = last["rolloutState"]
            if last["rolloutState"] == "FAILED" or last["reason"].startswith("rollback"):
                rollout += f" ({last['reason']})"
        healthy_style = "green" if s["healthyCount"] >= s["desiredCount"] else "yellow"
        rows.append((s["serviceName"], str(s["desiredCount"]), str(s["runningCount"]),
                     Text(str(s["healthyCount"]), style=healthy_style), str(s["revision"]), rollout))
    out.print(render(out, SERVICE_COLUMNS, rows, title="services"))


SERVICE_COLUMNS = (Column("service", whole=True), Column("desired", numeric=True), Column("running", numeric=True),
                   Column("healthy", numeric=True), Column("revision", numeric=True, drop=1), Column("deployment"))


def _print_deploy(report) -> None:
    if report is None:
        return
    if not report.changes:
        out.print("managed plane: nothing to change")
    else:
        out.print(f"managed plane: {len(report.changes)} change(s) applied in {report.seconds:.2f}s")
        for line in report.changes:
            out.print(f"  {line}", highlight=False, markup=False)
    for line in report.notices:
        out.print(f"  [yellow]![/] {escape(line)}", highlight=False)


def _print_ready(stack, elapsed: float, record=None) -> None:
    env = stack.environment(record)
    out.print(f"[green]✓[/] [bold]{stack.config.name}[/] is up ({elapsed:.1f}s)")
    out.print(f"  AWS endpoint  {env['AWS_ENDPOINT_URL']}  (region {stack.config.region})")
    if "DATABASE_URL" in env:
        out.print(f"  Postgres      {_hide_password(env['DATABASE_URL'])}")
    if "REDIS_URL" in env:
        out.print(f"  Redis         {_hide_password(env['REDIS_URL'])}")
    if "AWS_ENDPOINT_URL_LAMBDA" in env:
        out.print(f"  Lambda        {env['AWS_ENDPOINT_URL_LAMBDA']}  ({len(stack.config.functions)} functions)")
    if "DEVENV_API_URL" in env:
        out.print(f"  API           {env['DEVENV_API_URL']}")
    if "DEVENV_ALB_URL" in env:
        out.print(f"  internal ALB  {env['DEVENV_ALB_URL']}  ({len(stack.config.services)} services; devenv ps)")
    if "DEVENV_EDGE_URL" in env:
        out.print(f"  edge          {env['DEVENV_EDGE_URL']}  (CloudFront in front of the API; trust $DEVENV_EDGE_CA)",
                  highlight=False, markup=False)
    out.print('  use it:       eval "$(devenv env)"   ·   devenv status   ·   devenv logs -f')


def _hide_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":****@", 1)
    return url


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def main() -> None:
    """Console entry point."""
    sys.exit(run(sys.argv[1:]))


def run(argv: list[str]) -> int:
    """Run one command line and return its exit code: the one place where errors become
    messages. A usage mistake prints click's usage line and a one-line error (exit 2), a
    DevenvError its message, hint and context; neither prints a traceback."""
    try:
        code = app(args=argv, prog_name="devenv", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except DevenvError as exc:
        _report(exc)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 130
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except _click_exception() as exc:  # usage errors: unknown command, missing or bad argument, ...
        if exc.format_message():  # empty when typer's rich help already printed (a group run bare)
            exc.show()
        return exc.exit_code


def _click_exception() -> type[Exception]:
    """The ClickException of the click that typer parses with. typer >= 0.26 bundles its own
    copy (typer._click) whose errors `click.ClickException` does not catch; older typers use
    click itself. Either way typer.BadParameter derives from it."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _report(exc: DevenvError) -> None:
    err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
    for line in exc.details:
        err.print(f"  {line}", markup=False, highlight=False)
    if exc.hint:
        err.print(f"[dim]hint:[/] {escape(exc.hint)}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    main()
