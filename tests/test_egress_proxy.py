"""The egress proxy in a real network namespace: a process with no route out reaches
only what its manifest grants, through the proxy on its own 127.0.0.1."""

import asyncio
import json
import shutil
import socket
import subprocess
import sys

import pytest

from runtime.core.audit_log import read_events
from runtime.core.call import CallContext
from runtime.core.host import Host, Resolver
from runtime.core.secrets import Secrets
from runtime.core.manifest import load_manifest
from runtime.core.state import StateDir
from sandboxes.process.egress_proxy import PROXY_PORT, EgressProxy
from sandboxes.process.netns import listen_in_netns

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")

CLIENT = """
import json, sys, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": "http://127.0.0.1:%d"}))
out = []
for url in sys.argv[1:]:
    try:
        out.append([url, opener.open(url, timeout=5).status])
    except urllib.error.HTTPError as e:
        out.append([url, e.code, json.loads(e.read())["error"].get("grant")])
    except Exception as e:
        out.append([url, type(e).__name__])
print(json.dumps(out))
""" % PROXY_PORT




async def test_proxy_in_a_network_namespace(tmp_path, origin):
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
    proxy = EgressProxy(host, lambda: CallContext(caller="module:m"))
    try:
        await asyncio.sleep(0.2)
        await proxy.serve(listen_in_netns(holder.pid, PROXY_PORT))
        urls = [f"http://127.0.0.1:{origin}/ok", "http://metadata.test/latest/meta-data", "http://not-granted.test/"]
        client = await asyncio.create_subprocess_exec(
            "nsenter", "-t", str(holder.pid), "-n", sys.executable, "-c", CLIENT, *urls, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(client.communicate(), 30)
        results = json.loads(out)
        assert results[0][1] == 200
        assert results[1][1] == 403 and results[1][2] == '[capabilities] egress = ["http://169.254.169.254:80"]'
        assert results[2][1] == 403 and "not-granted.test" in results[2][2]
        decisions = [(e["decision"], e["target"]) for e in read_events(state.audit_path)]
        assert decisions[0] == ("allow", f"http://127.0.0.1:{origin}")
        assert [d for d, _ in decisions].count("deny") == 2
    finally:
        holder.kill()
        await proxy.close()
        state.close()


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
    proxy = EgressProxy(host, lambda: CallContext(caller="module:m"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        await proxy.serve(listener)
        for smuggled in ("Host: evil.test", "host :evil.test", "HOST: evil.test\r\n\tfolded"):
            reader, writer = await asyncio.open_connection(*listener.getsockname())
            writer.write(f"GET http://granted.test:{port}/x HTTP/1.1\r\n{smuggled}\r\nAccept: */*\r\n\r\n".encode())
            await writer.drain()
            reply = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            assert seen[-1:] == [[f"granted.test:{port}"]], smuggled  # only the checked Host, once
            assert reply.startswith(b"HTTP/1.1 200"), reply
    finally:
        await proxy.close()
        state.close()
