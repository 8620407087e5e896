"""The web dashboard in headless Chromium (Debian's package, driven by Playwright's Python
client with executable_path): the architecture graph from the config with live counts from
spans, recent traces with errors marked, and a trace opening as a waterfall on click. A
screenshot goes to test-results/dashboard.png."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from devenv.config.loader import load_project
from devenv.observe.dashboard import LiveSources
from devenv.observe.spans import FileSpanSink
from devenv.observe.webapp import DashboardServer
from devenv.stack import Stack
from tests.browser import open_page, plotted
from tests.unit.observe.conftest import PROJECT_YAML, ROOT_A, ROOT_B, lifecycle

ARTEFACTS = Path(__file__).resolve().parents[3] / "test-results"


@pytest.fixture
def dashboard(tmp_path):
    (tmp_path / "devenv.yaml").write_text(PROJECT_YAML)
    (tmp_path / "fn").mkdir()
    sink = FileSpanSink(tmp_path / ".devenv" / "traces", "lambda")
    now = time.time()
    for span in lifecycle(ROOT_A, now - 20) + lifecycle(ROOT_B, now - 10, fail_worker=True):
        sink.record(span)
    sink.close()
    server = DashboardServer(LiveSources(Stack(load_project(tmp_path / "devenv.yaml"))))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def page():
    with open_page() as opened:
        yield opened


def test_the_page_draws_the_architecture_with_traffic_and_opens_a_trace_as_a_waterfall(dashboard, page):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(dashboard)
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)

    nodes = page.eval_on_selector_all("svg#graph .node", "els => els.map(e => e.dataset.node)")
    assert set(nodes) == {"api", "fn:api", "fn:worker", "alb", "svc:orders", "bus:app-events", "queue:work",
                          "queue:work-dlq"}
    counts = dict(page.eval_on_selector_all(
        "svg#graph .edge", "els => els.map(e => [e.dataset.edge, [+e.dataset.count, +e.dataset.errors]])"))
    assert counts["api->fn:api"] == [2, 0]
    assert counts["alb->svc:orders"] == [2, 0]
    assert counts["svc:orders->bus:app-events"] == [2, 0]
    assert counts["bus:app-events->queue:work"] == [2, 0]  # from the PutEvents span's targets
    assert counts["queue:work->fn:worker"] == [2, 0]
    assert counts["queue:work->queue:work-dlq"] == [0, 0]  # wired in the config, idle
    assert page.get_attribute("svg#graph .edge[data-edge='queue:work->queue:work-dlq']", "class").split() == [
        "edge", "idle"]

    rows = page.eval_on_selector_all("#traces tbody tr", "els => els.map(e => [e.dataset.trace, e.className])")
    assert rows == [[ROOT_B, "trace error"], [ROOT_A, "trace"]]
    assert page.is_hidden("#waterfall")
    page.click(f"#traces tr[data-trace='{ROOT_B}']")
    page.wait_for_selector("#waterfall .wf-row", timeout=10000)
    assert page.url.endswith(f"#trace={ROOT_B}")
    spans = page.eval_on_selector_all("#wf-rows .wf-row", "els => els.map(e => [e.className, e.textContent])")
    assert len(spans) == 6
    assert spans[0][1].startswith("apigateway POST /orders")
    assert spans[-1][0] == "wf-row error" and "lambda invoke worker" in spans[-1][1]
    assert "1 failed" in page.text_content("#wf-summary")
    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "dashboard.png"), full_page=True)
    assert (ARTEFACTS / "dashboard.png").stat().st_size > 10_000
    page.click("#wf-close")
    page.wait_for_selector("#waterfall", state="hidden", timeout=5000)
    assert errors == []


def test_an_unknown_trace_in_the_address_says_so(dashboard, page):
    page.goto(dashboard + "#trace=1-00000000-000000000000000000000000")
    page.wait_for_selector("#waterfall:not([hidden])", timeout=15000)
    assert page.text_content("#wf-summary") == "not found"


class MotoSources(LiveSources):
    """The dashboard's live sources with CloudWatch read from the test's moto."""

    def __init__(self, stack, aws):
        super().__init__(stack)
        self._test_aws = aws

    def _clients(self):
        return self._test_aws


@pytest.fixture
def charted(tmp_path, aws):
    """A dashboard whose CloudWatch holds a service scaling out under CPU load (as the ECS
    scheduler publishes it) and a queue filling up."""
    yaml = PROJECT_YAML.replace('    load_balancer: {paths: ["/orders/*"], priority: 10}\n',
                                '    load_balancer: {paths: ["/orders/*"], priority: 10}\n'
                                '    autoscaling: {min: 1, max: 4, target_cpu: 70}\n')
    (tmp_path / "devenv.yaml").write_text(yaml)
    (tmp_path / "fn").mkdir()
    now = time.time()
    cluster = load_project(tmp_path / "devenv.yaml").config.name  # the stack's cluster, as ECS names it
    dims = [{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": "orders"}]
    cpu, tasks = [20, 85, 95, 60, 40], [1, 1, 2, 3, 3]
    data = []
    for i, (c, n) in enumerate(zip(cpu, tasks)):
        when = dt.datetime.fromtimestamp(now - 50 + i * 10, dt.timezone.utc)
        data += [{"MetricName": "CPUUtilization", "Dimensions": dims, "Timestamp": when, "Unit": "Percent",
                  "StatisticValues": {"SampleCount": 1, "Sum": c, "Minimum": c, "Maximum": c}},
                 {"MetricName": "RunningTaskCount", "Dimensions": dims, "Timestamp": when, "Unit": "Count",
                  "Value": n}]
    aws.client("cloudwatch").put_metric_data(Namespace="AWS/ECS", MetricData=[d for d in data
                                                                             if d["MetricName"] == "CPUUtilization"])
    aws.client("cloudwatch").put_metric_data(Namespace="ECS/ContainerInsights",
                                            MetricData=[d for d in data if d["MetricName"] == "RunningTaskCount"])
    server = DashboardServer(MotoSources(Stack(load_project(tmp_path / "devenv.yaml")), aws))
    url = server.start()
    yield url, cpu, tasks
    server.stop()


def test_the_charts_plot_a_services_cpu_against_its_target_and_its_task_count(charted, page):
    url, cpu, tasks = charted
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("body[data-charts='1']", timeout=15000)

    assert plotted(page, "cpu:orders", "average") == cpu
    assert plotted(page, "tasks:orders", "running") == tasks
    assert page.get_attribute("[data-chart='cpu:orders'] line.target", "data-target") == "70"
    assert plotted(page, "queue:work", "visible") == []  # nothing published for it: an empty line
    assert page.is_hidden("#charts-note")
    assert errors == []


class Periods:
    """devenv's own publishing path (``aws/metrics.py``'s Aggregator, fed by the ALB's and the
    API's metrics recorders) with the periods stamped by the test."""

    def __init__(self):
        from devenv.aws.metrics import Aggregator

        self.aggregator = Aggregator()

    def series(self, namespace, name, dimensions, unit="None", *, distribution=False):
        from devenv.aws.metrics import MetricKey

        key = MetricKey(namespace, name, tuple(sorted(dimensions.items())), unit)
        return lambda value: self.aggregator.add(key, value, distribution)

    def batched(self, expand):
        def add(item):
            for key, values, distribution in expand([item]):
                self.aggregator.extend(key, values, distribution)
        return add

    def publish(self, cloudwatch, end: float) -> None:
        by_namespace: dict[str, list[dict]] = {}
        for namespace, datum in self.aggregator.close_period(end):
            by_namespace.setdefault(namespace, []).append(datum)
        for namespace, data in by_namespace.items():
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)


