"""`gati audit diff OLD NEW`: the permission difference between two manifests.

OLD and NEW are each a module.toml (or its folder), or a registered version:
`name@1.2.0`, `name@^1` (the highest registered version the constraint picks), or `name`
for the active one. Added grants are what a reviewer must approve; removed grants narrow
the module. A grant whose target stays but whose terms change (a file path from ro to rw,
a module call from `greet@^1` to `greet`) shows as the old grant removed and the new one
added, and once more under `changed`, saying whether it widened. Limits that change are
listed with the direction they move in.

For other commands: `diff_versions(registry, "greet@1.0.0", "greet@2.0.0")`, and
`diff_pins(registry, old, new)`, the diffs of the modules two sets of version pins reach
(what `gati versions diff` shows for the modules a handler version uses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from runtime.core import versions
from runtime.core.errors import GatiError, VersionNotFound
from runtime.core.manifest import Artifact, Limits, Manifest, Method, parse_manifest
from runtime.core.registry import Registration, Registrations
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


@dataclass(frozen=True)
class GrantChange:
    """One target granted on other terms: a file's mode, a module call's version constraint."""

    old: Grant
    new: Grant

    @property
    def wider(self) -> bool | None:
        """True: the new terms allow more; False: less; None: neither holds the other (review it)."""
        if self.old.field == "files":
            return self.new.mode == "rw"
        old_spec, new_spec = versions.split(self.old.value)[1], versions.split(self.new.value)[1]
        if new_spec is None:
            return True  # any version now
        if old_spec is None:
            return False
        return None

    def to_dict(self) -> dict:
        return {"field": self.old.field, "old": self.old.line, "new": self.new.line, "wider": self.wider}


@dataclass
class PermissionDiff:
    old: str  # label: file path or name@version
    new: str
    added: list[Grant]
    removed: list[Grant]
    limits: list[LimitChange]
    changed: list[GrantChange] = field(default_factory=list)  # pairs from added and removed: same target, other terms

    @property
    def widened(self) -> bool:
        return bool(self.added) or any(c.wider for c in self.limits)

    def to_dict(self) -> dict:
        return {
            "old": self.old,
            "new": self.new,
            "added": [_grant_dict(g) for g in self.added],
            "removed": [_grant_dict(g) for g in self.removed],
            "changed": [c.to_dict() for c in self.changed],
            "limits": [c.to_dict() for c in self.limits],
            "widened": self.widened,
        }


def diff(old: Manifest, new: Manifest, old_label: str = "old", new_label: str = "new") -> PermissionDiff:
    before, after = set(grants(old.capabilities)), set(grants(new.capabilities))
    changes = [LimitChange(f, getattr(old.limits, f), getattr(new.limits, f)) for f in Limits.__struct_fields__]
    added, removed = sorted(after - before), sorted(before - after)
    gone = {_target(g): g for g in removed if g.field in ("files", "modules")}
    return PermissionDiff(
        old_label,
        new_label,
        added,
        removed,
        [c for c in changes if c.old != c.new],
        [GrantChange(gone[_target(g)], g) for g in added if _target(g) in gone],
    )


def _target(g: Grant) -> tuple[str, str]:
    """What a grant is about, whatever its terms: a file's path, a module's name."""
    return g.field, versions.split(g.value)[0] if g.field == "modules" else g.value


def diff_versions(registry: Registrations, old: str, new: str) -> PermissionDiff:
    """The permission diff of two registered versions, each `name@version`, `name@constraint` or `name`."""
    (old_label, old_m), (new_label, new_m) = resolve(old, registry), resolve(new, registry)
    return diff(old_m, new_m, old_label, new_label)


def diff_pins(registry: Registrations, old: Mapping[str, str | None], new: Mapping[str, str | None]) -> list[PermissionDiff]:
    """For each module in either pin set ({name: constraint}, None: the active version), the diff between
    the versions the two reach; modules reaching the same version are left out. A module only one side
    uses is diffed against nothing (all added or all removed)."""
    out = []
    for name in sorted(set(old) | set(new)):
        reached = [_registered(registry, name, side[name]) if name in side else None for side in (old, new)]
        if reached[0] is not None and reached[1] is not None and reached[0].manifest.version == reached[1].manifest.version:
            continue
        labels = [f"{name}@{r.manifest.version}" if r else f"(no {name})" for r in reached]
        manifests = [r.manifest if r else _nothing(name) for r in reached]
        out.append(diff(manifests[0], manifests[1], labels[0], labels[1]))
    return out


def _nothing(name: str) -> Manifest:
    """Stands for a module one side does not use: it grants nothing."""
    return Manifest(name, "0.0.0", "wasm", Artifact(path="-"), {"-": Method()})


def resolve(spec: str, registry: Registrations | None) -> tuple[str, Manifest]:
    """A manifest by path, or a registered version by `name[@version or @constraint]`."""
    path = Path(spec)
    if path.is_dir():
        path = path / "module.toml"
    if path.is_file():
        # parse only: a diff needs the grants, not a built artifact
        return str(path), parse_manifest(path.read_bytes(), str(path))
    name, version = versions.split(spec)
    if registry is None or "/" in name:
        raise GatiError(f"no manifest at {spec}", fix="give a module.toml path, a module folder, or a registered name@version")
    reg = _registered(registry, name, version)
    return f"{reg.name}@{reg.manifest.version}", reg.manifest


def _registered(registry: Registrations, name: str, spec: str | None) -> Registration:
    """The registration a version, a constraint or nothing (the active one) names; ModuleNotFound / VersionNotFound."""
    active = registry.get(name)  # raises ModuleNotFound naming the registered modules
    if not spec:
        return active
    every = {r.manifest.version: r for r in registry.versions(name)}
    picked = versions.pick(every, spec) if not versions.problem(spec) else None
    if picked is None:
        raise VersionNotFound(
            f"no module {name!r} at version {spec}" if versions.is_exact(spec) else f"no registered version of {name} satisfies {spec!r}",
            fix=f"registered: {', '.join(reversed(versions.highest_first(every)))}; name one of them, e.g. {name}@{active.manifest.version}",
        )
    return every[picked]


def _grant_dict(g: Grant) -> dict:
    return {"field": g.field, "value": g.value, **({"mode": g.mode} if g.mode else {}), "line": g.line, "means": g.sentence}
