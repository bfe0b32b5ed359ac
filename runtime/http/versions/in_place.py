"""A served version changed in its own file: a contract broken under a label clients already rely on.

A version label is a promise: a client that asked for /users/{id}@2 keeps the contract it was
served with. Changing handlers/users/[id]@2.py's REQUEST or RESPONSE in place breaks that client
with no step between versions to see (`gati versions check` compares neighbouring versions), so
the check also holds each version's current manifest against every manifest the store kept for
it while clients were served (first_served .. last_served). Both sides go through the same JSON
Schema -> GType reading (runtime.http.gtype_schema), so an unchanged contract compares equal,
and the verdict is compat.compare's, the same rules as between versions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from runtime.http.gtype import GType
from runtime.http.gtype_schema import from_json_schema
from runtime.http.versions.compat import compare
from runtime.http.versions.store import RETIRED, Store


@dataclass(frozen=True)
class InPlaceChange:
    route: str
    version: str
    file: str
    reasons: tuple[str, ...]  # compat.compare's, against the contract clients were served
    unsure: tuple[str, ...]  # schema parts a GType cannot say: compared without them

    def to_dict(self) -> dict[str, Any]:
        stem = self.file.rsplit(".", 1)[0].split("@")[0]
        return {
            "route": self.route, "version": self.version, "file": self.file, "reasons": list(self.reasons), "unsure": list(self.unsure),
            "fix": f"put version {self.version}'s served contract back in handlers/{self.file} and make the change a new version "
                   f"(handlers/{stem}@N.py, with a transformer if it breaks); `gati versions show {self.route}@{self.version}` lists the stored manifests",
        }


def changed_in_place(store: Store, current: Mapping[tuple[str, str], Mapping[str, Any]], now: float | None = None) -> list[InPlaceChange]:
    """current: (route, version) -> that version's manifest as its file says now (HandlerManifest.to_dict)."""
    now = time.time() if now is None else now
    rows = store.versions()
    found = []
    for (route, version), manifest in sorted(current.items()):
        row = rows.get((route, version))
        if row is None or row.first_served is None or row.state == RETIRED:
            continue  # never served (still free to change), or no client is served it
        reasons: list[str] = []
        unsure: list[str] = []
        new_request, new_response = _gtype(manifest.get("request"), unsure), _gtype(manifest.get("response"), unsure)
        for served in _served_manifests(store, route, version, row.first_served, row.last_served or now):
            lost = tuple(sorted(set(served["methods"]) - set(manifest["methods"])))
            verdict = compare(_gtype(served.get("request"), unsure), new_request, _gtype(served.get("response"), unsure), new_response, lost)
            reasons += [r for r in verdict.reasons if r not in reasons]
        if reasons:
            found.append(InPlaceChange(route, version, manifest["file"], tuple(reasons), tuple(dict.fromkeys(unsure))))
    return found


def _served_manifests(store: Store, route: str, version: str, first: float, last: float) -> list[dict[str, Any]]:
    """The stored manifests in effect at some time in [first, last]: each from its stored_at until the next one's."""
    history = store.manifest_history(route, version)
    served = []
    for i, (fingerprint, stored_at) in enumerate(history):
        until = history[i + 1][1] if i + 1 < len(history) else float("inf")
        if stored_at <= last and until >= first:
            manifest = store.manifest(fingerprint)
            if manifest is not None:
                served.append(manifest)
    return served


def _gtype(schema: Any, unsure: list[str]) -> GType | None:
    if schema is None:
        return None
    converted = from_json_schema(schema)
    unsure += converted.unsure
    return converted.type
