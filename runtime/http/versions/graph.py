"""One route's versions: which one is the default, and which code serves each version asked for.

Walking the versions oldest first, each step from the previous one is compared (compat.py):
  - not breaking: the newer version becomes the default;
  - breaking, with a transformer ([id]@N.transform.py): the newer version becomes the default,
    and requests pinned to older versions are transformed up to it (and its answers down);
  - breaking, without a transformer: both stay live, the default stays where it was, and the
    newer version is reached only by asking for it (header, date pin, query).
Once a step breaks without a transformer the default stops there for good: a client that asks
for nothing keeps the contract it was written against.

A pinned version is served by the newest version its transformers reach: version 1 runs
version 3's handler when versions 2 and 3 both have transformers, version 2's when only 2 has.
Every table here is made once at load; a request costs VersionTable.resolve and a dict lookup.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from runtime.core.errors import GatiError
from runtime.http.versions.availability import Out, effective, fallback, refuse
from runtime.http.versions.compat import Compat, compare
from runtime.http.versions.deprecation import successor
from runtime.http.versions.resolver import QUERY_PARAM, VersionTable
from runtime.http.versions.transformers import Chain, Transformer, TransformerError

HEADER, ALT_HEADER = "Gati-Version", "Accept-Version"


class VersionError(GatiError):
    """A version declaration that cannot be served as written: refused at start."""

    code = "version_invalid"


class VersionMethodNotAllowed(GatiError):
    code = "method_not_allowed"
    http_status = 405


@dataclass(frozen=True)
class Version:
    label: str
    route: Any  # runtime.http.routing.Route of this version's file
    since: int  # day ordinal it went live (0: from the beginning)
    transformer: Transformer | None  # from the previous version to this one


@dataclass(frozen=True)
class Pinned:
    """What a Route that serves an older version through a chain carries (Route.pinned)."""

    label: str  # the version asked for
    runs: str  # the version whose handler runs
    chain: Chain
    request_type: Any  # the pinned version's GType (or None)
    response_type: Any


@dataclass(frozen=True)
class Step:
    label: str  # the newer version of the pair
    compat: Compat
    transformed: bool


def _compare(a: Any, b: Any) -> Compat:
    lost = tuple(sorted(m for m in a.methods if not b.allows(m)))
    return compare(a.request_type, b.request_type, a.response_type, b.response_type, lost)


class VersionSet:
    """The versions of one route, live side by side."""

    def __init__(self, pattern: str, versions: list[Version]):
        self.pattern = pattern
        versions = self._announced(versions)
        self.versions = tuple(versions)  # oldest first
        self.steps: tuple[Step, ...] = tuple(
            Step(b.label, _compare(a.route, b.route), b.transformer is not None) for a, b in zip(versions, versions[1:])
        )
        default, previous = versions[0].label, ""
        for step in self.steps:
            if step.compat.breaking and not step.transformed:
                break
            default, previous = step.label, default
        self.default = default
        rollout = 100
        for v in versions:
            if v.route.rollout is None:
                continue
            if v.label != default or not previous:
                raise VersionError(
                    f"{v.route.file}: ROLLOUT = {v.route.rollout}, but version {v.label} of {pattern} "
                    + ("is the oldest: there is no previous default to keep" if not previous else f"is not the default (version {default} is)"),
                    fix="ROLLOUT belongs in the version that becomes the default (a non-breaking or transformed step); remove it here",
                )
            rollout = v.route.rollout
        self.table = VersionTable(pattern, tuple(v.label for v in versions), tuple(v.since for v in versions), default, rollout, previous)
        self.serve: dict[str, Any] = {v.label: self._served(i) for i, v in enumerate(versions)}
        self.methods = frozenset(m for v in versions for m in v.route.methods)
        self.labels = self.table.labels
        self.runs = {label: (route.pinned.runs if route.pinned else label) for label, route in self.serve.items()}
        # Out of service (availability.py): marks by the health checks and the store, and what they
        # mean per label; empty while everything is served, which is all a request checks then.
        self.marks: dict[str, Out] = {}
        self.out: dict[str, Out] = {}
        # The versions clients asked for since the store last took them (service.py): a set add per request.
        self.seen: set[str] = set()

    def _announced(self, versions: list[Version]) -> list[Version]:
        """Versions whose file declares DEPRECATED or SUNSET also announce their successor: the next version."""
        out = []
        for i, v in enumerate(versions):
            if v.route.announce and i + 1 < len(versions):
                v = dataclasses.replace(v, route=dataclasses.replace(v.route, announce=v.route.announce + (successor(versions[i + 1].label),)))
            out.append(v)
        return out

    def mark(self, label: str, out: Out | None) -> bool:
        """Take a version out of service (or, None, put it back); True when that changed anything."""
        if self.marks.get(label) == out:
            return False
        if out is None:
            del self.marks[label]
        else:
            self.marks[label] = out
        self.out = effective(self.labels, self.runs, self.marks)
        return True

    def _served(self, i: int) -> Any:
        """The Route that answers requests pinned to versions[i]: its own, or a newer one through transformers."""
        pinned = self.versions[i]
        j = i
        while j + 1 < len(self.versions) and self.versions[j + 1].transformer is not None:
            j += 1
        if j == i:
            return pinned.route
        target = self.versions[j]
        lost = sorted(m for m in pinned.route.methods if not target.route.allows(m))
        if lost:
            raise TransformerError(
                f"{target.transformer.file if j == i + 1 else self.versions[i + 1].transformer.file}: requests for version {pinned.label} "
                f"of {self.pattern} go up to version {target.label}, which does not serve {', '.join(lost)}",
                fix=f"add {', '.join(lost)} to METHODS in {target.route.rel}, or remove the transformers so version {pinned.label} keeps its own handler",
            )
        chain = Chain(tuple(v.transformer for v in self.versions[i + 1 : j + 1]))
        return dataclasses.replace(
            target.route,
            version=pinned.label,
            pinned=Pinned(pinned.label, target.label, chain, pinned.route.request_type, pinned.route.response_type),
            announce=pinned.route.announce,  # the version asked is the one deprecated, not the one that runs
        )

    def pick(self, request: Any) -> Any:
        """The Route for this aiohttp request: its version resolved (resolver.py), then its method checked.

        During a rollout the client is its credentials (Authorization, X-API-Key), else the first
        X-Forwarded-For address, else the peer's address. A client may choose its bucket by what it
        sends: no harm, it may as well ask for a version by name."""
        headers, url, method = request.headers, request.rel_url, request.method
        client = ""
        if self.table.rollout < 100:
            forwarded = headers.get("X-Forwarded-For", "").split(",")[0].strip()
            client = headers.get("Authorization") or headers.get("X-API-Key") or forwarded or request.remote or ""
        header = headers.get(HEADER) or headers.get(ALT_HEADER)
        query = url.query.get(QUERY_PARAM) if url.raw_query_string else None
        asked = self.table.resolve(header, query, client)
        self.seen.add(asked)
        if self.out:  # some version is out of service (availability.py)
            asked = self._available(asked, header or query)
        route = self.serve[asked]
        if not route.allows(method):
            methods = ", ".join(sorted(route.methods))
            err = VersionMethodNotAllowed(f"version {asked} of {self.pattern} does not serve {method}", fix=f"use one of: {methods}, or another version", allow=methods)
            err.http_headers = {"Allow": methods}
            raise err
        return route

    def _available(self, asked: str, named: str | None) -> str:
        out = self.out.get(asked)
        if out is None:
            return asked
        if named:
            raise refuse(self.pattern, asked, out, self.labels, self.out, self.default)
        label = fallback(self.labels, asked, self.out)
        if label is None:
            raise refuse(self.pattern, asked, out, self.labels, self.out, self.default)
        return label

    def routes(self) -> list[Any]:
        """Every Route a request may run: each version's own, and those serving pinned versions through chains."""
        out = {id(v.route): v.route for v in self.versions}
        out.update({id(r): r for r in self.serve.values()})
        return list(out.values())

    def describe(self) -> dict[str, Any]:
        """The version graph, as JSON: what `gati versions` shows and the manifest store (store.py) keeps."""
        return {
            "route": self.pattern,
            "default": self.default,
            "rollout": {"percent": self.table.rollout, "others_get": self.table.previous} if self.table.rollout < 100 else None,
            "versions": [
                {
                    "version": v.label,
                    "file": v.route.rel,
                    "since": datetime.date.fromordinal(v.since).isoformat() if v.since else None,
                    "served_by": self.serve[v.label].pinned.runs if self.serve[v.label].pinned else v.label,
                }
                for v in self.versions
            ],
            "steps": [
                {"version": s.label, "breaking": s.compat.breaking, "reasons": list(s.compat.reasons), "transformed": s.transformed, "transformer": _transformer_file(v)}
                for s, v in zip(self.steps, self.versions[1:])
            ],
        }


def _transformer_file(v: Version) -> str | None:
    return str(PurePosixPath(v.route.rel).with_name(v.transformer.file.name)) if v.transformer is not None else None
