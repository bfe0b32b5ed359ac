"""Building a module: run its `[artifact] build_command`, then (oci) build its image; skip what is up to date.

A build is up to date while the module's sources and its artifact are exactly what the last
successful build left: `build/.gati-build.json` in the module's folder records a digest of the
sources (every file except build outputs, see SKIP) and the artifact's sha256 (for an oci module,
the image ID). Digests, not times: a checkout, a copy or a clock step does not fool it.

The build command runs in the module's folder under /bin/sh, its output streamed line by line to
`on_line`; GATI_PROTO names gati's .proto files (Go and Node.js modules generate or load their
stubs from them) and PYTHON the runtime's interpreter. An oci image build streams its steps (and
the base image's debootstrap) through the `gati.oci` logger, forwarded to `on_line` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from runtime.core.errors import GatiError
from runtime.core.manifest import LoadedManifest, load_manifest, sha256_file
from sandboxes.oci import images

# Where the .proto contracts are for a module's build: shipped with the CLI's templates (a link to proto/ in a checkout).
PROTO_DIR = Path(__file__).resolve().parents[1] / "cli" / "templates" / "proto"
STAMP = Path("build") / ".gati-build.json"
SKIP = {"build", "node_modules", "target", "__pycache__"}  # outputs and caches, never inputs
TAIL_LINES = 20

OnLine = Callable[[str], None]


class BuildFailed(GatiError):
    code = "build_failed"


@dataclass
class BuildResult:
    name: str
    dir: str
    status: str  # built | up-to-date | nothing-to-build | failed
    seconds: float = 0.0
    error: str = ""
    output: list[str] | None = None  # the last lines, when it failed

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def sources_digest(loaded: LoadedManifest) -> str:
    """sha256 over the module's source files, by relative path and content."""
    base = Path(loaded.base_dir)
    artifact = loaded.artifact_path()
    h = hashlib.sha256()
    for path in sorted(_sources(base)):
        if artifact is not None and path == artifact:
            continue
        h.update(str(path.relative_to(base)).encode() + b"\0")
        h.update(sha256_file(path).encode())
    return h.hexdigest()


def _sources(base: Path):
    for root, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if d not in SKIP and not d.startswith(".")]
        for name in files:
            path = Path(root) / name
            if not name.startswith(".") and path.is_file():
                yield path


def _artifact_id(loaded: LoadedManifest) -> str | None:
    """What the build made, as recorded in the stamp: the artifact's sha256, or an oci module's image ID."""
    if loaded.manifest.kind == "oci":
        return images.built_image_id(loaded)
    path = loaded.artifact_path()
    return sha256_file(path) if path is not None and path.is_file() else None


def _stamp_file(loaded: LoadedManifest) -> Path:
    return Path(loaded.base_dir) / STAMP


def up_to_date(loaded: LoadedManifest) -> bool:
    try:
        stamp = json.loads(_stamp_file(loaded).read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("sources") == sources_digest(loaded) and stamp.get("artifact") is not None and stamp.get("artifact") == _artifact_id(loaded)


def needs_build(loaded: LoadedManifest) -> bool:
    """A module with something to build: a build command, or an oci build context."""
    return bool(loaded.manifest.artifact.build_command or loaded.manifest.artifact.build)


async def build_module(path: str | Path, *, force: bool = False, on_line: OnLine | None = None) -> BuildResult:
    """Build one module folder; never raises for a failed build (the result says what broke)."""
    start = time.monotonic()
    try:
        loaded = load_manifest(path, built=False)
    except GatiError as exc:
        return BuildResult(Path(path).name, str(path), "failed", error=str(exc))
    name, where = loaded.name, loaded.base_dir
    if not needs_build(loaded):
        return BuildResult(name, where, "nothing-to-build")
    if not force and await asyncio.to_thread(up_to_date, loaded):
        return BuildResult(name, where, "up-to-date")
    tail: list[str] = []

    def line(text: str) -> None:
        tail.append(text)
        del tail[:-TAIL_LINES]
        if on_line:
            on_line(text)

    try:
        if loaded.manifest.artifact.build_command:
            await _run_command(loaded, line)
            loaded = load_manifest(loaded.file)  # the artifact exists now: check it as registration will
        if loaded.manifest.kind == "oci":
            await asyncio.to_thread(_build_image, loaded, line)
        artifact = await asyncio.to_thread(_artifact_id, loaded)
        if artifact is None:
            raise BuildFailed(f"the build left no artifact at {loaded.manifest.artifact.path}", fix="make build_command write the file [artifact] path names")
        stamp = {"sources": await asyncio.to_thread(sources_digest, loaded), "artifact": artifact, "built_at": time.time()}
        _stamp_file(loaded).parent.mkdir(parents=True, exist_ok=True)
        _stamp_file(loaded).write_text(json.dumps(stamp, indent=1) + "\n")
    except GatiError as exc:
        return BuildResult(name, where, "failed", round(time.monotonic() - start, 3), str(exc), list(tail))
    return BuildResult(name, where, "built", round(time.monotonic() - start, 3))


async def _run_command(loaded: LoadedManifest, line: Callable[[str], None]) -> None:
    command = loaded.manifest.artifact.build_command
    env = {**os.environ, "GATI_PROTO": str(PROTO_DIR), "PYTHON": sys.executable, "GATI_MODULE": loaded.name}
    line(f"$ {command}")
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command, cwd=loaded.base_dir, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl+C reaches us; we stop the whole build below
        )
    except OSError as exc:
        raise BuildFailed(f"cannot run the build command of {loaded.name}: {exc.strerror}", fix="check [artifact] build_command") from None
    try:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line(raw.decode(errors="replace").rstrip())
        code = await proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        await proc.wait()
        raise
    if code != 0:
        raise BuildFailed(
            f"the build command of {loaded.name} failed (exit {code}): {command}",
            fix=f"fix what its output says, then run gati build {loaded.name}",
        )


class _Forward(logging.Handler):
    def __init__(self, line: Callable[[str], None]):
        super().__init__(logging.INFO)
        self.line = line

    def emit(self, record: logging.LogRecord) -> None:
        self.line(record.getMessage())


def _build_image(loaded: LoadedManifest, line: Callable[[str], None]) -> None:
    logger = logging.getLogger("gati.oci")
    handler, level = _Forward(line), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        images.register_image(loaded)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
