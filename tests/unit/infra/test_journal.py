"""The journal's file format and generations: a torn or damaged record is dropped with a
warning and nothing before it is lost; compaction leaves files that load to the same state."""

from __future__ import annotations

import os

from devenv.infra.journal import Journal, choose, decode, encode


def test_records_round_trip_with_bytes_and_unicode():
    records = [{"t": "msg", "body": "héllo\nworld"}, {"t": "obj", "blob": b"\x00\xffraw", "n": [1, 2]}]
    got, damage = decode(b"".join(encode(r) for r in records))
    assert got == records
    assert damage == []


def test_a_write_cut_short_is_dropped_and_named():
    whole = encode({"t": "msg", "id": "a"}) + encode({"t": "msg", "id": "b"})
    torn = encode({"t": "msg", "id": "c"})[:-7]
    got, damage = decode(whole + torn, "journal-3.jsonl")
    assert [r["id"] for r in got] == ["a", "b"]
    assert len(damage) == 1
    assert damage[0].line == 3 and "incomplete last record" in str(damage[0])
    assert str(damage[0]).startswith("journal-3.jsonl line 3")


def test_a_torn_record_missing_only_its_newline_is_still_dropped():
    line = encode({"t": "msg", "id": "a"})
    got, damage = decode(line[:-1])
    assert got == [] and len(damage) == 1


def test_a_damaged_line_in_the_middle_is_skipped_not_the_rest():
    lines = [encode({"t": "msg", "id": name}) for name in "abc"]
    lines[1] = lines[1].replace(b'"b"', b'"x"')  # checksum no longer matches
    got, damage = decode(b"".join(lines))
    assert [r["id"] for r in got] == ["a", "c"]
    assert [d.line for d in damage] == [2] and "damaged" in damage[0].reason


def test_garbage_lines_are_damage_not_a_crash():
    got, damage = decode(b"\n\x00\x00garbage\nzzzzzzzz {}\n")
    assert got == []
    assert [d.line for d in damage] == [1, 2, 3]


def test_choose_takes_the_newest_snapshot_and_later_journals():
    files = choose(["journal-2.jsonl", "snapshot-3.jsonl", "journal-4.jsonl", "journal-5.jsonl",
                    "snapshot-1.jsonl", "journal-3.jsonl", ".snapshot-6.jsonl.tmp", "other"])
    assert files.snapshot == "snapshot-3.jsonl"
    assert files.journals == ("journal-4.jsonl", "journal-5.jsonl")
    assert files.generation == 5
    assert set(files.obsolete) == {"journal-2.jsonl", "journal-3.jsonl", "snapshot-1.jsonl"}


def test_choose_without_a_snapshot_loads_every_journal():
    files = choose(["journal-1.jsonl", "journal-2.jsonl"])
    assert files.snapshot is None and files.journals == ("journal-1.jsonl", "journal-2.jsonl")


def test_append_load_compact_reopen(tmp_path):
    journal = Journal(tmp_path)
    loaded = journal.load()
    assert loaded.records == [] and loaded.generation == 0
    journal.compact([], loaded)
    journal.open()
    for n in range(3):
        journal.append({"t": "msg", "id": str(n)})
    journal.close()

    again = Journal(tmp_path)
    loaded = again.load()
    assert [r["id"] for r in loaded.records] == ["0", "1", "2"]
    again.compact([{"t": "msg", "id": "2"}], loaded)  # the fold: only "2" is left
    again.open()
    again.append({"t": "msg", "id": "3"})
    again.close()
    names = sorted(os.listdir(tmp_path))
    assert len([n for n in names if n.startswith("snapshot-")]) == 1
    assert [r["id"] for r in Journal(tmp_path).load().records] == ["2", "3"]


def _started_with_one_record(folder) -> Journal:
    journal = Journal(folder)
    journal.compact([], journal.load())
    journal.open()
    journal.append({"t": "msg", "id": "a"})
    journal.close()
    return journal


def test_a_crash_between_snapshot_and_cleanup_loads_the_same(tmp_path):
    journal = _started_with_one_record(tmp_path)
    loaded = journal.load()
    # the snapshot of that generation is written, but the journal it covers is still there
    (tmp_path / f"snapshot-{loaded.generation}.jsonl").write_bytes(encode({"t": "msg", "id": "a"}))
    assert [r["id"] for r in Journal(tmp_path).load().records] == ["a"]


def test_a_torn_tail_is_never_appended_to(tmp_path):
    journal = _started_with_one_record(tmp_path)
    name = choose(os.listdir(tmp_path)).journals[0]
    with open(tmp_path / name, "ab") as out:
        out.write(encode({"t": "msg", "id": "torn"})[:5])
    loaded = journal.load()
    assert [r["id"] for r in loaded.records] == ["a"] and len(loaded.damage) == 1
    journal.compact(loaded.records, loaded)
    journal.open()
    journal.append({"t": "msg", "id": "b"})
    journal.close()
    loaded = Journal(tmp_path).load()
    assert [r["id"] for r in loaded.records] == ["a", "b"] and loaded.damage == []
