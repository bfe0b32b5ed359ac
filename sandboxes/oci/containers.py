"""One module instance as one hardened container, and the cleanup of containers left behind.

The container can reach nothing but its run directory (/run/gati: the module's socket
and its own host service socket) and the files its manifest grants: no network, a
read-only root with a small tmpfs, no capabilities, no privilege gain, an unprivileged
user, an init that reaps, and the pids/memory/CPU limits of `[limits]`.

Liveness comes from a pidfd on the container's init process (the kernel says when it
exits, so a call never waits on a Docker API round trip to learn it); why it exited
(out of memory, its status, its last words on stderr) is asked of Docker once, then.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import select
import threading
import uuid
from pathlib import Path

import docker
import docker.errors
from docker.types import LogConfig, Mount

from runtime.core.capabilities.files import FileGrant
from runtime.core.manifest import LoadedManifest
from sandboxes.process.handshake import ModuleStartError, parse
from sandboxes.process.sandbox import GUEST_RUN_DIR

MODULE_USER = "65534:65534"  # nobody: owns nothing in the image or in the bind mounts
TMPFS = {"/tmp": "rw,nosuid,nodev,noexec,size=16m,mode=1777"}
HANDSHAKE_TIMEOUT_S = 30.0
STOP_WAIT_S = 10
EXIT_GRACE_S = 0.05


def state_label(state_path: Path) -> str:
    """Names one state directory on labels: its runtime's containers, not another project's."""
    return hashlib.sha256(str(state_path).encode()).hexdigest()[:16]


def _start_time(pid: int) -> str:
    """When a process started (clock ticks since boot): with the pid, it names one process, reuse or not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


RUNTIME_START = _start_time(os.getpid())


def labels(module: str, state: str) -> dict[str, str]:
    return {
        "gati.module": module,
        "gati.state": state,
        "gati.runtime-pid": str(os.getpid()),
        "gati.runtime-start": RUNTIME_START,
    }


def remove_orphans(client: docker.DockerClient, state: str) -> int:
    """Remove containers of this state directory whose runtime is dead (it crashed, or was killed)."""
    removed = 0
    for container in client.containers.list(all=True, filters={"label": f"gati.state={state}"}):
        pid = int(container.labels.get("gati.runtime-pid", "0") or 0)
        if pid and _start_time(pid) == container.labels.get("gati.runtime-start", "") != "":
            continue  # its runtime is alive (this one, or another serving the same state)
        try:
            container.remove(force=True)
            removed += 1
        except docker.errors.NotFound:
            pass
    return removed


def run_container(
    client: docker.DockerClient, image: str, loaded: LoadedManifest, run_dir: Path, env: dict[str, str], grants: list[FileGrant], state: str
):
    """Create and start one instance; blocking (call it in a thread). grants: the mounts the files capability hands over."""
    m = loaded.manifest
    limits = m.limits
    mounts = [Mount(GUEST_RUN_DIR, str(run_dir), type="bind", read_only=False)]
    mounts += [Mount(g.guest, str(g.host), type="bind", read_only=not g.writable) for g in grants]
    container = client.containers.run(
        image,
        name=f"gati-{m.name}-{uuid.uuid4().hex[:10]}",
        detach=True,
        environment=env,
        labels=labels(m.name, state),
        mounts=mounts,
        network_mode="none",
        read_only=True,
        tmpfs=TMPFS,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        user=MODULE_USER,
        init=True,
        pids_limit=limits.processes,
        mem_limit=limits.memory_mb << 20,
        memswap_limit=limits.memory_mb << 20,  # no swap: past the limit is past the limit
        nano_cpus=int(limits.cpu * 1e9),
        ipc_mode="private",
        # A chatty module must not fill the disk; what matters (the handshake, a crash) is short.
        log_config=LogConfig(type=LogConfig.types.JSON, config={"max-size": "1m", "max-file": "1"}),
    )
    container.reload()  # run() answers before the start: State.Pid is known only now
    return container


