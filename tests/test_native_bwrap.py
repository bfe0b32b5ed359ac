"""The bwrap command line and the confinement prefix, as data (no sandbox started)."""

import os
import subprocess
from pathlib import Path

import pytest

from runtime.core.manifest import Limits
from sandboxes.native import bwrap
from sandboxes.native.limits import Cgroups, InstanceCgroup, confine_argv
from sandboxes.native.process import BwrapProcess
from sandboxes.process.handshake import ModuleStartError


def command(**overrides):
    args = dict(
        artifact=Path("/srv/mod/build/tool"), args=["--serve"], run_dir=Path("/tmp/run/i1"), guest_run_dir="/run/gati",
        env={"GATI_MODULE_SOCKET": "/run/gati/module.sock", "LANG": "C.UTF-8"},
        grants=[("/data", Path("/srv/mod/data"), False), ("/out", Path("/srv/mod/out"), True)],
        extra_ro={}, tmp_bytes=1 << 20, info_fd=5, block_fd=6,
    )
    return bwrap.command(**{**args, **overrides})


def pairs(argv, flag):
    return [tuple(argv[i + 1:i + 3]) for i, a in enumerate(argv) if a == flag]


def test_every_namespace_no_capabilities_no_host_env():
    argv = command()
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert "--share-net" not in argv
    assert (argv[argv.index("--uid") + 1], argv[argv.index("--gid") + 1]) == ("65534", "65534")
    assert pairs(argv, "--setenv") == [("GATI_MODULE_SOCKET", "/run/gati/module.sock"), ("LANG", "C.UTF-8")]
    assert argv[argv.index("--") + 1:] == ["/app/tool", "--serve"]


def test_grants_read_only_unless_rw_and_root_read_only():
    argv = command()
    assert ("/srv/mod/data", "/data") in pairs(argv, "--ro-bind")
    assert ("/srv/mod/out", "/out") in pairs(argv, "--bind")
    assert ("/tmp/run/i1", "/run/gati") in pairs(argv, "--bind")
    assert ("/srv/mod/build/tool", "/app/tool") in pairs(argv, "--ro-bind")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--remount-ro"][-1] == "/"  # after the /proc masks
    binds = [dest for _, dest in pairs(argv, "--bind") + pairs(argv, "--ro-bind")]
    assert not {"/", "/etc", "/home", "/root", "/var", "/sys"} & set(binds)


def test_without_cgroups_the_rlimits_stand_in(tmp_path):
    assert Cgroups(fs=tmp_path).roots == {}  # no cgroup file system there
    limits = Limits(memory_mb=50, processes=9)
    argv = confine_argv(InstanceCgroup({}), limits)
    assert argv[-1] == "--"
    flags = dict(zip(argv[4:-1:2], argv[5:-1:2]))
    assert flags == {"-n": "1024", "-c": "0", "-u": "9", "-d": str(50 * 1024)}


async def test_bwrap_that_cannot_make_the_sandbox_is_a_start_error_naming_its_words(tmp_path):
    # bwrap exits before it reports its child on --info-fd (here: an option it does not know): the
    # start fails at once, with bwrap's own message, and no descriptor is left behind.
    before = set(os.listdir("/proc/self/fd"))

    def argv_for(info_fd, block_fd):
        argv = command(run_dir=tmp_path, info_fd=info_fd, block_fd=block_fd, grants=[])
        return argv[:1] + ["--no-such-option"] + argv[1:]

    with pytest.raises(ModuleStartError, match="bubblewrap could not create the sandbox") as err:
        await BwrapProcess.spawn("broken", argv_for, InstanceCgroup({}), Limits(), "/run/gati/module.sock")
    assert "--no-such-option" in err.value.message
    assert set(os.listdir("/proc/self/fd")) <= before


def test_the_rlimits_fallback_applies_under_the_systems_sh():
    # Without cgroups the prefix sets rlimits itself; /bin/sh is dash on Debian, whose ulimit
    # names processes -p, not -u: the prefix must work under whichever shell /bin/sh is.
    argv = confine_argv(InstanceCgroup({}), Limits(memory_mb=50, processes=9))
    out = subprocess.run(argv + ["cat", "/proc/self/limits"], capture_output=True, text=True, env={}, timeout=30)
    assert out.returncode == 0, out.stderr
    limits = {line[:26].strip(): line[26:].split()[:2] for line in out.stdout.splitlines()[1:]}
    assert limits["Max processes"] == ["9", "9"]
    assert limits["Max open files"] == ["1024", "1024"]
    assert limits["Max data size"] == [str(50 << 20)] * 2
