"""A native module: an executable in a bubblewrap sandbox, served over gRPC like a container.

ProcessSandbox (sandboxes/process) does the lifecycle: warm instances, readiness, the
host service socket, the egress proxy in the sandbox's network namespace, kill and
replace on timeout, restarts with backoff. This backend adds what is native: the bwrap
command (bwrap.py), the limits (limits.py), the process and its handshake (process.py),
the SDK for Python scripts (python.py), and an audit event whenever a limit stops a
module, as a refused capability would be.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from runtime.core.call import CallContext
from runtime.core.capabilities.files import FileGrant
from runtime.core.capabilities.limits import LimitHit
from runtime.core.errors import ModuleCrashed
from runtime.core.host import Host
from runtime.core.registry import Registration
from sandboxes.native import bwrap, python
from sandboxes.native.limits import MIB, Cgroups
from sandboxes.native.process import BwrapProcess
from sandboxes.process.handshake import ModuleStartError
from sandboxes.process.sandbox import GUEST_RUN_DIR, ProcessSandbox

log = logging.getLogger("gati.native")

TMP_MB_MAX = 64  # the sandbox's /tmp: a tmpfs charged to its memory, at most this or memory_mb

# Artifacts this process hashed, by file identity. Any write to a file moves its ctime, which no
# one can set back, so an unchanged identity means unchanged bytes: a restart does not rehash
# (8 MB of Go binary is 6 ms, a quarter of a cold start).
_verified: dict[Path, tuple] = {}


def _verify(registration: Registration, artifact: Path) -> None:
    try:
        st = artifact.stat()
    except FileNotFoundError:
        registration.verify_artifact()  # raises, saying to rebuild
        raise
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, registration.artifact_sha256)
    if _verified.get(artifact) != identity:
        registration.verify_artifact()
        _verified[artifact] = identity


class NativeSandbox(ProcessSandbox):
    held_until_ready = True  # bwrap holds the module on --block-fd until BwrapProcess.ready()

    def __init__(self, registration: Registration, host: Host, runs: Path, cgroups: Cgroups):
        super().__init__(registration, host, runs)
        self.cgroups = cgroups
        self.artifact: Path = registration.loaded.artifact_path()
        self.extra_ro: dict[str, Path] = {}
        self.extra_env: dict[str, str] = {}
        self._limit_events: list[dict[str, int]] = []

    async def start(self) -> None:
        if shutil.which("bwrap") is None:
            raise ModuleStartError(
                f"module {self.name} is native but bubblewrap is not installed",
                fix="apt-get install bubblewrap (make setup does it)",
                module=self.name,
            )
        _verify(self.registration, self.artifact)
        self.extra_ro, self.extra_env = python.sdk_binds(self.name, self.artifact)
        await super().start()

    async def launch(self, run_dir: Path, env: dict[str, str], mounts: list[FileGrant]) -> BwrapProcess:
        limits = self.manifest.limits
        cgroup = self.cgroups.create(f"{self.name}-{run_dir.parent.name}-{run_dir.name}", limits)

        def argv_for(info_fd: int, block_fd: int) -> list[str]:
            return bwrap.command(
                artifact=self.artifact,
                args=list(self.manifest.artifact.args),
                run_dir=run_dir,
                guest_run_dir=GUEST_RUN_DIR,
                env={**env, **self.extra_env},
                grants=mounts,
                extra_ro=self.extra_ro,
                tmp_bytes=min(TMP_MB_MAX, limits.memory_mb) * MIB,
                info_fd=info_fd,
                block_fd=block_fd,
            )

        try:
            process = await BwrapProcess.spawn(self.name, argv_for, cgroup, limits, f"{GUEST_RUN_DIR}/module.sock")
        except BaseException:
            cgroup.remove()
            raise
        process.on_limit = lambda events: self._limit_events.append(events)  # the list is swapped per call
        return process

    async def call(self, method: str, payload: bytes, ctx: CallContext, timeout_s: float) -> bytes:
        try:
            return await super().call(method, payload, ctx, timeout_s)
        except ModuleCrashed as err:
            if any("memory" in e for e in self._limit_events):
                limit = self.manifest.limits.memory_mb
                raise ModuleCrashed(
                    f"{self.name}.{method} was killed past its memory limit of {limit} MB; the instance is being replaced",
                    fix=f"use less memory, or raise [limits] memory_mb (now {limit})",
                    module=self.name,
                    method=method,
                ) from err
            raise
        finally:
            self._collect_limits(ctx)

    def _collect_limits(self, ctx: CallContext) -> None:
        """Audit the limits hit since the last call: retired instances reported theirs on kill."""
        for instance in self.instances:
            if isinstance(instance.process, BwrapProcess):
                instance.process.report_limits()
        events, self._limit_events = self._limit_events, []
        for event in events:
            if "memory" in event:
                self.host.limit_hit(ctx, LimitHit.memory(self.manifest.limits, "killed by the kernel past its memory limit"))
            if "processes" in event:
                self.host.limit_hit(ctx, LimitHit.processes(self.manifest.limits, event["processes"]))
