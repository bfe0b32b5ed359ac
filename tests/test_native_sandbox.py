"""Native modules in real bubblewrap: each way out is refused, the runtime keeps serving.

Driven by tests/modules/native_probe (a Python SDK module whose methods attempt escapes
and report what happened). Attempts the kernel refuses (a raw connect, a file that is not
in the sandbox) never reach the runtime, so they leave no audit event; attempts that go
through the runtime (the egress proxy, the host service) and limits that stop a module
are refused *and* audited.
"""

import os

import pytest
from native_support import CTX, PROBE, events, install, manager, needs_bwrap, origin  # noqa: F401

from runtime.core.audit_log import verify
from runtime.core.errors import ModuleCrashed, ModuleTimeout
from runtime.modules import register_module
from sandboxes.native import process as native_process
from sandboxes.process.handshake import ModuleStartError

pytestmark = needs_bwrap


async def probe(manager, method, payload=None):
    return await manager.call("probe", method, payload, ctx=CTX)


def register(state, tmp_path, edit=None, name=None):
    return register_module(state, install(tmp_path, PROBE, edit, name))


async def test_the_sandbox_shows_only_what_is_granted(state, manager, tmp_path):
    register(state, tmp_path)
    me = await probe(manager, "whoami")
    assert (me["uid"], me["gid"], me["cap_eff"]) == (65534, 65534, "0000000000000000")
    assert me["interfaces"] == ["lo"] and me["hostname"] == "gati" and me["cwd"] == "/"
    assert set(me["root"]) <= {"app", "bin", "data", "dev", "etc", "lib", "lib32", "lib64", "libx32", "opt", "proc", "run", "sbin", "tmp", "usr"}
    assert (await probe(manager, "read", "/data/hello.txt"))["data"] == "hello from the probe's data\n"
    etc = await probe(manager, "read", "/etc/passwd")
    assert etc["error"] == "ENOENT"


async def test_only_declared_env_names_are_set(state, manager, tmp_path):
    register(state, tmp_path)
    env = await probe(manager, "environ")
    assert env["PROBE_ALLOWED"] == "yes"
    assert "HOME" not in env and "SECRET_TOKEN" not in env and "PATH" not in env
    runtime_names = {n for n in env if n.startswith(("GATI_", "PYTHON")) or n.lower().endswith("_proxy")}
    assert set(env) - runtime_names <= {"PROBE_ALLOWED", "PWD", "LC_CTYPE"}  # PWD: bwrap; LC_CTYPE: python's own
    denied = await probe(manager, "host_env", "HOME")
    assert denied == {"ok": False, "error": "capability_denied", "grant": '[capabilities] env = ["HOME"]'}
    # What the instance was handed at start is audited like what it asked for later.
    assert [(e["target"], e["decision"], e["caller"], e["request_id"]) for e in events(state, "env")] == [
        ("PROBE_ALLOWED", "allow", "module:probe", ""),
        ("HOME", "deny", "test", "req-n1"),
    ]
    [mount] = events(state, "file.mount")
    assert (mount["target"], mount["decision"], mount["rule"]) == ("/data", "allow", '"data" = "ro"')


async def test_a_tcp_connection_to_the_host_is_refused(state, manager, tmp_path, origin):
    port, hits = origin
    register(state, tmp_path)
    local = await probe(manager, "connect", {"host": "127.0.0.1", "port": port})
    assert local["ok"] is False and local["error"] == "ECONNREFUSED"  # its own loopback, not the host's
    outside = await probe(manager, "connect", {"host": "10.255.255.1", "port": 80})
    assert outside["ok"] is False and outside["error"] == "ENETUNREACH"
    assert (await probe(manager, "resolve", "example.com"))["ok"] is False  # no resolver either
    assert hits == []
    assert await probe(manager, "echo", "still serving") == "still serving"


async def test_the_proxy_refuses_hosts_not_granted_and_audits(state, manager, tmp_path, origin):
    port, hits = origin
    register(state, tmp_path, edit=lambda t: t.replace("egress = []", f'egress = ["http://127.0.0.1:{port}"]'))
    ok = await probe(manager, "proxy_get", f"http://127.0.0.1:{port}/granted")
    assert ok["ok"] and ok["status"] == 200
    denied = await probe(manager, "proxy_get", "http://not-granted.test/x")
    assert denied["error"] == "capability_denied"
    assert denied["grant"] == '[capabilities] egress = ["http://not-granted.test:80"]'
    assert hits == ["/granted"]
    decisions = [(e["decision"], e["target"]) for e in events(state, "egress")]
    assert ("allow", f"http://127.0.0.1:{port}") in decisions
    assert ("deny", "http://not-granted.test:80") in decisions


async def test_names_resolving_to_loopback_or_metadata_are_refused(state, manager, tmp_path, origin):
    port, hits = origin
    rules = f'egress = ["http://metadata.test:80", "http://loopback.test:{port}"]'
    register(state, tmp_path, edit=lambda t: t.replace("egress = []", rules))
    for url, address in [("http://metadata.test/latest/meta-data", "169.254.169.254"), (f"http://loopback.test:{port}/", "127.0.0.1")]:
        denied = await probe(manager, "proxy_get", url)
        assert denied["error"] == "capability_denied", denied
        assert address in denied["grant"]  # only a rule naming the address itself would allow it
    assert hits == []
    refusals = [e for e in events(state, "egress") if e["decision"] == "deny"]
    assert [e["reason"].split(" resolves to ")[1].split(",")[0] for e in refusals] == ["169.254.169.254", "127.0.0.1"]
    assert all(e["request_id"] == "req-n1" for e in refusals)


