"""The OpenAPI document of each version (runtime/http/openapi_versions.py, docs/versions.md): what a
client pinned to a version (a label or a date) is served, route by route; the default document's
`x-gati.versions`; `?version=` and `Gati-Version` on the served document; and, for any project of
versioned routes and any version asked, the document says exactly what the server resolves and serves."""

import asyncio
import datetime
import itertools
import json
import string
import textwrap
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from typer.testing import CliRunner

from runtime.cli.main import app as cli
from runtime.http.app import reload_handlers
from runtime.http.openapi import openapi_document
from runtime.http.project import load_project
from runtime.http.routing import load_routes
from runtime.http.versions.resolver import UnknownVersion

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "versions"


def document(root: Path, version: str | None = None) -> dict:
    project = load_project(root)
    return openapi_document(project, load_routes(project.handlers_dir), version)


def schema(doc: dict, node):
    """node with every $ref into components/schemas replaced by what it names (to compare with a file's own schema)."""
    if isinstance(node, list):
        return [schema(doc, v) for v in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"$ref"}:
        return schema(doc, doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]])
    return {k: (v if k in ("enum", "const", "required") else schema(doc, v)) for k, v in node.items()}


def body_of(doc: dict, path: str, method: str = "put") -> tuple[dict, dict]:
    op = doc["paths"][path][method]
    request = schema(doc, op["requestBody"]["content"]["application/json"]["schema"])
    response = schema(doc, op["responses"]["2XX"]["content"]["application/json"]["schema"])
    return request, response


def test_each_version_of_the_worked_example_has_its_own_document():
    default = document(EXAMPLE)
    validate(default)
    listed = default["x-gati"]["versions"]
    assert (listed["header"], listed["query"]) == ("Gati-Version", "version")
    assert listed["routes"]["/users/{id}"] == {
        "default": "2",
        "versions": [
            {"version": "1", "methods": ["PUT"], "since": "2026-01-01", "served_by": "2"},
            {"version": "2", "methods": ["PUT"], "since": "2026-11-01"},
            {"version": "3", "methods": ["PUT"], "since": "2027-03-01"},
        ],
    }
    assert default["paths"]["/users/{id}"]["put"]["x-gati"]["version"] == "2"  # the default document is the default version's

    v1 = document(EXAMPLE, "1")
    validate(v1)
    op = v1["paths"]["/users/{id}"]["put"]
    request, response = body_of(v1, "/users/{id}")
    assert set(request["properties"]) == {"first", "last"} and set(response["properties"]) == {"id", "first", "last"}
    # version 2's handler runs, through the transformer; the client's contract stays version 1's
    assert {k: op["x-gati"][k] for k in ("handler", "version", "served_by", "transformers")} == {
        "handler": "users/[id]@2.py", "version": "1", "served_by": "2", "transformers": ["users/[id]@2.transform.py"],
    }  # fmt: skip
    assert op["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "Gati-Version", "in": "header", "required": True, "description": op["parameters"][1]["description"], "schema": {"type": "string", "const": "1"}},
    ]
    assert v1["x-gati"]["versions"]["pinned"] == {"/users/{id}": "1"}

    v3 = document(EXAMPLE, "3")
    validate(v3)
    assert set(body_of(v3, "/users/{id}")[0]["required"]) == {"name", "email"}
    assert v3["paths"]["/users/{id}"]["put"]["x-gati"]["handler"] == "users/[id]@3.py"

    # a date pins the version live that day; the same resolution is the same bytes
    assert json.dumps(document(EXAMPLE, "2026-06-30")) == json.dumps(v1)
    assert json.dumps(document(EXAMPLE, "2027-12-31")) == json.dumps(v3)
    assert json.dumps(document(EXAMPLE, "3")) == json.dumps(v3)
    assert document(EXAMPLE, "2")["info"]["version"] not in (v1["info"]["version"], v3["info"]["version"])

    with pytest.raises(UnknownVersion, match="no route has version '9'") as err:
        document(EXAMPLE, "9")
    assert err.value.details["versions"] == ["1", "2", "3"] and "1, 2, 3" in err.value.fix
    with pytest.raises(UnknownVersion):  # a date before every version resolves nowhere either
        document(EXAMPLE, "2025-12-31")


