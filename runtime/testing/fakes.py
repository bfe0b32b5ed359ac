"""fake_gctx() and fake_lctx(): the two contexts, for unit tests that call a handler function directly.

    from runtime.testing import fake_gctx, fake_lctx, simulate

    async def test_handler():
        greet = simulate("modules/greet", hello={"message": "hi"})
        gctx = fake_gctx(config={"greeting": "hey"}, modules=[greet], secrets={"api_key": "k"})
        res = Response()
        await handler(fake_request(query={"name": "ada"}), res, gctx, fake_lctx())
        assert greet.calls[0].payload == {"name": "ada"}

The parts are the real ones where they run in-process (the frozen config, the in-memory
pub/sub, the secrets access check, module handles); modules are simulated, with faults if given.
"""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Any, Iterable, Mapping

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict
from yarl import URL

from runtime.core.call import CallContext, request_context
from runtime.core.errors import ModuleNotFound
from runtime.core.secrets import Grant, SecretAccess, Secrets
from runtime.http.context import GlobalContext, LocalContext
from runtime.http.pubsub import MemoryBus
from runtime.http.request import Request
from runtime.http.routing import import_file
from runtime.modules import ModuleHandle
from runtime.testing.doubles import ModuleDoubles
from runtime.testing.faults import Fault
from runtime.testing.simulate import SimulatedModule


class FakeModules:
    """gctx.modules over simulated modules only: `modules.greet.hello({...})`, `modules["greet"]`."""

    def __init__(self, doubles: ModuleDoubles):
        self.doubles = doubles

    async def call(self, module: str, method: str, payload: Any = None, *, ctx: CallContext | None = None) -> Any:
        return await self.doubles(module, method, payload, ctx or request_context.get(), self._missing)

    async def _missing(self, module: str, method: str, payload: Any, ctx: CallContext) -> Any:
        raise ModuleNotFound(
            f"no module named {module!r} in this fake gctx",
            fix=f"pass fake_gctx(modules=[simulate('modules/{module}', {method}=...)])",
            module=module,
        )

    def __getitem__(self, name: str) -> ModuleHandle:
        return ModuleHandle(self, name)  # a handle only needs .call(module, method, payload)

    def __getattr__(self, name: str) -> ModuleHandle:
        if name.startswith("_"):
            raise AttributeError(name)
        return ModuleHandle(self, name)

    def __contains__(self, name: str) -> bool:
        return name in self.doubles.simulated

    def __iter__(self):
        return iter(sorted(self.doubles.simulated))


class _Values:
    name = "test"

    def __init__(self, values: Mapping[str, str]):
        self.values = dict(values)

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def fake_gctx(
    config: Mapping[str, Any] | None = None,
    modules: Iterable[SimulatedModule] = (),
    *,
    secrets: Mapping[str, str] | None = None,
    faults: Iterable[Fault] = (),
    metrics: Any = None,
) -> GlobalContext:
    """A gctx whose modules are the simulated ones given, and whose secrets are the dict given (all readable)."""
    doubles = ModuleDoubles(modules, faults)
    values = dict(secrets or {})
    access = SecretAccess(Secrets(providers=[_Values(values)]), Grant(frozenset(values), "the test", "pass fake_gctx(secrets={{{name}: ...}})"))
    return GlobalContext(dict(config or {}), FakeModules(doubles), secrets=access, metrics=metrics, pubsub=MemoryBus())


def fake_lctx(request_id: str | None = None, *, route: str = "", version: str = "", **state: Any) -> LocalContext:
    """An lctx for one request; keyword arguments become its state (lctx.get(key))."""
    lctx = LocalContext(request_id)
    lctx.route, lctx.version = route, version
    for key, value in state.items():
        lctx.set(key, value)
    return lctx


def fake_request(
    method: str = "GET",
    path: str = "/",
    *,
    params: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    body: bytes | None = None,
) -> Request:
    """A handler's `req` without a server: path params, query, headers and a body (json= or body=)."""
    hdrs = CIMultiDict(headers or {})
    if json is not None:
        body = jsonlib.dumps(json).encode()
        hdrs.setdefault("Content-Type", "application/json")
    url = str(URL(path).with_query(dict(query or {}))) if query else path
    raw = make_mocked_request(method, url, headers=hdrs)
    request = Request(raw, dict(params or {}))
    if body is not None:
        request._body = body  # what req.body()/req.json()/req.text() read, as if the client had sent it
    return request


def load_handler(file: str | Path, name: str = "handler"):
    """A handler file's function (or any other name it defines), imported as the server imports it."""
    return getattr(import_file(Path(file).resolve(), prefix="gati_test_handlers"), name)


__all__ = ["FakeModules", "fake_gctx", "fake_lctx", "fake_request", "load_handler"]
