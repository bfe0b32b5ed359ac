"""The bubblewrap command line of one module instance: what its sandbox shows, and nothing else.

The guest sees an empty root (read-only) holding:

    /usr, /bin, /lib, /lib64, /sbin   the host's system files, read-only (shared libraries,
                                      interpreters); the usr-merge symlinks are copied as symlinks
    /etc/ld.so.cache, /etc/ssl ...    the few /etc files that programs read to start; no passwd,
                                      no shadow, no hosts
    /proc, /dev, /tmp                 its own: a procfs of its pid namespace, bwrap's minimal /dev,
                                      a size-bounded tmpfs
    /run/gati                         the instance's run directory, read-write (module.sock, host.sock)
    /app/NAME                         the executable, read-only
    /data ...                         each declared file grant, read-only unless `rw`, at the guest
                                      path the files capability maps (runtime/core/capabilities/files.py)
    /opt/gati/python                  for Python scripts only: the SDK and grpcio, read-only

Every namespace is new (user, pid, net, ipc, uts, cgroup): the network is a loopback of its
own (bwrap brings it up), where the runtime's egress proxy listens. The process runs as
uid/gid 65534 inside with no capabilities and cannot create user namespaces of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

GUEST_APP_DIR = "/app"
SANDBOX_UID = SANDBOX_GID = 65534  # "nobody" inside the user namespace

# Top-level system paths. On a usr-merged system most are symlinks into /usr and are
# recreated as symlinks (binding them would mount /usr twice).
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What dynamic linking, TLS and time zones read from /etc; nothing that names users or hosts.
SYSTEM_ETC = ("/etc/ld.so.cache", "/etc/ssl", "/etc/ca-certificates", "/etc/localtime", "/etc/alternatives")


def system_mounts() -> list[str]:
    """The bwrap arguments that show the host's system files read-only."""
    args: list[str] = []
    for path in SYSTEM_PATHS + SYSTEM_ETC:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


# Kernel knobs under /proc that no module may write (Docker's read-only paths).
READ_ONLY_PROC = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus")


# What /proc tells of the whole machine and no module needs (Docker's masked paths): the kernel's
# keyrings, timers, scheduler and latency internals, its memory image, hardware trees.
MASKED_PROC_FILES = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats")
MASKED_PROC_DIRS = ("/proc/acpi", "/proc/scsi", "/proc/asound")


def _read_only_proc() -> list[str]:
    args: list[str] = []
    for path in READ_ONLY_PROC:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def _masked_proc() -> list[str]:
    """/dev/null over the files (the sandbox cannot open it: its mounts are nodev) and an empty read-only tmpfs over the folders."""
    args: list[str] = []
    for path in MASKED_PROC_FILES:
        if os.path.exists(path):
            args += ["--ro-bind", "/dev/null", path]
    for path in MASKED_PROC_DIRS:
        if os.path.isdir(path):
            args += ["--tmpfs", path, "--remount-ro", path]
    return args


def command(
    *,
    artifact: Path,
    args: list[str],
    run_dir: Path,
    guest_run_dir: str,
    env: dict[str, str],
    grants: list[tuple[str, Path, bool]],
    extra_ro: dict[str, Path],
    tmp_bytes: int,
    info_fd: int,
    block_fd: int,
) -> list[str]:
    """The full argv: bwrap, its options, then the guest command.

    grants: (guest path, host path, writable), the mounts the files capability hands over (Host.start_mounts).
    extra_ro: guest path -> host path, read-only binds a backend adds (the Python SDK).
    info_fd: bwrap writes {"child-pid": N} there, N being the sandbox's init in its namespaces.
    block_fd: the sandbox waits for a byte there before it runs the module (process.py).
    """
    guest_binary = f"{GUEST_APP_DIR}/{artifact.name}"
    argv = [
        "bwrap",
        "--unshare-all",
        "--unshare-user",  # --unshare-all only *tries* a user namespace: insist on one
        "--uid", str(SANDBOX_UID),
        "--gid", str(SANDBOX_GID),
        "--disable-userns",
        "--hostname", "gati",
        "--die-with-parent",
        "--new-session",  # no TIOCSTI into the runtime's terminal
        "--cap-drop", "ALL",
        "--clearenv",
        "--info-fd", str(info_fd),
        "--block-fd", str(block_fd),
        *system_mounts(),
        "--proc", "/proc",
        # The sandbox's uid maps to the runtime's on the host (root, when it runs as root), so a
        # writable /proc/sys would let a module change machine-wide kernel settings
        # (core_pattern, vm.*): the sysctls and the other kernel knobs of /proc are read-only,
        # as in Docker. (They are the host procfs's files, but a sysctl shows the namespaces of
        # the process that reads it: the sandbox sees its own hostname and network settings.)
        *_read_only_proc(),
        *_masked_proc(),
        "--dev", "/dev",
        "--size", str(tmp_bytes), "--tmpfs", "/tmp",
        "--bind", str(run_dir), guest_run_dir,
        "--ro-bind", str(artifact), guest_binary,
    ]
    for guest, host in extra_ro.items():
        argv += ["--ro-bind", str(host), guest]
    for guest, host, writable in grants:
        argv += ["--bind" if writable else "--ro-bind", str(host), guest]
    for name, value in env.items():
        argv += ["--setenv", name, value]
    argv += [
        "--remount-ro", "/",  # the root tmpfs bwrap builds: nothing to write there
        "--chdir", "/",  # relative paths resolve like the Policy's: "data/x" is /data/x
        "--",
        guest_binary,
        *args,
    ]
    return argv
