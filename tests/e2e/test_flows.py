"""Nedlia's flows end to end, through the public API only (../shared/NEDLIA.md), against the
test instance of the repo's stack (devenv.yaml + devenv.local.yaml; a stack you run with `make
up` is left alone). Each test asserts what a user would check — HTTP answers, rows,
notifications, queue depths — with condition waits."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from devenv.observe.queues import redrive
from devenv.observe.spans import waterfall
from devenv.observe.trace_context import TraceContext

pytestmark = pytest.mark.e2e

ADVERTISER = "adv-acme"


def new_video(api, duration: float | None = 600) -> str:
    """A fresh video per test, so the suite can run again on a stack that kept its data."""
    video = f"vid-e2e-{uuid.uuid4().hex[:8]}"
    response = api.post("/videos", {"id": video, "title": "e2e", "duration_seconds": duration})
    assert response.status == 201, response.body
    return video


def place(api, video: str, start: float, end: float) -> dict:
    return place_traced(api, video, start, end)[0]


def place_traced(api, video: str, start: float, end: float) -> tuple[dict, str]:
    """The new placement and the trace id API Gateway gave its request."""
    response = api.post("/placements", {"video_id": video, "advertiser_id": ADVERTISER, "product": "kettle",
                                         "start_seconds": start, "end_seconds": end})
    assert response.status == 201, response.body
    assert response.body["status"] == "pending"
    trace = TraceContext.parse(response.headers.get("X-Amzn-Trace-Id"))
    assert trace is not None, response.headers
    return response.body, trace.root


# The hops of the lifecycle flow (NEDLIA.md), in order: (component, what identifies the hop).
LIFECYCLE_HOPS = [
    ("apigateway", "POST"), ("lambda", "invoke api"), ("alb", "/placements"), ("ecs", "placement"),
    ("eventbridge", "placement.created"), ("sqs", "queue nedlia-validation"), ("event-source", "nedlia-validation"),
    ("lambda", "invoke validation-worker"), ("alb", "/validation/"), ("ecs", "validation"),
    ("eventbridge", "placement.validated"), ("sqs", "queue nedlia-notification"),
    ("event-source", "nedlia-notification"), ("lambda", "invoke notification-worker"),
    ("alb", "/notification/"), ("ecs", "notification"),
]


def _describes(span, component: str, key: str) -> bool:
    text = " ".join([span.operation, *(str(v) for v in span.attributes.values())])
    return span.component == component and key in text


def hops_in_order(spans, hops) -> list:
    """The spans matching ``hops`` one after another in the waterfall's order (callers before
    what they called, siblings by start; a subsequence); the hops not found end the list early."""
    found, rest = [], [row.span for row in waterfall(spans)]
    for component, key in hops:
        index = next((i for i, s in enumerate(rest) if _describes(s, component, key)), None)
        if index is None:
            break
        found.append(rest[index])
        rest = rest[index + 1:]
    return found


def assert_durations_add_up(spans, tolerance_ms: float = 3.0) -> None:
    """A synchronous hop lies inside the hop that called it, and siblings called one after
    the other fit in their parent; an asynchronous hop (a queue, an event source) starts
    after the hop that sent it began."""
    by_id = {s.span_id: s for s in spans}
    tolerance = tolerance_ms / 1000
    for span in spans:
        parent = by_id.get(span.parent_id)
        if parent is None:
            continue
        assert span.start >= parent.start - tolerance, (parent, span)
        if span.component not in ASYNC_HOPS and parent.component not in ("sqs",):
            assert span.end <= parent.end + tolerance, (parent, span)
    for parent in spans:
        children = [s for s in spans if s.parent_id == parent.span_id and s.component not in ASYNC_HOPS]
        sequential = sorted(children, key=lambda s: s.start)
        if all(a.end <= b.start + tolerance for a, b in zip(sequential, sequential[1:])):
            assert sum(c.duration_ms for c in children) <= parent.duration_ms + tolerance_ms, parent


# An event leaves through its service's outbox relay after the commit (and after the HTTP
# answer), so its PutEvents span may end after the request that recorded it.
ASYNC_HOPS = ("sqs", "event-source", "eventbridge")

# The hops before the first bus: devenv's own, traced on every emulator. Only moto (with
# devenv's patches) carries the trace on through EventBridge and SQS; on ministack and
# LocalStack an event's TraceHeader stops at the bus (docs/emulators.md), so a request's
# trace ends with the task that published the event, and the rest of the flow runs under
# traces of its own.
BEFORE_THE_BUS = LIFECYCLE_HOPS[:4]


@pytest.fixture
def traced_through(devenv_stack) -> bool:
    """Whether the stack's emulator carries trace context through EventBridge and SQS."""
    return devenv_stack.stack.config.emulator.kind == "moto"


def assert_trace_ends_at_the_bus(traces, trace: str) -> None:
    """On an emulator that drops an event's TraceHeader: the request's trace has every hop up
    to the bus, and nothing after it (no event source, no worker) ever joins it."""
    spans = traces.wait_for(trace, lambda found: len(hops_in_order(found, BEFORE_THE_BUS)) == len(BEFORE_THE_BUS),
                            what="the request's trace up to the bus")
    assert not [s for s in spans if s.failed], [s for s in spans if s.failed]
    assert not [s for s in spans if s.component in ("eventbridge", "sqs", "event-source")], spans


