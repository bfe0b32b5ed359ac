"""`gati codegen typescript`: the SDK compiles under `tsc --strict` and its calls work against a live server.

The compiler is the project's own (tools/typescript, installed by scripts/install-tools.sh); node
runs the compiled calls against `gati serve` started on a free loopback port, and against an app
with auth, a catch-all path and a handler VERSION. A hypothesis corpus of handler manifests
(types of every shape, names TypeScript holds dear) must compile too.
"""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from test_gtype_schema import hints

from runtime.codegen.generate import generate
from runtime.codegen.typescript import typescript
from runtime.http.gtype import GType
from runtime.http.handler_manifest import HandlerManifest, Param
from runtime.http.openapi import document_of
from runtime.http.project import Settings

ROOT = Path(__file__).resolve().parents[1]
TSC = ROOT / "tools" / "typescript" / "node_modules" / ".bin" / "tsc"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TSC.exists() or NODE is None, reason="needs node and tools/typescript (make tools)"),
]

TSC_FLAGS = ["--strict", "--target", "ES2022", "--module", "commonjs", "--lib", "ES2022,DOM", "--types", "", "--skipLibCheck"]

SAMPLE_MAIN = """
import { Client, GatiApiError } from "./sdk/index.js";
declare const process: { argv: string[] };

async function main(): Promise<void> {
  const api = new Client({ baseUrl: process.argv[2] });
  const out: Record<string, unknown> = {};
  const thumb = await api.postThumbs({ width: 1920, height: 1080, max: 256 }, { requestId: "ts-client-1" });
  const scale: number = thumb.data.scale;
  out.thumb = { status: thumb.status, data: thumb.data, scale, requestId: thumb.requestId };
  const greeting = await api.getGreetByName({ name: "ada lovelace" });
  out.greeting = greeting.data.message;
  const resized = await api.getThumbsResize({ query: { width: 640, height: 480, max: 64 } });
  out.resized = resized.data;
  try {
    await api.postThumbs({ width: 0, height: 1, max: 1 });
    out.refused = null;
  } catch (e) {
    if (!(e instanceof GatiApiError)) throw e;
    out.refused = { status: e.status, code: e.code, errors: e.body?.error.errors ?? null, requestId: e.requestId };
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); throw e; });
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compile_and_run(folder: Path, main: str, *args: str) -> dict:
    (folder / "main.ts").write_text(main)
    done = subprocess.run([str(TSC), *TSC_FLAGS, "--outDir", "out", "main.ts"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = subprocess.run([NODE, "out/main.js", *args], cwd=folder, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return json.loads(ran.stdout)


async def compile_and_run_served(folder: Path, main: str, client) -> dict:
    """compile_and_run against a server in this test's own loop (the serve fixture): without blocking it."""
    (folder / "main.ts").write_text(main)
    built = await asyncio.create_subprocess_exec(str(TSC), *TSC_FLAGS, "--outDir", "out", "main.ts", cwd=folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert await built.wait() == 0, (await built.stdout.read()).decode()
    node = await asyncio.create_subprocess_exec(NODE, "out/main.js", str(client.make_url("")).rstrip("/"), cwd=folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(node.communicate(), 120)
    assert node.returncode == 0, stderr.decode()
    return json.loads(stdout)


@pytest.fixture
def gati_serve(tmp_path):
    """`gati serve examples/app` in its own process on a free loopback port; its base URL once /readyz answers 200."""
    port = free_port()
    env = {**os.environ, "GATI_HOME": str(tmp_path / "home"), "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk' / 'python'}"}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli.main", "serve", str(ROOT / "examples" / "app"), "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):  # bounded: up to a minute on a loaded machine
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail("gati serve did not become ready")
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_the_sample_apps_sdk_compiles_and_calls_the_live_server(tmp_path, gati_serve):
    generate("typescript", ROOT / "examples" / "app", "sdk").write(tmp_path / "sdk")
    out = compile_and_run(tmp_path, SAMPLE_MAIN, gati_serve)
    thumb = out["thumb"]
    assert thumb["status"] == 200 and thumb["data"] == {"width": 256, "height": 144, "scale": 256 / 1920}
    assert thumb["requestId"] and thumb["requestId"] != "ts-client-1"  # the server's own id (it trusts none by default)
    assert out["greeting"] == "hello, ada lovelace"
    assert out["resized"] == {"width": 64, "height": 48, "scale": 0.1}
    refused = out["refused"]
    assert refused["status"] == 400 and refused["code"] == "invalid_request" and refused["requestId"]
    assert refused["errors"] == [{"path": "$.width", "expected": "integer, >= 1, <= 1000000000", "actual": 0}]
    # and the document the SDK was made from is the one the server answers
    with urllib.request.urlopen(gati_serve + "/openapi.json") as r:
        served = json.load(r)
    validate(served)
    assert served == json.loads(generate("openapi", ROOT / "examples" / "app", "openapi.json").files["openapi.json"])


SECURED = '''
"""Echo what arrived."""
from typing import TypedDict

class Echo(TypedDict):
    path: str
    version: str | None
    subject: str

AUTH = {"roles": ["files:read"]}
VERSION = "3"

async def handler(req, res, gctx, lctx) -> Echo:
    return {"path": req.params["path"], "version": req.headers.get("gati-version"), "subject": lctx.auth.subject}
'''

SECURED_MAIN = """
import { Client, GatiApiError } from "./sdk/index.js";
declare const process: { argv: string[] };

async function main(): Promise<void> {
  const out: Record<string, unknown> = {};
  const api = new Client({ baseUrl: process.argv[2], apiKey: "k-reader-123" });
  const echo = await api.getFilesByPath({ path: "a b/c?d" });
  out.echo = echo.data;
  try {
    await new Client({ baseUrl: process.argv[2] }).getFilesByPath({ path: "x" });
  } catch (e) {
    if (!(e instanceof GatiApiError)) throw e;
    out.anonymous = e.status;
  }
  console.log(JSON.stringify(out));
}
main().catch((e) => { console.error(e); throw e; });
"""


async def test_credentials_version_and_catch_all_paths_reach_the_handler(tmp_path, make_project, serve, monkeypatch):
    root = make_project({"files/[...path].py": SECURED}, toml='[auth.api_keys.reader]\nsecret = "reader_key"\nroles = ["files:read"]\n')
    monkeypatch.setenv("GATI_SECRET_READER_KEY", "k-reader-123")
    client = await serve(root)
    generate("typescript", root, "sdk").write(tmp_path / "sdk")
    out = await compile_and_run_served(tmp_path, SECURED_MAIN, client)
    assert out["echo"] == {"path": "a b/c?d", "version": "3", "subject": "reader"}
    assert out["anonymous"] == 401


# -- any handler manifest ------------------------------------------------------------------------------

SEGMENTS = st.sampled_from(["users", "a-b", "x_y", "2fa", "default", "class"])


@st.composite
def manifests(draw, n: int) -> HandlerManifest:
    parts = draw(st.lists(st.one_of(SEGMENTS, st.sampled_from(["{id}", "{name}", "{rest}"])), max_size=3, unique=True))
    params = tuple(Param(p.strip("{}"), p == "{rest}" and i == len(parts) - 1) for i, p in enumerate(parts) if p.startswith("{"))
    methods = tuple(sorted(draw(st.sets(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]), min_size=1, max_size=3))))
    typed = st.one_of(st.none(), hints().map(GType.of))
    return HandlerManifest(
        file=f"h{n}.py",
        path="/" + "/".join(parts) if parts else "/",
        methods=methods,
        params=params,
        request=draw(typed),
        response=draw(typed),
        auth_roles=draw(st.one_of(st.none(), st.lists(st.sampled_from(["a", "b:c"]), max_size=2, unique=True).map(tuple))),
        rate_limit=draw(st.one_of(st.none(), st.just("5/s"))),
        max_body_bytes=None,
        timeout_ms=None,
        version=draw(st.sampled_from(["", "2", "2026-11-01"])),
        secrets=(),
        modules=(),
        summary=draw(st.sampled_from(["", "does */ things", "plain"])),
    )


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_the_sdk_compiles_for_any_handler_manifests(tmp_path, data):
    corpus = tmp_path / f"corpus-{os.urandom(4).hex()}"
    docs = []
    for i in range(8):
        items = [data.draw(manifests(i * 10 + j)) for j in range(data.draw(st.integers(1, 5)))]
        unique = list({(m.path, m.methods): m for m in items}.values())
        unique = list({m.path: m for m in unique}.values())  # one file per path, as handlers/ gives
        doc = document_of(unique, Settings(), f"corpus{i}")
        validate(doc)
        docs.append(doc)
        typescript(doc, "gati codegen typescript sdk").write(corpus / f"sdk{i}")
    imports = "\n".join(f'import * as S{i} from "./sdk{i}/index.js";' for i in range(len(docs)))
    (corpus / "all.ts").write_text(imports + "\nexport const clients = [" + ", ".join(f"new S{i}.Client({{ baseUrl: '' }})" for i in range(len(docs))) + "];\n")
    done = subprocess.run([str(TSC), *TSC_FLAGS, "--noEmit", "all.ts"], cwd=corpus, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[:4000] + "\n" + json.dumps(docs)[:4000]


# -- an SDK per version (docs/versions.md) -------------------------------------------------------------

VERSIONED_MAIN = """
import { Client as V1 } from "./v1/index.js";
import { Client as V3 } from "./v3/index.js";
import { Client as Default } from "./default/index.js";
declare const process: { argv: string[] };

async function main(): Promise<void> {
  const baseUrl = process.argv[2];
  const one = await new V1({ baseUrl }).putUsersById({ id: "7" }, { first: "Ada", last: "Lovelace" });
  const first: string = one.data.first;
  const three = await new V3({ baseUrl }).putUsersById({ id: "7" }, { name: { first: "Ada", last: "Lovelace" }, email: "ada@example.org" });
  const email: string = three.data.email;
  const two = await new Default({ baseUrl }).putUsersById({ id: "7" }, { name: { first: "Ada", last: "Lovelace" } });
  console.log(JSON.stringify({ one: one.data, first, three: three.data, email, two: two.data }));
}

main().catch((e) => { console.error(e); throw e; });
"""


async def test_an_sdk_made_for_a_version_calls_that_version(tmp_path, serve, gati_home):
    example = ROOT / "examples" / "versions"
    client = await serve(example)
    generate("typescript", example, "sdk", version="1").write(tmp_path / "v1")
    generate("typescript", example, "sdk", version="2027-03-01").write(tmp_path / "v3")  # a date pin: version 3 of /users/{id}
    generate("typescript", example, "sdk").write(tmp_path / "default")
    # tsc --strict holds each call to its version's types: version 1's flat name, version 3's email
    out = await compile_and_run_served(tmp_path, VERSIONED_MAIN, client)
    # each body is its version's: the server took the version the SDK sent (version 1 went through the transformer)
    assert out["one"] == {"id": "7", "first": "Ada", "last": "Lovelace"}
    assert out["three"]["email"] == "ada@example.org" and out["two"] == {"id": "7", "name": {"first": "Ada", "last": "Lovelace"}}
    assert 'headers[VERSION_HEADER] = version' in (tmp_path / "v1" / "client.ts").read_text()
    assert 'const VERSION_HEADER = "Gati-Version";' in (tmp_path / "v1" / "client.ts").read_text()
