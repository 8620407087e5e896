"""Images devenv builds (service images from their Dockerfiles, Lambda instance images), rebuilt
only when what goes into them changes.

An image carries the label ``devenv.context=<digest>``: a hash of every file of its build
context (caches and VCS folders left out), the Dockerfile's path and its build arguments.
Building looks for an image with that label first, so an unchanged context costs one query.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from ..errors import ComponentError
from .docker import LABEL_CONTEXT, DockerEngine, short_error

IGNORED = ("__pycache__", "*.pyc", ".venv", "venv", "node_modules", ".git", ".pytest_cache", ".mypy_cache",
           ".devenv")


@dataclass(frozen=True)
class ImageBuild:
    """What to build: a context folder and a Dockerfile in it, or a Dockerfile's text with
    extra files (name -> content) as the whole context."""

    repository: str  # lower-case image name, without tag
    context: Path | None = None
    dockerfile: str = "Dockerfile"
    text: str | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    buildargs: Mapping[str, str] = field(default_factory=dict)

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(repr((self.dockerfile, self.text, sorted(self.buildargs.items()))).encode())
        for name, content in sorted(self.files.items()):
            h.update(name.encode() + b"\0" + content + b"\0")
        if self.context is not None:
            for path in _context_files(self.context):
                rel = path.relative_to(self.context).as_posix()
                h.update(rel.encode() + b"\0" + oct(path.stat().st_mode & 0o777).encode() + b"\0")
                h.update(path.read_bytes() + b"\0")
        return h.hexdigest()[:20]


def _context_files(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not any(fnmatch(d, p) for p in IGNORED))
        for name in sorted(files):
            if not any(fnmatch(name, p) for p in IGNORED):
                found.append(Path(folder) / name)
    return found


def ensure_image(engine: DockerEngine, build: ImageBuild, *, component: str, log_path: Path) -> str:
    """The tag of an image built from ``build``: an existing one with the same context digest,
    or a new build (its output appended to ``log_path``). ComponentError when the build fails."""
    import docker.errors

    digest = build.digest()
    tag = f"{build.repository}:{digest[:12]}"
    client = engine.client
    if client.images.list(filters={"label": f"{LABEL_CONTEXT}={digest}"}):
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
    labels = {LABEL_CONTEXT: digest}  # no stack label: images are content-addressed, shared by stacks
    log_path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = dict(tag=tag, labels=labels, rm=True, forcerm=True, buildargs=dict(build.buildargs), decode=True)
    if build.text is not None:
        kwargs.update(fileobj=_tar_context(build.text, build.files), custom_context=True)
    else:
        kwargs.update(path=str(build.context), dockerfile=build.dockerfile)
    lines: list[str] = []
    try:
        with open(log_path, "a") as log:
            for chunk in client.api.build(**kwargs):
                text = chunk.get("stream") or chunk.get("status") or ""
                if text:
                    log.write(text)
                    lines.extend(text.splitlines())
                if "error" in chunk:
                    log.write(chunk["error"] + "\n")
                    raise ComponentError(component, f"building {tag} failed: {chunk['error'].strip()}",
                                         log_tail=lines[-15:], hint=f"full output: {log_path}")
    except docker.errors.DockerException as exc:
        raise ComponentError(component, f"building {tag} failed: {short_error(exc)}", log_tail=lines[-15:]) from None
    return tag


def _tar_context(dockerfile: str, files: Mapping[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    buffer.seek(0)
    return buffer