def settled(api, wait, placement_id: str, timeout: float = 20) -> dict:
    def decided():
        response = api.get(f"/placements/{placement_id}")
        return response.body if response.status == 200 and response.body["status"] != "pending" else None

    return wait(decided, timeout=timeout, message=f"placement {placement_id} decided")


def notifications(db, placement_id: str) -> list[tuple]:
    return db.execute("select kind, message, s3_key from notifications where placement_id = %s",
                      (placement_id,)).fetchall()


def queue_depth(aws, name: str) -> int:
    sqs = aws("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


class Load:
    """Steady requests through the API in a background thread, one at a time, at most
    ``rate`` a second (a request that takes longer than 1/rate is followed at once, without
    catching up), bounded in time; records every status so a test can say "no request failed"."""

    def __init__(self, api, path: str, rate: float = 20.0, limit: float = 120.0):
        self.api, self.path, self.period, self.limit = api, path, 1 / rate, limit
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        due = time.monotonic()
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.statuses.append(self.api.get(self.path).status)
            # The next request is due one period after this one was: pausing a whole period after
            # each answer made the rate 1/(latency + period), well under ``rate`` on a slow path.
            due = max(due + self.period, time.monotonic())
            self._stop.wait(due - time.monotonic())  # pacing of the load generator

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def failures(self) -> list[int]:
        return [s for s in self.statuses if not 200 <= s < 300]


def services(devenv_stack) -> dict[str, dict]:
    return {s["serviceName"]: s for s in devenv_stack.stack.ecs().services()}


def tasks(devenv_stack, service: str) -> list[dict]:
    return [t for t in devenv_stack.stack.ecs().tasks(stopped=False)
            if t["service"] == service and t["lastStatus"] == "RUNNING"]


def test_placement_lifecycle(api, db, events, wait, traces, traced_through):
    placement, trace = place_traced(api, new_video(api), 10, 20)
    decided = settled(api, wait, placement["id"])
    assert decided["status"] == "validated" and decided["reason"] in (None, "")
    created = events.wait_for({"detail-type": ["placement.created"], "detail": {"placement_id": [placement["id"]]}})
    assert created["source"] == "nedlia.placement-service"
    validated = events.wait_for({"detail-type": ["placement.validated"],
                                 "detail": {"placement_id": [placement["id"]]}})
    assert validated["source"] == "nedlia.validation-service"
    sent = wait(lambda: notifications(db, placement["id"]), message="notification stored")
    assert sent[0][0] == "placement.validated" and sent[0][2].startswith("notifications/")

    if not traced_through:
        assert_trace_ends_at_the_bus(traces, trace)
        return
    # The trace shows every hop, in order, and their durations add up.
    spans = traces.wait_for(trace, lambda found: len(hops_in_order(found, LIFECYCLE_HOPS)) == len(LIFECYCLE_HOPS),
                            what="the lifecycle trace")
    assert not [s for s in spans if s.failed], [s for s in spans if s.failed]
    assert_durations_add_up(spans)
    ordered = hops_in_order(spans, LIFECYCLE_HOPS)
    assert all(b.start >= a.start - 0.002 for a, b in zip(ordered, ordered[1:])), [  # SentTimestamp is in ms
        (s.component, s.operation, round(s.start % 100, 4), s.span_id, s.parent_id) for s in ordered]


def test_validation_services_xray_segment_joins_the_trace_and_reads_back_through_the_xray_api(
        api, aws, devenv_env, wait, traces, traced_through):
    # validation-service is instrumented with the X-Ray SDK (services/nedlia_common/xray.py); its
    # segment goes to devenv's daemon, which nests it in `devenv trace` and forwards it to the
    # emulator's X-Ray API. Only moto carries the request's trace past the bus and has an X-Ray API.
    if not traced_through:
        pytest.skip("this emulator drops the trace at the bus and has no X-Ray API (docs/emulators.md)")
    placement, trace = place_traced(api, new_video(api), 30, 40)
    settled(api, wait, placement["id"])

    def answered(found):  # the worker may have been told to retry (409) before the answer
        return [s for s in found if s.component == "xray" and s.attributes.get("service") == "validation-service"
                and s.operation.startswith("validation-service: POST") and s.attributes.get("status") == 200]

    spans = traces.wait_for(trace, answered, what="validation-service's X-Ray segment in the trace")
    segment = answered(spans)[0]
    children = {s.operation for s in spans if s.parent_id == segment.span_id}
    # The decision's SQL and the metadata cache's Redis; the event leaves later, from the
    # outbox relay's thread, outside the request's segment.
    assert any("FROM placements WHERE id = %s FOR UPDATE" in op for op in children), children
    assert any(op.startswith("redis") for op in children), children
    assert not any(op.startswith("events: PutEvents") for op in children), children

    xray = aws("xray")

    def decided_documents():
        documents = [json.loads(s["Document"]) for t in xray.batch_get_traces(TraceIds=[trace])["Traces"]
                     for s in t["Segments"]]
        return [d for d in documents if d["name"] == "validation-service" and d["http"]["response"]["status"] == 200]

    decided = wait(decided_documents, timeout=15, message="validation-service's answer in the X-Ray API")
    for document in decided:
        assert {s["namespace"] for s in document["subsegments"]} == {"remote"}
        queries = [s["sql"]["sanitized_query"] for s in document["subsegments"] if "sql" in s]
        assert any("FOR UPDATE" in q for q in queries), queries
    # and as the AWS CLI reads it, with only `devenv env`'s variables
    from tests.support import aws_cli

    now = time.time()
    summaries = aws_cli(devenv_env, "xray", "get-trace-summaries", "--start-time", str(int(now - 300)),
                        "--end-time", str(int(now + 60)))["TraceSummaries"]
    assert trace in {t["Id"] for t in summaries}
    [got] = aws_cli(devenv_env, "xray", "batch-get-traces", "--trace-ids", trace)["Traces"]
    assert any(json.loads(s["Document"])["name"] == "validation-service" for s in got["Segments"])
    # and the service graph: the client's requests into validation-service, its calls out
    graph = aws_cli(devenv_env, "xray", "get-service-graph", "--start-time", str(int(now - 300)),
                    "--end-time", str(int(now + 60)))["Services"]
    nodes = {s["ReferenceId"]: s for s in graph}
    [service] = [s for s in graph if s["Name"] == "validation-service" and s.get("Type") != "client"]
    assert service["State"] == "active" and service["SummaryStatistics"]["TotalCount"] >= 1
    called = {(nodes[e["ReferenceId"]]["Name"], nodes[e["ReferenceId"]].get("Type")) for e in service["Edges"]}
    assert any(kind == "Database::SQL" for _, kind in called) and ("redis", "remote") in called, called
    assert any(s.get("Type") == "client" and service["ReferenceId"] in {e["ReferenceId"] for e in s["Edges"]}
               for s in graph), graph


def test_rejection_outside_the_video(api, db, events, wait, traces, traced_through):
    placement, trace = place_traced(api, new_video(api), 590, 700)
    decided = settled(api, wait, placement["id"])
    assert decided["status"] == "rejected"
    assert "after the video's end" in decided["reason"]
    events.wait_for({"detail-type": ["placement.rejected"], "detail": {"placement_id": [placement["id"]]}})
    sent = wait(lambda: notifications(db, placement["id"]), message="notification stored")
    assert sent[0][0] == "placement.rejected"

    if not traced_through:
        assert_trace_ends_at_the_bus(traces, trace)
        return
    # Its trace shows where it turned: after the validation task, the event is a rejection.
    turned = [("lambda", "invoke validation-worker"), ("ecs", "validation"), ("eventbridge", "placement.rejected"),
              ("lambda", "invoke notification-worker")]
    spans = traces.wait_for(trace, lambda found: len(hops_in_order(found, turned)) == len(turned),
                            what="the rejection's trace")
    assert not any(_describes(s, "eventbridge", "placement.validated") for s in spans)


def test_poison_message_goes_to_the_dlq_then_redrive_completes_the_flow(api, aws, db, events, wait, traces,
                                                                       traced_through):
    pending_video = new_video(api, duration=None)  # metadata not processed: validation cannot decide
    poison, poison_trace = place_traced(api, pending_video, 5, 15)
    healthy = place(api, new_video(api), 30, 40)
    assert settled(api, wait, healthy["id"])["status"] == "validated"

    sqs = aws("sqs")
    dlq = sqs.get_queue_url(QueueName="nedlia-validation-dlq")["QueueUrl"]
    source = sqs.get_queue_url(QueueName="nedlia-validation")["QueueUrl"]

    def in_dlq():
        return queue_depth(aws, "nedlia-validation-dlq") >= 1

    wait(in_dlq, timeout=45, interval=0.2, message="poison message in the DLQ")
    assert api.get(f"/placements/{poison['id']}").body["status"] == "pending"
    peeked = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                 MessageSystemAttributeNames=["AWSTraceHeader"]).get("Messages", [])
    if traced_through:
        # The DLQ'd message is found from its trace, and the trace from the message.
        spans = traces.wait_for(poison_trace, lambda found: any(s.operation.startswith("dead-letter") for s in found),
                                what="the poison placement's trace")
        [moved_span] = [s for s in spans if s.operation.startswith("dead-letter")]
        assert moved_span.attributes["dead_letter_queue"] == "nedlia-validation-dlq"
        assert moved_span.attributes["message_id"] in [m["MessageId"] for m in peeked]
        assert traces.spans(moved_span.attributes["message_id"])[0].trace_id == poison_trace
        assert any(s.component == "event-source" and s.failed for s in spans)  # the worker's failed batches
        poison_message = moved_span.attributes["message_id"]
    else:
        # No trace leads there (docs/emulators.md): the message is the one whose event names the placement.
        [poison_message] = [m["MessageId"] for m in peeked if poison["id"] in m["Body"]]
    # Its batch-mate was validated exactly once: partial batch responses did not retry it.
    events.poll()
    validated_healthy = [e for e in events.seen if e["detail-type"] == "placement.validated"
                         and e["detail"]["placement_id"] == healthy["id"]]
    assert len(validated_healthy) == 1

    # The fix: the video's metadata arrives. Then redrive the DLQ to its source queue.
    assert api.patch(f"/videos/{pending_video}", {"duration_seconds": 120}).status == 200
    result = redrive(sqs, dlq, source)  # what `devenv dlq redrive` does
    assert result.error is None and not result.not_deleted
    assert poison_message in result.moved
    assert settled(api, wait, poison["id"], timeout=30)["status"] == "validated"
    if traced_through:
        # The redriven message kept its trace: the placement's trace goes on to its notification.
        traces.wait_for(poison_trace, lambda found: any(s.component == "lambda" and "notification-worker" in
                                                        s.operation for s in found),
                        what="the redriven placement's trace")
    wait(lambda: notifications(db, poison["id"]), message="notification for the redriven placement")
    assert queue_depth(aws, "nedlia-validation-dlq") == 0  # nothing lost, nothing left behind


