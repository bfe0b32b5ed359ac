"""The lifecycle shared by container and native modules.

A ProcessSandbox keeps `[limits] warm` instances of a module running. Each instance
is one sandboxed process with a run directory of its own (a small tmpfs: run_dir.py),
bound into the sandbox at /run/gati, holding two sockets: the module's (module.sock)
and the host service's (host.sock, served by the runtime for this instance only: the
socket is the identity). An egress proxy listens on 127.0.0.1:3128 inside the instance's network namespace.

A backend (oci, native) supplies only `launch`: start one sandboxed process and return
a Process. Everything else is here: readiness (the handshake line, then a connection to its socket), calls, a call
past its deadline killing and replacing its instance (the only way to really stop the
work), crash detection, and restarts with exponential backoff.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Protocol

from runtime.core.call import CallContext
from runtime.core.capabilities.files import FileGrant
from runtime.core.capabilities.limits import LimitHit
from runtime.core.errors import GatiError, ModuleCrashed, ModuleTimeout
from runtime.core.host import Host
from runtime.core.registry import Registration
from sandboxes.process import run_dir as run_dirs
from sandboxes.process.call_tokens import CallTokens
from sandboxes.process.egress_proxy import PROXY_PORT, EgressProxy
from sandboxes.process.host_server import HostServer
from sandboxes.process.module_client import ModuleClient
from sandboxes.process.netns import listen_in_netns

log = logging.getLogger("gati.sandbox")

GUEST_RUN_DIR = "/run/gati"
READY_TIMEOUT_S = 30.0
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.1, 10.0
STABLE_S = 30.0  # an instance that lived this long resets the backoff


def runs_root(state_path: Path) -> Path:
    """Where this runtime keeps its instances' run directories, and removes what a dead runtime left.

    Under /tmp and short, because a Unix socket path must fit in 108 bytes:
    /tmp/gati-run/<state digest>/<runtime pid>/<module>-XXXX/iXXXX/module.sock.
    """
    base = Path(tempfile.gettempdir()) / "gati-run" / hashlib.sha256(str(state_path).encode()).hexdigest()[:12]
    base.mkdir(parents=True, exist_ok=True)
    run_dirs.sweep(base.parent, owner_alive=pid_alive)  # dead runtimes' tmpfs mounts, of any project
    for stale in base.iterdir():
        if stale.name.isdigit() and not pid_alive(int(stale.name)):
            run_dirs.sweep(stale)
            shutil.rmtree(stale, ignore_errors=True)
    root = base / str(os.getpid())
    root.mkdir(exist_ok=True)
    for path in (base.parent, base, root):
        path.chmod(0o755)
    return root


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class Process(Protocol):
    """One launched sandboxed process, as a backend reports it."""

    pid: int  # a process inside the sandbox's network namespace (for the egress proxy)

    def exit_reason(self) -> str | None: ...  # why it is gone, or None while it runs
    async def ready(self) -> None: ...  # e.g. read the handshake line; raise ModuleStartError
    async def kill(self) -> None: ...


class ModuleInstance:
    """One running instance of a module: its sandboxed process, run directory, host service, egress proxy and client."""

    def __init__(self, sandbox: "ProcessSandbox", run_dir: Path):
        self.sandbox = sandbox
        self.run_dir = run_dir
        self.calls = CallTokens(sandbox.host)
        self.host_server = HostServer(sandbox.host, str(run_dir / "host.sock"), self.calls)
        self.proxy = EgressProxy(sandbox.host, self.calls)
        self.client = ModuleClient(sandbox.name, str(run_dir / "module.sock"))
        self.process: Process | None = None
        self.started_at = 0.0
        self.inflight = 0
        self._stopping: asyncio.Future | None = None

    async def start(self) -> None:
        try:
            # Inside the try: a start cancelled during launch (Ctrl+C, SIGTERM) must stop the host
            # server too, or grpc's server outlives the event loop ("Event loop is closed").
            if self.sandbox.held_until_ready:
                await self._launch_while_serving()
            else:
                await self._prepare()
                self.process = await self.sandbox.launch(self.run_dir, self.sandbox.environment(), self.sandbox.mounts())
            self.started_at = time.monotonic()
            await self.proxy.serve(listen_in_netns(self.process.pid, PROXY_PORT))
            await self.process.ready()
            await self.client.wait_ready(READY_TIMEOUT_S, self.process.exit_reason)
        except BaseException:
            await self.stop()
            raise

    async def _prepare(self, after_launch_starts: bool = False) -> None:
        """What the instance needs besides its process: the host service listening, the client's channel."""
        if after_launch_starts:
            # Scheduled before launch: one turn of the loop lets launch's own first step (the
            # fork of the sandbox's process) go first, then this fills the wait.
            await asyncio.sleep(0)
        self.client.open()
        await self.host_server.start()

    async def _launch_while_serving(self) -> None:
        """Launch first, prepare the rest while the sandbox is being made.

        launch runs until it waits for its process; _prepare yields once, so that the process is
        forked first, then runs while that process works (2-3 ms for sh and bwrap to report the
        sandbox). The host service listens before ready(): the sandbox runs nothing of the
        module until then (test_native_start.py)."""
        serving = asyncio.ensure_future(self._prepare(after_launch_starts=True))
        try:
            self.process = await self.sandbox.launch(self.run_dir, self.sandbox.environment(), self.sandbox.mounts())
        except BaseException:
            # Not started yet: it never will. Midway: stop() (the caller's) stops what it made.
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
            raise
        await serving

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.exit_reason() is None

    async def call(self, method: str, payload: bytes, ctx: CallContext, timeout_s: float) -> bytes:
        self.inflight += 1
        try:
            with self.calls.issued(ctx) as token:
                return await self.client.call(method, payload, ctx, timeout_s, token)
        finally:
            self.inflight -= 1

    async def stop(self) -> None:
        """Release everything the instance holds, once however many ask. Shielded: a caller
        cancelled meanwhile (a deadline's backstop, a closing loop) must not leave the gRPC
        server and channel open; collected later from another loop, they deadlock grpc's
        poller thread, and the runtime with it."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if self.process is not None:
            await self.process.kill()
        await self.proxy.close()
        await self.client.close()
        await self.host_server.stop()
        run_dirs.remove(self.run_dir)


class ProcessSandbox:
    def __init__(self, registration: Registration, host: Host, runs: Path):
        """runs: this runtime's folder of run directories (runs_root), from the backend."""
        self.registration = registration
        self.manifest = registration.manifest
        self.name = self.manifest.name
        self.host = host
        self.instances: list[ModuleInstance] = []
        self._lock = asyncio.Lock()
        self._failures = 0
        self._next_start = 0.0
        self._next = 0
        self._closed = False
        self.runs_dir = Path(tempfile.mkdtemp(dir=runs, prefix=f"{self.name}-"))

    # backends implement ----------------------------------------------------------
    # True when launch returns a sandbox that runs nothing of the module until its process's
    # ready() (bwrap's --block-fd): the host service may then start while it is being made.
    # A container runs its command as soon as it is created: its host service starts first.
    held_until_ready = False

    async def launch(self, run_dir: Path, env: dict[str, str], mounts: list[FileGrant]) -> Process:
        raise NotImplementedError

    # shared lifecycle -------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """What the module's process sees: its sockets, the proxy, and only the declared env names (audited)."""
        env = self.host.start_environ(self.own_context())
        proxy = f"http://127.0.0.1:{PROXY_PORT}"
        env.update(
            GATI_MODULE_NAME=self.name,
            GATI_MODULE_SOCKET=f"{GUEST_RUN_DIR}/module.sock",
            GATI_HOST_SOCKET=f"{GUEST_RUN_DIR}/host.sock",
            GATI_CONCURRENCY=str(self.manifest.limits.concurrency),
            HTTP_PROXY=proxy, HTTPS_PROXY=proxy, http_proxy=proxy, https_proxy=proxy,
            PYTHONUNBUFFERED="1",
        )
        return env

    def mounts(self) -> list[FileGrant]:
        """The file grants an instance binds, from the files capability (audited)."""
        return self.host.start_mounts(self.own_context())

    def own_context(self) -> CallContext:
        """Whom the records of an instance's start (and of limits seen outside a call) are under."""
        return CallContext(caller=f"module:{self.name}")

    async def start(self) -> None:
        await self._fill()

    def healthy(self) -> bool:
        return any(i.alive for i in self.instances)

    async def call(self, method: str, payload: bytes, ctx: CallContext, timeout_s: float) -> bytes:
        instance = await self._pick()
        try:
            return await instance.call(method, payload, ctx, timeout_s)
        except ModuleTimeout:
            # The work must stop: the only sure way is to end the process. Replace it in the background.
            log.warning("%s.%s timed out: killing and replacing its instance", self.name, method)
            self.host.limit_hit(ctx, LimitHit.deadline(method, timeout_s, "instance killed and replaced past its deadline"))
            await self._retire(instance, crashed=False)
            raise
        except ModuleCrashed as err:
            await self._retire(instance, crashed=True)
            reason = instance.process.exit_reason() if instance.process else None
            if reason:  # e.g. out of memory, or killed from outside: what the caller can act on
                raise ModuleCrashed(f"{err.message}; {reason}", fix=err.fix, **err.details, exit=reason) from None
            raise

    async def _pick(self) -> ModuleInstance:
        live = [i for i in self.instances if i.alive]
        if len(live) < len(self.instances):
            for dead in set(self.instances) - set(live):
                log.warning("module %s instance exited (%s); restarting", self.name, dead.process.exit_reason())
                await self._retire(dead, crashed=True)
        if not live:
            await self._fill()
            live = [i for i in self.instances if i.alive]
        if not live:
            raise ModuleCrashed(f"module {self.name} has no running instance", module=self.name)
        self._next += 1
        return min(live, key=lambda i: (i.inflight, (self.instances.index(i) - self._next) % len(self.instances)))

    async def _fill(self) -> None:
        """Start instances up to the warm count, waiting out the backoff after crashes."""
        async with self._lock:
            while not self._closed and len(self.instances) < self.manifest.limits.warm:
                delay = self._next_start - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                instance = ModuleInstance(self, run_dirs.create(self.runs_dir))
                try:
                    await instance.start()
                except GatiError:
                    self._crashed()
                    raise
                self.instances.append(instance)

    async def _retire(self, instance: ModuleInstance, crashed: bool) -> None:
        """Stop an instance and start its replacement; after a crash, with backoff."""
        if instance in self.instances:
            self.instances.remove(instance)
            if crashed and time.monotonic() - instance.started_at < STABLE_S:
                self._crashed()
            elif crashed:
                self._failures = 0  # it had been stable: restart at once
        await instance.stop()
        asyncio.get_running_loop().create_task(self._refill())

    def _crashed(self) -> None:
        self._failures += 1
        backoff = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self._failures - 1))
        self._next_start = time.monotonic() + backoff

    async def _refill(self) -> None:
        try:
            await self._fill()
        except GatiError as err:
            log.error("module %s could not be restarted: %s", self.name, err)

    async def close(self) -> None:
        self._closed = True
        async with self._lock:
            instances, self.instances = self.instances, []
            await asyncio.gather(*(i.stop() for i in instances), return_exceptions=True)
        run_dirs.sweep(self.runs_dir)  # what a failed stop left mounted
        shutil.rmtree(self.runs_dir, ignore_errors=True)
