"""The project's state folder (.devenv/): its layout and the secrets kept in it.

Secrets are generated once, written 0600 in a 0700 folder and never logged; data survives
``down`` and is only wiped by ``down --volumes``.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StateDir:
    """Paths inside .devenv/. Constructing one does no I/O; ``ensure`` creates the folders."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def traces(self) -> Path:
        """Span files of every component (devenv/observe/spans.py); kept across restarts."""
        return self.root / "traces"

    @property
    def instances(self) -> Path:
        """The state folders of the project's named instances (the test suite's)."""
        return self.root / "instances"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def lock_file(self) -> Path:
        return self.run / "supervisor.lock"

    @property
    def record_file(self) -> Path:
        return self.run / "stack.json"

    @property
    def environments_file(self) -> Path:
        """Which built environment each function and service runs in (devenv/build/manifest.py)."""
        return self.run / "environments.json"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    def log_file(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def data_dir(self, component: str) -> Path:
        return self.data / component

    def ensure(self) -> None:
        """Creates the layout. The root, and the folders made to hold it, stay traversable
        (0711) so a component that runs as an unprivileged user (Postgres under root) can
        reach its own data folder."""
        made = [p for p in self.root.parents if not p.exists()]
        for folder in [*reversed(made), self.root]:
            folder.mkdir(mode=0o711, exist_ok=True)
            os.chmod(folder, 0o711)
        for folder in (self.data, self.logs, self.run):
            folder.mkdir(mode=0o711, exist_ok=True)
        self.secrets.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.secrets, 0o700)

    def secret(self, name: str, *, nbytes: int = 24) -> str:
        """Returns the named secret, generating it on first use (URL-safe, 0600). The file
        appears complete or not at all (written under a temporary name, then linked), so a
        concurrent reader never gets an empty value, and of two concurrent creators the
        second links nothing and returns the first one's value."""
        path = self.secrets / name
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        value = secrets.token_urlsafe(nbytes)
        temporary = self._write_temporary(name, value + "\n", 0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process made it meanwhile: its value stands
            return path.read_text().strip()
        finally:
            temporary.unlink()
        return value

    def mountable(self, name: str, content: str | None = None) -> Path:
        """A file in the secrets folder a container mounts read-only: the named secret (or
        ``content``), readable by any uid (0644) because the image's server runs as its own
        user; the 0700 folder still keeps other host users out."""
        path = self.secrets / name
        if content is None:
            self.secret(name)
            os.chmod(path, 0o644)
        else:
            os.replace(self._write_temporary(name, content, 0o644), path)  # never seen half-written
        return path

    def private_file(self, name: str, content: str) -> Path:
        """Writes ``content`` as the secret file ``name`` (0600), replacing what was there; a
        reader sees the old file or the new one, never half of one."""
        path = self.secrets / name
        os.replace(self._write_temporary(name, content, 0o600), path)
        return path

    def _write_temporary(self, name: str, content: str, mode: int) -> Path:
        """``content`` in a new file beside the secret ``name``, under a name no one else uses."""
        temporary = self.secrets / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(temporary, mode)  # whatever the umask
        return temporary

    def wipe(self) -> None:
        """Removes data, secrets, ports and logs (``down --volumes``): everything but the
        folders of named instances (.devenv/instances/), which are stacks of their own."""
        if not self.root.exists():
            return
        for entry in self.root.iterdir():
            if entry == self.instances:
                if not any(entry.iterdir()):
                    entry.rmdir()
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        if not any(self.root.iterdir()):
            self.root.rmdir()