def test_second_validation_of_a_video_reads_the_cache(api, cache, wait):
    video = new_video(api, duration=300)
    hits = int(cache.get("stats:video_cache:hit") or 0)
    misses = int(cache.get("stats:video_cache:miss") or 0)
    first = place(api, video, 10, 20)
    assert settled(api, wait, first["id"])["status"] == "validated"
    assert int(cache.get("stats:video_cache:miss") or 0) == misses + 1
    assert cache.exists(f"video:{video}")
    second = place(api, video, 30, 40)
    assert settled(api, wait, second["id"])["status"] == "validated"
    assert int(cache.get("stats:video_cache:hit") or 0) >= hits + 1
    assert int(cache.get("stats:video_cache:miss") or 0) == misses + 1  # no second read of Postgres


def test_killed_placement_task_under_load_is_replaced_and_requests_keep_succeeding(api, devenv_stack, wait):
    existing = place(api, new_video(api), 50, 60)
    wait(lambda: len(tasks(devenv_stack, "placement-service")) >= 2, timeout=30)
    with Load(api, f"/placements/{existing['id']}") as load:
        wait(lambda: len(load.statuses) >= 20, timeout=15)
        victim = tasks(devenv_stack, "placement-service")[0]
        os.kill(victim["pid"], signal.SIGKILL)
        wait(lambda: victim["taskId"] not in {t["taskId"] for t in tasks(devenv_stack, "placement-service")}
             and services(devenv_stack)["placement-service"]["healthyCount"]
             >= services(devenv_stack)["placement-service"]["desiredCount"], timeout=60, interval=0.2,
             message="replacement task healthy")
        count = len(load.statuses)
        wait(lambda: len(load.statuses) >= count + 20, timeout=15)
    assert load.failures == [], f"{len(load.failures)} of {len(load.statuses)} requests failed"


