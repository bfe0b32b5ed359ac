"""The real `gati` command as a new user meets it: never a traceback, the right fix, no stray state.

Each test runs the installed `gati` (this checkout's code first on PYTHONPATH) and judges
its output and exit status.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import pytest
from gati_sdk.protocol.gati.module.v1 import module_pb2, module_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
GATI = str(Path(sys.executable).parent / "gati")
WASM_PROBE = ROOT / "runtime" / "reports" / "probes" / "wasm"


def gati(*args, cwd=None, home=None, env=None, timeout=60):
    """Run the real command; home: $GATI_HOME, or None for none at all."""
    environ = {k: v for k, v in os.environ.items() if k != "GATI_HOME" and not k.startswith("GATI_SECRET_")}
    environ.update(PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'sdk' / 'python'}", **(env or {}))
    if home is not None:
        environ["GATI_HOME"] = str(home)
    return subprocess.run([GATI, *map(str, args)], cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout)


def no_traceback(proc):
    assert "Traceback" not in proc.stdout + proc.stderr  # Python's, or Rich's boxed one


@pytest.fixture
def project(tmp_path):
    assert gati("init", tmp_path / "app").returncode == 0
    return tmp_path / "app"


# listening -----------------------------------------------------------------------------------


def test_a_port_out_of_range_is_refused_in_a_line_or_two(project):
    proc = gati("serve", project, "--port", "99999")
    assert proc.returncode == 2  # a usage error, as for any option given a wrong value
    no_traceback(proc)
    assert "--port" in proc.stderr and "65535" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 6


def test_a_host_that_does_not_resolve_is_told_about_the_host_not_the_port(project):
    proc = gati("serve", project, "--host", "999.1.1.1", "--port", "8089")
    assert proc.returncode == 1
    no_traceback(proc)
    assert "999.1.1.1" in proc.stderr and "--host" in proc.stderr and "--port" not in proc.stderr


def test_a_port_in_use_is_told_to_choose_another_port(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = gati("serve", project, "--host", "127.0.0.1", "--port", port)
    assert proc.returncode == 1
    no_traceback(proc)
    assert "in use" in proc.stderr and "--port" in proc.stderr


# outside a project ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["module", "list"],
        ["module", "register", "."],
        ["module", "show", "hello"],
        ["call", "hello", "hello"],
        ["audit"],
        ["audit", "verify"],
        ["audit", "diff", "a@1.0.0", "b"],
    ],
)
def test_verbs_that_keep_state_refuse_a_folder_that_is_not_a_project(tmp_path, args):
    folder = tmp_path / "somewhere"
    folder.mkdir()
    proc = gati(*args, cwd=folder)
    assert proc.returncode == 1, proc.stderr
    no_traceback(proc)
    assert "not a gati project" in proc.stderr and "gati init" in proc.stderr  # (call's errors are JSON)
    assert list(folder.iterdir()) == []  # no .gati left behind


def test_outside_a_project_a_diff_of_two_manifest_files_still_works(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(WASM_PROBE, a)
    shutil.copytree(WASM_PROBE, b)
    (b / "module.toml").write_text((b / "module.toml").read_text().replace('kv = ["probe"]', 'kv = ["probe", "more"]'))
    proc = gati("audit", "diff", a, b, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [g["line"] for g in json.loads(proc.stdout)["added"]] == ['[capabilities] kv = ["more"]']
    assert not (tmp_path / ".gati").exists()


def test_gati_home_names_the_state_so_no_project_is_needed(tmp_path):
    proc = gati("module", "list", "--json", cwd=tmp_path, home=tmp_path / "state")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


# unexpected failures -------------------------------------------------------------------------


def test_an_unexpected_exception_is_one_line_naming_the_file_with_the_traceback(project):
    (project / ".gati" / "registry.db").mkdir(parents=True)  # SQLite cannot open a directory: a failure no GatiError covers
    proc = gati("module", "list", "--project", project)
    assert proc.returncode == 1
    no_traceback(proc)
    [line] = proc.stderr.strip().splitlines()
    assert "OperationalError" in line
    saved = Path(line.rsplit(" ", 1)[1])
    try:
        assert saved.is_file() and saved.stat().st_mode & 0o077 == 0  # for its owner only
        text = saved.read_text()
        assert "Traceback" in text and "sqlite3.OperationalError" in text
    finally:
        saved.unlink()


# the project's settings, the same for every verb -------------------------------------------------


def _probe_project(tmp_path, secrets_toml):
    root = tmp_path / "app"
    shutil.copytree(WASM_PROBE, root / "modules" / "probe")
    (root / "gati.toml").write_text(textwrap.dedent(secrets_toml))
    assert gati("module", "register", root / "modules" / "probe", "--project", root).returncode == 0
    return root


@pytest.mark.parametrize(
    "settings, env, expected",
    [
        # env provider with the project's own prefix: the default prefix's variable must not win
        ('[secrets]\nproviders = ["env"]\nenv_prefix = "MYAPP_"\n', {"MYAPP_PROBE_TOKEN": "from-myapp", "GATI_SECRET_PROBE_TOKEN": "wrong"}, "from-myapp"),
        # file provider with the project's own file name
        ('[secrets]\nproviders = ["file"]\nfile = "vault.toml"\n', {"GATI_SECRET_PROBE_TOKEN": "wrong"}, "from-vault"),
    ],
)
def test_call_reads_secrets_as_the_project_says(tmp_path, settings, env, expected):
    root = _probe_project(tmp_path, settings)
    (root / "vault.toml").write_text('probe_token = "from-vault"\n')
    proc = gati("call", "probe", "secret", '"probe_token"', "--project", root, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"status": 0, "result": expected}


def test_module_serve_reads_secrets_as_the_project_says(tmp_path):
    root = _probe_project(tmp_path, '[secrets]\nproviders = ["file"]\nfile = "vault.toml"\n')
    (root / "vault.toml").write_text('probe_token = "from-vault"\n')
    sock = tmp_path / "probe.sock"
    environ = {k: v for k, v in os.environ.items() if k != "GATI_HOME"}
    environ.update(PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'sdk' / 'python'}", GATI_SECRET_PROBE_TOKEN="wrong")
    proc = subprocess.Popen(
        [GATI, "module", "serve", "probe", "--listen", f"unix:{sock}", "--project", str(root)],
        env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        with grpc.insecure_channel(f"unix:{sock}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            reply = module_pb2_grpc.ModuleServiceStub(channel).Call(
                module_pb2.CallRequest(method="secret", payload=b'"probe_token"'), timeout=10
            )
        assert reply.WhichOneof("outcome") == "payload", reply
        assert json.loads(reply.payload) == {"status": 0, "result": "from-vault"}
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in stderr  # SIGTERM is a normal way to stop a server


# what a client is told ------------------------------------------------------------------------


async def test_a_missing_module_names_the_registered_ones_in_the_log_not_to_the_client(make_project, serve, caplog):
    root = make_project(
        {
            "index.py": """
                async def handler(req, res, gctx, lctx):
                    return await gctx.modules["ghost"].call("run", {})
            """
        }
    )
    shutil.copytree(WASM_PROBE, root / "modules" / "secretly-named")
    (root / "modules" / "secretly-named" / "module.toml").write_text(
        (WASM_PROBE / "module.toml").read_text().replace('name = "probe"', 'name = "secretly-named"')
    )
    client = await serve(root)
    r = await client.get("/")
    body = await r.text()
    assert r.status == 500 and json.loads(body)["error"]["code"] == "module_not_found"
    assert "secretly-named" not in body and "registered" not in body
    assert "registered: secretly-named" in caplog.text


def test_the_cli_still_names_the_registered_modules(project):
    assert gati("module", "register", project / "modules" / "hello", "--project", project).returncode == 0
    shown = gati("module", "show", "ghost", "--project", project)
    assert shown.returncode == 1 and "registered: hello" in shown.stderr
    called = gati("call", "ghost", "run", "--project", project)
    assert called.returncode == 1
    error = json.loads(called.stderr)["error"]
    assert (error["code"], error["note"]) == ("module_not_found", "registered: hello")
