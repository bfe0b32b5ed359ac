"""Which versions a request may be sent to, when some are out: failing their health checks, or retired.

    out of service   kind "unhealthy" (HEALTH, runtime.http.versions.health) or "retired"
                     (drained, or `gati versions retire`; runtime.http.versions.store)

A request that names a version (header, date pin, query) gets that version or an error: 410 Gone
when it is retired (naming the current version), 503 when it is unhealthy (naming the healthy
ones). A request that names none gets its default (or, during a rollout, the previous default);
when that one is out, the newest version older than it that is in service: the versions the
default passed through on its way, oldest last. A newer version is never chosen for it: the step
past the default breaks its clients.

A version served through transformers by a newer one is out when the one that runs is unhealthy.
Pure functions: the VersionSet (graph.py) calls them only when something is out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from runtime.core.errors import GatiError

UNHEALTHY, RETIRED = "unhealthy", "retired"


@dataclass(frozen=True)
class Out:
    kind: str  # UNHEALTHY | RETIRED
    reason: str


class VersionUnavailable(GatiError):
    code = "version_unavailable"
    http_status = 503


class VersionRetired(GatiError):
    code = "version_retired"
    http_status = 410


def effective(labels: Sequence[str], runs: Mapping[str, str], marks: Mapping[str, Out]) -> dict[str, Out]:
    """Per label, why a request for it cannot be served: its own mark, or the mark of the
    version that runs it (through transformers) when that one is unhealthy."""
    out: dict[str, Out] = {}
    for label in labels:
        own, runner = marks.get(label), marks.get(runs.get(label, label))
        if own is not None:
            out[label] = own
        elif runner is not None and runner.kind == UNHEALTHY:
            out[label] = Out(UNHEALTHY, f"version {runs[label]}, which serves it through transformers, is unhealthy: {runner.reason}")
    return out


def fallback(labels: Sequence[str], resolved: str, out: Mapping[str, Out]) -> str | None:
    """For a request that named no version: resolved if in service, else the newest older one in service."""
    i = labels.index(resolved)
    for label in reversed(labels[: i + 1]):
        if label not in out:
            return label
    return None


def refuse(route: str, asked: str, out: Out, labels: Iterable[str], outs: Mapping[str, Out], current: str) -> GatiError:
    """The error for a request that named a version that is out."""
    serving = [label for label in labels if label not in outs]
    if out.kind == RETIRED:
        return VersionRetired(
            f"version {asked} of {route} is retired ({out.reason})",
            fix=f"move to version {current}, the current one: send Gati-Version: {current}, or no version",
            version=asked,
            current=current,
        )
    return VersionUnavailable(
        f"version {asked} of {route} is out of service: {out.reason}",
        fix=(f"send Gati-Version: one of {', '.join(serving)} (in service), or retry later" if serving else "retry later: no version of this route is in service"),
        version=asked,
        healthy=serving,
    )


def drained(candidates: Mapping[str, float], now: float, window_s: float) -> set[str]:
    """The versions no client asked for within window_s before now.

    candidates: label -> the last time a client asked for it (or, never asked, when it was first
    stored); the default and the rollout's previous default are left out by the caller."""
    return {label for label, seen in candidates.items() if now - seen >= window_s}