def test_rolling_deploy_under_load_fails_no_request(api, devenv_stack, wait):
    existing = place(api, new_video(api), 70, 80)
    before = services(devenv_stack)["placement-service"]["revision"]
    with Load(api, f"/placements/{existing['id']}") as load:
        wait(lambda: len(load.statuses) >= 20, timeout=15)
        devenv_stack.stack.ecs().deploy("placement-service")

        def rolled() -> bool:
            view = services(devenv_stack)["placement-service"]
            running = tasks(devenv_stack, "placement-service")
            return (view["deployments"][-1]["rolloutState"] == "COMPLETED" and view["revision"] == before + 1
                    and running and all(t["revision"] == before + 1 for t in running))

        wait(rolled, timeout=90, interval=0.2, message="rollout completed")
    assert load.failures == [], f"{len(load.failures)} of {len(load.statuses)} requests failed"
    assert len(load.statuses) > 20


def test_a_spot_interruption_of_half_the_spot_tasks_under_load_fails_no_request_and_keeps_the_base(
        api, aws, devenv_stack, wait):
    """ADR-007's placement-service, 80 % FARGATE_SPOT / 20 % FARGATE: at 5 tasks one runs on
    FARGATE. Half the Spot tasks are interrupted under steady load: the notice, the drain,
    SIGTERM and the replacements on Spot lose no request, and the FARGATE task stays."""
    existing = place(api, new_video(api), 110, 120)
    ecs, scaling = devenv_stack.stack.ecs(), aws("application-autoscaling")
    cluster = devenv_stack.stack.config.name
    target = dict(ServiceNamespace="ecs", ResourceId=f"service/{cluster}/placement-service",
                  ScalableDimension="ecs:service:DesiredCount")
    [scalable] = scaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[target["ResourceId"]])[
        "ScalableTargets"]
    start = services(devenv_stack)["placement-service"]["desiredCount"]

    def spread() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for task in tasks(devenv_stack, "placement-service"):
            found.setdefault(task["capacityProvider"], set()).add(task["taskId"])
        return found

    def settled() -> bool:  # 5 tasks, all healthy, by the strategy
        view = services(devenv_stack)["placement-service"]
        counts = {p: len(ids) for p, ids in spread().items()}
        return view["desiredCount"] == view["healthyCount"] == 5 and counts == {"FARGATE_SPOT": 4, "FARGATE": 1}

    scaling.register_scalable_target(**target, MinCapacity=5)  # held at 5: target tracking would scale in
    try:
        wait(settled, timeout=90, interval=0.25, message="5 healthy tasks, 4 on FARGATE_SPOT and 1 on FARGATE")
        before = spread()
        with Load(api, f"/placements/{existing['id']}") as load:
            wait(lambda: len(load.statuses) >= 20, timeout=15)
            interrupted = set(ecs.interrupt("placement-service", 2)["interrupted"])
            assert len(interrupted) == 2 and interrupted <= before["FARGATE_SPOT"]

            def stopped() -> bool:
                done = [t for t in ecs.tasks(stopped=True) if t["taskId"] in interrupted
                        and t["lastStatus"] == "STOPPED" and t["stopCode"] == "SpotInterruption"]
                return len(done) == 2

            wait(lambda: stopped() and settled() and not interrupted & spread()["FARGATE_SPOT"], timeout=60,
                 interval=0.25, message="the interrupted tasks stopped and replaced on FARGATE_SPOT")
            count = len(load.statuses)
            wait(lambda: len(load.statuses) >= count + 20, timeout=15)
        assert load.failures == [], f"{len(load.failures)} of {len(load.statuses)} requests failed"
        assert spread()["FARGATE"] == before["FARGATE"]  # the base capacity never moved
    finally:
        scaling.register_scalable_target(**target, MinCapacity=scalable["MinCapacity"])
        ecs.scale("placement-service", start)
        wait(lambda: len(tasks(devenv_stack, "placement-service")) == start
             and services(devenv_stack)["placement-service"]["healthyCount"] == start, timeout=60, interval=0.25,
             message=f"placement-service back to {start} tasks")


