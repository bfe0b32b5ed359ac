"""A damaged tail never stops the runtime: an append cut short is moved aside, recorded, and appends go on.

Before, a half-written last line (a crash mid-append, a full disk) or a last line without a
hash made every later append fail with a JSON error, so every later host call failed and
nothing more was recorded. Now the bytes after the last complete record go to
audit.log.quarantine-<time>, a "quarantine" event says so, no complete record is lost, and
the log verifies.
"""

import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from audit_support import write_log

from runtime.core.audit_log import AuditLog, read_events, verify
from runtime.core.call import CallContext
from runtime.core.state import StateDir
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "runtime" / "reports" / "probes" / "wasm"
TORN = b'{"seq":7,"time":1714000000.5,"module":"m","capabil'


def targets(path):
    return [e["target"] for e in read_events(path)]


def quarantined(path):
    return sorted(path.parent.glob(path.name + ".quarantine-*"))


@pytest.mark.parametrize(
    "tail",
    [TORN, b'{"seq":7,"time":1.0,"module":"m"}\n', b"\x00" * 4096, b"not json\n" + TORN],
    ids=["half a line", "a line without hash", "zeros after a power cut", "two broken lines"],
)
def test_a_broken_tail_is_moved_aside_on_open_and_appends_go_on(tmp_path, tail):
    path = tmp_path / "audit.log"
    write_log(path, 6)
    with open(path, "ab") as f:
        f.write(tail)

    write_log(path, 1)  # opening the log finds the tail

    result = verify(path)
    assert result.ok, result
    assert result.records == 8  # 6 + the quarantine event + the new record: nothing valid lost
    assert targets(path) == [f"NAME{i}" for i in range(6)] + [quarantined(path)[0].name, "NAME0"]
    [moved] = quarantined(path)
    assert moved.read_bytes() == tail
    [event] = [e for e in read_events(path) if e["capability"] == "audit.log"]
    assert event["decision"] == "quarantine" and event["bytes"] == len(tail)
    assert any("moved aside" in note for note in result.notes)


def test_a_tail_torn_under_a_writer_already_open_is_found_on_its_next_append(tmp_path):
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    log.record(module="m", capability="env", target="before", decision="allow")
    with open(path, "ab") as f:  # another process died mid-append
        f.write(TORN)
    log.record(module="m", capability="env", target="after", decision="allow")
    log.close()
    assert verify(path).ok
    assert targets(path) == ["before", quarantined(path)[0].name, "after"]


def test_a_record_missing_only_its_newline_is_kept(tmp_path):
    path = tmp_path / "audit.log"
    write_log(path, 3)
    path.write_bytes(path.read_bytes()[:-1])
    write_log(path, 1)
    assert verify(path).ok and verify(path).records == 4
    assert quarantined(path) == []


WRITER = textwrap.dedent(
    """
    import os, resource, signal, sys
    from runtime.core.audit_log import AuditLog
    log = AuditLog(sys.argv[1])
    for i in range(5):
        log.record(module="m", capability="env", target=f"NAME{i}", decision="allow")
    # The next append is cut 100 bytes in: the file size limit stops the write there and the
    # signal it raises kills the process, as a crash in the middle of an append would.
    size = os.stat(sys.argv[1]).st_size
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, size + 100))
    log.record(module="m", capability="env", target="x" * 1_000_000, decision="allow")
    print("survived")
    """
)


def test_a_writer_killed_mid_append_loses_nothing_and_the_next_appends_go_on(tmp_path):
    path = tmp_path / "audit.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}  # this checkout's runtime
    child = subprocess.run([sys.executable, "-c", WRITER, str(path)], capture_output=True, text=True, timeout=60, env=env)
    assert child.returncode == -signal.SIGXFSZ, (child.returncode, child.stdout, child.stderr)
    data = path.read_bytes()
    assert not data.endswith(b"\n")  # it died with half a record written

    log = AuditLog(path)
    log.record(module="m", capability="env", target="after the crash", decision="allow")
    log.close()
    result = verify(path)
    assert result.ok, result
    assert targets(path) == [f"NAME{i}" for i in range(5)] + [quarantined(path)[0].name, "after the crash"]
    assert len(quarantined(path)[0].read_bytes()) == 100


def test_a_full_disk_fails_the_append_cleanly_and_leaves_no_half_line(tmp_path):
    # In this process SIGXFSZ is ignored (Python's default), so the limit acts as a full disk:
    # the append fails with a clear error, the half line is taken back, the next append works.
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    log.record(module="m", capability="env", target="before", decision="allow")
    size = path.stat().st_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, hard))
    try:
        with pytest.raises(Exception) as failed:
            log.record(module="m", capability="env", target="x" * 10_000, decision="allow")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert failed.value.code == "audit_write_failed" and failed.value.fix
    assert path.stat().st_size == size
    log.record(module="m", capability="env", target="after", decision="allow")
    log.close()
    assert verify(path).ok and targets(path) == ["before", "after"]


def _append_many(path, n):
    log = AuditLog(path)
    for i in range(n):
        log.record(module="m", capability="env", target=f"T{i}", decision="allow")
    log.close()


def test_processes_sharing_the_log_keep_chain_and_head(tmp_path):
    path = tmp_path / "audit.log"
    write_log(path, 1)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, 150)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    result = verify(path)
    assert result.ok and result.records == 451 and result.head["seq"] == 451


async def test_host_calls_go_on_after_a_torn_tail(tmp_path):
    # The whole path: a real module's host call is audited after the log's tail was torn, whether
    # the log is opened afresh (a restart) or was already open (the tail re-read on append).
    state = StateDir(tmp_path / "state")
    register_module(state, PROBE)
    ctx = CallContext(request_id="r", trace_id="t", caller="test")

    async def env_call(state):
        manager = ModuleManager(state, environ={"PROBE_ALLOWED": "yes"})
        try:
            return await manager.call("probe", "env", "PROBE_ALLOWED", ctx=ctx)
        finally:
            await manager.close()

    assert (await env_call(state))["status"] == 0
    state.close()
    with open(state.audit_path, "ab") as f:
        f.write(TORN)

    state = StateDir(tmp_path / "state")
    assert (await env_call(state))["status"] == 0
    with open(state.audit_path, "ab") as f:
        f.write(TORN)
    assert (await env_call(state))["status"] == 0
    state.close()

    result = verify(state.audit_path)
    assert result.ok and len(quarantined(state.audit_path)) == 2
    assert [e["capability"] for e in read_events(state.audit_path)] == ["env", "audit.log", "env", "audit.log", "env"]
