"""Header redaction: which headers a snapshot never stores the value of.

    Authorization, Proxy-Authorization, Cookie, Set-Cookie    always
    [audit] redact_headers = ["X-Session", ...]               besides them

Names match in any case and every occurrence of a repeated header is redacted. The value is
replaced before anything is stored, so no reader of a snapshot (the store, the playground, a
replay) ever holds it: a replay sends the header only when the person replaying supplies it.
"""

from __future__ import annotations

from typing import Iterable

ALWAYS = ("authorization", "proxy-authorization", "cookie", "set-cookie")
REDACTED = "[redacted]"


class Redactor:
    def __init__(self, extra: Iterable[str] = ()):
        self.names = frozenset(ALWAYS) | {n.strip().lower() for n in extra}

    def redacts(self, name: str) -> bool:
        return name.lower() in self.names

    def headers(self, items: Iterable[tuple[str, str]]) -> list[list[str]]:
        """[name, value] pairs in their order, redacted values replaced by REDACTED."""
        # str(): aiohttp's names are multidict istr, which JSON encoders do not take for str
        return [[str(name), REDACTED if name.lower() in self.names else str(value)] for name, value in items]
