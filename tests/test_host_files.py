"""Host file reads and writes never follow a link out of the grant, whenever the link appears.

A module owns its `rw` directories (containers and native modules write them directly), so it
can swap a file for a symbolic link at any moment: between the Policy's check and the open, in
the last component or in a directory on the way. Each test runs with openat2 and with the
O_NOFOLLOW walk that stands in for it on kernels without openat2.
"""

import asyncio
import errno
import os
import subprocess
import sys

import pytest

from runtime.core.audit_log import read_events
from runtime.core.call import CallContext
from runtime.core.capabilities import files
from runtime.core.policy import Policy
from runtime.core.errors import CapabilityDenied, GatiError
from runtime.core.host import Host, Resolver
from runtime.core.manifest import load_manifest
from runtime.core.secrets import Secrets

CTX = CallContext(request_id="req-f", caller="test")
SECRET = b"host secret outside every grant\n"


@pytest.fixture(params=["openat2", "walk"])
def resolution(request, monkeypatch):
    if request.param == "walk":
        monkeypatch.setattr(files, "use_openat2", False, raising=False)
    return request.param


@pytest.fixture
def module(tmp_path):
    mod = tmp_path / "mod"
    (mod / "out" / "sub").mkdir(parents=True)
    (mod / "m.wat").write_text('(module (memory (export "memory") 1) (func (export "run") (result i32) i32.const 0))')
    (mod / "module.toml").write_text(
        'name = "m"\nversion = "1.0.0"\nkind = "wasm"\n[artifact]\npath = "m.wat"\n[methods.run]\n'
        '[capabilities]\nfiles = { "out" = "rw" }\n'
    )
    (mod / "out" / "x.txt").write_bytes(b"inside\n")
    (mod / "out" / "sub" / "y.txt").write_bytes(b"inside sub\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_bytes(SECRET)
    (outside / "y.txt").write_bytes(SECRET)
    return mod


def host_for(state, module) -> Host:
    return Host(load_manifest(module), audit=state.audit, environ={}, secrets=Secrets(), kv=state.kv, resolver=Resolver(), call_module=None)


def plant_after_check(monkeypatch, plant):
    """Every Host made from now on checks the path, then `plant()` runs, then the Host opens."""

    class RacedPolicy(Policy):
        def file(self, guest_path, write):
            answer = super().file(guest_path, write)
            if answer[0].allowed:
                plant()
            return answer

    monkeypatch.setattr("runtime.core.host.Policy", RacedPolicy)


def swap_for_link(path, target):
    os.unlink(path)
    os.symlink(target, path)


def test_a_link_planted_after_the_check_is_not_followed_on_read(state, module, monkeypatch, resolution):
    outside = module.parent / "outside"
    plant_after_check(monkeypatch, lambda: swap_for_link(module / "out" / "x.txt", outside / "x.txt"))
    host = host_for(state, module)
    with pytest.raises(CapabilityDenied) as denied:
        host.file_read(CTX, "/out/x.txt")
    assert "symbolic link" in denied.value.details["reason"]
    [record] = [e for e in read_events(state.audit_path) if e["capability"] == "file.read"]
    assert (record["decision"], record["target"], record["request_id"]) == ("deny", "/out/x.txt", "req-f")


def test_a_link_planted_after_the_check_is_not_followed_on_write(state, module, monkeypatch, resolution):
    outside = module.parent / "outside"
    plant_after_check(monkeypatch, lambda: swap_for_link(module / "out" / "x.txt", outside / "x.txt"))
    with pytest.raises(CapabilityDenied):
        host_for(state, module).file_write(CTX, "/out/x.txt", b"overwritten by the module")
    assert (outside / "x.txt").read_bytes() == SECRET


def test_a_directory_swapped_for_a_link_is_not_followed(state, module, monkeypatch, resolution):
    outside = module.parent / "outside"

    def plant():
        os.rename(module / "out" / "sub", module / "out" / "old")
        os.symlink(outside, module / "out" / "sub")

    plant_after_check(monkeypatch, plant)
    host = host_for(state, module)
    with pytest.raises(CapabilityDenied):
        host.file_read(CTX, "/out/sub/y.txt")
    with pytest.raises(CapabilityDenied):
        host.file_write(CTX, "/out/sub/y.txt", b"overwritten by the module")
    assert (outside / "y.txt").read_bytes() == SECRET


def test_files_inside_the_grant_read_and_write_as_before(state, module, resolution):
    host = host_for(state, module)
    assert host.file_read(CTX, "/out/x.txt") == b"inside\n"
    assert host.file_read(CTX, "/out/sub/y.txt") == b"inside sub\n"
    assert host.file_read(CTX, "/out/missing.txt") is None
    host.file_write(CTX, "/out/sub/new.txt", b"new")
    assert (module / "out" / "sub" / "new.txt").read_bytes() == b"new"


async def test_a_fifo_in_the_grant_does_not_hang_the_host(state, module, resolution):
    fifo = module / "out" / "pipe"
    os.mkfifo(fifo)
    host = host_for(state, module)
    try:
        with pytest.raises(CapabilityDenied) as denied:
            await asyncio.wait_for(asyncio.to_thread(host.file_read, CTX, "/out/pipe"), 10)
        assert "not a regular file" in denied.value.details["reason"]
    finally:
        try:  # release a reader that did block (the code before this test)
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


def test_the_walk_takes_over_when_the_kernel_has_no_openat2(state, module, monkeypatch):
    def enosys(*args):
        raise OSError(errno.ENOSYS, "no openat2")

    monkeypatch.setattr(files, "_openat2", enosys)
    monkeypatch.setattr(files, "use_openat2", True)
    assert host_for(state, module).file_read(CTX, "/out/x.txt") == b"inside\n"
    assert files.use_openat2 is False


FLIPPER = """
import os, sys
target, link_to = sys.argv[1], sys.argv[2]
tmp_link, tmp_file = target + ".l", target + ".f"
while True:
    os.symlink(link_to, tmp_link)
    os.rename(tmp_link, target)
    with open(tmp_file, "wb") as f:
        f.write(b"inside\\n")
    os.rename(tmp_file, target)
"""


def test_a_real_race_never_reaches_outside(state, module, resolution):
    """Another process flips out/x.txt between a file and a link to outside, as fast as it can."""
    outside = module.parent / "outside"
    host = host_for(state, module)
    flipper = subprocess.Popen([sys.executable, "-c", FLIPPER, str(module / "out" / "x.txt"), str(outside / "x.txt")])
    seen = set()
    try:
        for i in range(1500):
            try:
                seen.add(host.file_read(CTX, "/out/x.txt"))
            except CapabilityDenied:
                seen.add("denied")
            try:
                host.file_write(CTX, "/out/x.txt", b"written %d\n" % i)
            except (GatiError, OSError):  # refused, or the file was mid-swap
                pass
    finally:
        flipper.kill()
        flipper.wait()
    assert SECRET not in seen
    assert (outside / "x.txt").read_bytes() == SECRET