GATE = {"Bucket": "nedlia-notifications", "Key": "deploy-gates/notification-service"}


def blue_green_deploy(devenv_stack, aws, wait, load) -> tuple[dict, set[str], list[int]]:
    """Deploys notification-service (CodeDeploy, a canary) under ``load`` until the deployment
    ends: its GetDeployment, the tasks serving before it, the green shares seen on the way."""
    before = {t["taskId"] for t in tasks(devenv_stack, "notification-service")}
    wait(lambda: len(load.statuses) >= 20, timeout=15)
    started = devenv_stack.stack.ecs().deploy("notification-service")
    deployment_id = started["codeDeploy"]["deploymentId"]
    shares: list[int] = []

    def ended() -> bool:
        state = services(devenv_stack)["notification-service"]["blueGreen"]["deployment"]
        shares.append(state["greenPercent"])
        return state["id"] == deployment_id and state["status"] in ("Succeeded", "Failed")

    wait(ended, timeout=120, interval=0.2, message="the blue/green deployment ended")
    count = len(load.statuses)
    wait(lambda: len(load.statuses) >= count + 20, timeout=15)  # still serving afterwards
    return aws("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"], before, shares


def test_blue_green_canary_with_a_passing_hook_completes_under_load(aws, devenv_env, devenv_stack, wait):
    """notification-service: 10 % on green, then all of it, blue terminated; no request fails."""
    from devenv.testing.api import ApiClient

    aws("s3").delete_object(**GATE)  # the gate open
    revision = services(devenv_stack)["notification-service"]["revision"]
    with Load(ApiClient(devenv_env["DEVENV_ALB_URL"]), "/notification/notifications?limit=1") as load:
        info, blue, shares = blue_green_deploy(devenv_stack, aws, wait, load)
        # green's revision is the next number, not always revision + 1: a rolled-back deployment
        # keeps its number (as a task definition revision does), so a stack reused after the
        # rollback flow has skipped one
        wait(lambda: len(revisions := {t["revision"] for t in tasks(devenv_stack, "notification-service")}) == 1
             and revisions.pop() > revision
             and not blue & {t["taskId"] for t in tasks(devenv_stack, "notification-service")}, timeout=30,
             message="blue terminated after its termination wait")
    assert info["status"] == "Succeeded", info.get("errorInformation")
    assert info["deploymentConfigName"] == "CodeDeployDefault.ECSCanary10Percent5Minutes"
    assert 10 in shares and shares[-1] == 100  # the canary, then everything
    assert load.failures == [], f"{len(load.failures)} of {len(load.statuses)} requests failed"


