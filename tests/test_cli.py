"""The gati command: init, module register/list/show/remove, call, audit verify, serve."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli.main import app
from runtime.core.audit_log import AuditLog

GATI = str(Path(sys.executable).parent / "gati")


def gati(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def project(tmp_path, gati_home):
    result = gati("init", tmp_path / "app")
    assert result.exit_code == 0, result.output
    return tmp_path / "app"


def test_init_scaffolds_a_project(project):
    for rel in ("gati.toml", "handlers/index.py", "handlers/hello/[name].py", "modules/hello/module.toml", "modules/hello/hello.wat"):
        assert (project / rel).is_file(), rel
    again = gati("init", project)
    assert again.exit_code == 1
    assert "not empty" in again.stderr and "fix:" in again.stderr
    assert "Traceback" not in again.output


def test_module_register_list_show_remove(project):
    result = gati("module", "register", project / "modules" / "hello", "--project", project)
    assert result.exit_code == 0, result.output
    assert "registered hello 0.1.0" in result.stdout

    listed = gati("module", "list", "--project", project)
    assert "hello" in listed.stdout and "wasm" in listed.stdout
    [summary] = json.loads(gati("module", "list", "--json", "--project", project).stdout)
    assert (summary["name"], summary["version"], summary["methods"]) == ("hello", "0.1.0", ["hello"])
    assert len(summary["artifact_sha256"]) == 64

    shown = json.loads(gati("module", "show", "hello", "--json", "--project", project).stdout)
    assert shown["capabilities"]["egress"] == []
    assert shown["limits"]["memory_mb"] == 16
    assert shown["methods"]["hello"]["timeout_ms"] == 1000
    assert "capabilities" not in gati("module", "show", "hello", "--project", project).stdout  # the table, not JSON
    assert "memory_mb=16" in gati("module", "show", "hello", "--project", project).stdout

    assert gati("module", "remove", "hello", "--project", project).exit_code == 0
    assert json.loads(gati("module", "list", "--json", "--project", project).stdout) == []
    missing = gati("module", "remove", "hello", "--project", project)
    assert missing.exit_code == 1
    assert "no module named 'hello'" in missing.stderr and "gati module register" in missing.stderr


def test_register_refuses_a_broken_manifest(project):
    manifest = project / "modules" / "hello" / "module.toml"
    manifest.write_text(manifest.read_text().replace("[limits]", "[limits]\nmemroy_mb = 1"))
    result = gati("module", "register", manifest.parent, "--project", project)
    assert result.exit_code == 1
    assert "limits.memroy_mb" in result.stderr and "unknown key" in result.stderr and "memory_mb" in result.stderr
    assert "Traceback" not in result.output


def test_call_prints_json_or_a_structured_error(project):
    gati("module", "register", project / "modules" / "hello", "--project", project)

    ok = gati("call", "hello", "hello", '{"name": "cli"}', "--project", project)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == {"greeting": "hello from WebAssembly", "you_sent": {"name": "cli"}}

    for args, code in [
        (("hello", "nope"), "method_not_found"),
        (("ghost", "hello"), "module_not_found"),
        (("hello", "hello", "{not json"), "bad_payload"),
    ]:
        failed = gati("call", *args, "--project", project)
        assert failed.exit_code == 1
        assert failed.stdout == ""
        assert json.loads(failed.stderr)["error"]["code"] == code


def test_audit_verify_names_the_first_broken_record(project, gati_home):
    assert gati("audit", "verify", "--project", project).exit_code == 0  # an empty log is intact

    log = AuditLog(gati_home / "audit.log")
    for i in range(3):
        log.record(module="m", capability="kv.read", target=f"store/{i}", decision="allow")
    log.close()
    ok = gati("audit", "verify", "--project", project)
    assert ok.exit_code == 0 and "3 records" in ok.stdout

    lines = (gati_home / "audit.log").read_text().splitlines()
    lines[1] = lines[1].replace('"allow"', '"deny"')
    (gati_home / "audit.log").write_text("\n".join(lines) + "\n")
    broken = gati("audit", "verify", "--project", project)
    assert broken.exit_code == 1
    assert "line 2" in broken.stderr and "seq 2" in broken.stderr and "edited" in broken.stderr
    as_json = json.loads(gati("audit", "verify", "--json", "--project", project).stdout)
    assert (as_json["ok"], as_json["broken_line"], as_json["records"]) == (False, 2, 1)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, dict(r.headers), json.loads(r.read())
        except (ConnectionError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_serve_answers_over_real_http(project, gati_home):
    port = _free_port()
    env = {**os.environ, "GATI_HOME": str(gati_home)}
    proc = subprocess.Popen([GATI, "serve", project, "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        status, headers, body = _get(f"http://127.0.0.1:{port}/?name=curl")
        assert status == 200
        assert body["module"]["you_sent"] == {"name": "curl"}
        assert body["request_id"] == headers["X-Request-Id"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # serve registered the project's module in the state directory the CLI reads
    assert "hello" in gati("module", "list", "--project", project).stdout


def test_serve_refuses_to_start_with_a_broken_manifest(project, gati_home):
    manifest = project / "modules" / "hello" / "module.toml"
    manifest.write_text(manifest.read_text().replace('kind = "wasm"', 'kind = "vm"'))
    env = {**os.environ, "GATI_HOME": str(gati_home)}
    proc = subprocess.run([GATI, "serve", project, "--port", str(_free_port())], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert str(manifest) in proc.stderr and "kind" in proc.stderr and "fix:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_module_serve_answers_grpc_on_a_unix_socket(project, gati_home, tmp_path):
    import signal

    import grpc
    from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc

    assert gati("module", "register", project / "modules" / "hello", "--project", project).exit_code == 0
    sock = tmp_path / "hello.sock"
    env = {**os.environ, "GATI_HOME": str(gati_home)}
    proc = subprocess.Popen([GATI, "module", "serve", "hello", "--listen", f"unix:{sock}", "--project", project], env=env)
    try:
        with grpc.insecure_channel(f"unix:{sock}") as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            described = module_pb2_grpc.ModuleServiceStub(channel).Describe(module_pb2.DescribeRequest(), timeout=5)
            assert (described.name, list(described.methods)) == ("hello", ["hello"])
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0  # Ctrl+C is a normal way to stop it


def test_module_serve_refuses_an_unknown_module(project):
    result = gati("module", "serve", "ghost", "--listen", "unix:/tmp/never.sock", "--project", project)
    assert result.exit_code == 1
    assert "no module named 'ghost'" in result.stderr


# Ctrl+C landing in the import of the CLI, made exact: a signal's arrival moment is not (a bare
# `except:` in some library's import can swallow it).
INTERRUPTED_IMPORT = """
import runpy, sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "runtime.cli.main":
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
sys.argv = [sys.argv[1], "--version"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_ctrl_c_while_the_command_still_imports_exits_130_without_a_traceback():
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT, GATI], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
