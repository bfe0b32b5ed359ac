"""The API as a client pinned to one version sees it: what the OpenAPI document of a version is made from.

    resolution(router, "1")         -> (("/users/{id}", "1"), ("/v", None))   per versioned route, the
                                       label a request sending `Gati-Version: 1` resolves to (None: 400)
    seen_by(router, resolved)       -> the HandlerManifests that client is served, in document order
    listing(router)                 -> each versioned route's versions, for the document's `x-gati`
    retired(router)                 -> the versions retired while serving (what the documents depend on)

The rules are the resolver's for an explicitly asked version (runtime.http.versions.resolver):
a label the route has is that version; a date YYYY-MM-DD is the newest version live that day; a
route without it answers 400 unknown_version, and a route where it is retired (drained, or `gati
versions retire`) answers 410: the pinned document leaves that route out, and the listing says
why. A route with one file resolves nothing and answers every client the same: it is in every document.
A version served through transformers is described with its own REQUEST and RESPONSE (the body
is checked against them before it goes up, the answer after it comes down) and the policies of
the handler that runs (its AUTH, limits and module calls apply).

A document depends on the asked version only through its resolution, so the documents can be
kept per resolution: there are at most as many as the labels plus the SINCE dates of the routes.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from runtime.http.handler_manifest import HandlerManifest
from runtime.http.routing import Route, Router
from runtime.http.versions.availability import RETIRED, VersionRetired
from runtime.http.versions.graph import ALT_HEADER, HEADER
from runtime.http.versions.resolver import QUERY_PARAM, UnknownVersion

Resolution = tuple[tuple[str, "str | None"], ...]


def entries(router: Router) -> list[Route]:
    """The router's routes in document order (what `paths` lists)."""
    return sorted(router.routes, key=lambda r: (r.pattern, r.rel))


def resolution(router: Router, asked: str) -> Resolution:
    """Per versioned route, the label `asked` resolves to, or None where the route answers it 400.

    UnknownVersion when it resolves nowhere: a typo, a date before every version, or a project
    whose routes have one version each (a document identical to the default one would hide that);
    VersionRetired when it resolves only to retired versions."""
    resolved: list[tuple[str, str | None]] = []
    gone: list[tuple[str, str]] = []
    for route in entries(router):
        if route.versions is None:
            continue
        try:
            label: str | None = route.versions.table.resolve(asked, None)
        except UnknownVersion:
            label = None
        out = route.versions.marks.get(label) if label else None
        if out is not None and out.kind == RETIRED:
            gone.append((route.pattern, label))
            label = None
        resolved.append((route.pattern, label))
    if gone and not any(label for _, label in resolved):
        where = ", ".join(f"{label} of {pattern}" for pattern, label in gone)
        raise VersionRetired(
            f"version {asked!r} resolves only to retired versions ({where})",
            fix="ask for a version in service (x-gati.versions of the document without a version lists them), or restore it: gati versions restore",
            version=asked,
        )
    if not any(label for _, label in resolved):
        labels = sorted({label for r in router.routes if r.versions for label in r.versions.labels}, key=_label_order)
        if not labels:
            raise UnknownVersion(
                f"version {asked!r} asked, but no route of this project has versions",
                fix="ask for the document without a version: every route has one version",
            )
        raise UnknownVersion(
            f"no route has version {asked!r}",
            fix=f"ask for one of {', '.join(labels)}, or a date YYYY-MM-DD; without a version you get the default document",
            versions=labels,
        )
    return tuple(resolved)


def seen_by(router: Router, resolved: Resolution) -> list[HandlerManifest]:
    """The manifest of what a client of this resolution is served on each route it can call."""
    labels = dict(resolved)
    out = []
    for route in entries(router):
        if route.versions is None:
            out.append(HandlerManifest.of(route))
            continue
        label = labels.get(route.pattern)
        if label is None:
            continue
        served = route.versions.serve[label]
        manifest = HandlerManifest.of(served)
        if served.pinned is not None:  # the client's contract is its own version's, whatever handler runs
            manifest = dataclasses.replace(manifest, request=served.pinned.request_type, response=served.pinned.response_type)
        out.append(manifest)
    return out


def listing(router: Router) -> dict[str, Any] | None:
    """`x-gati.versions` of every document: how to ask for a version, and each versioned route's
    versions (since, served by, deprecated, sunset, methods) and default. None without versioned routes."""
    routes: dict[str, Any] = {}
    for route in entries(router):
        vs = route.versions
        if vs is None:
            continue
        versions = []
        for v in vs.versions:
            entry: dict[str, Any] = {"version": v.label, "methods": sorted(v.route.methods)}
            if v.since:
                entry["since"] = datetime.date.fromordinal(v.since).isoformat()
            if vs.runs[v.label] != v.label:
                entry["served_by"] = vs.runs[v.label]
            if v.route.deprecated:
                entry["deprecated"] = v.route.deprecated
            if v.route.sunset:
                entry["sunset"] = v.route.sunset
            out = vs.marks.get(v.label)
            if out is not None and out.kind == RETIRED:
                entry["retired"] = out.reason
            versions.append(entry)
        routes[route.pattern] = {"default": vs.default, "versions": versions}
        if vs.table.rollout < 100:
            routes[route.pattern]["rollout"] = {"percent": vs.table.rollout, "others_get": vs.table.previous}
    if not routes:
        return None
    return {"header": HEADER, "also_header": ALT_HEADER, "query": QUERY_PARAM, "routes": routes}


def retired(router: Router) -> tuple[tuple[str, str, str], ...]:
    """(route, version, why) of each version retired while serving: the documents change with them."""
    return tuple(
        (route.pattern, label, out.reason)
        for route in entries(router)
        if route.versions is not None
        for label, out in sorted(route.versions.marks.items())
        if out.kind == RETIRED
    )


def _label_order(label: str) -> tuple[int, str]:
    return (int(label), label) if label.isdigit() else (1 << 62, label)
