"""An instance's run directory: a small tmpfs of its own, so that a module cannot fill the host's disk.

The run directory is bound read-write into the sandbox at /run/gati and holds two sockets
(module.sock, host.sock) that the runtime reaches on the host: it must be a host path, so
it cannot be a tmpfs inside the sandbox. Instead the runtime mounts a tmpfs of RUN_DIR_BYTES
and RUN_DIR_INODES on it before the sandbox starts; a module writing more gets ENOSPC. The
pages a module writes there are charged to its own memory cgroup, like its /tmp.

Mounting takes CAP_SYS_ADMIN (the runtime as root, which container modules need anyway).
A runtime that may not mount keeps plain directories and says once in its log that
/run/gati is then unbounded.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

log = logging.getLogger("gati.sandbox")

RUN_DIR_BYTES = 1 << 20  # two sockets take no blocks: this is room to spare, not a need
RUN_DIR_INODES = 64
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MNT_DETACH = 0x2
FS_NAME = b"gati-run"  # the mount's source in /proc/self/mountinfo: what sweep() recognizes
_libc = ctypes.CDLL(None, use_errno=True)
_warned = False


def create(parent: Path) -> Path:
    """A new run directory under parent, size-bounded when the runtime may mount."""
    path = Path(tempfile.mkdtemp(dir=parent, prefix="i"))
    options = f"size={RUN_DIR_BYTES},nr_inodes={RUN_DIR_INODES},mode=0777".encode()
    # mode 0777: the module's unprivileged user creates its socket here
    if _libc.mount(FS_NAME, str(path).encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EPERM, errno.EACCES):
            path.rmdir()
            raise OSError(err, f"mount a tmpfs on {path}: {os.strerror(err)}")
        _warn_unbounded(err)
        path.chmod(0o777)
    return path


def remove(path: Path) -> None:
    """Unmount (if mounted) and delete a run directory."""
    _unmount(path)
    shutil.rmtree(path, ignore_errors=True)


def sweep(root: Path, owner_alive: Callable[[int], bool] | None = None) -> None:
    """Unmount the run directories under root so that it can be deleted.

    owner_alive: root holds several runtimes' folders, <state digest>/<runtime pid>/...:
    unmount only those of runtimes for which it answers False (killed, crashed), whatever
    their project: the mounts of a runtime killed with SIGKILL are not left for as long as
    no runtime of its own project starts again."""
    prefix = str(root).rstrip("/") + "/"
    for point in sorted((p for p in _our_mounts() if p.startswith(prefix)), key=len, reverse=True):
        if owner_alive is not None:
            owner = point[len(prefix):].split("/")
            if len(owner) < 2 or not owner[1].isdigit() or owner_alive(int(owner[1])):
                continue
        _unmount(Path(point))


def _unmount(path: Path) -> None:
    # Detached: a sandbox still holding its bind of it (a container being removed) keeps it until it is gone.
    if _libc.umount2(str(path).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT, errno.EPERM):  # not a mount point, gone, or never mounted
            log.warning("cannot unmount run directory %s: %s", path, os.strerror(err))


def _our_mounts() -> list[str]:
    """Mount points of the run-directory tmpfs mounts in this mount namespace."""
    points = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                # ... mount point is field 4; after the "-" separator: fs type, source
                sep = fields.index("-")
                if fields[sep + 1] == "tmpfs" and fields[sep + 2] == FS_NAME.decode():
                    points.append(_unescape(fields[4]))
    except OSError:
        pass
    return points


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return field.encode().decode("unicode_escape") if "\\" in field else field


def _warn_unbounded(err: int) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "cannot mount a size-bounded tmpfs for module run directories (%s): /run/gati in "
            "container and native sandboxes is a plain host directory, unbounded; run the runtime as root",
            os.strerror(err),
        )
