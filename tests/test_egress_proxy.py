"""The egress proxy in a real network namespace: a process with no route out reaches
only what its manifest grants, through the proxy on its own 127.0.0.1, and only for a
call in flight, named by its token."""

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import urllib.parse

import pytest
from gati_sdk.protocol import wire

from runtime.core.audit_log import read_events
from runtime.core.call import CallContext
from runtime.core.host import Host, Resolver
from runtime.core.manifest import load_manifest
from runtime.core.secrets import Secrets
from runtime.core.state import StateDir
from sandboxes.process.call_tokens import CallTokens
from sandboxes.process.egress_proxy import PROXY_PORT, EgressProxy
from sandboxes.process.netns import listen_in_netns

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")

# argv: proxy URL, then URLs. An ordinary urllib client: a token in the proxy URL becomes Proxy-Authorization.
CLIENT = """
import json, sys, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": sys.argv[1]}))
out = []
for url in sys.argv[2:]:
    try:
        out.append([url, opener.open(url, timeout=5).status])
    except urllib.error.HTTPError as e:
        error = json.loads(e.read())["error"]
        out.append([url, e.code, error.get("grant") or error.get("code"), e.headers.get("X-Gati-Denied-For")])
    except Exception as e:
        out.append([url, type(e).__name__])
print(json.dumps(out))
"""


def proxy_url(token: str = "") -> str:
    return f"http://gati:{urllib.parse.quote(token)}@127.0.0.1:{PROXY_PORT}" if token else f"http://127.0.0.1:{PROXY_PORT}"


@pytest.fixture
async def sandboxed(tmp_path, origin):
    """(state, call tokens, run(proxy_url, *urls)): a proxy for module m in a network namespace with no route out."""
    mod = tmp_path / "m"
    mod.mkdir()
    (mod / "m.wat").write_text('(module (memory (export "memory") 1) (func (export "run") (result i32) i32.const 0))')
    (mod / "module.toml").write_text(
        'name = "m"\nversion = "1.0.0"\nkind = "wasm"\n[artifact]\npath = "m.wat"\n[methods.run]\n'
        f'[capabilities]\negress = ["http://127.0.0.1:{origin}", "http://metadata.test:80"]\n'
    )
    state = StateDir(tmp_path / "state")
    host = Host(
        load_manifest(mod), audit=state.audit, environ={}, secrets=Secrets(), kv=state.kv,
        resolver=Resolver({"metadata.test": "169.254.169.254"}), call_module=None,
    )
    # a namespace with no route out, its loopback up (as docker and bwrap leave it)
    holder = subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep 60"])
    calls = CallTokens(host)
    proxy = EgressProxy(host, calls)

    async def run(proxy_url: str, *urls: str) -> list:
        client = await asyncio.create_subprocess_exec(
            "nsenter", "-t", str(holder.pid), "-n", sys.executable, "-c", CLIENT, proxy_url, *urls, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(client.communicate(), 30)
        return json.loads(out)

    try:
        for _ in range(100):  # bounded wait for the namespace's loopback
            if subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "ip", "-o", "link", "show", "up"], capture_output=True).stdout:
                break
            await asyncio.sleep(0.02)
        await proxy.serve(listen_in_netns(holder.pid, PROXY_PORT))
        yield state, calls, run
    finally:
        holder.kill()
        await proxy.close()
        state.close()


async def test_proxy_in_a_network_namespace(sandboxed, origin):
    state, calls, run = sandboxed
    urls = [f"http://127.0.0.1:{origin}/ok", "http://metadata.test/latest/meta-data", "http://not-granted.test/"]
    with calls.issued(CallContext(request_id="req-1", caller="test")) as token:
        results = await run(proxy_url(token), *urls)
    assert results[0][1] == 200
    assert results[1][1] == 403 and results[1][2] == '[capabilities] egress = ["http://169.254.169.254:80"]'
    assert results[2][1] == 403 and "not-granted.test" in results[2][2]
    assert results[2][3] == wire.token_digest(token)  # the module can tell the proxy's refusal from an upstream's 403
    decisions = [(e["decision"], e["target"], e["request_id"]) for e in read_events(state.audit_path)]
    assert decisions[0] == ("allow", f"http://127.0.0.1:{origin}", "req-1")
    assert [d for d, _, _ in decisions].count("deny") == 2
    assert {r for _, _, r in decisions} == {"req-1"}


async def test_a_request_without_the_token_of_a_call_in_flight_is_refused_and_audited(sandboxed, origin):
    state, calls, run = sandboxed
    url = f"http://127.0.0.1:{origin}/x"
    with calls.issued(CallContext(request_id="req-done", caller="test")) as ended:
        pass
    with calls.issued(CallContext(request_id="req-live", caller="test")):  # one call in flight: nothing to guess from
        results = await run(proxy_url(), url)
        results += await run(proxy_url("not-a-token"), url)
        results += await run(proxy_url(ended), url)
    assert [(r[1], r[2]) for r in results] == [(407, "call_token_refused")] * 3
    refused = [(e["decision"], e["request_id"], e["reason"]) for e in read_events(state.audit_path)]
    assert refused == [
        ("deny", "", "no call token"),
        ("deny", "", "unknown call token"),
        ("deny", "req-done", "the call this token was issued to has ended"),
    ]


async def test_plain_http_is_forwarded_with_the_host_that_was_checked(tmp_path, loopback_http):
    """A module asks for a granted URL but names another site in its Host header (a CDN or a
    virtual host behind the same address): the origin must see the checked host, never the module's."""
    from aiohttp import web

    seen = []

    async def origin(request):
        seen.append(request.headers.getall("Host"))
        return web.Response(text="ok")

    port = await loopback_http(origin)
    mod = tmp_path / "m"
    mod.mkdir()
    (mod / "m.wat").write_text('(module (memory (export "memory") 1) (func (export "run") (result i32) i32.const 0))')
    (mod / "module.toml").write_text(
        'name = "m"\nversion = "1.0.0"\nkind = "wasm"\n[artifact]\npath = "m.wat"\n[methods.run]\n'
        f'[capabilities]\negress = ["http://granted.test:{port}", "http://127.0.0.1:{port}"]\n'
    )
    state = StateDir(tmp_path / "state")
    host = Host(
        load_manifest(mod), audit=state.audit, environ={}, secrets=Secrets(), kv=state.kv,
        resolver=Resolver({"granted.test": "127.0.0.1"}), call_module=None,
    )
    calls = CallTokens(host)
    proxy = EgressProxy(host, calls)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        await proxy.serve(listener)
        for smuggled in ("Host: evil.test", "host :evil.test", "HOST: evil.test\r\n\tfolded"):
            reader, writer = await asyncio.open_connection(*listener.getsockname())
            with calls.issued(CallContext(request_id="req-host", caller="test")) as token:
                authorization = f"{wire.PROXY_AUTHORIZATION}: {wire.proxy_authorization(token)}"
                writer.write(f"GET http://granted.test:{port}/x HTTP/1.1\r\n{authorization}\r\n{smuggled}\r\nAccept: */*\r\n\r\n".encode())
                await writer.drain()
                reply = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert seen[-1:] == [[f"granted.test:{port}"]], smuggled  # only the checked Host, once
            assert reply.startswith(b"HTTP/1.1 200"), reply
    finally:
        await proxy.close()
        state.close()
