"""Folding the managed plane's journal records: the last state of each message and object,
definitions in order, deletes and purges honoured, a reset forgetting everything before it."""

from __future__ import annotations

from devenv.infra.moto_state import fold

Q = ["123456789012", "us-east-1", "orders"]
DLQ = ["123456789012", "us-east-1", "orders-dlq"]


def msg(message_id: str, queue=Q, received: int = 0) -> dict:
    return {"t": "msg", "q": queue, "id": message_id, "body": message_id, "received": received}


def call(method: str, *args, service: str = "sqs") -> dict:
    return {"t": "call", "s": service, "a": "123456789012", "r": "us-east-1", "m": method, "args": list(args), "kw": {}}


def obj(key: str, body: str = "b1", bucket: str = "uploads") -> dict:
    return {"t": "obj", "a": "123456789012", "r": "aws", "b": bucket, "k": key, "body": body}


def test_the_last_state_of_a_message_wins_and_keeps_its_place():
    state = fold([msg("a"), msg("b"), msg("a", received=2)])
    assert list(state.messages) == ["a", "b"]
    assert state.messages["a"]["received"] == 2


def test_a_move_to_the_dlq_puts_the_message_last_in_its_new_queue():
    state = fold([msg("a"), msg("x", DLQ), msg("b"), msg("a", DLQ, received=3)])
    in_dlq = [i for i, m in state.messages.items() if m["q"] == DLQ]
    assert in_dlq == ["x", "a"]
    assert state.messages["a"]["received"] == 3


def test_deleted_and_purged_messages_are_gone():
    state = fold([msg("a"), msg("b"), msg("c", DLQ), {"t": "gone", "ids": ["a", "never-seen"]}])
    assert list(state.messages) == ["b", "c"]
    state.apply({"t": "purge", "q": Q})
    assert list(state.messages) == ["c"]
    state.apply(msg("d"))  # sent after the purge
    assert list(state.messages) == ["c", "d"]


def test_deleting_a_queue_drops_its_messages_but_keeps_the_call():
    state = fold([call("create_queue", "orders"), msg("a"), msg("b", DLQ), call("delete_queue", "orders")])
    assert list(state.messages) == ["b"]
    assert [c["m"] for c in state.calls] == ["create_queue", "delete_queue"]


def test_objects_last_write_wins_and_deletes_remove():
    state = fold([obj("k1", "b1"), obj("k2", "b2"), obj("k1", "b3"),
                  {"t": "objdel", "a": "123456789012", "b": "uploads", "k": "k2"}])
    assert [(k[2], r["body"]) for k, r in state.objects.items()] == [("k1", "b3")]
    assert state.bodies() == {"b3"}


def test_deleting_a_bucket_drops_its_objects():
    state = fold([obj("k1"), obj("k1", bucket="other"), call("delete_bucket", "uploads", service="s3")])
    assert [k[1] for k in state.objects] == ["other"]


def test_reset_forgets_everything_before_it():
    state = fold([call("create_queue", "orders"), msg("a"), obj("k"), {"t": "reset"}, msg("b")])
    assert state.calls == [] and list(state.messages) == ["b"] and state.objects == {}


def test_the_fold_written_back_folds_to_itself():
    records = [call("create_queue", "orders-dlq"), call("create_queue", "orders"), msg("a"), msg("b"),
               msg("a", DLQ, received=5), obj("k1"), {"t": "gone", "ids": ["b"]}]
    state = fold(records)
    again = fold(state.records())
    assert again.calls == state.calls
    assert again.messages == state.messages and list(again.messages) == list(state.messages)
    assert again.objects == state.objects


def test_unknown_kinds_are_counted_not_fatal():
    state = fold([{"t": "from-the-future"}, msg("a")])
    assert state.unknown == 1 and list(state.messages) == ["a"]
