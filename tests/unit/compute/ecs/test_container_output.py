"""runtime: docker: a task container's output goes to the service log (with its [taskid]
prefix) and its last lines to the task, which explain a crash when the service cannot start."""

import asyncio
import os

from devenv.compute.ecs.scheduler import OUTPUT_KEPT, Task, output_read
from devenv.runtime.lines import LOG_EVENT_MAX, OutputLines
from devenv.compute.ecs.containers import _pump
from devenv.runtime.threads import in_thread


class FakeContainer:
    def __init__(self, chunks):
        self.chunks = chunks

    def logs(self, stream: bool, follow: bool):
        assert stream and follow
        yield from self.chunks


def pump(tmp_path, chunks) -> tuple[Task, str]:
    task = Task("abcdef0123456789", "svc", 1, "127.0.0.1", 8000, tmp_path)
    fd = os.open(tmp_path / "svc.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    async def scenario():
        task.output_read = in_thread(_pump, FakeContainer(chunks), task, fd, asyncio.get_running_loop())
        await output_read(task)
        assert task.output_read.done()

    try:
        asyncio.run(scenario())
    finally:
        os.close(fd)
    return task, (tmp_path / "svc.log").read_text()


def test_lines_split_across_chunks_and_a_last_line_without_newline_are_kept(tmp_path):
    task, log = pump(tmp_path, [b"starting\nTraceback (most", b" recent call last):\n",
                                b"ModuleNotFoundError: No module named 'x'"])
    assert list(task.output) == ["starting", "Traceback (most recent call last):",
                                 "ModuleNotFoundError: No module named 'x'"]
    assert log == ("[abcdef01] starting\n[abcdef01] Traceback (most recent call last):\n"
                   "[abcdef01] ModuleNotFoundError: No module named 'x'\n")


def test_only_the_last_lines_are_kept(tmp_path):
    task, log = pump(tmp_path, [b"".join(b"line %d\n" % n for n in range(100))])
    assert list(task.output) == [f"line {n}" for n in range(100 - OUTPUT_KEPT, 100)]
    assert log.count("\n") == 100


def test_a_line_longer_than_a_log_event_comes_in_pieces(tmp_path):
    # Held whole, a task printing without newlines grew the reader's memory without end.
    task, log = pump(tmp_path, [b"a" * LOG_EVENT_MAX, b"b" * 10, b"\n", b"c" * (LOG_EVENT_MAX + 1)])
    assert log.splitlines() == ["[abcdef01] " + "a" * LOG_EVENT_MAX, "[abcdef01] " + "b" * 10,
                                "[abcdef01] " + "c" * LOG_EVENT_MAX, "[abcdef01] c"]


def test_output_lines_keep_empty_lines_and_cut_long_ones():
    lines = OutputLines(limit=4)
    assert lines.feed(b"ab\n\nabcdefghij") == [b"ab", b"", b"abcd", b"efgh"]
    assert lines.feed(b"k\nxy") == [b"ijk"]
    assert lines.end() == [b"xy"] and lines.end() == []
