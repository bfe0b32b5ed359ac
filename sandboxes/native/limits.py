"""`[limits]` for a native instance: cgroups v1 where the runtime may create them, rlimits always.

    memory_mb   memory cgroup (memory + swap), the kernel's OOM killer ends the instance;
                without the cgroup, RLIMIT_DATA (weaker: counts only private writable memory)
    processes   pids cgroup (counts threads too). RLIMIT_NPROC is only a fallback: it counts
                per host uid and is not enforced at all for root, whom the sandbox's uid maps to
                when the runtime runs as root
    cpu         cpu cgroup quota (cores): CPU time per 100 ms period. There is no lifetime
                RLIMIT_CPU: a server accumulates CPU time across calls; the per-call timeout
                (ProcessSandbox kills and replaces the instance) is what stops runaway work
    open files  RLIMIT_NOFILE (OPEN_FILES), not in the manifest; no core dumps (RLIMIT_CORE 0)

Each instance gets <own cgroup>/gati/<runtime pid>/<instance> in each controller. A runtime
removes what runtimes that died (even by SIGKILL) left there, killing anything still inside.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import threading
import time
from pathlib import Path

from runtime.core.manifest import Limits
from sandboxes.process.sandbox import pid_alive

log = logging.getLogger("gati.native")

CGROUP_FS = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpu")
OPEN_FILES = 1024
CPU_PERIOD_US = 100_000
MIB = 1 << 20


# Run as `sh -c CONFINE gati-confine [TASKS_FILE ...] [ULIMIT_FLAG VALUE ...] -- bwrap ...`.
# The shell moves *itself* into each cgroup, sets its rlimits, then execs bwrap, so bwrap and
# everything it ever starts are born confined: no window, no pre-exec hook in the runtime
# (unsafe with gRPC's threads). Moving oneself by writing 0 to `tasks` also skips the kernel's
# global threadgroup lock that moving another process takes (an RCU grace period: ~5 ms).
# The shell starts with an empty environment (process.py); confine_argv sets PATH, the
# runtime's, to find bwrap as a shell variable only: not exported, bwrap's environment stays empty.
# Processes are `ulimit -u` in bash and `ulimit -p` in dash (Debian's /bin/sh), which refuses -u.
CONFINE = """
while [ "$1" != -- ]; do
    case "$1" in
        /*) echo 0 > "$1" || exit 125 ;;
        -u) { ulimit -u "$2" 2>/dev/null || ulimit -p "$2"; } || exit 125; shift ;;
        *) ulimit "$1" "$2" || exit 125; shift ;;
    esac
    shift
done
shift
exec "$@"
"""


def confine_argv(cgroup: "InstanceCgroup", limits: Limits) -> list[str]:
    """The command prefix that puts what follows it in the instance's cgroups and rlimits."""
    script = f"PATH={shlex.quote(os.environ.get('PATH') or os.defpath)}\n{CONFINE}"
    argv = ["/bin/sh", "-c", script, "gati-confine"]
    argv += [str(path / "tasks") for path in cgroup.dirs.values()]
    argv += ["-n", str(OPEN_FILES), "-c", "0"]  # dash: both soft and hard limits
    if "pids" not in cgroup.dirs:
        argv += ["-u", str(limits.processes)]
    if "memory" not in cgroup.dirs:
        argv += ["-d", str(limits.memory_mb * 1024)]  # KiB
    return argv + ["--"]


class Cgroups:
    """This runtime's cgroup directories: one per controller that it may write."""

    def __init__(self, fs: Path = CGROUP_FS):
        self.roots: dict[str, Path] = {}
        own = _own_cgroups()
        for controller in CONTROLLERS:
            mount = fs / controller
            if controller not in own or not (mount / "cgroup.procs").exists():
                continue
            base = mount / own[controller].lstrip("/") / "gati"
            try:
                base.mkdir(exist_ok=True)
                _remove_stale(base)
                root = base / str(os.getpid())
                root.mkdir(exist_ok=True)
            except OSError as exc:  # not root, read-only cgroupfs: fall back to rlimits
                log.info("native sandbox: no %s cgroup (%s); using rlimits", controller, exc)
                continue
            self.roots[controller] = root
        if not self.roots:
            log.warning("native sandbox: no cgroups available; memory and process limits are rlimits only")

    def create(self, name: str, limits: Limits) -> "InstanceCgroup":
        dirs: dict[str, Path] = {}
        settings = {
            "memory": [("memory.limit_in_bytes", limits.memory_mb * MIB), ("memory.memsw.limit_in_bytes", limits.memory_mb * MIB)],
            "pids": [("pids.max", limits.processes)],
            "cpu": [("cpu.cfs_period_us", CPU_PERIOD_US), ("cpu.cfs_quota_us", max(1000, int(limits.cpu * CPU_PERIOD_US)))],
        }
        # os calls, not pathlib's: this is on the path of every start (0.29 ms -> 0.19)
        for controller, root in self.roots.items():
            path = root / name
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            dirs[controller] = path
            for file, value in settings[controller]:
                try:
                    fd = os.open(f"{path}/{file}", os.O_WRONLY)
                except FileNotFoundError:  # memsw exists only with swap accounting
                    continue
                try:
                    os.write(fd, str(value).encode())
                finally:
                    os.close(fd)
        return InstanceCgroup(dirs)

    def close(self) -> None:
        for root in self.roots.values():
            _remove_tree(root)


class InstanceCgroup:
    # The counters read after every call, kept open: a pread is 1 µs, an open-read-close 12 µs.
    COUNTERS = {"memory": ("memory.oom_control", "oom_kill"), "pids": ("pids.events", "max")}

    def __init__(self, dirs: dict[str, Path]):
        self.dirs = dirs
        self._seen = {"memory": 0, "pids": 0}
        self._fds = {c: os.open(dirs[c] / file, os.O_RDONLY) for c, (file, _) in self.COUNTERS.items() if c in dirs}
        # remove() runs in a worker thread: a counter must not be read, or closed, after
        # another thread closed it (the number may be someone else's by then).
        self._fds_lock = threading.Lock()

    def oom_kills(self) -> int:
        """How many processes the kernel killed for crossing the memory limit."""
        return self._counter("memory")

    def forks_refused(self) -> int:
        """How many forks the pids limit refused."""
        return self._counter("pids")

    def _counter(self, controller: str) -> int:
        with self._fds_lock:
            fd = self._fds.get(controller)
            if fd is None:
                return 0
            text = os.pread(fd, 4096, 0).decode()
        key = self.COUNTERS[controller][1]
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
        return 0

    def new_events(self) -> dict[str, int]:
        """Limits hit since the last look: {"memory": n, "processes": n} (only the nonzero ones)."""
        events = {}
        for key, now in (("memory", self.oom_kills()), ("pids", self.forks_refused())):
            if now > self._seen[key]:
                events["processes" if key == "pids" else key] = now - self._seen[key]
                self._seen[key] = now
        return events

    def remove(self) -> None:
        with self._fds_lock:
            fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)
        for path in self.dirs.values():
            _remove_tree(path)


def _own_cgroups() -> dict[str, str]:
    """controller -> this process's cgroup path in it (cgroup v1 lines: "4:memory:/path")."""
    own = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                own[controller] = path
    except OSError:
        pass
    return own


def _remove_stale(base: Path) -> None:
    """Remove the cgroups of runtimes that are gone, and kill whatever still runs in them."""
    for entry in base.iterdir():
        if entry.is_dir() and entry.name.isdigit() and not pid_alive(int(entry.name)):
            log.warning("native sandbox: removing cgroups left by runtime %s", entry.name)
            _remove_tree(entry)


def _remove_tree(path: Path, timeout_s: float = 2.0) -> None:
    """rmdir a cgroup and its children, killing their processes (exits are asynchronous: retry)."""
    if not path.is_dir():
        return
    for child in [c for c in path.iterdir() if c.is_dir()]:
        _remove_tree(child, timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            for pid in (path / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                log.error("native sandbox: cannot remove cgroup %s: %s", path, exc)
                return
            time.sleep(0.01)