def remove(container) -> None:
    """Kill and remove a container (blocking), whatever state it is in."""
    try:
        container.remove(force=True)
    except docker.errors.APIError:
        pass  # already gone


class ContainerProcess:
    """A started container as ProcessSandbox sees it (sandboxes.process.sandbox.Process)."""

    def __init__(self, container, memory_mb: int, on_oom=None):
        self.container = container
        self.pid: int = container.attrs["State"]["Pid"]
        self.memory_mb = memory_mb
        self.on_oom = on_oom  # called once if the kernel ended it for memory (to audit the stop)
        self._reason: str | None = None
        self._killed = False
        self._oom_once = threading.Lock()
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(self.pid)
            asyncio.get_running_loop().add_reader(self._pidfd, self._exited)
        except (OSError, ValueError):  # already gone (pid 0), or no pidfd: learn it from Docker
            self._reason = "exited at start"

    def _exited(self) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
        if self._reason is None:
            self._reason = "exited"
            asyncio.get_running_loop().create_task(self._learn_why())

    async def _learn_why(self) -> None:
        try:
            self._reason = await asyncio.to_thread(self._why)
        except docker.errors.APIError:
            pass

    def exit_reason(self) -> str | None:
        return self._reason

    def _why(self) -> str:
        """Why the container stopped (blocking): it waits for Docker to have seen the exit."""
        c = self.container
        c.wait(timeout=STOP_WAIT_S)
        c.reload()
        state = c.attrs["State"]
        if state.get("OOMKilled"):
            with self._oom_once:  # both the exit watcher and kill() may get here: audit it once
                on_oom, self.on_oom = self.on_oom, None
            if on_oom:
                on_oom()
            return f"killed by the kernel: out of memory past its [limits] memory_mb = {self.memory_mb}"
        if self._killed:
            return "stopped by the runtime"
        code = state.get("ExitCode")
        tail = c.logs(stdout=False, stderr=True, tail=3).decode("utf-8", "replace").strip().replace("\n", " | ")
        signal = f" (signal {code - 128}: killed from outside the runtime?)" if code and code > 128 else ""
        return f"exited with status {code}{signal}" + (f"; stderr: {tail[-300:]}" if tail else "")

    async def ready(self) -> None:
        """Wait for the handshake line on the container's stdout."""
        try:
            line = await asyncio.wait_for(asyncio.to_thread(self._first_line), HANDSHAKE_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise ModuleStartError(f"module in {self.container.name} printed no handshake within {HANDSHAKE_TIMEOUT_S:.0f} s") from None
        if not line:
            why = await asyncio.to_thread(self._why)
            raise ModuleStartError(f"{self.container.name} exited before its handshake: {why}", fix="run the image by hand to see why")
        parse(line, self.container.labels.get("gati.module", "?"))

    def _first_line(self) -> str:
        buffered = b""
        for chunk in self.container.logs(stream=True, follow=True, stdout=True, stderr=False):
            buffered += chunk
            if b"\n" in buffered:
                return buffered.split(b"\n", 1)[0].decode("utf-8", "replace")
        return buffered.decode("utf-8", "replace")

    async def kill(self) -> None:
        if self._pidfd is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._pidfd)
            except (RuntimeError, ValueError):
                pass
        await asyncio.to_thread(self._kill_and_remove)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def _kill_and_remove(self) -> None:
        c = self.container
        # Did it end by itself (crash, OOM, killed from outside)? Then say why, not "stopped by us".
        # A module that just died takes its init a moment to follow: give it that moment.
        ended = self._pidfd is None or bool(select.select([self._pidfd], [], [], EXIT_GRACE_S)[0])
        try:
            if not ended:
                self._killed = True
                c.kill()
            if self._reason is None or self._reason == "exited":
                self._reason = self._why()
        except docker.errors.APIError:
            pass  # already stopping, or gone
        try:
            c.remove(force=True)
        except docker.errors.APIError:
            pass
