"""Transformers: how a request written for an older version is served by a newer one.

    # handlers/users/[id]@2.transform.py: between version 1 and version 2
    def up(body):      # a version-1 request body -> a version-2 request body
        return {"name": {"first": body["first"], "last": body["last"]}}

    def down(body):    # a version-2 response body -> a version-1 response body
        return {"first": body["name"]["first"], "last": body["name"]["last"]}

A request pinned to version 1 of a route whose versions 2 and 3 both have transformers runs
version 3's handler: its body goes up 1->2->3, the answer comes down 3->2->1. Both functions
take and return JSON values (dicts, lists, strings, numbers, None); plain `def`s, run inline.
Only JSON bodies are transformed: a request without a body, and error answers, pass as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import msgspec

from runtime.core.errors import GatiError
from runtime.http.gtype import GType, ValidationFailed
from runtime.http.lifecycle import ResponseInvalid


class TransformerError(GatiError):
    """A transformer file that cannot complete a chain: refused at start."""

    code = "transformer_invalid"


@dataclass(frozen=True)
class Transformer:
    file: Path
    up: Callable[[Any], Any]
    down: Callable[[Any], Any]

    @classmethod
    def of(cls, module: ModuleType, file: Path) -> Transformer:
        fns = {name: getattr(module, name, None) for name in ("up", "down")}
        missing = [name for name, fn in fns.items() if not callable(fn)]
        if missing:
            raise TransformerError(
                f"{file}: defines no {' and no '.join(missing)}(body)",
                fix="define both: def up(body) (older request -> this version's) and def down(body) (this version's answer -> older)",
                file=str(file),
            )
        return cls(file, fns["up"], fns["down"])


@dataclass(frozen=True)
class Chain:
    """The transformers from a pinned version up to the one that runs, oldest step first."""

    steps: tuple[Transformer, ...]

    def up(self, body: Any) -> Any:
        for step in self.steps:
            body = step.up(body)
        return body

    def down(self, body: Any) -> Any:
        for step in reversed(self.steps):
            body = step.down(body)
        return body


class TransformedLifecycle:
    """A newer version's lifecycle serving requests pinned to an older one, through a chain.

    The body is checked against the pinned version's REQUEST, taken up the chain, and the newer
    lifecycle runs as usual (its own checks included); its JSON answer comes down the chain and
    is checked against the pinned version's RESPONSE."""

    def __init__(self, inner: Any, chain: Chain, request_type: GType | None, response_type: GType | None, name: str):
        self.inner, self.chain, self.name = inner, chain, name
        self.request_type, self.response_type = request_type, response_type

    async def run(self, req: Any, res: Any, gctx: Any, lctx: Any) -> Any:
        body = await req.body()
        if body.strip():
            value = await req.json()
            if self.request_type is not None:
                try:
                    value = self.request_type.check(value)
                except ValidationFailed as err:
                    lctx.emit("validation:error", what="request", errors=len(err.issues))
                    raise
            req.replace_body(msgspec.json.encode(self._call("up", value, lctx)))
        result = await self.inner.run(req, res, gctx, lctx)
        if hasattr(result, "prepare") or not 200 <= res.status_code < 300 or res.content is None:
            return result
        if not (res.content_type or "").startswith("application/json"):
            return result
        answer = self._call("down", msgspec.json.decode(res.content), lctx)
        if self.response_type is not None:
            issues = self.response_type.issues(answer)
            if issues:
                lctx.emit("validation:error", what="response", errors=len(issues))
                raise ResponseInvalid(
                    f"the answer transformed down for {self.name} does not match its RESPONSE type: {issues[0].path}: expected {issues[0].expected}",
                    fix="fix the down() functions of the transformer chain, or the older version's RESPONSE type",
                )
        res.json(answer)
        return result

    def _call(self, direction: str, value: Any, lctx: Any) -> Any:
        try:
            return getattr(self.chain, direction)(value)
        except Exception as exc:
            lctx.emit("transform:error", direction=direction, error=f"{type(exc).__name__}: {exc}")
            raise

    async def recover(self, err: BaseException, req: Any, res: Any, gctx: Any, lctx: Any) -> bool:
        return await self.inner.recover(err, req, res, gctx, lctx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
