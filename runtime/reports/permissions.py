"""Grants: the unit every audit speaks in, and what each one means in plain words.

A manifest's `[capabilities]` is a set of grants, one per list entry (one per path
for files, whose mode is part of the grant: `ro` and `rw` are different grants).
Usage, findings, learn and diff all compare sets of these, so they agree on what
"a grant" is.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from runtime.core.capabilities.egress import ALLOW_ALL, parse_rule
from runtime.core.manifest import Capabilities, Limits, Manifest

FIELDS = ("egress", "files", "env", "secrets", "kv", "modules")

# Which manifest field an audited capability is granted by.
FIELD_OF = {
    "egress": "egress",
    "file.read": "files",
    "file.write": "files",
    "file.mount": "files",  # handed over at sandbox start
    "env": "env",
    "secret": "secrets",
    "kv.read": "kv",
    "kv.write": "kv",
    "module.call": "modules",
}


class Grant(NamedTuple):
    field: str  # one of FIELDS
    value: str  # the rule, path or name as declared
    mode: str = ""  # files only: ro | rw

    @property
    def line(self) -> str:
        """The manifest line that declares this grant (the same form denials name)."""
        if self.field == "files":
            return f'[capabilities] files = {{ {json.dumps(self.value)} = "{self.mode}" }}'
        return f"[capabilities] {self.field} = [{json.dumps(self.value)}]"

    @property
    def sentence(self) -> str:
        v = self.value
        if self.field == "egress":
            return _egress_sentence(v)
        if self.field == "files":
            what = "read and write" if self.mode == "rw" else "read"
            return f"may {what} {v} ({self.mode})"
        return {
            "env": f"may read the environment variable {v}",
            "secrets": f"may read the secret {v} (through the host only)",
            "kv": f"may read and write the kv store {v}",
            "modules": f"may call the module {v}",
        }[self.field]


def grants(caps: Capabilities) -> list[Grant]:
    out = []
    for field in FIELDS:
        value = getattr(caps, field)
        if field == "files":
            out += [Grant("files", path, mode) for path, mode in value.items()]
        else:
            out += [Grant(field, v) for v in dict.fromkeys(value)]  # duplicates are one grant
    return out


def capabilities_of(granted: list[Grant] | set[Grant]) -> Capabilities:
    """The inverse of grants(): a [capabilities] table holding exactly these grants."""
    fields: dict = {f: [] for f in FIELDS}
    fields["files"] = {}
    for g in sorted(granted, key=_order):
        if g.field == "files":
            fields["files"][g.value] = g.mode
        else:
            fields[g.field].append(g.value)
    return Capabilities(**fields)


def _order(g: Grant) -> tuple:
    return FIELDS.index(g.field), g.value, g.mode


def rule_index(caps: Capabilities) -> dict[tuple[str, str], Grant]:
    """(field, rule as the policy writes it into allow events) -> the grant it came from.

    The policy names files by their guest path (`"data" = "ro"`) and names by
    `field: name`; this maps those back to the declared entries.
    """
    index: dict[tuple[str, str], Grant] = {}
    for g in grants(caps):
        if g.field == "egress":
            index["egress", g.value] = g
        elif g.field == "files":
            guest = g.value if g.value.startswith("/") else "/" + g.value.strip("/")
            guest = guest.rstrip("/") or "/"
            index["files", f'"{guest.lstrip("/")}" = "{g.mode}"'] = g
        else:
            index[g.field, f"{g.field}: {g.value}"] = g
    return index


def describe(manifest: Manifest) -> list[str]:
    """What the module may do, one plain sentence per grant, then its limits."""
    sentences = [g.sentence for g in grants(manifest.capabilities)]
    if not manifest.capabilities.egress:
        sentences.append("may not connect anywhere")
    elif manifest.allows_all_egress:
        sentences.append("still may not reach private, loopback or metadata addresses unless a rule names them")
    return sentences + [describe_limits(manifest.limits, manifest.kind)]


def describe_limits(limits: Limits, kind: str) -> str:
    parts = [f"{limits.memory_mb} MiB memory", f"{limits.timeout_ms} ms per call"]
    if limits.fuel:
        parts.append(f"{limits.fuel:,} instructions of fuel")
    if kind != "wasm":  # cpu and processes are container/native limits
        parts += [f"{limits.cpu:g} CPU", f"{limits.processes} processes"]
    parts.append(f"{limits.concurrency} calls at once (+{limits.queue} queued)")
    return "limited to " + ", ".join(parts)


def _egress_sentence(text: str) -> str:
    if text == ALLOW_ALL:
        return "may connect to ANY host on any port (insecure:allow-all)"
    rule = parse_rule(text)
    host = rule.host
    if host.startswith("*."):
        host = f"any host one label under {host[2:]}"
    elif "*" in host.split("."):
        host = f"hosts matching {host} (* is one label)"
    port = "any port" if rule.port is None else f"port {rule.port}"
    scheme = "any scheme" if rule.scheme == "*" else rule.scheme
    if rule.address is not None:
        return f"may connect to the address {rule.host} on {port} over {scheme}"
    if rule.port is not None and not host.startswith(("any", "hosts")):
        return f"may connect to {host}:{rule.port} over {scheme}"
    return f"may connect to {host} on {port} over {scheme}"


def is_wildcard(rule_text: str) -> bool:
    """True for egress rules that match more than one exact scheme, host and port."""
    if rule_text == ALLOW_ALL:
        return True
    rule = parse_rule(rule_text)
    return rule.scheme == "*" or rule.port is None or "*" in rule.host.split(".")
