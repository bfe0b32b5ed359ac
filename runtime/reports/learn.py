"""`--learn`: a least-privilege module.toml from what the module actually exercised.

The proposal keeps only grants that allowed something in the window, and narrows
the ones that allowed more than was used: a wildcard or allow-all egress rule
becomes the exact targets reached, an `rw` path that was only read through the host
becomes `ro`. A path a sandbox mounted at start keeps its mode (what is done through a
mount is not seen), and an env name handed over at start counts as used.
Denied attempts are never added (they are findings, not needs).

The proposal is the current file edited in place, key by key, so comments and the
rest of the manifest survive and the diff shows only what changes.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

from runtime.core.capabilities.egress import ALLOW_ALL, parse_rule
from runtime.core.errors import ManifestError
from runtime.core.manifest import Capabilities, parse_manifest
from runtime.core.registry import Registration
from runtime.reports.permissions import (
    FIELDS,
    Grant,
    capabilities_of,
    grants,
    is_wildcard,
)
from runtime.reports.usage import Usage, used


@dataclass
class Proposal:
    module: str
    file: str
    current: Capabilities
    proposed: Capabilities
    text: str  # the proposed module.toml
    diff: str  # unified diff against the current file ("" when nothing to remove)

    @property
    def removed(self) -> list[Grant]:
        return sorted(set(grants(self.current)) - set(grants(self.proposed)))

    @property
    def added(self) -> list[Grant]:  # narrowed replacements (exact targets for a wildcard, ro for rw)
        return sorted(set(grants(self.proposed)) - set(grants(self.current)))


def least_privilege(caps: Capabilities, usage: Usage | None) -> Capabilities:
    proposed: set[Grant] = set()
    for g, uses in used(caps, usage).items():
        if g.field == "egress" and is_wildcard(g.value) and not _names_address(g.value):
            proposed |= {Grant("egress", target) for _, target, _ in uses}
        elif g.field == "files" and any(cap == "file.mount" for cap, _, _ in uses):
            proposed.add(g)  # mounted: what the module did through the mount is not seen, so keep its mode
        elif g.field == "files":
            wrote = any(cap == "file.write" for cap, _, _ in uses)
            proposed.add(g._replace(mode="rw" if wrote else "ro"))
        else:
            proposed.add(g)
    # Keep the declared order of what survives; narrowed entries come after.
    declared = [g for g in grants(caps) if g in proposed]
    return capabilities_of(declared + sorted(proposed - set(declared)))


def learn(reg: Registration, usage: Usage | None) -> Proposal:
    current = reg.manifest.capabilities
    proposed = least_privilege(current, usage)
    file = reg.loaded.file
    try:
        text = Path(file).read_text()
        new_text = rewrite(text, proposed, file)
    except FileNotFoundError:  # moved since registration: show the section to write instead
        text, new_text = "[capabilities]\n" + render(current), "[capabilities]\n" + render(proposed)
    diff = "".join(difflib.unified_diff(text.splitlines(True), new_text.splitlines(True), f"a/{Path(file).name}", f"b/{Path(file).name}"))
    return Proposal(reg.name, file, current, proposed, new_text, diff)


def render(caps: Capabilities) -> str:
    return "".join(_render_field(f, getattr(caps, f)) for f in FIELDS if getattr(caps, f))


def _render_field(field: str, value) -> str:
    if field == "files":
        return "files = { " + ", ".join(f"{json.dumps(p)} = {json.dumps(m)}" for p, m in value.items()) + " }\n"
    return f"{field} = [" + ", ".join(json.dumps(v) for v in value) + "]\n"


def rewrite(text: str, caps: Capabilities, file: str = "module.toml") -> str:
    """The manifest text with its [capabilities] replaced by caps, changing only the keys that differ."""
    lines = text.splitlines(True)
    start = next((i for i, l in enumerate(lines) if l.strip() == "[capabilities]"), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n[capabilities]\n" + render(caps) if render(caps) else text
        return _checked(new, caps, file)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[") and _is_header(lines[i])), len(lines))
    section = lines[start + 1 : end]
    current = parse_manifest(text, file).capabilities
    out, i = [], 0
    while i < len(section):
        line = section[i]
        field = _key(line)
        if field is None:
            out.append(line)
            i += 1
            continue
        j = _value_end(section, i)
        if getattr(current, field) == getattr(caps, field):
            out += section[i:j]  # unchanged: keep it as written
        elif getattr(caps, field):
            out.append(_render_field(field, getattr(caps, field)))
        i = j
    missing = [f for f in FIELDS if getattr(caps, f) and not any(_key(l) == f for l in section)]
    out = _insert_before_trailing_blanks(out, [_render_field(f, getattr(caps, f)) for f in missing])
    return _checked("".join(lines[: start + 1] + out + lines[end:]), caps, file)


def _checked(text: str, caps: Capabilities, file: str) -> str:
    """Refuse to propose a file that does not say what we mean (formatting we could not edit)."""
    got = parse_manifest(text, file).capabilities
    if {f: getattr(got, f) for f in FIELDS} != {f: getattr(caps, f) for f in FIELDS}:
        raise ManifestError(file, "capabilities", "its layout is too unusual to edit automatically", "write [capabilities] with one key = value per field")
    return text


def _is_header(line: str) -> bool:
    s = line.split("#", 1)[0].strip()
    return s.startswith("[") and s.endswith("]") and "=" not in s


def _key(line: str) -> str | None:
    head = line.split("=", 1)[0].strip() if "=" in line else ""
    return head if head in FIELDS else None


def _value_end(section: list[str], i: int) -> int:
    """Index after the last line of the key=value starting at i (arrays and tables may span lines)."""
    depth, j = 0, i
    while j < len(section):
        depth += _bracket_balance(section[j] if j > i else section[j].split("=", 1)[1])
        j += 1
        if depth <= 0:
            break
    return j


def _bracket_balance(text: str) -> int:
    depth, quote = 0, None
    for c in text:
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#":
            break
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
    return depth


def _insert_before_trailing_blanks(lines: list[str], new: list[str]) -> list[str]:
    k = len(lines)
    while k and not lines[k - 1].strip():
        k -= 1
    return lines[:k] + new + lines[k:]


def _names_address(rule: str) -> bool:
    # An address rule is kept as written: its uses are inferred, not observed targets.
    return rule != ALLOW_ALL and parse_rule(rule).address is not None
