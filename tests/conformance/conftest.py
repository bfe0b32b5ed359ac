"""Fixtures of the conformance suite: `backend` (one run per entry of backends.BACKENDS), the
probe installed from a manifest variant, an origin server for egress, the greet module."""

from __future__ import annotations

import asyncio
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiohttp import web

from runtime.core.audit_log import read_events
from runtime.core.state import StateDir
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager
from runtime.reports.probe import EGRESS_HOSTS

from .backends import BACKENDS, CTX, ENVIRON, Backend

GREET = Path(__file__).resolve().parents[2] / "sample_modules" / "greet-wat"


@pytest.fixture(params=[pytest.param(kind, marks=b.marks) for kind, b in BACKENDS.items()])
def backend(request) -> Backend:
    b = BACKENDS[request.param]
    reason = b.unavailable()
    if reason:
        pytest.skip(f"{b.kind}: {reason}")
    marker = request.node.get_closest_marker("needs")
    missing = sorted(set(marker.args) - b.offers) if marker else []
    if missing:
        pytest.skip(f"{b.kind} modules have no {', '.join(missing)} of their own")
    return b


@pytest.fixture
async def manager(state):
    manager = ModuleManager(state, egress_hosts=EGRESS_HOSTS, environ=dict(ENVIRON))
    yield manager
    await manager.close()


@dataclass
class Probe:
    """The backend's probe, registered in this test's state, and how to call it."""

    backend: Backend
    manager: ModuleManager
    state: StateDir
    folder: Path
    manifest: dict

    async def __call__(self, method: str, payload: Any = None) -> Any:
        return await self.manager.call(self.manifest["name"], method, payload, ctx=CTX)

    @property
    def limits(self) -> dict:
        return self.manifest["limits"]

    def events(self, capability: str | None = None) -> list[dict]:
        """Every audit record, of this module and any other."""
        return [e for e in read_events(self.state.audit_path) if capability is None or e["capability"] == capability]

    def asked(self, capability: str | None = None) -> list[dict]:
        """The records of what this test's calls asked for (not what the sandbox was handed at its start)."""
        return [e for e in self.events(capability) if e["caller"] == CTX.caller]

    def handed(self) -> list[dict]:
        """The records of what the sandbox was handed at its start (its environment, its mounts)."""
        return [e for e in self.events() if e["caller"] == f"module:{self.manifest['name']}" and not e["capability"].startswith("limit.")]

    async def still_serving(self) -> None:
        assert await self("echo", {"still": "serving"}) == {"still": "serving"}


@pytest.fixture
def install(backend, state, manager, tmp_path):
    """install(capabilities={...}, limits={...}, methods={"spin": {"timeout_ms": 200}}) registers a
    copy of the backend's probe with those manifest sections updated, and returns a Probe."""

    def make(*, capabilities: dict | None = None, limits: dict | None = None, methods: dict | None = None, name: str = "probe") -> Probe:
        folder = tmp_path / "modules" / name
        shutil.copytree(backend.probe, folder)  # follows the Python probes' probe.py link
        manifest = tomllib.loads((folder / "module.toml").read_text())
        manifest["name"] = name
        manifest["capabilities"].update(capabilities or {})
        manifest["limits"].update(limits or {})
        for method, settings in (methods or {}).items():
            manifest["methods"][method].update(settings)
        (folder / "module.toml").write_text(tomli_w.dumps(manifest))
        register_module(state, folder)
        return Probe(backend, manager, state, folder, manifest)

    return make


@pytest.fixture
def greet(state):
    """The greet sample (wasm), for module calls: its `count` uses a kv store of its own."""
    assert (GREET / "build" / "greet.wasm").exists(), "build the sample modules first: make modules"
    return register_module(state, GREET)


@dataclass
class Origin:
    """An HTTP server on the host's loopback: what egress may reach, or must not."""

    port: int
    hits: list[str]  # the paths it was asked for
    arrived: asyncio.Event  # a request reached /hold
    release: asyncio.Event  # /hold answers once this is set

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def origin(loopback_http):
    found = Origin(0, [], asyncio.Event(), asyncio.Event())

    async def answer(request):
        found.hits.append(request.path)
        if request.path == "/hold":
            found.arrived.set()
            await found.release.wait()
        return web.json_response({"path": request.path})

    found.port = await loopback_http(answer)
    yield found
    found.release.set()
