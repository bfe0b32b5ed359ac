"""Which handler file is which version of a route.

    handlers/users/[id].py               version 1 of /users/{id} (or the VERSION it declares)
    handlers/users/[id]@2.py             version 2 of the same route
    handlers/users/[id]@2.transform.py   up(body) / down(body) between version 1 and version 2

A version label after `@` is a positive integer: versions are ordered by it, and a label can
never be mistaken for a date pin (`Gati-Version: 2026-11-01`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

LABEL_RE = re.compile(r"^[1-9][0-9]*$")
TRANSFORM_SUFFIX = ".transform"


@dataclass(frozen=True)
class VersionedName:
    base: PurePath  # the file as if it had no version: users/[id].py
    label: str | None  # "2" for [id]@2.py; None for the unversioned file
    transform: bool  # [id]@2.transform.py


def split_name(rel: PurePath) -> VersionedName:
    """The route file rel names, its version label and whether it is a transformer file.

    A malformed label is returned as it is written; the loader reports it with the file's name."""
    stem = rel.name.removesuffix(".py")
    transform = stem.endswith(TRANSFORM_SUFFIX)
    if transform:
        stem = stem.removesuffix(TRANSFORM_SUFFIX)
    label = None
    if "@" in stem:
        stem, label = stem.rsplit("@", 1)
    return VersionedName(rel.with_name(stem + ".py"), label, transform)


def order_key(label: str) -> int:
    return int(label)
