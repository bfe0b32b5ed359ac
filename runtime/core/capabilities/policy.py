"""The one capability check: every backend asks the Policy before it acts.

A Policy is built from a module's manifest. Each method returns a Decision saying
allowed or not, the manifest entry that allowed it, and for a denial the exact
manifest line that would grant it. Nothing here performs the action or writes the
audit log: runtime/host.py does both around these decisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from runtime.core.capabilities import egress
from runtime.core.capabilities.files import FileGrant, find_grant
from runtime.core.manifest import LoadedManifest


@dataclass(frozen=True)
class Decision:
    capability: str  # egress | file.read | file.write | env | secret | kv.read | kv.write | module.call
    target: str
    allowed: bool
    rule: str | None = None  # the manifest entry that allowed it
    grant: str | None = None  # for a denial: the manifest line that would grant it
    reason: str = ""


class Policy:
    def __init__(self, loaded: LoadedManifest):
        manifest = loaded.manifest
        self.module = manifest.name
        self.caps = manifest.capabilities
        self.egress_rules = manifest.egress_rules
        self.allow_all_egress = manifest.allows_all_egress
        self.file_grants = [FileGrant(g, h, w) for g, h, w in loaded.file_grants()]

    # egress -------------------------------------------------------------
    def egress(self, url: str) -> tuple[Decision, egress.Target | None]:
        """Name-level decision; the caller must then check each resolved address."""
        try:
            target = egress.parse_target(url)
        except ValueError as exc:
            return Decision("egress", url, False, reason=str(exc)), None
        grant = _line("egress", f"{target.scheme}://{target.host}:{target.port}")
        rule = egress.match(self.egress_rules, target)
        if rule is not None:
            return Decision("egress", str(target), True, rule=rule.text), target
        if self.allow_all_egress:
            return Decision("egress", str(target), True, rule=egress.ALLOW_ALL), target
        return Decision("egress", str(target), False, grant=grant, reason="no egress rule matches"), target

    def egress_address(self, target: egress.Target, ip: egress.IPAddress) -> Decision:
        where = f"{target} ({ip})"
        if egress.address_allowed(self.egress_rules, target, ip):
            return Decision("egress", where, True, rule=str(target))
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return Decision(
            "egress",
            where,
            False,
            grant=_line("egress", f"{target.scheme}://{host}:{target.port}"),
            reason=f"{target.host} resolves to {ip}, a private, loopback, link-local or metadata address",
        )

    # files --------------------------------------------------------------
    def file(self, guest_path: str, write: bool) -> tuple[Decision, Path | None]:
        capability = "file.write" if write else "file.read"
        found = find_grant(self.file_grants, guest_path)
        parent = guest_path.rsplit("/", 1)[0].lstrip("/") or guest_path.lstrip("/")
        grant = f'[capabilities] files = {{ "{parent}" = "{"rw" if write else "ro"}" }}'
        if found is None:
            return Decision(capability, guest_path, False, grant=grant, reason="outside every file grant"), None
        file_grant, host = found
        if write and not file_grant.writable:
            return Decision(capability, guest_path, False, grant=grant, reason=f"granted read-only by {file_grant.text}"), None
        return Decision(capability, guest_path, True, rule=file_grant.text), host

    # names --------------------------------------------------------------
    def env(self, name: str) -> Decision:
        return self._named("env", "env", name, self.caps.env)

    def secret(self, name: str) -> Decision:
        return self._named("secret", "secrets", name, self.caps.secrets)

    def kv(self, store: str, write: bool) -> Decision:
        return self._named("kv.write" if write else "kv.read", "kv", store, self.caps.kv)

    def module_call(self, module: str) -> Decision:
        return self._named("module.call", "modules", module, self.caps.modules)

    def _named(self, capability: str, field: str, name: str, declared: list[str]) -> Decision:
        if name in declared:
            return Decision(capability, name, True, rule=f"{field}: {name}")
        return Decision(capability, name, False, grant=_line(field, name), reason="not declared")


def _line(field: str, value: str) -> str:
    return f"[capabilities] {field} = [{json.dumps(value)}]"
