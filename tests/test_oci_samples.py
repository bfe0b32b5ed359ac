"""The sample container modules (Python with the SDK, Node.js with @grpc/grpc-js) doing their
jobs through the module client, and a handler calling one over real HTTP."""

import shutil
import textwrap
from pathlib import Path

import pytest
from aiohttp import web

from runtime.core.audit_log import read_events
from runtime.core.errors import BadPayload, CapabilityDenied
from runtime.core.state import StateDir
from runtime.http.project import scaffold
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager
from sandboxes.oci import available

pytestmark = [pytest.mark.slow, pytest.mark.skipif(available() is not None, reason=f"container modules need a Docker engine: {available()}")]

SAMPLES = Path(__file__).resolve().parents[1] / "sample_modules"
PAGESUM = SAMPLES / "pagesum-py-oci"
RATELIMIT = SAMPLES / "ratelimit-node-oci"
PAGE = """<html><head><title>Release notes</title><script>var ignored = "script words";</script></head>
<body><h1>Gati 1.0</h1><p>Containers run modules. Modules call the host. Containers stay small.</p>
<a href="/a">a</a> <a href="/b">b</a></body></html>"""


@pytest.fixture
async def origin(loopback_http):
    hits = []

    async def page(request):
        hits.append(request.path)
        return web.Response(text=PAGE, content_type="text/html")

    return await loopback_http(page), hits


def pagesum_allowing(tmp_path: Path, port: int) -> Path:
    """pagesum with one more egress rule: the test origin (private addresses need a rule naming them)."""
    target = tmp_path / "pagesum"
    shutil.copytree(PAGESUM, target)
    manifest = target / "module.toml"
    manifest.write_text(manifest.read_text().replace("egress = [", f'egress = ["http://127.0.0.1:{port}", '))
    return target


@pytest.fixture
async def manager(tmp_path):
    state = StateDir(tmp_path / "state")
    manager = ModuleManager(state)
    yield manager
    await manager.close()
    state.close()


async def test_pagesum_fetches_through_the_egress_proxy_and_caches(manager, tmp_path, origin):
    port, hits = origin
    register_module(manager.state, pagesum_allowing(tmp_path, port))
    url = f"http://127.0.0.1:{port}/notes"
    summary = await manager.call("pagesum", "summarize", {"url": url})
    assert summary["title"] == "Release notes" and summary["headings"] == ["Gati 1.0"]
    assert summary["links"] == 2 and summary["top_words"][:2] == ["containers", "modules"]
    assert "script" not in summary["top_words"] and summary["cached"] is False
    assert (await manager.call("pagesum", "summarize", {"url": url}))["cached"] is True
    assert hits == ["/notes"]
    with pytest.raises(CapabilityDenied) as denied:
        await manager.call("pagesum", "summarize", {"url": "http://evil.test/"})
    assert denied.value.details["grant"] == '[capabilities] egress = ["http://evil.test:80"]'
    decisions = [(e["capability"], e["decision"]) for e in read_events(manager.state.audit_path)]
    assert ("egress", "deny") in decisions and decisions.count(("egress", "allow")) == 1


async def test_ratelimit_in_node_keeps_buckets_in_kv(manager):
    assert (RATELIMIT / "node_modules" / "@grpc" / "grpc-js").is_dir(), "build the sample modules first: make modules"
    register_module(manager.state, RATELIMIT)
    bucket = {"key": "user:42", "rate": 0.5, "burst": 3}
    taken = [await manager.call("ratelimit", "take", bucket) for _ in range(4)]
    assert [t["allowed"] for t in taken] == [True, True, True, False]
    assert taken[2]["remaining"] == 0 and 0 < taken[3]["retry_after_ms"] <= 2000
    assert await manager.call("ratelimit", "peek", bucket) == {"remaining": 0}
    assert (await manager.call("ratelimit", "take", {**bucket, "key": "user:7"}))["allowed"] is True
    assert await manager.state.kv.get("ratelimit", "user:42") is not None
    with pytest.raises(BadPayload):
        await manager.call("ratelimit", "take", {"key": "k"})


async def test_handler_calls_a_container_module_over_http(tmp_path, gati_home, serve, origin):
    port, _ = origin
    project = scaffold(tmp_path / "app")
    module = pagesum_allowing(tmp_path, port)
    settings = project / "gati.toml"
    settings.write_text(settings.read_text().replace("paths = []", f'paths = ["{module}"]'))
    (project / "handlers" / "summary.py").write_text(textwrap.dedent(
        """
        async def handler(req, res, gctx, lctx):
            page = await gctx.modules.pagesum.summarize({"url": req.query["url"]})
            return {"title": page["title"], "words": page["words"], "request_id": lctx.request_id}
        """
    ))
    client = await serve(project)
    r = await client.get("/summary", params={"url": f"http://127.0.0.1:{port}/"})
    assert r.status == 200
    body = await r.json()
    assert body["title"] == "Release notes" and body["words"] > 5
    r = await client.get("/summary", params={"url": "http://not-granted.test/"})
    assert r.status == 403 and (await r.json())["error"]["code"] == "capability_denied"
    egress = [e for e in read_events(gati_home / "audit.log") if e["capability"] == "egress"]
    assert egress[0]["request_id"] == body["request_id"] and egress[0]["caller"] == "handler:/summary"
