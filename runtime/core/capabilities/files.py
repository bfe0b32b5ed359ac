"""File grants: a path the module asks for is inside a declared grant, or it is refused.

Guest paths are what the module sees (`/data/x.txt`); each grant maps a guest prefix
to a host directory or file, read-only unless declared `rw`. The resolved host path
must stay inside the grant's host path, so `..` and symlinks cannot climb out.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileGrant:
    guest: str  # absolute guest path, no trailing slash
    host: Path  # resolved host path
    writable: bool

    @property
    def text(self) -> str:
        return f'"{self.guest.lstrip("/")}" = "{"rw" if self.writable else "ro"}"'


def find_grant(grants: list[FileGrant], guest_path: str) -> tuple[FileGrant, Path] | None:
    """The grant covering guest_path and the host path it maps to, or None."""
    if not guest_path.startswith("/"):
        guest_path = "/" + guest_path
    normal = posixpath.normpath(guest_path)
    for grant in sorted(grants, key=lambda g: len(g.guest), reverse=True):
        if normal == grant.guest or normal.startswith(grant.guest.rstrip("/") + "/"):
            relative = normal[len(grant.guest):].lstrip("/")
            host = (grant.host / relative).resolve() if relative else grant.host
            if host == grant.host or grant.host in host.parents:
                return grant, host
    return None