@pytest.fixture
def traffic(tmp_path, aws):
    """A dashboard whose CloudWatch holds three periods of requests through the API and the
    ALB (80 % fast, 15 % slower, 5 % slow; more of them each period), as the lambda and ecs
    processes record them, and a DLQ receiving messages."""
    from devenv.compute.alb.metrics import AlbMetrics
    from devenv.compute.apigateway.metrics import ApiMetrics
    from devenv.compute.ecs_aws.arns import Names

    (tmp_path / "devenv.yaml").write_text(PROJECT_YAML)
    (tmp_path / "fn").mkdir()
    config = load_project(tmp_path / "devenv.yaml").config
    cloudwatch = aws.client("cloudwatch")
    periods = Periods()
    names = Names(region=config.region, cluster=config.name)
    alb = AlbMetrics(periods, names.load_balancer_arn, names.target_group_arn)
    api = ApiMetrics(periods, config.api.name, config.api.stage)
    now = time.time()
    for i in range(3):
        scale = i + 1
        for n in range(100 * scale):
            share = n % 100
            seconds = (0.01 if share < 80 else 0.1 if share < 95 else 1.0) * scale
            alb.target_answered("orders", 200 if share < 99 else 503, seconds)
            api.answered(200, seconds * 1000 + 3, seconds * 1000)
        periods.publish(cloudwatch, now - 40 + i * 10)
    depths = [0, 2, 2, 5]
    dlq = [{"Name": "QueueName", "Value": "work-dlq"}]
    cloudwatch.put_metric_data(Namespace="AWS/SQS", MetricData=[
        {"MetricName": "ApproximateNumberOfMessagesVisible", "Dimensions": dlq, "Unit": "Count", "Value": depth,
         "Timestamp": dt.datetime.fromtimestamp(now - 50 + i * 10, dt.timezone.utc)} for i, depth in enumerate(depths)])
    server = DashboardServer(MotoSources(Stack(load_project(tmp_path / "devenv.yaml")), aws))
    url = server.start()
    yield url, depths
    server.stop()


def test_the_charts_plot_request_rates_latency_percentiles_and_dlq_arrivals(traffic, page):
    url, depths = traffic
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("body[data-charts='1']", timeout=15000)

    # 100, 200, 300 requests in 10 s periods; 1 % of them the target's 503
    assert plotted(page, "alb:requests", "requests") == [10, 20, 30]
    assert plotted(page, "alb:requests", "target 5XX") == pytest.approx([0.1, 0.2, 0.3])
    # p50 among the fast 80 %, p90 among the slower 15 %, p99 among the slow 5 %
    assert plotted(page, "alb:latency", "p50") == pytest.approx([0.01, 0.02, 0.03])
    assert plotted(page, "alb:latency", "p90") == pytest.approx([0.1, 0.2, 0.3])
    assert plotted(page, "alb:latency", "p99") == pytest.approx([1.0, 2.0, 3.0])
    assert plotted(page, "api:requests", "requests") == [10, 20, 30]
    assert plotted(page, "api:latency", "p50") == pytest.approx([13, 23, 33])
    assert plotted(page, "api:latency", "p99") == pytest.approx([1000, 2000, 3000])  # 3 significant digits
    assert plotted(page, "dlq:work-dlq", "depth") == depths
    assert plotted(page, "dlq:work-dlq", "arrived") == [2, 0, 3]
    assert page.text_content("[data-chart='alb:latency'] figcaption") == "ALB · target response time (s)"
    assert page.is_hidden("#charts-note")
    ARTEFACTS.mkdir(exist_ok=True)
    page.locator("#charts").screenshot(path=str(ARTEFACTS / "dashboard-charts.png"))
    assert errors == []
