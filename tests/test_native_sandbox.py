"""What is native-only about native modules in real bubblewrap: the view of the file system and
of processes bwrap builds, and the handshake a module's process must print.

The scenarios every backend shares (limits, egress, files, env, host calls) are the
conformance suite's (tests/conformance), which runs them on native modules too.
"""

import os

import pytest
from native_support import CTX, script_module, PROBE, install, manager, needs_bwrap  # noqa: F401

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
    assert me["hostname"] == "gati" and me["cwd"] == "/" and me["source"] == "/app/probe.py"
    assert set(me["root"]) <= {"app", "bin", "data", "dev", "etc", "lib", "lib32", "lib64", "libx32", "opt", "proc", "run", "sbin", "tmp", "usr"}
    assert (await probe(manager, "read_path", "/data/hello.txt"))["data"] == (PROBE / "data" / "hello.txt").read_text()
    for path in ("/etc/passwd", "/etc/shadow", "/root/.bashrc", os.path.expanduser("~")):  # the host's, not there at all
        assert (await probe(manager, "read_path", path))["error"] == "ENOENT", path


async def test_host_processes_are_invisible(state, manager, tmp_path):
    register(state, tmp_path)
    seen = await probe(manager, "processes")
    assert set(seen) == {"1", "2"}  # bwrap's init and the module
    assert seen["2"] == "/usr/bin/python3 /app/probe.py"
    assert "/" not in seen["1"].split(" -- ")[0]  # the init shows no host path (options came through --args)
    assert (await probe(manager, "signal_pid", os.getpid()))["error"] == "ESRCH"


# handshake -------------------------------------------------------------------------

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
