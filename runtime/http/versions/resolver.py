"""The version a request asks for, in this order:

    1. an explicit version header:  Gati-Version: 2   (or Accept-Version: 2; Gati-Version wins)
    2. a date pin in that header:   Gati-Version: 2026-11-01 -> the newest version live that day
    3. the query parameter:         ?version=2 (or ?version=2026-11-01)
    4. the route's default          (runtime.http.versions.graph decides it)

A version is live from its SINCE date (the handler file's `SINCE = "2026-11-01"`); one without
SINCE is live from its predecessor's date, or from the beginning. A name that is no version of
the route, or a date before every version, is the client's error (400) naming what exists.

Pure: strings in, a label out. It runs on every request to a versioned route, so the tables
are built once and the common cases are a dict lookup.
"""

from __future__ import annotations

import datetime
from bisect import bisect_right
from dataclasses import dataclass, field

from runtime.core.errors import GatiError

QUERY_PARAM = "version"


class UnknownVersion(GatiError):
    code = "unknown_version"
    http_status = 400


@dataclass(frozen=True)
class VersionTable:
    route: str  # "/users/{id}", for messages
    labels: tuple[str, ...]  # oldest first
    since: tuple[int, ...]  # per label: the proleptic ordinal of the day it went live (0: always)
    default: str
    _known: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_known", frozenset(self.labels))
        if self.default not in self._known or len(self.since) != len(self.labels) or list(self.since) != sorted(self.since):
            raise ValueError(f"inconsistent version table for {self.route}: {self.labels} {self.since} default {self.default}")

    def resolve(self, header: str | None, query: str | None) -> str:
        """The label the request asks for: header (a label or a date), else query, else the default."""
        asked, where = (header, "the Gati-Version header") if header else (query, "?version=") if query else (None, "")
        if asked is None:
            return self.default
        if asked in self._known:
            return asked
        day = _date(asked)
        if day is None:
            raise self._unknown(f"{where} names version {asked!r}, which {self.route} does not have")
        i = bisect_right(self.since, day) - 1
        if i < 0:
            raise self._unknown(f"{where} pins {asked}, before any version of {self.route} was live")
        return self.labels[i]

    def _unknown(self, message: str) -> UnknownVersion:
        dated = [f"{label} (since {_show(d)})" if d else label for label, d in zip(self.labels, self.since)]
        return UnknownVersion(
            message,
            fix=f"send Gati-Version: one of {', '.join(dated)}, or a date YYYY-MM-DD; without it you get version {self.default}",
            route=self.route,
            versions=list(self.labels),
            default=self.default,
        )


def parse_since(text: str) -> int:
    """SINCE = "2026-11-01" as a day ordinal; ValueError when it is not a YYYY-MM-DD date."""
    day = _date(text) if isinstance(text, str) else None
    if day is None:
        raise ValueError(f"SINCE = {text!r} is not a date YYYY-MM-DD")
    return day


def _date(text: str) -> int | None:
    # Exactly YYYY-MM-DD (fromisoformat alone also takes 20261101 and week dates).
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        return None
    try:
        return datetime.date.fromisoformat(text).toordinal()
    except ValueError:
        return None


def _show(day: int) -> str:
    return datetime.date.fromordinal(day).isoformat()