def test_blue_green_with_a_failing_hook_rolls_back_and_blue_never_loses_traffic(aws, devenv_env, devenv_stack,
                                                                                 wait):
    """The deploy gate closed: its BeforeAllowTraffic hook reports Failed, CodeDeploy rolls back;
    blue serves every request throughout and green never gets production traffic."""
    from devenv.testing.api import ApiClient

    revision = services(devenv_stack)["notification-service"]["revision"]
    aws("s3").put_object(Body=b"closed", **GATE)
    try:
        with Load(ApiClient(devenv_env["DEVENV_ALB_URL"]), "/notification/notifications?limit=1") as load:
            info, blue, shares = blue_green_deploy(devenv_stack, aws, wait, load)
            wait(lambda: {t["taskId"] for t in tasks(devenv_stack, "notification-service")} == blue, timeout=30,
                 message="green stopped, blue untouched")
    finally:
        aws("s3").delete_object(**GATE)
    assert info["status"] == "Failed"
    assert info["errorInformation"] == {"code": "HOOK_EXECUTION_FAILURE", "message": (
        "BeforeAllowTraffic hook deploy-gate failed: the hook reported Failed")}
    assert "rollbackMessage" in info["rollbackInfo"]
    assert set(shares) == {0}  # production traffic never moved to green
    assert services(devenv_stack)["notification-service"]["revision"] == revision
    assert load.failures == [], f"{len(load.failures)} of {len(load.statuses)} requests failed"


def cpu_series_above(env: dict, cluster: str, service: str, target: float) -> list[dict]:
    """`aws cloudwatch get-metric-statistics` (the AWS CLI, only `devenv env`'s variables): the
    1-minute AWS/ECS CPUUtilization datapoints of ``service`` over the last 10 minutes whose
    Maximum passed ``target``, what target tracking acted on. The stack's cluster is named
    after the stack, as `devenv ps` and the ECS API show it."""
    from tests.support import aws_cli

    now = time.time()
    points = aws_cli(env, "cloudwatch", "get-metric-statistics", "--namespace", "AWS/ECS",
                     "--metric-name", "CPUUtilization", "--start-time", str(int(now - 600)),
                     "--end-time", str(int(now + 60)), "--period", "60", "--statistics", "Maximum", "Average",
                     "--dimensions", f"Name=ClusterName,Value={cluster}", f"Name=ServiceName,Value={service}")
    return [p for p in points["Datapoints"] if p["Maximum"] > target]


def assert_the_dashboard_charts_the_scale_out(devenv_stack, wait, start: int, target: float) -> None:
    """The web dashboard (headless Chromium) plots the same CloudWatch series: the running
    task count above where it started, the CPU's maximum above the target."""
    from devenv.observe.dashboard import LiveSources
    from devenv.observe.webapp import DashboardServer
    from tests.browser import open_page, plotted

    server = DashboardServer(LiveSources(devenv_stack.stack))
    url = server.start()
    try:
        with open_page() as page:
            page.goto(url)
            page.wait_for_selector("body[data-charts='1']", timeout=15000)
            # the charts redraw every 5 s; the last scale-out's datapoint may still be on its way
            wait(lambda: max(plotted(page, "tasks:placement-service", "running") or [0]) > start, timeout=30,
                 interval=1, message="the running task count plotted above the starting count")
            assert max(plotted(page, "cpu:placement-service", "maximum")) > target
            assert page.get_attribute("[data-chart='cpu:placement-service'] line.target", "data-target") == \
                f"{target:g}"
    finally:
        server.stop()


def test_cpu_load_scales_out_and_idleness_scales_back_in(api, devenv_stack, wait):
    existing = place(api, new_video(api), 90, 100)
    start = services(devenv_stack)["placement-service"]["desiredCount"]
    # Enough CPU demand to pass the 70% target on 0.5 vCPU tasks, with headroom left on the
    # 2-core box so health checks keep answering while it runs.
    loads = [Load(api, f"/placements/{existing['id']}/score", rate=40, limit=60) for _ in range(2)]
    for load in loads:
        load.__enter__()
    try:
        wait(lambda: services(devenv_stack)["placement-service"]["desiredCount"] > start, timeout=60,
             interval=0.25, message="scale-out above the starting count")
        # The series that drove it is in CloudWatch (published every `metrics.interval` seconds).
        target = devenv_stack.stack.config.services["placement-service"].autoscaling.target_cpu
        wait(lambda: cpu_series_above(devenv_stack.env, devenv_stack.stack.config.name, "placement-service",
                                      target), timeout=30, interval=1,
             message=f"a CPUUtilization datapoint above {target}% in CloudWatch")
    finally:
        for load in loads:
            load.__exit__(None, None, None)
    assert_the_dashboard_charts_the_scale_out(devenv_stack, wait, start, target)
    wait(lambda: services(devenv_stack)["placement-service"]["desiredCount"] == start, timeout=120, interval=0.25,
         message="scale-in back to the minimum after the cooldown")
    messages = " ".join(e["message"] for e in services(devenv_stack)["placement-service"]["events"])
    assert "above target" in messages and "below target" in messages


