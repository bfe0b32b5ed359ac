"""`gati serve` says when a module on disk is no longer what it serves.

At start, a module whose sources changed since its last `gati build` (runtime.modules.build)
is named: it is served as last built. While serving, a module whose artifact on disk stops
matching the registered digest (a rebuild without a new registration) is named once per change:
the server keeps serving the registered version (a sandbox started later refuses the changed
file: registry.verify_artifact). `gati dev` rebuilds and registers instead.

It runs in the serving command's own process, beside one server or several workers, in a
thread of its own with its own connection to the registry.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from runtime.core.errors import GatiError
from runtime.core.manifest import load_manifest, sha256_file
from runtime.core.state import StateDir
from runtime.http.project import load_project
from runtime.modules.build import needs_build, up_to_date

log = logging.getLogger("gati.serve")

CHECK_EVERY_S = 2.0


def stale_builds(project_dir: Path) -> list[str]:
    stale = []
    for folder in load_project(project_dir).module_dirs():
        try:
            loaded = load_manifest(folder, built=False)
        except GatiError:
            continue  # the server's start-up reports a broken manifest
        if loaded.manifest.artifact.build_command and needs_build(loaded) and not up_to_date(loaded):
            stale.append(loaded.name)
    return stale


class Drift:
    """Which registered file artifacts differ on disk; a file is hashed again only when its size or mtime moved."""

    def __init__(self, state: StateDir):
        self.state = state
        self._seen: dict[Path, tuple[int, int, str]] = {}

    def digest(self, path: Path) -> str:
        try:
            st = path.stat()
        except OSError:
            return "missing"
        seen = self._seen.get(path)
        if seen and seen[:2] == (st.st_size, st.st_mtime_ns):
            return seen[2]
        digest = sha256_file(path)
        self._seen[path] = (st.st_size, st.st_mtime_ns, digest)
        return digest

    def differing(self) -> dict[str, tuple[str, str, str]]:
        """name -> (digest on disk, registered digest, module folder) for each file artifact that differs."""
        out = {}
        for reg in self.state.registry.all():
            try:
                path = reg.loaded.artifact_path()
            except GatiError:
                continue
            if path is None:
                continue  # an oci image: checked against its ID when a container starts
            now = self.digest(path)
            if now != reg.artifact_sha256:
                out[reg.name] = (now, reg.artifact_sha256, reg.loaded.base_dir)
        return out


class DriftWatch:
    """start() once the server serves (its modules registered); stop() when it stops."""

    def __init__(self, project_dir: Path):
        self.project_dir = Path(project_dir)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for name in stale_builds(self.project_dir):
            log.warning("module %s: its sources changed since its last build; serving it as last built (run: gati build %s)", name, name)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gati-drift", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        state = StateDir.open(self.project_dir)
        drift, told = Drift(state), {}
        try:
            while not self._stop.wait(CHECK_EVERY_S):
                try:
                    differing = drift.differing()
                except Exception:  # noqa: BLE001 - a warning that cannot be computed is no reason to stop serving
                    log.debug("drift check failed", exc_info=True)
                    continue
                for name, (now, registered, folder) in differing.items():
                    if told.get(name) != now:
                        told[name] = now
                        log.warning(
                            "module %s: its artifact on disk (%s) differs from the registered one (sha256 %s); still serving the registered one "
                            "(to serve the new one: gati module register %s, or restart; gati dev does it on save)",
                            name, now[:12], registered[:12], folder,
                        )
        finally:
            state.close()
