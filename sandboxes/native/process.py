"""One bubblewrap process: born inside its limits, held, released, then its handshake read.

bwrap starts inside the instance's cgroups and rlimits (limits.confine_argv), reports its
sandbox's init pid on --info-fd and holds the module on --block-fd. The runtime listens
with the egress proxy in that init's network namespace while it waits, and ready()
releases it: the proxy is there before the module's first instruction, and a module that
exits at once cannot take its namespace away before the proxy is set up.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import signal
from typing import Callable

from gati_sdk.protocol import wire

from runtime.core.manifest import Limits
from sandboxes.native.limits import InstanceCgroup, confine_argv
from sandboxes.process import handshake
from sandboxes.process.handshake import ModuleStartError

HANDSHAKE_TIMEOUT_S = 10.0
STDERR_TAIL_LINES = 20


class BwrapProcess:
    def __init__(self, module: str, proc: asyncio.subprocess.Process, child_pid: int, cgroup: InstanceCgroup, limits: Limits, socket: str, block_fd: int):
        self.module = module
        self.proc = proc
        self.pid = child_pid  # the sandbox's init: inside its network namespace (for the egress proxy)
        self.cgroup = cgroup
        self.limits = limits
        self.socket = socket  # the guest path the handshake must name
        self._block_fd: int | None = block_fd  # the sandbox waits on it: ready() releases it
        self.log = logging.getLogger(f"gati.module.{module}")
        self.stderr = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_task = asyncio.create_task(self._read_stderr())
        self._stdout_task: asyncio.Task | None = None
        self._reason: str | None = None
        self.on_limit: Callable[[dict[str, int]], None] = lambda events: None

    @classmethod
    async def spawn(cls, module: str, argv_for, cgroup: InstanceCgroup, limits: Limits, socket: str) -> "BwrapProcess":
        """argv_for(info_fd, block_fd) -> the bwrap command line."""
        # Each descriptor is closed exactly once, by whoever holds it then. A number closed a
        # second time after an await may by then be another task's (an accepted HTTP connection,
        # a gRPC channel): closing it drops that task's request.
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        args_r, args_w = os.pipe()
        try:
            try:
                argv = argv_for(info_w, block_r)
                split = argv.index("--")
                # Options through --args: the sandbox's init (pid 1, visible in its /proc) then shows
                # "bwrap --args N -- /app/NAME", not the host paths it binds. A pipe holds 64 KiB.
                os.write(args_w, b"".join(a.encode() + b"\0" for a in argv[1:split]))
            finally:
                os.close(args_w)
            creating = asyncio.ensure_future(asyncio.create_subprocess_exec(
                *confine_argv(cgroup, limits), argv[0], "--args", str(args_r), *argv[split:],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(info_w, block_r, args_r),
                # Nothing of the runtime's environment (its secrets included): bwrap is the
                # sandbox's init, and a module reads /proc/1/environ. The module's own
                # environment is in the --setenv options.
                env={},
                cwd="/",  # the shell exports its working directory as PWD: the runtime's is a host path
                start_new_session=True,  # a Ctrl-C at the runtime's terminal is the runtime's to handle
            ))
            try:
                proc = await asyncio.shield(creating)
            except asyncio.CancelledError:
                # Shielded: asyncio's creation cancelled before it has connected the pipes waits
                # forever for an exit it then never reports (Python 3.11). Let it finish, end it.
                await _end(creating)
                raise
        except BaseException:
            os.close(info_r)
            os.close(block_w)
            raise
        finally:
            for fd in (info_w, block_r, args_r):  # the child's ends: bwrap holds its own copies
                os.close(fd)
        try:
            # _read_child_pid owns info_r and closes it, also when this task is cancelled.
            child_pid = await _read_child_pid(info_r)
            if child_pid is None:
                await proc.wait()
                err = (await proc.stderr.read()).decode(errors="replace").strip()
                raise ModuleStartError(
                    f"module {module}: bubblewrap could not create the sandbox (status {proc.returncode}): {err[-500:]}",
                    fix="check that bubblewrap works here (bwrap --unshare-all --ro-bind /usr /usr true) and the paths it names exist",
                    module=module,
                    stderr=err[-2000:],
                )
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            os.close(block_w)
            raise
        return cls(module, proc, child_pid, cgroup, limits, socket, block_w)

    # the Process protocol of sandboxes.process.sandbox ------------------------------
    def exit_reason(self) -> str | None:
        code = self.proc.returncode
        if code is None:
            return None
        if self._reason is None:  # worked out once, while the cgroup that tells still exists
            self._reason = self._why(code)
        return self._reason

    def _why(self, code: int) -> str:
        if self.cgroup.oom_kills():
            return f"killed by the kernel past its memory limit of {self.limits.memory_mb} MB"
        if code < 0 or code > 128:  # bwrap's init reports a signalled module as 128 + signal
            number = -code if code < 0 else code - 128
            try:
                return f"killed by {signal.Signals(number).name}"
            except ValueError:
                pass
        return f"exited with status {code}"

    async def ready(self) -> None:
        """Release the sandbox, then read its handshake line: garbage, silence and an early exit
        each get their own error."""
        self._release()
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), HANDSHAKE_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise self._start_error(
                f"module {self.module} printed no handshake line within {HANDSHAKE_TIMEOUT_S:.0f} s",
                fix=f"print '{wire.handshake_line('$GATI_MODULE_SOCKET')}' on stdout (flushed) once serving",
                stderr=await self._stderr_tail(0.1),
            ) from None
        except ValueError:  # a line past the stream limit: not a handshake either
            line = b"(a line longer than 64 KiB)"
        if not line:
            try:
                await asyncio.wait_for(self.proc.wait(), 2.0)
            except asyncio.TimeoutError:
                pass
            raise self._start_error(
                f"module {self.module} exited at once ({self.exit_reason() or 'it closed its stdout'}) before printing the handshake line",
                fix="run it by hand with GATI_MODULE_SOCKET set and read its stderr (below)",
                stderr=await self._stderr_tail(1.0),
            )
        text = line.decode("utf-8", "replace")
        try:
            offered = handshake.parse(text, self.module)
        except ModuleStartError as err:
            raise self._start_error(err.message, fix=err.fix, stderr=await self._stderr_tail(0.2)) from None
        if offered != self.socket:
            raise self._start_error(
                f"module {self.module} offered socket {offered!r}; the runtime reaches it only at {self.socket}",
                fix="listen on the path in GATI_MODULE_SOCKET",
                stderr=await self._stderr_tail(0.0),
            )
        self._stdout_task = asyncio.create_task(self._read_stdout())

    def _release(self) -> None:
        if self._block_fd is not None:
            os.write(self._block_fd, b"1")
            os.close(self._block_fd)
            self._block_fd = None

    async def kill(self) -> None:
        if self.proc.returncode is None:
            # The init of its pid namespace: the kernel ends everything in the namespace with it,
            # then bwrap reaps it and exits, so when bwrap is gone the whole sandbox is.
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 2.0)
            except asyncio.TimeoutError:  # cannot happen unless bwrap hangs; --die-with-parent covers its child
                self.proc.kill()
                await self.proc.wait()
        if self._block_fd is not None:  # never released: it ran nothing
            os.close(self._block_fd)
            self._block_fd = None
        self.exit_reason()
        for task in (self._stdout_task, self._stderr_task):
            if task is not None:
                task.cancel()
        self.report_limits()
        await asyncio.to_thread(self.cgroup.remove)  # also kills anything that is somehow still in it

    def report_limits(self) -> None:
        """Hand limits hit since the last look (OOM kills, refused forks) to on_limit."""
        events = self.cgroup.new_events()
        if events:
            self.on_limit(events)

    # output ---------------------------------------------------------------------
    async def _read_stderr(self) -> None:
        while (line := await _line(self.proc.stderr)) is not None:
            self.stderr.append(line)
            self.log.info("stderr: %s", line)

    async def _read_stdout(self) -> None:
        # Drained for good: a module that prints more than a pipe holds must not block.
        while (line := await _line(self.proc.stdout)) is not None:
            self.log.info("stdout: %s", line)

    async def _stderr_tail(self, wait_s: float) -> str:
        if wait_s > 0:
            try:
                await asyncio.wait_for(asyncio.shield(self._stderr_task), wait_s)
            except (asyncio.TimeoutError, ValueError):
                pass
        return "\n".join(self.stderr)

    def _start_error(self, message: str, *, fix: str | None, stderr: str) -> ModuleStartError:
        return ModuleStartError(message, fix=fix, module=self.module, stderr=stderr or "(empty)")


async def _line(stream: asyncio.StreamReader) -> str | None:
    """The next line as text; None at the end."""
    try:
        data = await stream.readline()
    except ValueError:  # longer than the stream's limit: asyncio dropped it, say so
        return "(a line over 64 KiB, dropped)"
    return data.decode("utf-8", "replace").rstrip("\n") if data else None


async def _end(creating: asyncio.Future) -> None:
    """Kill the process a cancelled spawn created, if it did. Not proc.wait(): that waits for its
    pipes to close too, which a sandbox held on --block-fd keeps open; launch's caller removes
    the instance's cgroups, killing what is in them, and asyncio's watcher reaps bwrap."""
    try:
        proc = await creating
    except Exception:  # noqa: BLE001 - it made no process: nothing to kill, the cancellation goes on
        return
    if proc.returncode is None:
        proc.kill()


async def _read_child_pid(fd: int) -> int | None:
    """The sandbox's init pid from bwrap's --info-fd JSON; None if bwrap exited first. Closes fd.

    Read on the event loop as the pipe becomes readable: a worker thread's hop cost 0.1 ms on a
    quiet machine and 2.5 ms on a busy one, out of a 15 ms start."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    data = b""
    try:
        while True:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                readable = loop.create_future()
                loop.add_reader(fd, lambda f=readable: f.done() or f.set_result(None))
                try:
                    await readable
                finally:
                    loop.remove_reader(fd)
                continue
            if not chunk:
                return None
            data += chunk
            try:
                return int(json.loads(data)["child-pid"])
            except (ValueError, KeyError):
                continue
    finally:
        os.close(fd)