def test_the_tour_walks_a_placement_through_every_hop_and_ends_with_its_trace(devenv_stack, traced_through):
    from devenv.tour.run import steps

    config = devenv_stack.stack.config
    if not traced_through:
        # The tour follows one trace: it walks to the bus, and says it could not follow further.
        walked = list(steps(devenv_stack.stack, timeout=10))
        titles = [s.title for s in walked]
        assert titles[0] == "API Gateway -> function api", titles
        assert not [t for t in titles if "placement-service" in t and t.endswith("(not reached)")], titles
        assert "function validation-worker (not reached)" in titles, titles
        return
    walked = list(steps(devenv_stack.stack))
    assert not any(s.title.endswith("(not reached)") for s in walked), [s.title for s in walked]
    # Every sentence of devenv.yaml's tour landed on a hop the placement passed.
    assert {s.say for s in walked if s.say} == {s.say for s in config.tour.steps}
    first = dict(walked[0].facts)
    assert walked[0].title == "API Gateway -> function api" and first["answer"].startswith("201 in ")
    titles = [s.title for s in walked]
    for hop in ("bus nedlia-events -> queue nedlia-validation",
                "queue nedlia-notification -> function notification-worker", "ALB -> service notification-service"):
        assert hop in titles, titles
    hops = [name.strip() for name, _ in walked[-1].facts]
    for component in ("apigateway", "lambda", "alb", "ecs", "eventbridge", "sqs", "event-source"):
        assert component in hops, hops


def test_an_api_call_through_the_edge_is_cached_by_its_behaviour(api, edge):
    """The decision record's front door: CloudFront over HTTPS (trusting only the stack's CA)
    in front of the API. A video's placement list is cached 10 s by its behaviour; a POST
    always reaches the API; the cached list is stale until its TTL passes, as on AWS."""
    video = new_video(api)
    first = edge.get(f"/videos/{video}/placements")
    assert first.status == 200 and first.body == [], first.body
    assert first.headers["X-Cache"] == "Miss from cloudfront"
    assert first.headers["Via"].endswith(".cloudfront.net (CloudFront)") and first.headers["X-Amz-Cf-Id"]
    placed = edge.post("/placements", {"video_id": video, "advertiser_id": ADVERTISER, "product": "kettle",
                                       "start_seconds": 1, "end_seconds": 2})
    assert placed.status == 201 and placed.headers["X-Cache"] == "Miss from cloudfront", placed.body
    second = edge.get(f"/videos/{video}/placements")
    assert second.headers["X-Cache"] == "Hit from cloudfront" and "Age" in second.headers
    assert second.body == []  # the edge's copy, until its TTL passes
    assert [p["id"] for p in api.get(f"/videos/{video}/placements").body] == [placed.body["id"]]


# ---------------------------------------------------------------- the patterns Nedlia models


def outbox_rows(db, source: str, placement_id: str) -> list[tuple]:
    return db.execute("select detail_type, sent_at, attempts, last_error from outbox "
                      "where source = %s and detail->>'placement_id' = %s order by created_at",
                      (source, placement_id)).fetchall()


def drained(aws, queue: str) -> bool:
    return queue_depth(aws, queue) == 0


def test_outbox_relays_an_event_recorded_while_the_bus_was_unreachable(api, aws, db, devenv_stack, wait):
    """The bus refuses PutEvents (deleted); a placement is still accepted with 201, its event
    waits in the outbox, and once the bus is back the relay delivers it: the flow completes."""
    if devenv_stack.stack.config.emulator.kind != "moto":
        pytest.skip("ministack and LocalStack accept PutEvents for a bus that no longer exists, so "
                    "nothing refuses the relay (docs/emulators.md)")
    bus = "nedlia-events"
    events = aws("events")
    video = new_video(api)
    for rule in events.list_rules(EventBusName=bus)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        if targets:
            events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=rule["Name"], EventBusName=bus)
    events.delete_event_bus(Name=bus)
    placement = None
    try:
        placement = place(api, video, 10, 20)  # accepted: the event is in the outbox, not lost
        refused = wait(lambda: [r for r in outbox_rows(db, "nedlia.placement-service", placement["id"])
                                if r[1] is None and r[2] >= 1 and r[3]], timeout=15,
                       message="the relay tried and the bus refused")
        assert refused[0][0] == "placement.created"
        assert api.get(f"/placements/{placement['id']}").body["status"] == "pending"
    finally:
        # The deploy creates the bus before its rules and targets, and an event put on a bus
        # with no rule yet matches nothing and is dropped (as on AWS). The row stays locked
        # while the deploy runs, so the relay (FOR UPDATE SKIP LOCKED) sends it only after.
        with db.transaction():
            if placement is not None:
                db.execute("select id from outbox where source = %s and detail->>'placement_id' = %s for update",
                           ("nedlia.placement-service", placement["id"]))
            devenv_stack.stack.deploy(devenv_stack.stack.status().record.ports)  # the bus, rules, targets
    assert settled(api, wait, placement["id"], timeout=30)["status"] == "validated"
    [(kind, sent_at, attempts, error)] = outbox_rows(db, "nedlia.placement-service", placement["id"])
    assert sent_at is not None and attempts >= 2 and error is None
    sent = wait(lambda: notifications(db, placement["id"]), message="notification stored")
    assert [row[0] for row in sent] == ["placement.validated"]


def decided_event(placement_id: str, event_id: str) -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "placement.validated",
            "source": "nedlia.validation-service", "account": "000000000000", "region": "us-east-1",
            "time": "2026-01-01T00:00:00Z", "resources": [],
            "detail": {"placement_id": placement_id, "video_id": "vid-intro", "decision": "validated",
                       "reason": None, "event_id": event_id}}


