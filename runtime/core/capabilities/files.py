"""files: host paths a module may see, read-only unless declared `rw`; nothing else of the host.

Manifest section: `[capabilities] files = { "data" = "ro", "out" = "rw" }`, paths relative
to the manifest (or absolute), seen by the module at `/data`, `/out`. Each grant maps a
guest prefix to a host directory or file, resolved once when the module's Host is made.

What a sandbox gets at start are the mounts (`at_start`): containers and native processes
bind them, WASI preopens the directories; each mount handed over is audited by the Host.
A module can also ask the host to read or write a file (`file_read`, `file_write`). That
path is decided here, then opened without following any symbolic link, beneath the
grant's directory: `openat2` with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or, where the
kernel has no openat2, an O_NOFOLLOW walk from a directory fd. A module that owns an `rw`
directory can swap a link into it at any moment; checking the path first and then opening
it by name would let that race reach any host file, so the open itself is the check.
"""

from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import stat
from pathlib import Path
from typing import NamedTuple

from runtime.core.capabilities.decision import Decision
from runtime.core.errors import GatiError, ManifestError

FIELD = "files"
MAX_PATH = 1024  # bytes of a declared path: with the project's folder in front, far from PATH_MAX
NAME_MAX = 255  # bytes of one path component (Linux)


def check(files: dict[str, str], file: str) -> None:
    """Validate the manifest section; raises ManifestError."""
    for declared in files:
        key = f"capabilities.{FIELD}.{declared[:64]!r}"
        if not declared or "\x00" in declared or ".." in Path(declared).parts:
            raise ManifestError(file, key, "not an acceptable path", "name a directory or file without '..'")
        problem = path_too_long(declared)
        if problem:
            raise ManifestError(file, key, problem, "name a shorter path")


def path_too_long(path: str) -> str | None:
    """Why a declared path is longer than the file system takes, or None."""
    encoded = path.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PATH:
        return f"a path of {len(encoded)} bytes is too long (at most {MAX_PATH})"
    longest = max((len(part) for part in encoded.split(b"/")), default=0)
    if longest > NAME_MAX:
        return f"a path component of {longest} bytes is too long (at most {NAME_MAX})"
    return None


class FileGrant(NamedTuple):
    """One declared grant; also what a sandbox mounts: (guest path, host path, writable)."""

    guest: str  # absolute guest path, no trailing slash
    host: Path  # resolved host path
    writable: bool

    @property
    def text(self) -> str:
        return f'"{self.guest.lstrip("/")}" = "{"rw" if self.writable else "ro"}"'


class Located(NamedTuple):
    """A guest path inside a grant: the grant, and the normalised path below it ("" for the grant itself)."""

    grant: FileGrant
    relative: str

    @property
    def host(self) -> Path:
        return self.grant.host / self.relative if self.relative else self.grant.host


class FileError(GatiError):
    code = "file_failed"
    http_status = 500


class PathRefused(Exception):
    """The open met a symbolic link, a path out of the grant, or something not a regular file."""


def grants_of(declared: dict[str, str], base_dir: str | Path) -> list[FileGrant]:
    """The grants of a manifest's section, host paths resolved (relative ones against base_dir)."""
    grants = []
    for path, mode in declared.items():
        host = Path(path) if Path(path).is_absolute() else Path(base_dir) / path
        guest = path if path.startswith("/") else "/" + path.strip("/")
        grants.append(FileGrant(guest.rstrip("/") or "/", host.resolve(), mode == "rw"))
    return grants


def find_grant(grants: list[FileGrant], guest_path: str) -> Located | None:
    """The grant covering guest_path (the longest), or None.

    The path as it resolves now must stay inside the grant too, so that a link pointing out
    is refused by the decision, with its audit record; the open (open_beneath) is what no
    race can get past.
    """
    if not guest_path.startswith("/"):
        guest_path = "/" + guest_path
    normal = posixpath.normpath(guest_path)
    for grant in sorted(grants, key=lambda g: len(g.guest), reverse=True):
        if normal == grant.guest or normal.startswith(grant.guest.rstrip("/") + "/"):
            relative = normal[len(grant.guest):].lstrip("/")
            if not relative:
                return Located(grant, "")
            try:
                host = (grant.host / relative).resolve()
            except (OSError, RuntimeError):  # a name too long, a link loop: not inside anything
                return None
            if host == grant.host or grant.host in host.parents:
                return Located(grant, relative)
    return None


