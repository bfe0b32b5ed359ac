"""A tampered audit log (a record edited, removed or reordered) is detected and named, by the
report's own streaming check and by `gati audit verify`, and both name the same record.
"""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from runtime.cli.audit import audit_app
from runtime.core.audit_chain import RESERVED, ChainCheck
from runtime.core.audit_log import AuditLog, verify
from runtime.core.state import StateDir
from runtime.reports.report import build_report
from runtime.reports.usage import scan


def write_events(path, n=6):
    log = AuditLog(path)
    for i in range(n):
        log.record(
            module="m", version="1.0.0", caller="test", request_id=f"r{i}", trace_id="t", capability="env",
            target=f"NAME{i}", decision="deny" if i % 2 else "allow", rule=None if i % 2 else f"env: NAME{i}",
            grant=f'[capabilities] env = ["NAME{i}"]' if i % 2 else None, reason="not declared" if i % 2 else None,
        )
    log.close()


def edit(rows):
    record = json.loads(rows[2])
    record["decision"] = "deny" if record["decision"] == "allow" else "allow"
    rows[2] = json.dumps(record, separators=(",", ":"))
    return rows


def remove(rows):
    del rows[1]
    return rows


def reorder(rows):
    rows[2], rows[3] = rows[3], rows[2]
    return rows


def truncate_hash(rows):
    record = json.loads(rows[4])
    del record["hash"]
    rows[4] = json.dumps(record)
    return rows


TAMPERINGS = {
    "edited": (edit, 3, 3, "edited"),
    "removed": (remove, 2, 3, "removed"),
    "reordered": (reorder, 3, 4, "expected record 3, found 4"),
    "hash dropped": (truncate_hash, 5, None, "not a valid audit record"),
}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("GATI_HOME", raising=False)
    return tmp_path


@pytest.mark.parametrize("how", TAMPERINGS)
def test_tampering_is_detected_and_named(project, how):
    tamper, line, seq, problem = TAMPERINGS[how]
    state = StateDir(project / ".gati")
    write_events(state.audit_path)
    rows = state.audit_path.read_text().splitlines()
    state.audit_path.write_text("\n".join(tamper(rows)) + "\n")

    expected = verify(state.audit_path)
    assert not expected.ok and expected.broken_line == line and expected.broken_seq == seq
    assert problem in expected.problem

    report = build_report(state)
    assert vars(report.chain) == vars(expected)
    [finding] = [f for f in report.findings if f.rule == "audit-chain-broken"]
    assert finding.severity == "high" and f"line {line}" in finding.message and problem in finding.message
    assert finding.file == str(state.audit_path) and finding.lineno == line
    assert report.failed("high")
    state.close()

    result = CliRunner().invoke(audit_app, ["verify", "--project", str(project)])
    assert result.exit_code == 1
    assert f"at line {line} (record seq {seq})" in result.output and problem in result.output
    assert CliRunner().invoke(audit_app, ["--fail-on", "high", "--project", str(project)]).exit_code == 1


def test_intact_log_verifies(project):
    state = StateDir(project / ".gati")
    write_events(state.audit_path)
    assert build_report(state).chain.ok
    state.close()
    result = CliRunner().invoke(audit_app, ["verify", "--project", str(project)])
    assert result.exit_code == 0 and "intact: 6 records" in result.output


values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in RESERVED | {"time"}), values, max_size=5), min_size=1, max_size=5))
def test_fast_chain_check_agrees_with_verify_on_any_content(tmp_path_factory, events):
    # The report hashes with msgspec's encoder: odd floats, escapes and unicode must not fake a break.
    path = tmp_path_factory.mktemp("log") / "audit.log"
    log = AuditLog(path)
    for event in events:
        log.record(**event)
    log.close()
    assert verify(path).ok
    assert scan(path).chain.ok and scan(path).chain.records == len(events)
    check = ChainCheck()
    for i, line in enumerate(path.read_bytes().splitlines(), 1):
        record = json.loads(line)
        record["x"] = "changed"
        check.feed(i, record)
        break
    assert not check.result().ok and "edited" in check.result().problem


def test_mounted_under_the_gati_app_the_report_is_the_default(project):
    import typer

    app = typer.Typer()
    app.command()(lambda: None)
    app.add_typer(audit_app, name="audit")
    state = StateDir(project / ".gati")
    write_events(state.audit_path)
    state.close()
    runner = CliRunner()
    report = runner.invoke(app, ["audit", "--format", "json", "--project", str(project)])
    assert report.exit_code == 0 and json.loads(report.output)["log"]["records"] == 6
    assert runner.invoke(app, ["audit", "verify", "--project", str(project)]).exit_code == 0
