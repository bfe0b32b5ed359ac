"""`gati versions`: the versions of each route, read from the project and the manifest store.

    gati versions list [ROUTE] [--json]          every version: since, default, served by, state, last served
    gati versions show ROUTE@V [--json]          one version's manifest, its step from the previous one,
                                                 its state and served times
    gati versions diff ROUTE@A ROUTE@B [--json]  request/response schema changes, breaking or not and why,
                                                 and what the modules each version pins may do differently
    gati versions check [--json]                 CI gate: exit 1 on a breaking step without a transformer,
                                                 or a served version whose own file broke its contract
    gati versions retire ROUTE@V [--reason T]    stop serving it (410 Gone, naming the current version)
    gati versions restore ROUTE@V                serve it again (its drain clock starts again)

ROUTE is the route's path as gati prints it (`/users/{id}`); V a version label (`2`). The project's
handler files say what the versions are; the store (versions.db in the state directory, written by
a running server: runtime/http/versions/store.py; in cluster mode the cluster's, shared by every
instance) says what was served when and what is retired. Running servers pick up retire/restore
within about [versions] check_interval_s.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from runtime.cli.common import JsonOpt, ProjectOpt, out, print_json, user_errors
from runtime.core.errors import GatiError
from runtime.core.state import StateDir
from runtime.http.gtype import diff as gtype_diff
from runtime.http.handler_manifest import HandlerManifest
from runtime.http.module_pins import declared_pins
from runtime.http.project import Project, load_project
from runtime.http.routing import Route, Router, load_routes
from runtime.http.state import open_state, open_version_store
from runtime.http.versions.compat import compare
from runtime.http.versions.in_place import changed_in_place
from runtime.http.versions.service import graph_of
from runtime.http.versions.store import FILE as STORE_FILE
from runtime.http.versions.store import LIVE, RETIRED, Store
from runtime.reports.diff import diff_pins

versions_app = typer.Typer(help="Versions of each route: list, show, diff, check (CI), retire and restore.", no_args_is_help=True)


class VersionsError(GatiError):
    code = "versions"


class Loaded:
    """The project's routes and, when it exists, its store (in cluster mode, always: the cluster's)."""

    def __init__(self, project: Path, *, create_store: bool = False):
        self.project: Project = load_project(project)
        self.router: Router = load_routes(self.project.handlers_dir)
        self.manifests = {id(r): HandlerManifest.of(r) for r in self.router.served()}
        self.fingerprints = {k: m.fingerprint() for k, m in self.manifests.items()}
        self.graphs = {r.pattern: graph_of(r, self.fingerprints) for r in self.router.routes}
        self.entries = {r.pattern: r for r in self.router.routes}
        self.state: StateDir | None = None
        self.store: Store | None = None
        settings = self.project.settings
        # Read-only verbs make no versions.db where none is; the cluster's store is always there.
        if settings.cluster.nats or create_store or (StateDir.locate(self.project.dir) / STORE_FILE).is_file():
            self.state = open_state(self.project.dir, settings)
            try:
                self.store = open_version_store(self.state)
            except BaseException:
                self.state.close()
                raise
        self.rows = self.store.versions() if self.store else {}

    def record(self, now: float) -> None:
        """Store the project's manifests and graphs, as a server does when it starts (Timescape.adopt)."""
        self.store.record(self.graphs.values(), {self.fingerprints[k]: m.to_dict() for k, m in self.manifests.items()}, now)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        if self.state is not None:
            self.state.close()

    def route(self, pattern: str) -> Route:
        pattern = "/" + pattern.strip().lstrip("/")
        if pattern not in self.entries:
            known = ", ".join(sorted(self.entries)) or "(none)"
            raise VersionsError(f"no route {pattern} in {self.project.handlers_dir}", fix=f"name one of: {known}")
        return self.entries[pattern]

    def version(self, spec: str) -> tuple[Route, str, Route]:
        """ROUTE@V -> (the router's entry, the label, that version's own Route)."""
        pattern, at, label = spec.rpartition("@")
        if not at or not pattern or not label:
            raise VersionsError(f"{spec!r} names no version", fix="write ROUTE@VERSION, e.g. /users/{id}@2")
        entry = self.route(pattern)
        own = {v.label: v.route for v in entry.versions.versions} if entry.versions else {entry.version or "1": entry}
        if label not in own:
            raise VersionsError(f"{entry.pattern} has no version {label}", fix=f"versions of {entry.pattern}: {', '.join(own)}")
        return entry, label, own[label]

    def row(self, pattern: str, label: str) -> dict[str, Any]:
        row = self.rows.get((pattern, label))
        return row.to_dict() if row else {"state": LIVE, "first_served": None, "last_served": None}


