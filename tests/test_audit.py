"""The audit log is hash-chained: edits, removals and reorderings are detected and named."""

import json
import threading

from runtime.core.audit_log import AuditLog, read_events, verify


def write_log(path, n=5):
    log = AuditLog(path)
    for i in range(n):
        log.record(module="m", capability="env", target=f"NAME{i}", decision="deny")
    log.close()


def lines(path):
    return path.read_text().splitlines()


def test_chain_verifies(tmp_path):
    path = tmp_path / "audit.log"
    write_log(path)
    result = verify(path)
    assert result.ok and result.records == 5
    assert [e["target"] for e in read_events(path)] == [f"NAME{i}" for i in range(5)]


def test_reopened_log_continues_the_chain(tmp_path):
    path = tmp_path / "audit.log"
    write_log(path, 3)
    write_log(path, 3)
    assert verify(path).records == 6


def test_concurrent_writers_keep_the_chain(tmp_path):
    path = tmp_path / "audit.log"
    logs = [AuditLog(path), AuditLog(path)]  # two handles: like the server and a CLI call
    threads = [threading.Thread(target=lambda l=l: [l.record(i=i) for i in range(50)]) for l in logs]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert verify(path).ok and verify(path).records == 100


def test_edited_record_is_named(tmp_path):
    path = tmp_path / "audit.log"
    write_log(path)
    rows = lines(path)
    record = json.loads(rows[2])
    record["decision"] = "allow"
    rows[2] = json.dumps(record)
    path.write_text("\n".join(rows) + "\n")
    result = verify(path)
    assert not result.ok and result.broken_seq == 3 and result.broken_line == 3 and "edited" in result.problem


def test_removed_record_is_named(tmp_path):
    path = tmp_path / "audit.log"
    write_log(path)
    rows = lines(path)
    del rows[1]
    path.write_text("\n".join(rows) + "\n")
    result = verify(path)
    assert not result.ok and result.broken_line == 2 and "removed" in result.problem


def test_reordered_records_are_named(tmp_path):
    path = tmp_path / "audit.log"
    write_log(path)
    rows = lines(path)
    rows[1], rows[2] = rows[2], rows[1]
    path.write_text("\n".join(rows) + "\n")
    result = verify(path)
    assert not result.ok and result.broken_line == 2


def test_garbage_line_is_named(tmp_path):
    path = tmp_path / "audit.log"
    write_log(path)
    with open(path, "a") as f:
        f.write("not json\n")
    result = verify(path)
    assert not result.ok and result.broken_line == 6
