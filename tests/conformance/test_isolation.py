"""What a module that is an OS process runs as: an unprivileged user with no capabilities, no
network interface but its own loopback, and no sight or reach of the host's processes."""

import os

from .backends import PROCESSES, needs


@needs(PROCESSES)
async def test_runs_unprivileged_with_only_a_loopback_and_no_host_processes(install):
    probe = install()
    me = await probe("whoami")
    assert (me["uid"], me["gid"]) == (65534, 65534)
    assert me["cap_eff"] == "0000000000000000"
    assert me["interfaces"] == ["lo"]  # no way out but the sockets the runtime binds in
    assert me["root_writable"] is False
    assert (await probe("signal_pid", os.getpid()))["error"] == "ESRCH"  # the runtime itself is not there
    assert not any("pytest" in cmdline for cmdline in (await probe("processes")).values())
