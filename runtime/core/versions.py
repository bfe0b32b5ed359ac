"""Module version constraints: `greet@1.2.0`, `greet@^1.2`, and which registered version one picks.

A constraint is npm's range syntax (node-semver, the rules most people know): `1.2.0` exact,
`^1.2` (>=1.2.0 <2.0.0), `~1.2` (>=1.2.0 <1.3.0), `>=1.2`, `1` or `1.x` (any 1.y.z), `*` (any),
and combinations (`>=1.2 <1.5`, `^1 || ^2`). A version with a pre-release tag (`2.0.0-rc.1`) is
picked only by a constraint naming a pre-release of the same major.minor.patch, as npm does.

Handlers pin with it (gctx.modules["greet@^1"], MODULES = {"greet": "^1.2"}), manifests grant
with it (`modules = ["greet@^1"]`); the module manager resolves it (runtime/modules/versions.py).
"""

from __future__ import annotations

import re
from functools import cmp_to_key, lru_cache
from typing import Iterable

import nodesemver

SEPARATOR = "@"
EXACT_RE = re.compile(r"[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}([-+][0-9A-Za-z.-]{1,64})?", re.ASCII)  # = manifest.VERSION_RE
MAX_SPEC = 128
EXAMPLES = '"1.2.0" (exact), "^1.2", "~1.2", ">=1.2", "1" or "*"'


def split(target: str) -> tuple[str, str | None]:
    """`greet@^1` -> ("greet", "^1"); `greet` -> ("greet", None)."""
    name, sep, spec = target.partition(SEPARATOR)
    return name, (spec if sep else None)


def problem(spec: str) -> str | None:
    """Why spec is not a constraint, or None when it is one."""
    if not spec.strip():
        return "an empty version constraint"
    if len(spec) > MAX_SPEC or _range(spec) is None:
        return f"{spec[:MAX_SPEC]!r} is not a version constraint"
    return None


def is_exact(spec: str) -> bool:
    """A whole version (`1.2.0`), which picks that version and no other."""
    return EXACT_RE.fullmatch(spec.strip().removeprefix("=")) is not None


def satisfies(version: str, spec: str) -> bool:
    rng = _range(spec)
    return rng is not None and rng.test(_semver(version))


def pick(versions: Iterable[str], spec: str) -> str | None:
    """The highest of versions satisfying spec, or None."""
    rng = _range(spec)
    if rng is None:
        return None
    best, best_v = None, None
    for version in versions:
        v = _semver(version)
        if rng.test(v) and (best_v is None or v.compare(best_v) > 0):
            best, best_v = version, v
    return best


def both(spec: str, other: str) -> str:
    """One constraint satisfied exactly when both are: `^1` and `1.2.0` -> `^1 1.2.0`.

    A space joins comparators (all must hold); `||` separates alternatives, so the
    alternatives of each side are paired up."""
    return " || ".join(f"{a.strip()} {b.strip()}" for a in spec.split("||") for b in other.split("||"))


def highest_first(versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=cmp_to_key(lambda a, b: _semver(b).compare(_semver(a))))


@lru_cache(maxsize=1024)  # constraints come from code and manifests: few, asked again on every resolution
def _range(spec: str):
    try:
        return nodesemver.make_range(spec, loose=False)
    except (ValueError, TypeError, AttributeError):
        return None


@lru_cache(maxsize=4096)
def _semver(version: str):
    return nodesemver.make_semver(version, loose=False)

