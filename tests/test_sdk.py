"""The Python SDK in a real module process: it presents each call's token for the module
author (host calls, urllib and requests through the egress proxy, work handed to threads),
turns the proxy's refusal into CapabilityDenied, and answers by the caller's deadline.

The module runs with this venv's Python (which has `requests`) in a network namespace of
its own whose only way out is the egress proxy, under the ProcessSandbox lifecycle that
container and native modules share; only bubblewrap's confinement is left out, which
tests/test_native_sandbox.py and tests/test_call_identity.py cover.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import pytest
from aiohttp import web
from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc

from runtime.core.audit_log import read_events
from runtime.core.call import CallContext
from runtime.core.host import Host, Resolver
from runtime.core.secrets import Secrets
from runtime.modules import register_module
from sandboxes.process import handshake
from sandboxes.process.sandbox import ProcessSandbox, runs_root

ROOT = Path(__file__).resolve().parents[1]
SDK = ROOT / "sdk" / "python"

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")

MODULE = '''#!/usr/bin/python3
import time, urllib.error, urllib.request
from concurrent.futures import ThreadPoolExecutor

import requests

from gati_sdk import HostError, Module

module = Module("web")


def attempt(fetch):
    try:
        return {"ok": True, "status": fetch()}
    except HostError as exc:  # CapabilityDenied is one: what a host call's refusal raises, too
        return {"ok": False, "type": type(exc).__name__, "error": exc.code, "grant": exc.details.get("grant")}
    except urllib.error.HTTPError as exc:
        return {"ok": True, "status": exc.code}


def get(client, url):
    if client == "requests":
        return attempt(lambda: requests.get(url, timeout=10).status_code)
    return attempt(lambda: urllib.request.urlopen(url, timeout=10).status)


@module.method
def fetch(payload, ctx):
    return get(payload["client"], payload["url"])


@module.method
def fan_out(payload, ctx):
    """The same requests from a thread pool's threads."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda url: get("requests", url), payload))


@module.method
def slow(payload, ctx):
    time.sleep(payload)
    return "done"


if __name__ == "__main__":
    module.serve()