@pytest.mark.parametrize("how", ["redelivered message", "re-relayed event"])
def test_the_same_event_delivered_twice_gives_one_notification(how, aws, db, wait):
    placement_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    if how == "redelivered message":  # SQS at least once: the very same message twice
        sqs = aws("sqs")
        url = sqs.get_queue_url(QueueName="nedlia-notification")["QueueUrl"]
        body = json.dumps(decided_event(placement_id, event_id))
        for _ in range(2):
            sqs.send_message(QueueUrl=url, MessageBody=body)
    else:  # a relay killed between PutEvents and marking its row sent publishes it again
        entry = {"Source": "nedlia.validation-service", "DetailType": "placement.validated",
                 "EventBusName": "nedlia-events",
                 "Detail": json.dumps(decided_event(placement_id, event_id)["detail"])}
        for _ in range(2):
            assert aws("events").put_events(Entries=[entry])["FailedEntryCount"] == 0
    wait(lambda: notifications(db, placement_id), message="notification stored")
    wait(lambda: drained(aws, "nedlia-notification"), timeout=20, message="both deliveries consumed")
    assert len(notifications(db, placement_id)) == 1
    assert drained(aws, "nedlia-notification-dlq")  # the repeat succeeded (200), it was not failed


def test_a_redelivered_placement_created_publishes_its_decision_once(api, aws, db, events, wait):
    placement = place(api, new_video(api), 10, 20)
    assert settled(api, wait, placement["id"])["status"] == "validated"
    created = events.wait_for({"detail-type": ["placement.created"], "detail": {"placement_id": [placement["id"]]}})
    wait(lambda: notifications(db, placement["id"]), message="notification stored")
    sqs = aws("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="nedlia-validation")["QueueUrl"],
                     MessageBody=json.dumps(created))  # the worker gets it again, as after a lost delete
    wait(lambda: drained(aws, "nedlia-validation"), timeout=20, message="the redelivery consumed")
    # The decision's event is written with the decision, so once the redelivery was handled
    # the outbox holds everything validation will ever publish for this placement.
    assert [r[0] for r in outbox_rows(db, "nedlia.validation-service", placement["id"])] == ["placement.validated"]
    wait(lambda: drained(aws, "nedlia-notification"), timeout=20, message="notification queue drained")
    assert len(notifications(db, placement["id"])) == 1
    assert drained(aws, "nedlia-validation-dlq")


def test_a_burst_is_decided_once_each_never_notified_while_pending_and_overlaps_never_both_validated(api, db, wait):
    """Pairs of overlapping placements sent at once: each placement is decided once, its
    notification comes after its decision was committed, and of each pair exactly one is
    validated (decisions on one video are serialized)."""
    video = new_video(api, duration=600)
    ranges = [(i * 20 + offset, i * 20 + offset + 10) for i in range(8) for offset in (0, 5)]
    # Four at a time: more would meet the api function's concurrency limit (429 -> API 500).
    with ThreadPoolExecutor(max_workers=4) as pool:
        placed = list(pool.map(lambda start_end: place(api, video, *start_end), ranges))
    for placement in placed:
        settled(api, wait, placement["id"], timeout=60)
        wait(lambda: notifications(db, placement["id"]), timeout=30, message="notification stored")
    rows = db.execute("select p.start_seconds, p.status, count(n.id), min(n.created_at) >= p.updated_at "
                      "from placements p join notifications n on n.placement_id = p.id "
                      "where p.video_id = %s group by p.id order by p.start_seconds", (video,)).fetchall()
    assert [r[2] for r in rows] == [1] * len(ranges), rows  # one notification each
    assert all(r[3] for r in rows), rows  # each notification came after its placement's decision
    for first, second in zip(rows[::2], rows[1::2]):
        assert sorted([first[1], second[1]]) == ["rejected", "validated"], (first, second)


def test_aws_logs_tail_shows_the_services_and_the_api_functions_lines(api, devenv_env, wait):
    # The decision record's awslogs: with only `devenv env`'s variables, `aws logs tail` (AWS
    # CLI v2) shows placement-service's line for the new placement and the api function's REPORT.
    from tests.support import aws_v2

    placement, trace = place_traced(api, new_video(api), 50, 60)
    tailed: dict[str, str] = {}

    def tail(group: str, wanted: str) -> bool:
        tailed[group] = aws_v2(devenv_env, "logs", "tail", group, "--since", "10m", "--format", "short",
                                missing_ok=True)  # the group comes with its first lines
        return wanted in tailed[group]

    wait(lambda: tail("/ecs/placement-service", f"placement created id={placement['id']}"), timeout=30, interval=1,
         message="placement-service's line in `aws logs tail /ecs/placement-service`")
    [line] = [x for x in tailed["/ecs/placement-service"].splitlines() if f"placement created id={placement['id']}" in x]
    assert line.endswith(f"trace={trace}")
    wait(lambda: tail("/aws/lambda/api", "REPORT RequestId:"), timeout=30, interval=1,
         message="the api function's REPORT line in `aws logs tail /aws/lambda/api`")
