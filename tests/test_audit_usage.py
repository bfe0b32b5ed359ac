"""`gati audit` over a real log: the probe module (real wasmtime, real SQLite registry) is made
to use part of its grants and to be refused some things; the report must say exactly that.
Also: --learn proposes exactly the used part and the proposal replays with no denial; the
table fits 80 columns; JSON, SARIF, the CLI exit status and the HTTP endpoint.
"""

import json
import shutil
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rich.console import Console
from typer.testing import CliRunner

from runtime.cli.audit import audit_app
from runtime.core.audit_log import read_events
from runtime.core.call import CallContext
from runtime.core.manifest import Capabilities
from runtime.core.state import StateDir
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager
from runtime.reports.endpoint import add_audit_routes
from runtime.reports.learn import learn
from runtime.reports.report import build_report, render, to_sarif
from runtime.reports.usage import parse_when, scan

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "runtime" / "reports" / "probes" / "wasm"
CTX = CallContext(request_id="req-audit", trace_id="trace-audit", caller="test")
TOKEN = "t" * 32


def grants_for(port: int) -> str:
    return f"""[capabilities]
egress = ["http://*.audit.test:{port}", "http://127.0.0.1:{port}", "https://unused.example.com:443"]
files = {{ "data" = "rw" }}
env = ["PROBE_ALLOWED", "UNUSED_ENV"]
secrets = ["probe_token"]
kv = ["probe", "spare"]
modules = ["greet"]
"""


def install(project: Path, port: int) -> Path:
    target = project / "modules" / "probe"
    shutil.copytree(PROBE, target, ignore=shutil.ignore_patterns("build.sh"))
    manifest = target / "module.toml"
    text = manifest.read_text()
    start, end = text.index("[capabilities]"), text.index("[limits]")
    manifest.write_text(text[:start] + grants_for(port) + "\n" + text[end:])
    return target




@pytest.fixture
def project(tmp_path):
    return tmp_path / "project"


@pytest.fixture
def state(project):
    state = StateDir(project / ".gati")
    yield state
    state.close()


def manager_for(state):
    return ModuleManager(state, egress_hosts={"api.audit.test": "127.0.0.1"}, environ={"PROBE_ALLOWED": "yes", "HOME": "/root"})


def allowed_calls(port):
    return [
        ("env", "PROBE_ALLOWED"),
        ("env", "PROBE_ALLOWED"),
        ("file_read", "/data/hello.txt"),
        ("kv_put", "probe/k=v"),
        ("kv_get", "probe/k"),
        ("http", {"method": "GET", "url": f"http://api.audit.test:{port}/x"}),
    ]


REFUSED_CALLS = [
    ("env", "HOME"),
    ("file_read", "/etc/passwd"),
    ("http", {"method": "GET", "url": "http://evil.example.net/"}),
]


async def run_calls(state, calls):
    manager = manager_for(state)
    try:
        return [await manager.call("probe", method, payload, ctx=CTX) for method, payload in calls]
    finally:
        await manager.close()


@pytest.fixture
async def exercised(state, project, origin):
    """The probe registered with wide grants, then made to use part of them and to be refused."""
    port = origin
    register_module(state, install(project, port))
    replies = await run_calls(state, allowed_calls(port) + REFUSED_CALLS)
    assert [r["status"] for r in replies] == [0] * 6 + [1] * 3, replies
    return port


async def test_exercised_refused_and_unused_match_what_the_module_did(state, exercised):
    port = exercised
    report = build_report(state)
    [probe] = [m.to_dict() for m in report.modules]
    assert {(e["capability"], e["target"]): e["count"] for e in probe["exercised"]} == {
        ("env", "PROBE_ALLOWED"): 2,
        ("file.read", "/data/hello.txt"): 1,
        ("kv.write", "probe"): 1,
        ("kv.read", "probe"): 1,
        ("egress", f"http://api.audit.test:{port}"): 1,
    }
    assert {e["rule"] for e in probe["exercised"] if e["capability"] == "egress"} == {f"http://*.audit.test:{port}"}
    refused = {(e["capability"], e["target"]): e for e in probe["refused"]}
    assert set(refused) == {("env", "HOME"), ("file.read", "/etc/passwd"), ("egress", "http://evil.example.net:80")}
    assert refused["env", "HOME"]["grant"] == '[capabilities] env = ["HOME"]'
    assert refused["egress", "http://evil.example.net:80"]["reason"] == "no egress rule matches"
    # The address rule is what let api.audit.test reach 127.0.0.1: in use, though the host logs only refusals.
    assert {u["line"] for u in probe["unused"]} == {
        '[capabilities] egress = ["https://unused.example.com:443"]',
        '[capabilities] env = ["UNUSED_ENV"]',
        '[capabilities] secrets = ["probe_token"]',
        '[capabilities] kv = ["spare"]',
        '[capabilities] modules = ["greet"]',
    }
    assert report.chain.ok and report.records == report.in_window == 9
    assert f"may connect to any host one label under audit.test on port {port} over http" in probe["may"]
    assert "may read and write data (rw)" in probe["may"]