PLAIN = "async def handler(req, res, gctx, lctx):\n    return {}\n"


def versioned(fields: str, extra: str = "") -> str:
    """A PUT handler whose REQUEST and RESPONSE are a TypedDict of these fields (one a line)."""
    return (
        "from typing import NotRequired, TypedDict\n\nclass Body(TypedDict):\n"
        + textwrap.indent(fields, "    ")
        + f'\n\nMETHODS = ["PUT"]\nREQUEST = RESPONSE = Body\n{extra}\n\nasync def handler(req, res, gctx, lctx):\n    return req.data\n'
    )


def test_a_route_without_the_version_is_left_out_and_single_file_routes_stay(make_project):
    root = make_project(
        {
            "a.py": versioned("x: str", 'DEPRECATED = "2026-12-01"\nSUNSET = "2027-03-01"'),
            "a@2.py": versioned("x: str\ny: str"),  # breaking, no transformer: the default stays 1
            "b.py": versioned("x: str"),
            "b@2.py": versioned("x: str\ny: NotRequired[int]"),  # not breaking: the default moves on
            "b@3.py": versioned("x: str\ny: NotRequired[int]\nz: NotRequired[str]", "ROLLOUT = 0"),  # the new default, rolled out to no one yet
            "plain.py": PLAIN,
        }
    )
    default = document(root)
    validate(default)
    routes = default["x-gati"]["versions"]["routes"]
    assert routes["/a"]["default"] == "1" and routes["/a"]["versions"][0] == {"version": "1", "methods": ["PUT"], "deprecated": "2026-12-01", "sunset": "2027-03-01"}
    assert routes["/b"]["default"] == "3" and routes["/b"]["rollout"] == {"percent": 0, "others_get": "2"}
    assert set(routes) == {"/a", "/b"}  # a single-file route has nothing to choose

    v3 = document(root, "3")
    validate(v3)
    assert set(v3["paths"]) == {"/b", "/plain"}  # /a answers Gati-Version: 3 with 400
    assert v3["x-gati"]["versions"]["pinned"] == {"/a": None, "/b": "3"}
    assert "parameters" not in v3["paths"]["/plain"]["get"]  # /plain ignores the header: nothing to require
    assert v3["paths"]["/plain"] == default["paths"]["/plain"]

    v2 = document(root, "2")
    assert set(v2["paths"]) == {"/a", "/b", "/plain"}
    assert body_of(v2, "/a")[0]["required"] == ["x", "y"] and set(body_of(v2, "/b")[0]["properties"]) == {"x", "y"}


def test_a_version_of_a_project_without_versions_is_refused(make_project):
    root = make_project({"plain.py": PLAIN})
    assert "x-gati" not in document(root)  # nothing added to a project without versions: the same bytes as before
    with pytest.raises(UnknownVersion, match="no route of this project has versions"):
        document(root, "1")


