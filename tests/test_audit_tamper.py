"""The audit log is tamper-evident: what passed `gati audit verify` before keyed chaining is now named.

Each attack is made as an attacker who can write the state directory but does not hold the
key would make it: dropping the last records, emptying or deleting the log, appending a
record whose chain was recomputed, editing a record and recomputing every later hash. Each
is caught by `verify` (and by the report's own pass), and, when the runtime appends on top,
the writer records what it found instead of papering over it. The attacks written with the
old API only (AuditLog.record, verify, the CLI) also run against the code before this change,
where they passed.
"""

import pytest
from audit_support import rechain, rehash, rows, write_log, write_rows
from typer.testing import CliRunner

from runtime.cli.main import app
from runtime.core.audit_log import AuditLog, read_events, verify
from runtime.core.state import StateDir
from runtime.reports.usage import scan


def gati(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def drop_last(path):
    write_rows(path, rows(path)[:-2])


def empty(path):
    path.write_bytes(b"")


def delete(path):
    path.unlink()


def forge_append(path):
    records = rows(path)
    forged = {**records[-1], "seq": records[-1]["seq"] + 1, "target": "NAME_FORGED", "mac": "0" * 64}
    write_rows(path, records + [rehash(forged, records[-1]["hash"])])


def forge_append_without_mac(path):
    # Shaped like a record from before keyed chaining: no key_id, no mac.
    records = rows(path)
    forged = {k: v for k, v in records[-1].items() if k not in ("mac", "key_id")}
    forged.update(seq=records[-1]["seq"] + 1, target="NAME_FORGED")
    write_rows(path, records + [rehash(forged, records[-1]["hash"])])


def strip_mac(path):
    records = rows(path)
    del records[2]["mac"]
    write_rows(path, records)


def edit_and_rechain(path):
    records = rows(path)
    records[2]["decision"] = "deny"
    write_rows(path, rechain(records, 2))


def drop_and_rechain(path):
    records = rows(path)
    del records[1]
    for i, r in enumerate(records, 1):
        r["seq"] = i
    write_rows(path, rechain(records, 1))


ATTACKS = {
    "last records dropped": (drop_last, "records were removed from its end"),
    "log emptied": (empty, "the log was emptied"),
    "log deleted": (delete, "the log was emptied"),
    "forged record appended, chain recomputed": (forge_append, "mac does not match"),
    "forged record without mac appended": (forge_append_without_mac, "without a mac after signed records"),
    "a record's mac taken off": (strip_mac, "mac was removed"),
    "record edited, every later hash recomputed": (edit_and_rechain, "mac does not match"),
    "record removed, every later hash recomputed": (drop_and_rechain, "mac does not match"),
}


@pytest.fixture
def project(tmp_path, gati_home):
    root = tmp_path / "app"
    root.mkdir()
    return root


@pytest.mark.parametrize("attack", ATTACKS)
def test_verify_names_each_attack(project, gati_home, attack):
    tamper, problem = ATTACKS[attack]
    path = gati_home / "audit.log"
    write_log(path)
    assert gati("audit", "verify", "--project", project).exit_code == 0
    tamper(path)

    result = gati("audit", "verify", "--project", project)
    assert result.exit_code == 1, result.output
    assert problem in result.stderr and "Traceback" not in result.output
    assert not verify(path).ok
    assert vars(scan(path).chain) == vars(verify(path))  # the report's own pass says the same
    report = gati("audit", "--fail-on", "high", "--project", project)
    assert report.exit_code == 1 and "BROKEN" in report.stdout


@pytest.mark.parametrize("attack", ATTACKS)
def test_appending_on_top_of_an_attack_never_hides_it(tmp_path, attack):
    # The runtime keeps appending after the log was tampered with: its head checkpoint must not
    # be rewritten to bless what it found. It records a "mismatch" event instead, and verify
    # keeps failing.
    tamper, _ = ATTACKS[attack]
    path = tmp_path / "audit.log"
    write_log(path)
    tamper(path)
    write_log(path, 2)
    result = verify(path)
    assert not result.ok, attack


def test_a_writer_left_open_notices_the_log_cut_under_it(tmp_path):
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    for i in range(5):
        log.record(module="m", capability="env", target=f"N{i}", decision="allow")
    drop_last(path)
    log.record(module="m", capability="env", target="after", decision="allow")
    log.close()
    result = verify(path)
    assert not result.ok and result.broken_seq == 4
    assert "writer found the log tampered with" in result.problem and "records were removed from its end" in result.problem
    [event] = [e for e in read_events(path) if e["capability"] == "audit.log"]
    assert event["decision"] == "mismatch" and event["head"]["seq"] == 5


def test_a_log_deleted_under_a_running_writer_is_reopened_not_written_blind(tmp_path):
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    log.record(module="m", capability="env", target="N0", decision="allow")
    path.unlink()
    log.record(module="m", capability="env", target="N1", decision="allow")
    log.close()
    assert path.exists() and [e["target"] for e in read_events(path)][-1] == "N1"
    assert "the log was emptied" in verify(path).problem


def test_records_written_before_keyed_chaining_verify_as_a_legacy_prefix(project, gati_home):
    # A log from before this change: sha256 chain, no mac, no key, no head.
    path = gati_home / "audit.log"
    gati_home.mkdir(parents=True)
    prev, legacy = "0" * 64, []
    for i in range(3):
        r = rehash({"seq": i + 1, "time": 1.0 + i, "module": "m", "capability": "env", "target": f"OLD{i}", "decision": "allow"}, prev)
        legacy.append(r)
        prev = r["hash"]
    write_rows(path, legacy)
    assert verify(path).ok and verify(path).legacy == 3

    write_log(path, 2)  # the first keyed writer anchors the old records under its head
    result = gati("audit", "verify", "--project", project)
    assert result.exit_code == 0 and "5 records" in result.stdout
    assert "records 1-3 carry no mac" in result.stdout

    records = rows(path)  # an old record edited after the upgrade, chain recomputed: the first signed record breaks
    records[1]["target"] = "OLD_EDITED"
    write_rows(path, rechain(records, 1))
    broken = verify(path)
    assert not broken.ok and broken.broken_seq == 4 and "mac does not match" in broken.problem


def test_the_log_own_events_are_no_module_in_the_report(tmp_path):
    state = StateDir(tmp_path / "state")
    write_log(state.audit_path, 2)
    with open(state.audit_path, "ab") as f:
        f.write(b'{"seq":3,"ti')
    write_log(state.audit_path, 1)
    usage = scan(state.audit_path).usage
    assert set(usage) == {"m"} and usage["m"].events == 3
    state.close()