async def test_findings_name_the_manifest_line_and_the_fix(state, exercised):
    port = exercised
    findings = {(f.rule, f.line): f for f in build_report(state).findings}
    wildcard = findings["egress-wildcard", f'[capabilities] egress = ["http://*.audit.test:{port}"]']
    assert wildcard.severity == "medium" and wildcard.fix
    manifest_lines = Path(wildcard.file).read_text().splitlines()
    assert f"*.audit.test:{port}" in manifest_lines[wildcard.lineno - 1]
    assert ("unused-grant", '[capabilities] kv = ["spare"]') in findings
    assert not any(f.severity == "high" for f in findings.values())


async def test_window_limits_what_is_counted(state, exercised):
    events = list(read_events(state.audit_path))
    middle = events[4]["time"]
    assert scan(state.audit_path, until=events[0]["time"] - 1).in_window == 0
    assert scan(state.audit_path, since=middle).in_window == len([e for e in events if e["time"] >= middle])
    assert scan(state.audit_path, since=parse_when("1h")).in_window == len(events)
    assert parse_when("2024-05-01T00:00:00Z") == 1714521600.0


async def test_learn_proposes_exactly_the_used_part_and_replays_without_denial(state, project, exercised):
    port = exercised
    reg = state.registry.get("probe")
    usage = scan(state.audit_path).usage["probe"]
    proposal = learn(reg, usage)
    assert proposal.proposed == Capabilities(
        egress=[f"http://127.0.0.1:{port}", f"http://api.audit.test:{port}"],  # the wildcard narrowed to the host reached
        files={"data": "ro"},  # rw, but only read
        env=["PROBE_ALLOWED"],
        kv=["probe"],
    )
    assert f'-egress = ["http://*.audit.test:{port}"' in proposal.diff and '+files = { "data" = "ro" }' in proposal.diff
    assert "[methods.spin]" in proposal.text and "memory_mb = 16" in proposal.text  # the rest is untouched

    Path(reg.loaded.file).write_text(proposal.text)
    register_module(state, reg.loaded.base_dir)
    before = sum(1 for _ in read_events(state.audit_path))
    replies = await run_calls(state, allowed_calls(port))
    assert [r["status"] for r in replies] == [0] * len(replies)
    replayed = list(read_events(state.audit_path))[before:]
    assert len(replayed) == len(replies) and all(e["decision"] == "allow" for e in replayed)
    # Learning again from the replay proposes nothing more to remove.
    again = learn(state.registry.get("probe"), scan(state.audit_path, since=replayed[0]["time"]).usage["probe"])
    assert again.diff == "" and again.proposed == proposal.proposed


async def test_table_fits_80_columns(state, exercised):
    console = Console(width=80, record=True, force_terminal=False)
    render(build_report(state, learn=True), console)
    text = console.export_text()
    assert "exercised" in text and "declared, never used" in text and "least-privilege proposal" in text
    assert max(len(line) for line in text.splitlines()) <= 80


async def test_sarif_locates_each_finding(state, project, exercised):
    sarif = to_sarif(build_report(state), project)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert run["results"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"] == {"uri": "modules/probe/module.toml", "uriBaseId": "PROJECTROOT"}
        assert location["region"]["startLine"] >= 1


async def test_cli_report_formats_and_exit_status(state, project, exercised, monkeypatch):
    monkeypatch.delenv("GATI_HOME", raising=False)
    runner = CliRunner()
    base = ["--project", str(project)]
    result = runner.invoke(audit_app, base + ["--format", "json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["modules"][0]["name"] == "probe" and body["summary"]["medium"] >= 1
    assert runner.invoke(audit_app, ["probe", "--fail-on", "high"] + base).exit_code == 0
    assert runner.invoke(audit_app, ["probe", "--fail-on", "medium"] + base).exit_code == 1
    sarif = runner.invoke(audit_app, base + ["--format", "sarif", "--learn", "--since", "1h"])
    assert json.loads(sarif.output)["version"] == "2.1.0"
    missing = runner.invoke(audit_app, ["nosuchmodule"] + base)
    assert missing.exit_code == 1 and "no module named 'nosuchmodule'" in missing.output
    table = runner.invoke(audit_app, base, terminal_width=80)
    assert table.exit_code == 0 and "findings" in table.output


async def test_http_endpoint_needs_the_token(state, exercised):
    app = web.Application()
    add_audit_routes(app, lambda: state, TOKEN)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get("/_gati/audit")).status == 401
        assert (await client.get("/_gati/audit", headers={"Authorization": "Bearer wrong"})).status == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        ok = await client.get("/_gati/audit?module=probe&learn=1", headers=auth)
        assert ok.status == 200
        body = await ok.json()
        assert body["modules"][0]["name"] == "probe" and "diff" in body["modules"][0]["learn"]
        sarif = await client.get("/_gati/audit?format=sarif", headers=auth)
        assert (await sarif.json())["version"] == "2.1.0"
        bad = await client.get("/_gati/audit?since=yesterday-ish", headers=auth)
        assert bad.status == 400 and "cannot read the time" in (await bad.json())["message"]
    with pytest.raises(ValueError):
        add_audit_routes(web.Application(), lambda: state, "")