'''


class _Unconfined:
    """A module process in a network namespace of its own (the Process protocol of ProcessSandbox)."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str):
        self.proc, self.pid, self.name = proc, proc.pid, name

    def exit_reason(self) -> str | None:
        return None if self.proc.returncode is None else f"exited with status {self.proc.returncode}"

    async def ready(self) -> None:
        handshake.parse((await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode(), self.name)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


class NetnsSandbox(ProcessSandbox):
    """ProcessSandbox with `unshare --net` for its launcher: the proxy is the only way out."""

    async def launch(self, run_dir: Path, env: dict[str, str], mounts) -> _Unconfined:
        env = {**env, "GATI_MODULE_SOCKET": str(run_dir / "module.sock"), "GATI_HOST_SOCKET": str(run_dir / "host.sock"), "PYTHONPATH": str(SDK)}
        proc = await asyncio.create_subprocess_exec(
            "unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable, str(self.registration.loaded.artifact_path()),
            env=env, stdout=asyncio.subprocess.PIPE,
        )
        ours = os.readlink("/proc/self/ns/net")
        for _ in range(500):  # bounded: until the process is in its own namespace (the proxy binds there)
            try:
                if os.readlink(f"/proc/{proc.pid}/ns/net") != ours:
                    break
            except FileNotFoundError:
                break
            await asyncio.sleep(0.01)
        return _Unconfined(proc, self.name)


@pytest.fixture
async def origin(loopback_http):
    """(port, arrived paths, release): an origin that holds each request for /held/... until `release` is set."""
    arrived: list[str] = []
    release = asyncio.Event()

    async def page(request):
        arrived.append(request.path)
        if request.path.startswith("/held/"):
            await asyncio.wait_for(release.wait(), 10)
        if request.path == "/forged":  # what a hostile upstream could answer
            return web.json_response({"error": {"code": "capability_denied", "grant": "evil"}}, status=403, headers={"X-Gati-Denied": "egress"})
        return web.Response(text=request.path)

    return await loopback_http(page), arrived, release


@pytest.fixture
async def web_module(state, tmp_path, origin):
    """call(method, payload, request_id) on the module above, served in its own namespace."""
    port = origin[0]
    mod = tmp_path / "web"
    mod.mkdir()
    (mod / "web.py").write_text(MODULE)
    (mod / "web.py").chmod(0o755)
    (mod / "module.toml").write_text(textwrap.dedent(f"""
        name = "web"
        version = "1.0.0"
        kind = "native"
        [artifact]
        path = "web.py"
        [methods.fetch]
        [methods.fan_out]
        [methods.slow]
        [capabilities]
        egress = ["http://127.0.0.1:{port}"]
    """))
    registration = register_module(state, mod)
    host = Host(registration.loaded, audit=state.audit, environ={}, secrets=Secrets(), kv=state.kv, resolver=Resolver(), call_module=None)
    sandbox = NetnsSandbox(registration, host, runs_root(state.path))
    await sandbox.start()

    async def call(method, payload, request_id):
        ctx = CallContext(request_id=request_id, caller="test")
        return json.loads(await sandbox.call(method, json.dumps(payload).encode(), ctx, 20.0))

    yield call
    await sandbox.close()


def egress(state) -> list[tuple[str, str]]:
    return [(e["decision"], e["request_id"]) for e in read_events(state.audit_path) if e["capability"] == "egress"]


async def wait_until(condition, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("first, second", [("requests", "urllib"), ("urllib", "requests")])
async def test_plain_http_of_two_calls_in_flight_is_recorded_under_each(state, web_module, origin, first, second):
    port, arrived, release = origin
    a = asyncio.create_task(web_module("fetch", {"client": first, "url": f"http://127.0.0.1:{port}/held/a"}, "req-a"))
    await wait_until(lambda: arrived == ["/held/a"], "the first call's request at the origin")  # it waits there: in flight
    b = asyncio.create_task(web_module("fetch", {"client": second, "url": f"http://127.0.0.1:{port}/held/b"}, "req-b"))
    await wait_until(lambda: arrived == ["/held/a", "/held/b"], "the second call's request at the origin")
    release.set()
    assert [await a, await b] == [{"ok": True, "status": 200}] * 2
    assert egress(state) == [("allow", "req-a"), ("allow", "req-b")]


async def test_requests_from_a_thread_pool_work_for_the_call_that_made_them(state, web_module, origin):
    port, arrived, release = origin
    other = asyncio.create_task(web_module("fetch", {"client": "requests", "url": f"http://127.0.0.1:{port}/held/x"}, "req-other"))
    await wait_until(lambda: arrived == ["/held/x"], "another call in flight")
    results = await web_module("fan_out", [f"http://127.0.0.1:{port}/{i}" for i in range(6)], "req-pool")
    release.set()
    assert results == [{"ok": True, "status": 200}] * 6 and (await other)["ok"]
    assert egress(state) == [("allow", "req-other")] + [("allow", "req-pool")] * 6


@pytest.mark.parametrize("client", ["requests", "urllib"])
@pytest.mark.parametrize("url, grant", [
    ("https://not-granted.test/", '[capabilities] egress = ["https://not-granted.test:443"]'),
    ("http://not-granted.test/", '[capabilities] egress = ["http://not-granted.test:80"]'),
])
async def test_a_refusal_of_the_proxy_raises_capability_denied_with_the_grant(state, web_module, client, url, grant):
    refused = await web_module("fetch", {"client": client, "url": url}, "req-denied")
    assert refused == {"ok": False, "type": "CapabilityDenied", "error": "capability_denied", "grant": grant}
    assert egress(state) == [("deny", "req-denied")]


@pytest.mark.parametrize("client", ["requests", "urllib"])
async def test_an_upstreams_403_is_an_ordinary_response(state, web_module, origin, client):
    """Only the proxy's own refusal raises: an upstream's 403, even with gati's header, is the module's to read."""
    forged = await web_module("fetch", {"client": client, "url": f"http://127.0.0.1:{origin[0]}/forged"}, "req-up")
    assert forged == {"ok": True, "status": 403}


async def test_the_sdk_answers_by_the_callers_deadline(tmp_path):
    """A call whose CallContext.timeout_ms passes is answered module_timeout, not when the method returns."""
    mod = tmp_path / "web.py"
    mod.write_text(MODULE)
    sock = tmp_path / "m.sock"
    proc = subprocess.Popen(
        [sys.executable, str(mod)], env={"GATI_MODULE_SOCKET": str(sock), "PYTHONPATH": str(SDK)}, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout.readline().decode().startswith("GATI|")
        async with grpc.aio.insecure_channel(f"unix:{sock}") as channel:
            stub = module_pb2_grpc.ModuleServiceStub(channel)
            reply = await stub.Call(
                module_pb2.CallRequest(method="slow", payload=b"30", context=module_pb2.CallContext(request_id="r", timeout_ms=200)),
                timeout=20,
            )
        assert reply.WhichOneof("outcome") == "error"
        assert (reply.error.code, reply.error.details["method"]) == ("module_timeout", "slow")
        assert "200 ms" in reply.error.message
    finally:
        proc.kill()
        proc.wait()
