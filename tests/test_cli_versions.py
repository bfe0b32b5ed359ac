"""`gati versions list|show|diff|check` (runtime/cli/versions.py) over real projects: the worked
example (examples/versions) and a project whose versions pin different versions of a module."""

import json
from pathlib import Path

from typer.testing import CliRunner
from versions_support import greet

from runtime.cli.main import app
from runtime.cli.versions import Loaded
from runtime.core.state import StateDir
from runtime.http.versions.store import VersionStore
from runtime.modules import register_module

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "versions"


def gati(*args):
    return CliRunner().invoke(app, ["versions", *[str(a) for a in args]])


def test_list_reads_the_project_and_the_store(gati_home):
    r = gati("list", "--project", EXAMPLE, "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["versions"]
    assert [(v["version"], v["default"], v["served_by"], v["state"]) for v in rows] == [("1", False, "2", "live"), ("2", True, "2", "live"), ("3", False, "3", "live")]
    assert [v["step"] for v in rows] == [None, {"breaking": True, "transformed": True}, {"breaking": True, "transformed": False}]
    assert rows[0]["last_served"] is None
    # what the store says (a server wrote it) shows up
    store = VersionStore.in_state_dir(gati_home)
    store.record([{"route": "/users/{id}", "versions": [{"version": "1", "fingerprint": rows[0]["fingerprint"]}]}], {}, 1000.0)
    store.served([("/users/{id}", "1")], 2000.0)
    store.close()
    rows = json.loads(gati("list", "/users/{id}", "--project", EXAMPLE, "--json").output)["versions"]
    assert (rows[0]["first_served"], rows[0]["last_served"]) == (2000.0, 2000.0)
    r = gati("list", "--project", EXAMPLE)  # the table, for people
    assert r.exit_code == 0 and "/users/{id}" in r.output
    r = gati("list", "/nope", "--project", EXAMPLE)
    assert r.exit_code == 1 and "no route /nope" in r.output and "/users/{id}" in r.output


def test_show(gati_home):
    r = gati("show", "/users/{id}@2", "--project", EXAMPLE, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["default"] is True and info["manifest"]["file"] == "users/[id]@2.py"
    assert info["step"]["transformed"] and info["step"]["transformer"] == "users/[id]@2.transform.py"
    assert len(info["fingerprint"]) == 64 and info["state"] == "live"
    r = gati("show", "/users/{id}@2", "--project", EXAMPLE)
    assert r.exit_code == 0 and "transformed by users/[id]@2.transform.py" in r.output
    for bad, said in (("/users/{id}@9", "has no version 9"), ("/users/{id}", "names no version")):
        r = gati("show", bad, "--project", EXAMPLE)
        assert r.exit_code == 1 and said in r.output


def test_diff_schemas(gati_home):
    r = gati("diff", "/users/{id}@2", "/users/{id}@3", "--project", EXAMPLE, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["breaking"] is True and d["transformed"] is False
    assert d["reasons"] == ["request $.email: required field added"]
    assert {"path": "$.email", "what": "required field added", "breaking": False} in d["schemas"]["response"]["changes"]
    d = json.loads(gati("diff", "/users/{id}@1", "/users/{id}@2", "--project", EXAMPLE, "--json").output)
    assert d["breaking"] is True and d["transformed"] is True
    r = gati("diff", "/users/{id}@2", "/users/{id}@3", "--project", EXAMPLE)
    assert "breaking request $.email: required field added" in r.output


def test_diff_shows_what_the_modules_each_version_pins_may_do(make_project, gati_home, tmp_path):
    state = StateDir(gati_home)
    register_module(state, greet(tmp_path / "g1", "1.0.0", health=None))
    g2 = greet(tmp_path / "g2", "2.0.0", health=None)
    (g2 / "module.toml").write_text((g2 / "module.toml").read_text() + '[capabilities]\nenv = ["LANG"]\n')
    register_module(state, g2)
    state.close()
    root = make_project(
        {
            "v.py": 'MODULES = {"greet": "1.0.0"}\nasync def handler(req, res, gctx, lctx):\n    return {}\n',
            "v@2.py": 'MODULES = {"greet": "^2"}\nasync def handler(req, res, gctx, lctx):\n    return {}\n',
        }
    )
    d = json.loads(gati("diff", "/v@1", "/v@2", "--project", root, "--json").output)
    assert d["breaking"] is False
    (m,) = d["modules"]
    assert (m["old"], m["new"], m["widened"]) == ("greet@1.0.0", "greet@2.0.0", True)
    assert [(g["field"], g["value"]) for g in m["added"]] == [("env", "LANG")]
    r = gati("diff", "/v@1", "/v@2", "--project", root)
    assert "greet@1.0.0 -> greet@2.0.0: widens" in r.output


TYPED = """
from typing import TypedDict

class Body(TypedDict):
    {field}: str

REQUEST = Body
METHODS = ["POST"]

async def handler(req, res, gctx, lctx):
    return {{}}
"""


def test_check_is_a_ci_gate(make_project, gati_home):
    r = gati("check", "--project", EXAMPLE)
    assert r.exit_code == 1
    assert "/users/{id}: version 2 -> 3" in r.output and "request $.email: required field added" in r.output
    assert "add handlers/users/[id]@3.transform.py" in r.output
    problems = json.loads(gati("check", "--project", EXAMPLE, "--json").output)
    assert problems["ok"] is False and [(p["route"], p["from"], p["to"]) for p in problems["problems"]] == [("/users/{id}", "2", "3")]
    # breaking, but with a transformer; and compatible: the gate passes
    root = make_project(
        {
            "u.py": TYPED.format(field="a"),
            "u@2.py": TYPED.format(field="b"),
            "u@2.transform.py": "def up(body):\n    return {'b': body['a']}\ndef down(body):\n    return body\n",
            "w.py": "async def handler(req, res, gctx, lctx):\n    return {}\n",
            "w@2.py": "async def handler(req, res, gctx, lctx):\n    return {}\n",
        }
    )
    r = gati("check", "--project", root)
    assert r.exit_code == 0, r.output
    assert json.loads(gati("check", "--project", root, "--json").output) == {"ok": True, "problems": [], "changed_in_place": []}


def _served(root, when: float, *versions: tuple[str, str]) -> None:
    """What a server writes: the manifests at start (record), then the versions clients asked for (served)."""
    loaded = Loaded(root, create_store=True)
    try:
        loaded.record(when)
        loaded.store.served(versions, when)
    finally:
        loaded.close()


def test_check_catches_a_served_version_changed_in_its_own_file(make_project, gati_home):
    root = make_project({"u.py": TYPED.format(field="a"), "w.py": TYPED.format(field="a")})
    _served(root, 1000.0, ("/u", "1"))  # /w is known to the store but no client asked for it
    assert gati("check", "--project", root).exit_code == 0
    # a compatible change in place (an optional field) passes; a breaking one fails, naming it
    (root / "handlers" / "u.py").write_text(TYPED.format(field="a").replace("a: str", "a: str\n    b: NotRequired[str]").replace("import TypedDict", "import NotRequired, TypedDict"))
    r = gati("check", "--project", root)
    assert r.exit_code == 0, r.output
    (root / "handlers" / "u.py").write_text(TYPED.format(field="b"))
    (root / "handlers" / "w.py").write_text(TYPED.format(field="b"))  # never served: still free to change
    r = gati("check", "--project", root, "--json")
    assert r.exit_code == 1
    (change,) = json.loads(r.output)["changed_in_place"]
    assert (change["route"], change["version"], change["file"]) == ("/u", "1", "u.py")
    assert change["reasons"] == ["request $.a: field removed", "request $.b: required field added"]
    assert "make the change a new version (handlers/u@N.py" in change["fix"]
    r = gati("check", "--project", root)
    assert "changed in place /u: version 1 (u.py) breaks the contract its clients were served" in r.output
    info = json.loads(gati("show", "/u@1", "--project", root, "--json").output)  # a single file's history is found ("1", not "")
    assert len(info["stored_fingerprints"]) == 1 and info["changed_since_stored"] is True
    # the contract a restart recorded since (never served) is not the promise: the first one is
    _served(root, 2000.0)
    assert gati("check", "--project", root).exit_code == 1
    # retired: no client is served it any more
    assert gati("retire", "/u@1", "--project", root).exit_code == 0
    assert gati("check", "--project", root).exit_code == 0