def test_codegen_openapi_writes_a_versions_document():
    result = CliRunner().invoke(cli, ["codegen", "openapi", "--version", "1", "--project", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(json.dumps(document(EXAMPLE, "1")))
    bad = CliRunner().invoke(cli, ["codegen", "openapi", "--version", "7", "--project", str(EXAMPLE)])
    assert bad.exit_code == 1 and "no route has version '7'" in bad.output and "Traceback" not in bad.output


def test_the_codegen_version_setting_pins_plain_codegen_and_its_check(make_project):
    root = make_project(
        {"a.py": versioned("x: str"), "a@2.py": versioned("x: str\ny: str"), "plain.py": PLAIN},
        toml='[codegen]\nopenapi = "openapi.json"\ntypescript = "sdk"\nversion = "1"\n',
    )

    def gati(*args):
        return CliRunner().invoke(cli, [*args, "--project", str(root)])

    assert gati("codegen").exit_code == 0
    assert json.loads((root / "openapi.json").read_text()) == json.loads(json.dumps(document(root, "1")))
    assert gati("codegen", "typescript", "pinned", "--version", "1").exit_code == 0

    def without_command(folder):  # the header names the command that made the file; the rest is the same
        return {f.name: [line for line in f.read_text().splitlines() if "gati codegen" not in line] for f in sorted(folder.iterdir())}

    assert without_command(root / "sdk") == without_command(root / "pinned")
    assert "gati codegen typescript sdk" in (root / "sdk" / "client.ts").read_text()  # run again, it reads the setting
    assert gati("codegen", "--check").exit_code == 0
    assert json.loads(gati("codegen", "openapi", "-", "--version", "2").stdout) == json.loads(json.dumps(document(root, "2")))  # the flag wins

    (root / "gati.toml").write_text((root / "gati.toml").read_text().replace('version = "1"', 'version = "2"'))
    stale = gati("codegen", "--check")
    assert stale.exit_code == 1 and "openapi.json" in stale.output

    (root / "gati.toml").write_text((root / "gati.toml").read_text().replace('version = "2"', 'version = "7"'))
    bad = gati("codegen", "openapi", "-")
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert "[codegen] version = '7' in gati.toml: no route has version '7'" in bad.output and "set [codegen] version" in bad.output


async def test_the_served_document_answers_each_version_and_follows_a_reload(make_project, serve):
    root = make_project({"a.py": versioned("x: str"), "a@2.py": versioned("x: str\ny: str"), "plain.py": PLAIN})
    client = await serve(root)
    r = await client.get("/openapi.json")
    assert r.status == 200 and await r.json() == document(root)
    for asked in ({"params": {"version": "2"}}, {"headers": {"Gati-Version": "2"}}, {"headers": {"Accept-Version": "2"}}):
        r = await client.get("/openapi.json", **asked)
        assert r.status == 200 and await r.json() == document(root, "2"), asked
    r = await client.get("/openapi.json", params={"version": "5"})
    body = await r.json()
    assert r.status == 400 and body["error"]["code"] == "unknown_version" and body["error"]["versions"] == ["1", "2"]

    # a reload (gati dev) serves the new routes' documents
    (root / "handlers" / "a@3.py").write_text(versioned("x: str\ny: str\nz: str"))
    reload_handlers(client.app)
    r = await client.get("/openapi.json", params={"version": "3"})
    assert r.status == 200 and await r.json() == document(root, "3")
    assert (await client.get("/openapi.json")).status == 200


async def test_the_served_documents_follow_retired_versions(make_project, serve):
    root = make_project(
        {"a.py": versioned("x: str"), "a@2.py": versioned("x: str\ny: str"), "b.py": versioned("x: str"), "b@2.py": versioned("x: str\nz: str")},
        toml="[versions]\ncheck_interval_s = 0.02\n",
    )
    client = await serve(root)

    async def documents(version=None):
        r = await client.get("/openapi.json", params={"version": version} if version else {})
        return r.status, await r.json()

    def versions(cmd, label):
        result = CliRunner().invoke(cli, ["versions", cmd, label, *(("--reason", "moved to 2") if cmd == "retire" else ()), "--project", str(root)])
        assert result.exit_code == 0, result.output

    async def until(check, what):  # the server reads the store every check_interval_s
        for _ in range(1000):
            if await check():
                return
            await asyncio.sleep(0.02)
        pytest.fail(f"never happened: {what}")

    async def retired_a():
        _, doc = await documents()
        return doc["x-gati"]["versions"]["routes"]["/a"]["versions"][0].get("retired")

    versions("retire", "/a@1")
    await until(retired_a, "the document lists /a@1 as retired")
    assert await retired_a() == "moved to 2"
    status, doc = await documents("1")  # /a answers version 1 with 410 now: its document leaves /a out
    assert status == 200 and sorted(doc["paths"]) == ["/b"] and doc["x-gati"]["versions"]["pinned"] == {"/a": None, "/b": "1"}

    versions("retire", "/b@1")
    await until(lambda: _status_is(documents("1"), 410), "version 1 retired on every route")
    _, body = await documents("1")
    assert body["error"]["code"] == "version_retired" and "1 of /a, 1 of /b" in body["error"]["message"]

    versions("restore", "/a@1")
    await until(lambda: _status_is(documents("1"), 200), "/a@1 restored")
    _, doc = await documents("1")
    assert sorted(doc["paths"]) == ["/a"] and "retired" not in doc["x-gati"]["versions"]["routes"]["/a"]["versions"][0]


async def _status_is(answer, status: int) -> bool:
    return (await answer)[0] == status


# -- for any project and any version asked ---------------------------------------------------------

SHAPES = ["x: str", "x: str\ny: NotRequired[int]", "x: int", "x: str\nz: str"]
DAYS = st.dates(datetime.date(2026, 1, 1), datetime.date(2027, 12, 31))


IDENTITY = "def up(body):\n    return body\n\ndef down(body):\n    return body\n"


@st.composite
def projects(draw) -> dict[str, str]:
    files = {"plain.py": PLAIN}
    for name in draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True)):
        labels = [1] + sorted(draw(st.sets(st.integers(2, 6), min_size=1, max_size=3)))
        day = None
        for label in labels:
            if draw(st.booleans()):
                new = draw(DAYS)
                day = max(day, new) if day else new
            file = f"{name}.py" if label == 1 else f"{name}@{label}.py"
            files[file] = versioned(draw(st.sampled_from(SHAPES)), f'SINCE = "{day.isoformat()}"' if day else "")
            if label != 1 and draw(st.booleans()):
                files[f"{name}@{label}.transform.py"] = IDENTITY
    return files


