"""An append-only journal of records, with snapshots: how the emulator's state outlives it.

A record is a JSON object, one per line, behind the CRC-32 of its bytes
(``0a1b2c3d {"t": ...}\\n``), so a line that a kill cut short, or any damaged line, is
recognised and dropped with a warning instead of being replayed. Each append is one
``os.write`` to a file opened ``O_APPEND``: once it returns, the record is in the kernel's
page cache and survives a kill of the process; ``sync=True`` adds an ``fdatasync`` per
record, which makes it survive an OS crash too, at the price of a disk flush per call.

On disk (one folder): ``journal-<n>.jsonl`` holds the records appended after
``snapshot-<n-1>.jsonl`` was taken; a snapshot is written to a temporary file, flushed and
renamed, so it is either whole or absent. Loading takes the newest snapshot, then every
journal of a later generation, in order. Compaction writes the folded state as the snapshot
of the newest generation read, then removes the files it replaces; a crash at any point of it
leaves a set of files that loads to the same state.
"""

from __future__ import annotations

import base64
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^(journal|snapshot)-(\d+)\.jsonl$")
_BYTES = "$b64"


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not journaled")


def _object_hook(value: dict[str, Any]) -> Any:
    if len(value) == 1 and _BYTES in value:
        return base64.b64decode(value[_BYTES])
    return value


def encode(record: dict[str, Any]) -> bytes:
    """One journal line. Raises TypeError for a value JSON cannot hold (bytes can)."""
    payload = json.dumps(record, separators=(",", ":"), default=_default, ensure_ascii=False).encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


@dataclass(frozen=True)
class Damage:
    """A line of a journal file that was not replayed, and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


def decode(data: bytes, name: str = "journal") -> tuple[list[dict[str, Any]], list[Damage]]:
    """The records of a journal file's bytes, and the lines dropped: a last line without its
    newline (a write cut short by a kill) or any line whose checksum or JSON is wrong."""
    records: list[dict[str, Any]] = []
    damage: list[Damage] = []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, as every whole record does
    for number, line in enumerate(lines, start=1):
        record = _decode_line(line)
        if record is None:
            damage.append(Damage(name, number, "damaged record (checksum or JSON wrong), skipped"))
        else:
            records.append(record)
    if tail:
        damage.append(Damage(name, len(lines) + 1,
                             f"incomplete last record ({len(tail)} bytes, a write cut short), dropped"))
    return records, damage


def _decode_line(line: bytes) -> dict[str, Any] | None:
    if len(line) < 10 or line[8:9] != b" ":
        return None
    payload = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(payload):
            return None
        record = json.loads(payload, object_hook=_object_hook)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


@dataclass(frozen=True)
class Files:
    """Which files of a journal folder to load, decided from their names alone."""

    snapshot: str | None
    journals: tuple[str, ...]
    generation: int  # the newest generation present (0: none)
    obsolete: tuple[str, ...] = ()  # older snapshots and journals a snapshot covers


def choose(names: Iterable[str]) -> Files:
    """The newest snapshot and the journals after it; everything else is obsolete."""
    snapshots: dict[int, str] = {}
    journals: dict[int, str] = {}
    for name in names:
        match = _NAME.match(name)
        if match:
            (snapshots if match.group(1) == "snapshot" else journals)[int(match.group(2))] = name
    base = max(snapshots, default=0)
    newest = max([base, *journals])
    keep = [journals[n] for n in sorted(journals) if n > base]
    obsolete = [snapshots[n] for n in snapshots if n < base] + [journals[n] for n in journals if n <= base]
    return Files(snapshots.get(base), tuple(keep), newest, tuple(sorted(obsolete)))


@dataclass
class Loaded:
    records: list[dict[str, Any]]
    damage: list[Damage]
    generation: int
    files: Files


@dataclass
class Journal:
    """A journal folder. Not thread-safe: its one writer serialises appends."""

    folder: Path
    sync: bool = False
    _fd: int | None = field(default=None, init=False, repr=False)
    _generation: int = field(default=0, init=False)
    appended: int = field(default=0, init=False)  # bytes appended to the open journal

    def load(self) -> Loaded:
        self.folder.mkdir(parents=True, exist_ok=True)
        files = choose(os.listdir(self.folder))
        records: list[dict[str, Any]] = []
        damage: list[Damage] = []
        for name in ([files.snapshot] if files.snapshot else []) + list(files.journals):
            got, hurt = decode((self.folder / name).read_bytes(), name)
            records += got
            damage += hurt
        return Loaded(records, damage, files.generation, files)

    def compact(self, records: Iterable[dict[str, Any]], loaded: Loaded) -> int:
        """Writes ``records`` (the folded state of ``loaded``) as the snapshot of its newest
        generation and removes what it replaces. Returns the bytes written."""
        generation = max(loaded.generation, 1)
        name = f"snapshot-{generation}.jsonl"
        temporary = self.folder / f".{name}.tmp"
        size = 0
        with open(temporary, "wb") as out:
            for chunk in _chunks(records):
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.folder / name)
        for old in (*loaded.files.obsolete, *loaded.files.journals, loaded.files.snapshot):
            if old and old != name:
                _remove(self.folder / old)
        for stale in self.folder.glob(".*.tmp"):  # a compaction a kill interrupted
            if stale != temporary:
                _remove(stale)
        self._generation = generation
        return size

    def open(self) -> None:
        """Starts the journal after everything loaded (and compacted)."""
        self.close()
        self._generation = max(self._generation, choose(os.listdir(self.folder)).generation) + 1
        path = self.folder / f"journal-{self._generation}.jsonl"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.appended = 0

    def append(self, record: dict[str, Any]) -> None:
        line = encode(record)
        assert self._fd is not None, "journal not open"
        os.write(self._fd, line)
        if self.sync:
            os.fdatasync(self._fd)
        self.appended += len(line)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _chunks(records: Iterable[dict[str, Any]], size: int = 1 << 20) -> Iterator[bytes]:
    buffer: list[bytes] = []
    held = 0
    for record in records:
        line = encode(record)
        buffer.append(line)
        held += len(line)
        if held >= size:
            yield b"".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield b"".join(buffer)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
