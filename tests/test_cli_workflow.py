"""CLI conventions: --version, shell completion, --json on what prints data, gati doctor,
gati publish, and --log-format json with request ids."""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


def gati(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], prog_name="gati", env=env)


@pytest.fixture
def project(tmp_path, gati_home):
    assert gati("init", tmp_path / "app").exit_code == 0
    return tmp_path / "app"


def test_version_is_the_distributions():
    result = gati("--version")
    assert result.exit_code == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert result.stdout.strip() == f"gati {version}"


def test_shell_completion_script_and_answers():
    script = gati("--show-completion", "bash")
    assert script.exit_code == 0 and "complete -o default -F _gati_completion gati" in script.stdout
    answer = gati(env={"_GATI_COMPLETE": "complete_bash", "COMP_WORDS": "gati do", "COMP_CWORD": "1"})
    assert answer.stdout.split() == ["doctor"]


def test_every_command_that_prints_data_has_json(project):
    outputs = {
        "init": gati("init", project.parent / "other", "--json"),
        "new": gati("new", "module", "w", "--project", project, "--json"),
        "templates": gati("new", "templates", "--json"),
        "build": gati("build", "--project", project, "--json"),
        "register": gati("module", "register", project / "modules" / "w", "--project", project, "--json"),
        "list": gati("module", "list", "--project", project, "--json"),
        "show": gati("module", "show", "w", "--project", project, "--json"),
        "doctor": gati("doctor", "--project", project, "--json"),
        "remove": gati("module", "remove", "w", "--project", project, "--json"),
    }
    for name, result in outputs.items():
        assert result.exit_code == 0, (name, result.output)
        json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert json.loads(outputs["register"].stdout)["name"] == "w"
    assert json.loads(outputs["remove"].stdout) == {"name": "w", "versions_removed": 1}
    assert {t["lang"] for t in json.loads(outputs["templates"].stdout)} == {"wat", "c", "rust", "assemblyscript", "python", "node", "go"}


def test_doctor_checks_the_machine_and_the_project_each_with_a_fix(project):
    result = gati("doctor", "--project", project, "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    for name in ("docker engine", "bubblewrap", "user namespaces", "cgroups", "template c (wasm)", "template go (native)", "gati.toml",
                 "port 127.0.0.1:8080", "state directory", "module hello", "audit chain"):
        assert name in checks, name
    assert all(c["fix"] for c in checks.values() if c["status"] != "ok")
    assert checks["module hello"]["status"] == "ok"

    # a broken manifest and a broken audit chain fail, naming the fix; exit 1
    (project / "modules" / "hello" / "module.toml").write_text('name = "hello"\nversion = "x"\nkind = "wasm"\n[artifact]\npath = "hello.wat"\n[methods.hello]\n')
    audit = Path(os.environ["GATI_HOME"]) / "audit.log"
    audit.parent.mkdir(parents=True, exist_ok=True)
    audit.write_text('{"seq": 1, "prev": "nope", "hash": "bad"}\n')
    broken = gati("doctor", "--project", project, "--json")
    assert broken.exit_code == 1
    checks = {c["name"]: c for c in json.loads(broken.stdout)}
    assert checks["module hello"]["status"] == "fail" and "semantic version" in checks["module hello"]["detail"]
    assert checks["audit chain"]["status"] == "fail" and "gati audit verify" in checks["audit chain"]["fix"]
    table = gati("doctor", "--project", project)
    assert table.exit_code == 1 and "fail" in table.stdout and "Traceback" not in table.output


def test_doctor_says_a_stale_build_needs_gati_build(project):
    assert gati("new", "module", "cmod", "--lang", "c", "--project", project).exit_code == 0
    missing = {c["name"]: c for c in json.loads(gati("doctor", "--project", project, "--json").stdout)}["module cmod"]
    assert missing["status"] == "fail" and missing["fix"] == "build it first: gati build cmod"
    assert gati("build", "--project", project).exit_code == 0
    source = project / "modules" / "cmod" / "cmod.c"
    source.write_text(source.read_text() + "\n/* edited */\n")
    stale = {c["name"]: c for c in json.loads(gati("doctor", "--project", project, "--json").stdout)}["module cmod"]
    assert stale["status"] == "warn" and stale["fix"] == "gati build cmod"


@pytest.fixture
def nats_url(tmp_path):
    binary = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")
    if binary is None:
        pytest.skip("nats-server is not installed (scripts/install-system-deps.sh installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "nats-server did not start"
            time.sleep(0.05)
    yield f"nats://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


async def test_publish_reaches_a_subscriber_over_nats(project, nats_url):
    from runtime.http.pubsub_nats import NatsBus

    (project / "gati.toml").write_text(f'[pubsub]\nbackend = "nats"\nurl = "{nats_url}"\n')
    bus = await NatsBus(nats_url).connect()
    try:
        sub = await bus.subscribe("orders.created")
        proc = subprocess.run(
            [sys.executable, "-m", "runtime.cli.main", "publish", "orders.created", '{"id": 7}', "--project", project, "--json"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk' / 'python'}"},
        )
        assert proc.returncode == 0, proc.stderr
        async with asyncio.timeout(10):
            message = await sub.get()
        assert message.data == {"id": 7} and message.topic == "orders.created"
    finally:
        await bus.close()


def test_publish_to_the_in_memory_bus_is_refused_with_the_fix(project):
    result = gati("publish", "t", "{}", "--project", project)
    assert result.exit_code == 1 and 'set [pubsub] backend = "nats"' in result.stderr
    bad = gati("publish", "t", "{nope", "--project", project)
    assert bad.exit_code == 1 and "not JSON" in bad.stderr


def serve_once(project, *args) -> tuple[str, str, str]:
    """Serve the project, GET /logs once; (request id, trace id, everything the server logged)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli.main", "serve", project, "--port", str(port), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk' / 'python'}"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/logs", timeout=5) as resp:
                    request_id = resp.headers["X-Request-Id"]
                    trace_id = resp.headers["traceparent"].split("-")[1]
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "not serving"
                time.sleep(0.1)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    return request_id, trace_id, stderr


@pytest.fixture
def logging_project(project):
    (project / "handlers" / "logs.py").write_text(
        'import logging\nVERSION = "7"\n\nasync def handler(req, res, gctx, lctx):\n'
        '    logging.getLogger("app").warning("inside the handler")\n    return {"ok": True}\n'
    )
    return project


def test_json_logs_carry_the_request_id_trace_id_handler_and_version(logging_project):
    request_id, trace_id, stderr = serve_once(logging_project, "--log-format", "json")
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    inside = next(e for e in lines if e["message"] == "inside the handler")
    assert inside["request_id"] == request_id and inside["trace_id"] == trace_id
    assert (inside["handler"], inside["version"], inside["route"], inside["level"], inside["logger"]) == ("logs.py", "7", "/logs", "warning", "app")
    access = next(e for e in lines if e["logger"] == "aiohttp.access")
    assert (access["request_id"], access["trace_id"], access["status"], access["path"]) == (request_id, trace_id, 200, "/logs")


def test_the_text_access_log_carries_the_request_id(logging_project):
    request_id, _, stderr = serve_once(logging_project)
    assert any('"GET /logs HTTP/1.1" 200' in line and f"request={request_id}" in line for line in stderr.splitlines()), stderr