class FilesCapability:
    """The declared grants (config), the decision, the race-free open, and the mounts at start."""

    def __init__(self, declared: dict[str, str], base_dir: str | Path):
        self.grants = grants_of(declared, base_dir)

    def decide(self, guest_path: str, write: bool) -> tuple[Decision, Located | None]:
        capability = "file.write" if write else "file.read"
        if "\x00" in guest_path:
            return Decision(capability, guest_path.replace("\x00", "\\0"), False, reason="a path with a NUL byte"), None
        located = find_grant(self.grants, guest_path)
        parent = guest_path.rsplit("/", 1)[0].lstrip("/") or guest_path.lstrip("/")
        grant = f'[capabilities] files = {{ "{parent}" = "{"rw" if write else "ro"}" }}'
        if located is None:
            return Decision(capability, guest_path, False, grant=grant, reason="outside every file grant"), None
        if write and not located.grant.writable:
            return Decision(capability, guest_path, False, grant=grant, reason=f"granted read-only by {located.grant.text}"), None
        return Decision(capability, guest_path, True, rule=located.grant.text), located

    def read(self, located: Located) -> bytes | None:
        """The file's bytes (None if it does not exist); raises PathRefused or FileError."""
        try:
            fd = open_beneath(located, write=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FileError(f"cannot read {located.relative or located.grant.guest}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def write(self, located: Located, data: bytes) -> None:
        """Create or replace the file; raises PathRefused or FileError."""
        try:
            fd = open_beneath(located, write=True)
        except OSError as exc:
            raise FileError(f"cannot write {located.relative or located.grant.guest}: {exc.strerror}") from None
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def at_start(self, directories_only: bool = False) -> list[tuple[Decision, FileGrant]]:
        """Each mount a sandbox is handed, with its decision (audited by the Host).

        A granted path that has become a link since the Host resolved it (a module can plant
        one in an `rw` parent) is not mounted: a bind mount would follow it.
        """
        out = []
        for grant in self.grants:
            if directories_only and not grant.host.is_dir():
                continue
            mode = "read-write" if grant.writable else "read-only"
            if os.path.realpath(grant.host) != str(grant.host):
                decision = Decision("file.mount", grant.guest, False, reason=f"{grant.host} is now a symbolic link: not mounted")
            else:
                decision = Decision("file.mount", grant.guest, True, rule=grant.text, reason=f"mounted {mode} at sandbox start")
            out.append((decision, grant))
        return out


# Opening without following links -----------------------------------------------------------

_SYS_OPENAT2 = 437  # the same number on every architecture (added in Linux 5.6)
RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH = 0x02, 0x04, 0x08


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
use_openat2 = True  # cleared when the kernel says ENOSYS; tests clear it to run the walk


def open_beneath(located: Located, write: bool) -> int:
    """An fd of the located regular file, opened with no symbolic link followed anywhere.

    The grant's own host path was resolved when the Host was made, so it holds no link
    either: a link found there now was planted since. Raises PathRefused for a link, an
    escape or a file that is not regular (a FIFO would hang the host), OSError otherwise.
    """
    flags = (os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if write else os.O_RDONLY
    flags |= os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK  # NONBLOCK: a FIFO cannot block the open
    try:
        fd = _open_no_links(str(located.grant.host), located.relative, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EXDEV):
            raise PathRefused("a symbolic link on the path: host file calls never follow links") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PathRefused("not a regular file")
        # O_NONBLOCK stays: it changes nothing for a regular file, the only kind let through.
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_no_links(root: str, relative: str, flags: int) -> int:
    global use_openat2
    if use_openat2:
        try:
            if not relative:  # the grant is the file itself
                return _openat2(-100, root, flags, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)  # AT_FDCWD
            dirfd = _openat2(-100, root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
            try:
                return _openat2(dirfd, relative, flags, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
            finally:
                os.close(dirfd)
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            use_openat2 = False  # an old kernel (or a seccomp filter): walk instead, from now on
    return _walk(root, relative, flags)


def _openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    how = _OpenHow(flags, 0o666 if flags & os.O_CREAT else 0, resolve)
    fd = _libc.syscall(_SYS_OPENAT2, dirfd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def _walk(root: str, relative: str, flags: int) -> int:
    """openat2's promise by hand: one component at a time from `/`, each opened O_NOFOLLOW."""
    parts = [p for p in root.split("/") if p] + [p for p in relative.split("/") if p]
    if not parts:
        raise PathRefused("the root itself is not a file")
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), part)
            if not stat.S_ISDIR(mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), part)
        # O_NOFOLLOW: a link as the last component fails with ELOOP instead of being followed.
        return os.open(parts[-1], flags | os.O_NOFOLLOW, 0o666, dir_fd=fd)
    finally:
        os.close(fd)