async def test_host_files_are_not_there(state, manager, tmp_path):
    other = install(tmp_path, PROBE, name="other")
    (other / "data" / "private.txt").write_text("another module's data")
    register(state, tmp_path)
    for path in ("/etc/shadow", "/root/.bashrc", os.path.expanduser("~"), str(other / "data" / "private.txt"), str(PROBE / "module.toml")):
        seen = await probe(manager, "read", path)
        assert seen["ok"] is False and seen["error"] in ("ENOENT", "EISDIR"), (path, seen)
    # Asking the host service instead: checked by the Policy, refused and audited.
    for path in ("/etc/shadow", "/data/../module.toml"):
        denied = await probe(manager, "host_read", path)
        assert denied["ok"] is False and denied["error"] == "capability_denied"
    assert [(e["capability"], e["decision"]) for e in events(state) if e["capability"].startswith("file.read")] == [("file.read", "deny")] * 2
    assert (await probe(manager, "host_read", "/data/hello.txt"))["ok"]


async def test_writes_only_inside_an_rw_grant(state, manager, tmp_path):
    target = register(state, tmp_path).loaded.base_dir
    for path in ("/data/new.txt", "/new.txt", "/usr/new.txt", "/app/probe.py", "/etc/new"):
        refused = await probe(manager, "write", path)
        assert refused["ok"] is False and refused["error"] in ("EROFS", "EACCES"), (path, refused)
    assert not os.path.exists(os.path.join(target, "data", "new.txt"))
    assert (await probe(manager, "write", "/tmp/scratch.txt"))["ok"]  # its own tmpfs

    rw = register(state, tmp_path, edit=lambda t: t.replace('"data" = "ro"', '"data" = "rw"'), name="probe-rw")
    assert (await probe(manager, "write", "/data/new.txt"))["ok"]
    assert open(os.path.join(rw.loaded.base_dir, "data", "new.txt")).read() == "written by the native probe\n"
    assert (await probe(manager, "write", "/new.txt"))["error"] == "EROFS"


async def test_host_processes_are_invisible(state, manager, tmp_path):
    register(state, tmp_path)
    seen = await probe(manager, "processes")
    assert set(seen) == {"1", "2"}  # bwrap's init and the module
    assert seen["2"] == "/usr/bin/python3 /app/probe.py"
    assert "/" not in seen["1"].split(" -- ")[0]  # the init shows no host path (options came through --args)
    assert (await probe(manager, "signal_pid", os.getpid()))["error"] == "ESRCH"


async def test_a_fork_bomb_stops_at_the_process_limit(state, manager, tmp_path):
    register(state, tmp_path)
    bomb = await probe(manager, "forkbomb", 5000)
    assert bomb["error"] == "EAGAIN" and bomb["forked"] < 32
    assert await probe(manager, "echo", 1) == 1
    [event] = events(state, "limit.processes")
    assert event["decision"] == "deny" and event["target"] == "32 processes" and event["request_id"] == "req-n1"


async def test_memory_past_the_limit_kills_and_replaces_the_instance(state, manager, tmp_path):
    register(state, tmp_path)
    with pytest.raises(ModuleCrashed) as exc:
        await probe(manager, "membomb", 1024)
    assert "memory limit of 128 MB" in exc.value.message and "memory_mb" in exc.value.fix
    assert await probe(manager, "echo", "replaced") == "replaced"
    [event] = events(state, "limit.memory")
    assert event["decision"] == "deny" and event["target"] == "128 MB"


async def test_a_method_that_never_returns_is_killed(state, manager, tmp_path):
    register(state, tmp_path, edit=lambda t: t.replace("[methods.spin]", "[methods.spin]\ntimeout_ms = 500"))
    before = await probe(manager, "whoami")
    sandbox = manager._running["probe"].sandbox
    old_pid = sandbox.instances[0].process.pid
    with pytest.raises(ModuleTimeout):
        await probe(manager, "spin")
    assert not os.path.exists(f"/proc/{old_pid}")  # the work really stopped
    assert await probe(manager, "echo", "after") == "after"
    assert before["uid"] == 65534
    [event] = events(state, "limit.timeout")
    assert event["target"] == "spin: 500 ms"
    assert verify(state.audit_path).ok


# handshake -------------------------------------------------------------------------

def script_module(tmp_path, body: str):
    mod = tmp_path / "modules" / "starter"
    mod.mkdir(parents=True)
    (mod / "start.sh").write_text("#!/bin/sh\n" + body)
    (mod / "start.sh").chmod(0o755)
    (mod / "module.toml").write_text('name = "starter"\nversion = "1.0.0"\nkind = "native"\n[artifact]\npath = "start.sh"\n[methods.run]\n')
    return mod


@pytest.mark.parametrize(
    "body, says",
    [
        ('echo "hello, I am a server"\necho "config loaded" >&2\nsleep 30\n', "printed 'hello, I am a server' instead of the handshake line"),
        ('echo "waiting for something" >&2\nsleep 30\n', "printed no handshake line within 1 s"),
        ('echo "fatal: no config file" >&2\nexit 3\n', "exited at once (exited with status 3)"),
        ('echo "GATI|3|unix|/run/gati/module.sock"\necho "newer sdk" >&2\nsleep 30\n', "speaks handshake protocol '3'"),
    ],
    ids=["garbage", "silence", "exit", "version"],
)
async def test_handshake_failures_say_which_with_the_stderr_tail(state, manager, tmp_path, monkeypatch, body, says):
    monkeypatch.setattr(native_process, "HANDSHAKE_TIMEOUT_S", 1.0)
    register_module(state, script_module(tmp_path, body))
    with pytest.raises(ModuleStartError) as exc:
        await manager.call("starter", "run", ctx=CTX)
    assert says in exc.value.message
    stderr_line = body.split('echo "')[-1].split('"')[0]
    assert stderr_line in exc.value.details["stderr"]
    assert exc.value.fix
