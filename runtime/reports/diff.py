"""`gati audit diff OLD NEW`: the permission difference between two manifests.

OLD and NEW are each a module.toml (or its folder), or a registered version:
`name@1.2.0`, or `name` for the active one. Added grants are what a reviewer must
approve; removed grants narrow the module. A file path whose mode changes shows as
the old grant removed and the new one added. Limits that change are listed with the
direction they move in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtime.core.errors import GatiError
from runtime.core.manifest import Limits, Manifest, parse_manifest
from runtime.core.registry import Registry
from runtime.reports.permissions import Grant, grants


@dataclass(frozen=True)
class LimitChange:
    name: str
    old: object
    new: object

    @property
    def wider(self) -> bool:
        if self.new is None:  # fuel: None means no instruction budget at all
            return True
        return self.old is not None and self.new > self.old

    def to_dict(self) -> dict:
        return {"name": self.name, "old": self.old, "new": self.new, "wider": self.wider}


@dataclass
class PermissionDiff:
    old: str  # label: file path or name@version
    new: str
    added: list[Grant]
    removed: list[Grant]
    limits: list[LimitChange]

    @property
    def widened(self) -> bool:
        return bool(self.added) or any(c.wider for c in self.limits)

    def to_dict(self) -> dict:
        return {
            "old": self.old,
            "new": self.new,
            "added": [_grant_dict(g) for g in self.added],
            "removed": [_grant_dict(g) for g in self.removed],
            "limits": [c.to_dict() for c in self.limits],
            "widened": self.widened,
        }


def diff(old: Manifest, new: Manifest, old_label: str = "old", new_label: str = "new") -> PermissionDiff:
    before, after = set(grants(old.capabilities)), set(grants(new.capabilities))
    changes = [LimitChange(f, getattr(old.limits, f), getattr(new.limits, f)) for f in Limits.__struct_fields__]
    return PermissionDiff(
        old_label,
        new_label,
        sorted(after - before),
        sorted(before - after),
        [c for c in changes if c.old != c.new],
    )


def resolve(spec: str, registry: Registry | None) -> tuple[str, Manifest]:
    """A manifest by path, or a registered version by `name[@version]`."""
    path = Path(spec)
    if path.is_dir():
        path = path / "module.toml"
    if path.is_file():
        # parse only: a diff needs the grants, not a built artifact
        return str(path), parse_manifest(path.read_bytes(), str(path))
    name, _, version = spec.partition("@")
    if registry is None or "/" in spec:
        raise GatiError(f"no manifest at {spec}", fix="give a module.toml path, a module folder, or a registered name@version")
    reg = registry.get(name, version or None)  # raises ModuleNotFound naming the registered modules
    return f"{reg.name}@{reg.manifest.version}", reg.manifest


def _grant_dict(g: Grant) -> dict:
    return {"field": g.field, "value": g.value, **({"mode": g.mode} if g.mode else {}), "line": g.line, "means": g.sentence}
