"""A function's code folder as Lambda describes a deployment package: its digest
(``CodeSha256``), size (``CodeSize``) and when it last changed (``LastModified``).

devenv runs the folder itself, never a zip, so these describe the folder: ``CodeSha256`` is
the base64 SHA-256 of every file's relative path and contents, in path order (bytecode caches
left out), stable across restarts and machines, and changed by any edit; it is not the digest
of a zip AWS would hold. ``CodeSize`` is the files' total size, unzipped. ``LastModified`` is
the newest file's modification time.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CodeDigest:
    sha256: str  # base64, as CodeSha256 is given
    size: int  # bytes, unzipped
    modified: float  # epoch seconds of the newest file (0 for an empty folder)

    @property
    def last_modified(self) -> str:
        """``LastModified`` as Lambda writes it: ``2024-01-01T00:00:00.000+0000``."""
        return aws_timestamp(self.modified)


def aws_timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}+0000"


def _files(folder: Path) -> list[tuple[str, Path]]:
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if "__pycache__" in relative.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        found.append((relative.as_posix(), path))
    return sorted(found)


def code_digest(folder: Path) -> CodeDigest:
    """Reads the folder (blocking: call it off the event loop)."""
    digest = hashlib.sha256()
    size = 0
    modified = 0.0
    for name, path in _files(folder):
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except OSError:  # removed while we read: an edit in progress
            continue
        encoded = name.encode()
        digest.update(len(encoded).to_bytes(8, "big") + encoded + len(data).to_bytes(8, "big") + data)
        size += len(data)
        modified = max(modified, mtime)
    return CodeDigest(base64.b64encode(digest.digest()).decode(), size, modified)
