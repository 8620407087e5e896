"""The dashboard's charts: which CloudWatch series a config has, the GetMetricData queries
for them, their plotted form, and what happens when CloudWatch cannot answer."""

from __future__ import annotations

import datetime as dt

from devenv.config.loader import load_project
from devenv.observe.charts import Shown, charts, plotted, queries, shown
from devenv.observe.dashboard import chart_data

NOW = 1_800_000_000.0


SCALED = """    load_balancer: {paths: ["/orders/*"], priority: 10}
    autoscaling: {min: 1, max: 3, target_cpu: 70}
"""


def config_of(project):
    """The observe tests' project, its service given target tracking at 70 % CPU."""
    path = project / "devenv.yaml"
    text = path.read_text()
    if "autoscaling" not in text:
        path.write_text(text.replace(SCALED.splitlines()[0] + "\n", SCALED))
    return load_project(path).config


def test_a_stack_has_cpu_against_target_and_tasks_per_service_then_functions_then_queues(project):
    found = charts(config_of(project))
    assert [c.id for c in found] == ["cpu:orders", "tasks:orders", "invocations:api", "duration:api",
                                     "invocations:worker", "duration:worker", "queue:work", "queue:work-dlq",
                                     "api:requests", "api:latency", "alb:requests", "alb:latency", "dlq:work-dlq"]
    cpu = found[0]
    assert cpu.target == 70 and {s.metric for s in cpu.series} == {"CPUUtilization"}
    # the cluster is named after the stack (`obs`), as ECS and its published metrics name it
    assert dict(cpu.series[0].dimensions) == {"ClusterName": "obs", "ServiceName": "orders"}
    assert [s.metric for s in found[1].series] == ["RunningTaskCount", "DesiredTaskCount"]


def test_the_api_and_the_alb_have_request_rates_and_latency_percentiles_as_aws_names_them(project):
    found = {c.id: c for c in charts(config_of(project))}
    api = found["api:requests"].series[0]
    assert (api.namespace, api.metric, dict(api.dimensions), api.stat, api.shown) == (
        "AWS/ApiGateway", "Count", {"ApiName": "api"}, "Sum", Shown.PER_SECOND)
    assert [(s.metric, s.stat) for s in found["api:latency"].series] == [("Latency", p) for p in ("p50", "p90", "p99")]
    latency = found["alb:latency"]
    assert [s.stat for s in latency.series] == ["p50", "p90", "p99"] and latency.unit == "s"
    # the dimension is the ARN's last part, as the ELBv2 API of the ecs process names the ALB
    [(name, value)] = latency.series[0].dimensions
    assert name == "LoadBalancer" and value.startswith("app/obs-alb/") and len(value.split("/")) == 3
    dlq = found["dlq:work-dlq"]
    assert [(s.label, s.metric, s.shown) for s in dlq.series] == [
        ("arrived", "ApproximateNumberOfMessagesVisible", Shown.RISE),
        ("depth", "ApproximateNumberOfMessagesVisible", Shown.AS_IS)]


def test_a_sum_is_shown_per_second_and_a_depth_as_its_rise():
    points = [(0.0, 2.0), (10.0, 5.0), (20.0, 3.0), (30.0, 3.0), (40.0, 7.0)]
    assert shown(points, Shown.PER_SECOND, 10) == [(0.0, 0.2), (10.0, 0.5), (20.0, 0.3), (30.0, 0.3), (40.0, 0.7)]
    assert shown(points, Shown.RISE, 10) == [(10.0, 3.0), (20.0, 0.0), (30.0, 0.0), (40.0, 4.0)]
    assert shown(points[:1], Shown.RISE, 10) == []  # no datapoint before the first
    assert shown(points, Shown.AS_IS, 10) == points


def test_every_series_is_one_query_with_a_valid_id_and_the_period(project):
    found = charts(config_of(project))
    made = queries(found, 10)
    assert len(made) == sum(len(c.series) for c in found)
    assert len({q["Id"] for q in made}) == len(made)
    assert all(q["Id"][0].islower() and q["Id"].replace("_", "").isalnum() for q in made)
    first = made[0]["MetricStat"]
    assert first["Period"] == 10 and first["Stat"] == "Average"
    assert first["Metric"]["Namespace"] == "AWS/ECS"


def test_results_are_plotted_in_time_order_per_series(project):
    found = charts(config_of(project))[:2]
    t = [dt.datetime.fromtimestamp(NOW + i * 10, dt.timezone.utc) for i in range(3)]
    results = [{"Id": "c1_s0", "Timestamps": [t[2], t[0], t[1]], "Values": [3.0, 1.0, 2.0]}]
    drawn = plotted(found, results)
    running = drawn[1]["series"][0]
    assert running["label"] == "running" and running["points"] == [[NOW, 1.0], [NOW + 10, 2.0], [NOW + 20, 3.0]]
    assert drawn[0]["series"][0]["points"] == []  # no data for the CPU yet
    assert drawn[0]["target"] == 70


class Sources:
    def __init__(self, config, fail: bool = False, fail_percentiles: bool = False):
        self.config = config
        self.fail = fail
        self.fail_percentiles = fail_percentiles
        self.asked: list[tuple[int, float, float]] = []

    def metric_data(self, queries, start, end):
        self.asked.append((len(queries), start, end))
        if self.fail:
            raise ConnectionError("the emulator is not answering")
        if self.fail_percentiles and any(q["MetricStat"]["Stat"].startswith("p") for q in queries):
            raise RuntimeError("InternalError: exception while calling cloudwatch.GetMetricData: 'p50'")
        return [{"Id": "c0_s0", "Timestamps": [NOW - 30], "Values": [55.0]}] if "c0_s0" in {
            q["Id"] for q in queries} else []


def test_chart_data_reads_the_window_at_the_metrics_interval(project):
    sources = Sources(config_of(project))
    view = chart_data(sources, minutes=15, now=NOW)
    for count, start, end in sources.asked:
        assert view["period"] == 10 and start == view["start"] and start <= NOW - 900 and end > NOW
    assert view["note"] == "" and view["charts"][0]["series"][0]["points"] == [[NOW - 30, 55.0]]


def test_a_cloudwatch_that_cannot_answer_leaves_empty_charts_and_a_note(project):
    view = chart_data(Sources(config_of(project), fail=True), now=NOW)
    assert "CloudWatch: the emulator is not answering" in view["note"]
    assert view["charts"] and all(s["points"] == [] for c in view["charts"] for s in c["series"])


def test_metrics_turned_off_say_so(project):
    (project / "devenv.yaml").write_text((project / "devenv.yaml").read_text() + "metrics: {enabled: false}\n")
    sources = Sources(config_of(project))
    view = chart_data(sources, now=NOW)
    assert sources.asked == [] and "metrics are off" in view["note"]


def test_a_cloudwatch_without_percentiles_empties_the_latency_charts_only(project):
    """LocalStack's GetMetricData fails a whole call that asks for a p50: the other charts
    are still drawn, and the note says what failed."""
    from devenv.observe.dashboard import _percentile

    assert [_percentile({"MetricStat": {"Stat": s}}) for s in ("p99", "p99.9", "Sum", "Average", "pX")] == [
        True, True, False, False, False]
    view = chart_data(Sources(config_of(project), fail_percentiles=True), now=NOW)
    assert view["charts"][0]["series"][0]["points"] == [[NOW - 30, 55.0]]
    assert view["note"].startswith("CloudWatch percentiles: InternalError") and "p50" in view["note"]
