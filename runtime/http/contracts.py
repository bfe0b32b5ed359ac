"""Contract checks: does what each handler sends a module fit the module's schemas, and is each pin registered?

    findings = check_contracts(router, modules, manifests=manifests)
    # Finding(severity="error", handler="thumbs/resize.py", line=20, module="thumbs", method="resize",
    #         direction="input", path="$.max", problem="field removed")

For every module call found in a handler (runtime.http.module_calls):
  - the module and the method must exist (error otherwise);
  - input: every payload the handler may send must fit the method's input schema. A payload of a
    declared type (REQUEST, an annotated name) is held to it whole: a bound the type lacks is an
    error. A payload inferred from its expression (a dict literal of `int(...)`s) has a known
    shape but not a known range: a missing or unknown key, or a wrong JSON kind, is an error;
    a bound or enum the module narrows it by is a warning;
  - output: every answer the output schema allows must fit what the handler reads it as (an
    annotated name, or RESPONSE when the handler returns the answer);
  - a pinned call (`gctx.modules["greet@1"]`, or a name the file's MODULES pins: "greet": "^2")
    needs a registered version that the pin reaches (a version or a constraint: "1", "1.2",
    "^1.2"; runtime/core/versions.py), and is checked against that version's manifest when it is
    known (the active one otherwise, said as info).
Every handler file is checked: each version of a versioned route (handlers/users/[id]@2.py, ...)
with its own calls and its own pins, not only the default version the router matches.
What the rules cannot compare (no schema, an unknown payload, JSON Schema a GType cannot say) is
listed as "unchecked" info, never guessed. `gati contracts check` prints these (exit 1 on errors);
`gati serve` logs them as warnings at start.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Iterable

from runtime.core import versions as semver  # `versions` names the registered versions here
from runtime.core.manifest import Manifest
from runtime.http.gtype import Field, GType, diff
from runtime.http.gtype_schema import Converted, from_json_schema
from runtime.http.handler_manifest import HandlerManifest
from runtime.http.module_calls import ModuleCall
from runtime.http.routing import Route, Router

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning | info
    handler: str  # the handler file, relative to handlers/
    line: int
    module: str
    method: str
    direction: str  # input | output | method | module | version
    path: str  # "$.width", or "" when the finding is about the call as a whole
    problem: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_contracts(
    router: Router,
    modules: dict[str, Manifest],
    versions: dict[str, list[str]] | None = None,
    manifests: dict[str, dict[str, Manifest]] | None = None,
) -> list[Finding]:
    """modules: the manifest each name calls resolve to; versions: every registered version of each name (for pins),
    by default those manifests holds; manifests: name -> version -> manifest, for the versions pins reach (those
    missing are checked against modules')."""
    if versions is None:
        versions = {n: list(by) for n, by in (manifests or {}).items()}
    found: list[Finding] = []
    for route in handler_files(router):
        manifest = HandlerManifest.of(route)
        for call in manifest.modules:
            found.extend(check_call(route.rel, call, modules, versions, manifest.pins or {}, manifests or {}))
    return sorted(found, key=lambda f: (SEVERITIES.index(f.severity), f.handler, f.line, f.path))


def handler_files(router: Router) -> list[Route]:
    """Every handler file once, by its path: plain routes, and each version of a versioned one (its own Route,
    not the copies that serve older versions through transformers: those run the same file)."""
    files = {r.rel: r for entry in router.routes for r in ([v.route for v in entry.versions.versions] if entry.versions else [entry])}
    return [files[rel] for rel in sorted(files)]


def check_call(
    handler: str,
    call: ModuleCall,
    modules: dict[str, Manifest],
    versions: dict[str, list[str]],
    pins: dict[str, str] | None = None,
    manifests: dict[str, dict[str, Manifest]] | None = None,
) -> list[Finding]:
    """One call against the module it reaches. pins: the file's MODULES constraints, which a call without its own @pin follows."""
    name, _, pin = call.module.partition("@")
    by = "" if pin else " (MODULES)"
    pin = pin or (pins or {}).get(name, "")

    def finding(severity: str, direction: str, path: str, problem: str) -> Finding:
        return Finding(severity, handler, call.line, call.module, call.method, direction, path, problem)

    manifest = modules.get(name)
    if manifest is None:
        return [finding("error", "module", "", f"no module named {name!r} in the project (known: {', '.join(sorted(modules)) or 'none'})")]
    out: list[Finding] = []
    if pin:
        registered = versions.get(name) or [manifest.version]
        picked = semver.pick(registered, pin)
        if picked is None:
            out.append(finding("error", "version", "", f"pinned to {pin}{by}, but the versions registered are {', '.join(sorted(registered))}"))
        elif picked != manifest.version:
            reached = (manifests or {}).get(name, {}).get(picked)
            if reached is None:
                out.append(finding("info", "version", "", f"checked against {name} {manifest.version}: the manifest of {picked}, which the pin {pin} reaches, is not known here"))
            else:
                manifest = reached
    spec = manifest.methods.get(call.method)
    if spec is None:
        out.append(finding("error", "method", "", f"{name} has no method {call.method!r} (declared: {', '.join(sorted(manifest.methods))})"))
        return out
    if not isinstance(spec.input, dict):
        out.append(finding("info", "input", "", "unchecked: the method declares no input schema"))
    elif call.payload is None:
        out.append(finding("info", "input", "", "unchecked: the payload's type cannot be derived from the source"))
    else:
        out.extend(finding(*f) for f in _input(call.payload.type, call.payload.declared, from_json_schema(spec.input)))
    if call.result is not None:
        if not isinstance(spec.output, dict):
            out.append(finding("info", "output", "", "unchecked: the method declares no output schema"))
        else:
            out.extend(finding(*f) for f in _output(from_json_schema(spec.output), call.result.type))
    return out


def _input(sent: GType, declared: bool, accepted: Converted) -> Iterable[tuple[str, str, str, str]]:
    for note in accepted.unsure:
        yield "info", "input", note.split(":")[0], f"unchecked: the input schema's {note.split(': ', 1)[-1]}"
    if not declared:
        sent = _fill(sent, accepted.type)  # unknown parts of an inferred payload take what the module asks
    module = _open_to(accepted.type, sent, accepted.open_objects)
    narrows = [c for c in diff(sent, module, role="request").changes if c.narrows]
    if declared:
        for c in narrows:
            yield "error", "input", c.path, f"the module refuses some values the handler may send: {_words(c.what)}"
        return
    shape = [c for c in diff(_shape(sent), _shape(module), role="request").changes if c.narrows]
    for c in shape:
        yield "error", "input", c.path, f"the module refuses what the handler sends: {_words(c.what)}"
    wrong = {c.path for c in shape}
    for c in narrows:
        if c.path not in wrong:
            yield "warning", "input", c.path, f"the module adds {_words(c.what)}: the handler's values are not known from its types"


def _output(produced: Converted, expected: GType) -> Iterable[tuple[str, str, str, str]]:
    for note in produced.unsure:
        yield "info", "output", note.split(":")[0], f"unchecked: the output schema's {note.split(': ', 1)[-1]}"
    for c in diff(produced.type, expected, role="request").changes:
        if c.narrows:
            yield "error", "output", c.path, f"the handler's type refuses some answers the module may give: {_words(c.what)}"


def _words(what: str) -> str:
    """gtype.diff's "minimum None -> 1" as "minimum 1"; "field removed" as "unknown field" (what a module reads it as)."""
    what = re.sub(r"^(\w+) None -> ", r"\1 ", what)
    return {"field removed": "a field it does not know", "required field added": "a field it requires is not sent",
            "field became required": "a field it requires may be missing"}.get(what, what)  # fmt: skip


def _fill(sent: GType, module: GType) -> GType:
    """The inferred type with its unknown (any) parts replaced by what the module expects there."""
    if sent.kind == "any":
        return module
    if sent.kind == "object" and module.kind == "object":
        theirs = {f.name: f.type for f in module.fields}
        return dataclasses.replace(sent, fields=tuple(Field(f.name, _fill(f.type, theirs[f.name]) if f.name in theirs else f.type, f.required) for f in sent.fields))
    if sent.kind in ("array", "map") and module.kind == sent.kind:
        return dataclasses.replace(sent, items=_fill(sent.items, module.items))
    return sent


def _open_to(module: GType, sent: GType, open_objects: set[int]) -> GType:
    """The module's type, where its schema leaves an object open, admitting the extra keys the sender uses."""
    if module.kind == "object":
        theirs = {f.name: f for f in sent.fields} if sent.kind == "object" else {}
        fields = [Field(f.name, _open_to(f.type, theirs[f.name].type, open_objects) if f.name in theirs else f.type, f.required) for f in module.fields]
        if id(module) in open_objects:
            known = {f.name for f in module.fields}
            fields += [Field(f.name, f.type, False) for f in theirs.values() if f.name not in known]
        return dataclasses.replace(module, fields=tuple(fields))
    if module.kind in ("array", "map") and sent.kind == module.kind:
        return dataclasses.replace(module, items=_open_to(module.items, sent.items, open_objects))
    if module.kind == "union":
        return dataclasses.replace(module, options=tuple(_open_to(o, sent, open_objects) for o in module.options))
    return module


def _shape(t: GType) -> GType:
    """t without what only narrows a value's range: bounds, lengths, patterns, and literals widened to their JSON kind."""
    if t.kind == "literal":
        kinds = {_kind_of(v) for v in t.values}
        options = tuple(GType(k) for k in sorted(kinds))
        return options[0] if len(options) == 1 else GType("union", options=options)
    if t.kind == "object":
        return dataclasses.replace(t, fields=tuple(Field(f.name, _shape(f.type), f.required) for f in t.fields), constraints=())
    if t.kind in ("array", "map"):
        return dataclasses.replace(t, items=_shape(t.items), constraints=())
    if t.kind == "union":
        return dataclasses.replace(t, options=tuple(_shape(o) for o in t.options))
    return dataclasses.replace(t, constraints=())


def _kind_of(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if v is None:
        return "null"
    return "integer" if isinstance(v, int) else "string"


def describe(f: Finding) -> str:
    where = f" {f.path}" if f.path else ""
    return f"handlers/{f.handler}:{f.line} {f.module}.{f.method} {f.direction}{where}: {f.problem}"


def registered_contracts(router: Router, registry: Any) -> list[Finding]:
    """check_contracts against what a registry holds: the active version of each name, every version for pins."""
    names = registry.names()
    modules = {n: registry.get(n).manifest for n in names}
    manifests = {n: {r.manifest.version: r.manifest for r in registry.versions(n)} for n in names}
    return check_contracts(router, modules, manifests=manifests)


def start_up_lines(findings: list[Finding]) -> list[str]:
    """What `gati serve` logs at start: each error, and how many warnings `gati contracts check` would show."""
    lines = [describe(f) for f in findings if f.severity == "error"]
    warnings = sum(f.severity == "warning" for f in findings)
    if lines or warnings:
        lines.append(f"{len(lines)} incompatible, {warnings} to review: run `gati contracts check` for the list")
    return lines