def _when(t: float | None) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M") if t else "-"


def _open(project: Path, **kw) -> Loaded:
    return Loaded(project, **kw)


@versions_app.command("list")
@user_errors
def list_versions(route: Annotated[Optional[str], typer.Argument(help="Only this route, e.g. /users/{id}.")] = None, project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Every route's versions: since, default, which version serves it, state, last served."""
    loaded = _open(project)
    try:
        patterns = [loaded.route(route).pattern] if route else sorted(loaded.graphs)
        rows = []
        for pattern in patterns:
            g = loaded.graphs[pattern]
            steps = {s["version"]: s for s in g["steps"]}
            for v in g["versions"]:
                step = steps.get(v["version"])
                rows.append({
                    "route": pattern, "version": v["version"], "file": v["file"], "since": v["since"], "default": v["version"] == g["default"],
                    "served_by": v["served_by"], "fingerprint": v["fingerprint"], "deprecated": v["deprecated"], "sunset": v["sunset"],
                    "step": None if step is None else {"breaking": step["breaking"], "transformed": step["transformed"]},
                    **loaded.row(pattern, v["version"]),
                })
    finally:
        loaded.close()
    if as_json:
        print_json({"versions": rows})
        return
    table = Table()
    table.add_column("route", no_wrap=True, min_width=max((len(r["route"]) for r in rows), default=5))  # whole: copy-pasteable
    for name in ("version", "since", "default", "served by", "step", "state", "last served"):
        table.add_column(name, overflow="fold")
    for r in rows:
        step = "-" if r["step"] is None else ("breaking, transformed" if r["step"]["transformed"] else "breaking") if r["step"]["breaking"] else "compatible"
        table.add_row(escape(r["route"]), r["version"], r["since"] or "-", "yes" if r["default"] else "", r["served_by"], step, r["state"], _when(r["last_served"]))
    out.print(table)


@versions_app.command("show")
@user_errors
def show(spec: Annotated[str, typer.Argument(metavar="ROUTE@V", help="e.g. /users/{id}@2")], project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """One version: its manifest, its step from the previous version, its state and served times."""
    loaded = _open(project)
    try:
        entry, label, own = loaded.version(spec)
        g = loaded.graphs[entry.pattern]
        manifest = HandlerManifest.of(own)
        fingerprint = manifest.fingerprint()
        history = loaded.store.manifest_history(entry.pattern, label) if loaded.store else []
        info = {
            "route": entry.pattern, "version": label, "default": g["default"] == label,
            "served_by": next(v["served_by"] for v in g["versions"] if v["version"] == label),
            "step": next((s for s in g["steps"] if s["version"] == label), None),
            "fingerprint": fingerprint,
            "stored_fingerprints": [fp for fp, _ in history],
            "changed_since_stored": bool(history) and fingerprint not in {fp for fp, _ in history},
            **loaded.row(entry.pattern, label),
            "manifest": manifest.to_dict(),
        }
    finally:
        loaded.close()
    if as_json:
        print_json(info)
        return
    out.print(f"[bold]{escape(info['route'])}[/] version {label}{' (default)' if info['default'] else ''}: {escape(own.rel)}", highlight=False)
    if info["served_by"] != label:
        out.print(f"  served by version {info['served_by']} through transformers", highlight=False)
    step = info["step"]
    if step:
        verdict = "breaking" + (f", transformed by {escape(step['transformer'])}" if step["transformed"] else ", no transformer") if step["breaking"] else "compatible"
        out.print(f"  from the previous version: {verdict}", highlight=False)
        for reason in step["reasons"]:
            out.print(f"    - {escape(reason)}", highlight=False)
    m = info["manifest"]
    out.print(f"  methods {', '.join(m['methods'])}; since {m['since'] or '-'}; modules {', '.join(m['dependencies']) or '-'}", highlight=False)
    out.print(f"  state {info['state']}; first served {_when(info['first_served'])}; last served {_when(info['last_served'])}", highlight=False)
    out.print(f"  fingerprint {fingerprint}" + (" (changed since the store last saw it served)" if info["changed_since_stored"] else ""), highlight=False)


def version_diff(loaded: Loaded, a_spec: str, b_spec: str) -> dict[str, Any]:
    (entry_a, a, ra), (entry_b, b, rb) = loaded.version(a_spec), loaded.version(b_spec)
    lost = tuple(sorted(m for m in ra.methods if not rb.allows(m)))
    verdict = compare(ra.request_type, rb.request_type, ra.response_type, rb.response_type, lost)
    schemas = {}
    for role, old, new in (("request", ra.request_type, rb.request_type), ("response", ra.response_type, rb.response_type)):
        if old is not None and new is not None:
            schemas[role] = gtype_diff(old, new, role=role).to_dict()
        else:
            schemas[role] = {"role": role, "old": old is not None, "new": new is not None, "changes": []}
    transformed = entry_a.pattern == entry_b.pattern and entry_a.versions is not None and all(
        v.transformer is not None for v in entry_a.versions.versions if int(a) < int(v.label) <= int(b)
    ) and int(a) < int(b)
    modules, note = [], None
    pins_a, pins_b = dict(declared_pins(ra)), dict(declared_pins(rb))
    for calls, pins in ((HandlerManifest.of(ra), pins_a), (HandlerManifest.of(rb), pins_b)):
        for name in calls.dependencies:
            pins.setdefault(name, None)  # called without a pin: the active version
    if pins_a or pins_b:
        shared = bool(loaded.project.settings.cluster.nats)  # the cluster's registry: the state Loaded opened
        state_dir = StateDir.locate(loaded.project.dir)
        state = loaded.state if shared else StateDir(state_dir) if (state_dir / "registry.db").is_file() else None
        if state is None:
            note = "module diff not made: no module is registered in this project's state directory (run gati serve or gati module register)"
        else:
            try:
                modules = [d.to_dict() for d in diff_pins(state.registry, pins_a, pins_b)]
            except GatiError as exc:
                note = f"module diff not made: {exc.message}"
            finally:
                if not shared:
                    state.close()
    return {
        "old": f"{entry_a.pattern}@{a}", "new": f"{entry_b.pattern}@{b}",
        "breaking": verdict.breaking, "reasons": list(verdict.reasons), "transformed": transformed,
        "methods": {"removed": list(lost), "added": sorted(rb.methods - ra.methods)},
        "schemas": schemas, "pins": {"old": pins_a, "new": pins_b}, "modules": modules, "modules_note": note,
    }


@versions_app.command("diff")
@user_errors
def diff(
    old: Annotated[str, typer.Argument(metavar="ROUTE@A")],
    new: Annotated[str, typer.Argument(metavar="ROUTE@B")],
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """What changes for a client moving from A to B: schemas (breaking or not, and why) and module capabilities."""
    loaded = _open(project)
    try:
        d = version_diff(loaded, old, new)
    finally:
        loaded.close()
    if as_json:
        print_json(d)
        return
    verdict = "breaking" + (" (transformed: old clients are served through transformers)" if d["transformed"] else "") if d["breaking"] else "not breaking"
    out.print(f"[bold]{escape(d['old'])} -> {escape(d['new'])}[/]: {verdict}", highlight=False)
    for reason in d["reasons"]:
        out.print(f"  [red]breaking[/] {escape(reason)}", highlight=False)
    for role, s in d["schemas"].items():
        for c in s["changes"]:
            if not c["breaking"]:
                out.print(f"  compatible {role} {escape(c['path'])}: {escape(c['what'])}", highlight=False)
    for m in d["modules"]:
        out.print(f"  modules {escape(m['old'])} -> {escape(m['new'])}: " + ("[red]widens[/]" if m["widened"] else "does not widen"), highlight=False)
        for g in m["added"]:
            out.print(f"    + {escape(g['line'] if 'line' in g else str(g))}", highlight=False)
        for g in m["removed"]:
            out.print(f"    - {escape(g['line'] if 'line' in g else str(g))}", highlight=False)
    if d["modules_note"]:
        out.print(f"  [dim]{escape(d['modules_note'])}[/]", highlight=False)


def problems(router: Router) -> list[dict[str, Any]]:
    """The breaking steps without a transformer: what `gati versions check` fails on."""
    found = []
    for entry in router.routes:
        vs = entry.versions
        if vs is None:
            continue
        for prev, v, step in zip(vs.versions, vs.versions[1:], vs.steps):
            if step.compat.breaking and not step.transformed:
                transform = Path(v.route.rel).with_name(Path(v.route.rel).stem + ".transform.py")
                found.append({
                    "route": vs.pattern, "from": prev.label, "to": v.label, "file": v.route.rel, "reasons": list(step.compat.reasons),
                    "fix": f"add handlers/{transform} with up(body) and down(body) between versions {prev.label} and {v.label}, "
                           f"or make version {v.label} compatible (optional new request fields, no removed response fields)",
                })
    return found


@versions_app.command("check")
@user_errors
def check(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """CI gate: exit 1 when a route has a breaking step between versions without a transformer,
    or a version clients were served has a breaking change in its own file."""
    loaded = _open(project)
    try:
        found = problems(loaded.router)
        in_place = [c.to_dict() for c in changed_in_place(loaded.store, current_manifests(loaded))] if loaded.store else []
    finally:
        loaded.close()
    if as_json:
        print_json({"ok": not found and not in_place, "problems": found, "changed_in_place": in_place})
    else:
        for p in found:
            out.print(f"[bold red]breaking[/] {escape(p['route'])}: version {p['from']} -> {p['to']} ({escape(p['file'])}) without a transformer", highlight=False)
            for reason in p["reasons"]:
                out.print(f"    - {escape(reason)}", highlight=False)
            out.print(f"  [bold]fix:[/] {escape(p['fix'])}", highlight=False)
        for c in in_place:
            out.print(f"[bold red]changed in place[/] {escape(c['route'])}: version {c['version']} ({escape(c['file'])}) breaks the contract its clients were served", highlight=False)
            for reason in c["reasons"]:
                out.print(f"    - {escape(reason)}", highlight=False)
            out.print(f"  [bold]fix:[/] {escape(c['fix'])}", highlight=False)
        out.print(f"{len(found)} breaking step(s) without a transformer" if found else "every breaking step has a transformer", highlight=False)
        if in_place:
            out.print(f"{len(in_place)} served version(s) changed in place", highlight=False)
    if found or in_place:
        raise typer.Exit(1)


def current_manifests(loaded: Loaded) -> dict[tuple[str, str], dict[str, Any]]:
    """(route, version) -> the manifest its file gives now (made by Loaded), keyed as the store keys them (service.graph_of)."""
    current = {}
    for entry in loaded.router.routes:
        own = {v.label: v.route for v in entry.versions.versions} if entry.versions else {entry.version or "1": entry}
        for label, route in own.items():
            current[(entry.pattern, label)] = loaded.manifests[id(route)].to_dict()
    return current


def _set_state(spec: str, project: Path, state: str, reason: str) -> tuple[str, str]:
    loaded = _open(project, create_store=True)
    try:
        entry, label, _ = loaded.version(spec)
        if (entry.pattern, label) not in loaded.rows:  # never served yet: the store learns the project's versions now
            loaded.record(time.time())
        loaded.store.set_state(entry.pattern, label, state, reason, time.time())
        return entry.pattern, label
    finally:
        loaded.close()


@versions_app.command("retire")
@user_errors
def retire(
    spec: Annotated[str, typer.Argument(metavar="ROUTE@V")],
    reason: Annotated[str, typer.Option("--reason", help="Said in the 410 answers.")] = "retired by hand",
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Stop serving a version: requests naming it get 410 Gone, naming the current version."""
    pattern, label = _set_state(spec, project, RETIRED, reason)
    print_json({"route": pattern, "version": label, "state": RETIRED}) if as_json else out.print(f"{escape(pattern)} version {label}: retired", highlight=False)


@versions_app.command("restore")
@user_errors
def restore(spec: Annotated[str, typer.Argument(metavar="ROUTE@V")], project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Serve a retired or drained version again."""
    pattern, label = _set_state(spec, project, LIVE, "")
    print_json({"route": pattern, "version": label, "state": LIVE}) if as_json else out.print(f"{escape(pattern)} version {label}: served again", highlight=False)
