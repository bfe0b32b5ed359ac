"""Deprecation and sunset of a version, announced on its answers.

A version file may declare

    DEPRECATED = "2026-12-01"   # the day it is (or was) deprecated -> Deprecation: @1796083200 (RFC 9745)
    SUNSET = "2027-03-01"       # the day it stops being served    -> Sunset: Mon, 01 Mar 2027 00:00:00 GMT (RFC 8594)

Both are dates (YYYY-MM-DD, midnight UTC). Answers of that version carry the headers, and, when
the route has a newer version to move to, `Link: <?version=N>; rel="successor-version"` (a
reference relative to the request's own URL: the same resource, at version N). Nothing is
computed from the other versions: a version is deprecated when its file says so. The headers
are made once, when the file is loaded.
"""

from __future__ import annotations

import datetime
from email.utils import format_datetime

Headers = tuple[tuple[str, str], ...]


def announce(deprecated: str, sunset: str) -> Headers:
    """The headers for DEPRECATED and SUNSET ("" for each not declared); ValueError naming a bad date."""
    out: list[tuple[str, str]] = []
    if deprecated:
        out.append(("Deprecation", f"@{int(_midnight(deprecated, 'DEPRECATED').timestamp())}"))
    if sunset:
        day = _midnight(sunset, "SUNSET")
        if deprecated and day < _midnight(deprecated, "DEPRECATED"):
            raise ValueError(f"SUNSET = {sunset!r} is before DEPRECATED = {deprecated!r}")
        out.append(("Sunset", format_datetime(day, usegmt=True)))
    return tuple(out)


def successor(label: str) -> tuple[str, str]:
    return ("Link", f'<?version={label}>; rel="successor-version"')


def _midnight(text: str, name: str) -> datetime.datetime:
    if not isinstance(text, str) or len(text) != 10:
        raise ValueError(f"{name} = {text!r} is not a date YYYY-MM-DD")
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} = {text!r} is not a date YYYY-MM-DD") from None
    return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)
