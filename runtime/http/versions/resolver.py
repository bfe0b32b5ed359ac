"""The version a request asks for, in this order:

    1. an explicit version header:  Gati-Version: 2   (or Accept-Version: 2; Gati-Version wins)
    2. a date pin in that header:   Gati-Version: 2026-11-01 -> the newest version live that day
    3. the query parameter:         ?version=2 (or ?version=2026-11-01)
    4. the route's default          (runtime.http.versions.graph decides it)

A default version may roll out to a share of clients (`ROLLOUT = 10` in its file: percent):
a client that asks for nothing gets it when its bucket (crc32 of route and client key, mod
100) is below the share, and the previous default otherwise. The bucket depends on nothing
else, so a client keeps its version across requests and processes, and raising the share
never moves a client back.

A version is live from its SINCE date (the handler file's `SINCE = "2026-11-01"`); one without
SINCE is live from its predecessor's date, or from the beginning. A name that is no version of
the route, or a date before every version, is the client's error (400) naming what exists.

Pure: strings in, a label out. It runs on every request to a versioned route, so the tables
are built once and the common cases are a dict lookup.
"""

from __future__ import annotations

import datetime
import zlib
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
    rollout: int = 100  # percent of clients the default is served to; the others get previous
    previous: str = ""  # the default before it, while rolling out
    _known: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_known", frozenset(self.labels))
        if self.default not in self._known or len(self.since) != len(self.labels) or list(self.since) != sorted(self.since):
            raise ValueError(f"inconsistent version table for {self.route}: {self.labels} {self.since} default {self.default}")
        if self.rollout < 100 and self.previous not in self._known:
            raise ValueError(f"version table for {self.route}: rolling out {self.default} needs the previous default")

    def resolve(self, header: str | None, query: str | None, client: str = "") -> str:
        """The label the request asks for: header (a label or a date), else query, else the default
        (or, during a rollout, the previous default for the clients outside its share)."""
        asked, where = (header, "the Gati-Version header") if header else (query, "?version=") if query else (None, "")
        if asked is None:
            if self.rollout < 100 and bucket(self.route, client) >= self.rollout:
                return self.previous
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


def bucket(route: str, client: str) -> int:
    """0-99, the same for a client and route in every process (unlike hash(), which is salted per process)."""
    return zlib.crc32(f"{route}\0{client}".encode()) % 100


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
