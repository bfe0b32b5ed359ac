"""What the native-backend tests share: module copies with edited manifests, a state, an origin."""

import shutil
from pathlib import Path

import pytest
from aiohttp import web

from runtime.core.audit_log import read_events
from runtime.core.call import CallContext
from runtime.core.state import StateDir
from runtime.modules.manager import ModuleManager

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "runtime" / "reports" / "probes" / "native"  # the one Python probe (runtime/reports/probes/python)
SHORTLINK = ROOT / "sample_modules" / "shortlink-go"
LINKCHECK = ROOT / "sample_modules" / "linkcheck-py"
CTX = CallContext(request_id="req-n1", trace_id="trace-n1", caller="test")

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (make system-deps)")


def install(tmp_path: Path, source: Path, edit=None, name: str | None = None) -> Path:
    """Copy a module folder (without sources it does not run) and optionally edit its manifest."""
    target = tmp_path / "modules" / (name or source.name)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.go", "build.sh", "go-cache", "__pycache__"))
    if edit:
        manifest = target / "module.toml"
        manifest.write_text(edit(manifest.read_text()))
    return target


def script_module(tmp_path: Path, body: str) -> Path:
    """A native module "starter" whose artifact is a shell script running body (its method: run)."""
    mod = tmp_path / "modules" / "starter"
    mod.mkdir(parents=True)
    (mod / "start.sh").write_text("#!/bin/sh\n" + body)
    (mod / "start.sh").chmod(0o755)
    (mod / "module.toml").write_text('name = "starter"\nversion = "1.0.0"\nkind = "native"\n[artifact]\npath = "start.sh"\n[methods.run]\n')
    return mod


def events(state: StateDir, capability: str | None = None) -> list[dict]:
    return [e for e in read_events(state.audit_path) if capability is None or e["capability"] == capability]


@pytest.fixture
async def manager(state):
    manager = ModuleManager(
        state,
        egress_hosts={"metadata.test": "169.254.169.254", "loopback.test": "127.0.0.1"},
        environ={"PROBE_ALLOWED": "yes", "HOME": "/root", "SECRET_TOKEN": "hunter2"},
    )
    yield manager
    await manager.close()


@pytest.fixture
async def origin(loopback_http):
    """An HTTP server on the host's loopback: (port, list of paths it was asked for)."""
    hits: list[str] = []

    async def page(request):
        hits.append(request.path)
        if request.path == "/missing":
            return web.Response(status=404)
        return web.Response(text="<html><head><title> Origin  page </title></head><body>ok</body></html>", content_type="text/html")

    return await loopback_http(page), hits