ASKED = st.one_of(st.integers(1, 7).map(str), DAYS.map(lambda d: d.isoformat()), st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=10))
counter = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(files=projects(), asked=st.lists(ASKED, min_size=1, max_size=4))
def test_a_versions_document_says_what_the_server_serves_that_client(tmp_path, files, asked):
    root = tmp_path / f"p{next(counter)}"
    for rel, source in files.items():
        (root / "handlers" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "handlers" / rel).write_text(source)
    (root / "gati.toml").write_text("")
    project = load_project(root)
    router = load_routes(project.handlers_dir)
    default = openapi_document(project, router)
    for entry in router.routes:
        if entry.versions:
            listed = default["x-gati"]["versions"]["routes"][entry.pattern]
            assert [v["version"] for v in listed["versions"]] == list(entry.versions.labels) and listed["default"] == entry.versions.default
    for version in asked:
        # what a real request sending the header gets, route by route (VersionSet.pick: the request path)
        served = {}
        for entry in router.routes:
            if entry.versions is None:
                served[entry.pattern] = entry
                continue
            try:
                served[entry.pattern] = entry.versions.pick(make_mocked_request("PUT", entry.pattern, headers={"Gati-Version": version}))
            except UnknownVersion:
                pass
        versioned_served = [p for p in served if p != "/plain"]
        if not versioned_served:
            with pytest.raises(UnknownVersion):
                openapi_document(project, router, version)
            continue
        doc = openapi_document(project, router, version)
        validate(doc)
        assert set(doc["paths"]) == set(served)
        for path in versioned_served:
            route = served[path]
            op = doc["paths"][path]["put"]
            own = next(v.route for e in router.routes if e.pattern == path for v in e.versions.versions if v.label == route.version)
            request, response = body_of(doc, path)
            strip = lambda s: {k: v for k, v in s.items() if k != "$schema"}
            assert request == strip(own.request_type.json_schema()) and response == strip(own.response_type.json_schema())
            assert (op["x-gati"]["version"], op["x-gati"]["handler"]) == (route.version, route.rel)
            assert op["parameters"][-1]["schema"]["const"] == route.version
