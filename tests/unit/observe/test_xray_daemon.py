"""The X-Ray daemon's receiving side (devenv/observe/xray_daemon.py): datagrams kept as they
arrive, turned into devenv's spans and the emulator's documents when drained."""

from __future__ import annotations

import asyncio
import json

from devenv.observe.xray_daemon import SegmentReceiver
from tests.support import ListSink

TRACE = "1-5e0a1b2c-0123456789abcdef01234567"


class Forwarder:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, document: str) -> None:
        self.texts.append(document)

    @property
    def documents(self) -> list[dict]:
        return [json.loads(text) for text in self.texts]


class CountingSink(ListSink):
    """A sink that counts the calls that wrote (a file sink's writes)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def record(self, span) -> None:
        self.calls += 1
        super().record(span)

    def record_all(self, spans) -> None:
        self.calls += 1
        super().record_all(spans)


def datagram(segment_id: str, **fields) -> bytes:
    document = {"name": "validation-service", "id": segment_id, "trace_id": TRACE, "start_time": 100.0,
                "end_time": 100.01, **fields}
    return b'{"format": "json", "version": 1}\n' + json.dumps(document).encode()


def test_datagrams_become_spans_and_documents_when_drained_not_as_they_arrive():
    sink, forwarder = ListSink(), Forwarder()
    receiver = SegmentReceiver(sink, forwarder)
    sub = {"name": "redis", "id": "00000000000000b2", "start_time": 100.001, "end_time": 100.002}
    receiver.datagram_received(datagram("00000000000000a1", subsegments=[sub]), ("127.0.0.1", 5000))
    receiver.datagram_received(datagram("00000000000000a2", in_progress=True), ("127.0.0.1", 5000))
    receiver.datagram_received(b"not a segment", ("127.0.0.1", 5000))
    assert sink.spans == [] and forwarder.documents == [] and receiver.received == 0
    receiver.drain()
    assert [(s.span_id, s.parent_id) for s in sink.spans] == [("00000000000000a1", None),
                                                              ("00000000000000b2", "00000000000000a1")]
    assert [d["id"] for d in forwarder.documents] == ["00000000000000a1"]  # not the one in progress
    assert (receiver.received, receiver.refused) == (2, 1)
    receiver.drain()  # nothing is taken twice
    assert len(sink.spans) == 2 and len(forwarder.documents) == 1


def test_the_daemon_drains_on_its_own_every_interval():
    sink = ListSink()
    receiver = SegmentReceiver(sink, Forwarder())

    async def scenario() -> None:
        draining = asyncio.create_task(receiver.drain_every(0.01))
        receiver.datagram_received(datagram("00000000000000c3"), ("127.0.0.1", 5000))
        for _ in range(500):  # wait on the condition, 5 s at most
            if sink.spans:
                break
            await asyncio.sleep(0.01)
        draining.cancel()

    asyncio.run(scenario())
    assert [s.span_id for s in sink.spans] == ["00000000000000c3"]


def test_a_segment_that_breaks_the_span_walk_is_refused_and_draining_goes_on():
    sink, forwarder = ListSink(), Forwarder()
    receiver = SegmentReceiver(sink, forwarder)
    level = '{"name": "deep", "id": "00000000000000e1", "start_time": 100.0, "end_time": 100.1, "subsegments": ['
    deep = (b'{"format": "json", "version": 1}\n' + (level * 5000).encode() + b"]}" * 5000)  # past the recursion limit
    for bad in (datagram("00000000000000d1", subsegments=5), deep):
        receiver.datagram_received(bad, ("127.0.0.1", 5000))
    receiver.datagram_received(datagram("00000000000000d3"), ("127.0.0.1", 5000))
    receiver.drain()  # before: the first TypeError escaped, the rest of the batch was lost
    assert [s.span_id for s in sink.spans] == ["00000000000000d3"]
    assert [d["id"] for d in forwarder.documents] == ["00000000000000d3"]
    assert (receiver.received, receiver.refused) == (1, 2)


def test_a_drain_records_its_spans_in_one_call_and_forwards_the_senders_own_text():
    """A write per span, and the document serialised again, cost the daemon more than the parse."""
    sink, forwarder = CountingSink(), Forwarder()
    receiver = SegmentReceiver(sink, forwarder)
    subs = [{"name": "redis", "id": f"00000000000000b{i}", "start_time": 100.001, "end_time": 100.002} for i in range(3)]
    sent = [datagram("00000000000000a1", subsegments=subs), datagram("00000000000000a2", http={"x": "é"})]
    for data in sent:
        receiver.datagram_received(data, ("127.0.0.1", 5000))
    receiver.drain()
    assert len(sink.spans) == 5 and sink.calls == 1
    assert forwarder.texts == [data.partition(b"\n")[2].decode() for data in sent]  # byte for byte


def test_a_document_not_in_plain_utf8_is_forwarded_serialised_again():
    forwarder = Forwarder()
    receiver = SegmentReceiver(ListSink(), forwarder)
    document = {"name": "svc", "id": "00000000000000f1", "trace_id": TRACE, "start_time": 100.0, "end_time": 100.1}
    for body in ("\ufeff" + json.dumps(document)).encode("utf-8"), json.dumps(document).encode("utf-16"):
        receiver.datagram_received(b'{"format": "json", "version": 1}\n' + body, ("127.0.0.1", 5000))
    receiver.drain()
    assert forwarder.documents == [document, document]
    assert all(text.startswith("{") for text in forwarder.texts)


def test_a_segment_whose_spans_do_not_encode_is_refused_and_the_rest_of_the_drain_is_recorded():
    class Picky(ListSink):
        def record_all(self, spans):
            if any(s.span_id == "00000000000000e9" for s in spans):
                raise RecursionError("maximum recursion depth exceeded while encoding a JSON object")
            super().record_all(spans)

    sink = Picky()
    receiver = SegmentReceiver(sink, Forwarder())
    for segment_id in ("00000000000000e1", "00000000000000e9", "00000000000000e3"):
        receiver.datagram_received(datagram(segment_id), ("127.0.0.1", 5000))
    receiver.drain()
    assert [s.span_id for s in sink.spans] == ["00000000000000e1", "00000000000000e3"]
    assert receiver.refused == 1
