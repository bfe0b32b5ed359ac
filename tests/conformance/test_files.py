"""Files: a granted folder is readable, writable only when `rw`; nothing outside the grants is
reachable, neither through the host (refused and audited, naming the grant) nor, on backends
that open files themselves, directly (not there, or read-only)."""

import os

from .backends import FILESYSTEM, needs

ERRORS_NOT_THERE = ("ENOENT", "EISDIR")
ERRORS_READ_ONLY = ("EROFS", "EACCES")


async def test_a_granted_file_is_readable_and_nothing_outside(install):
    probe = install()
    ok = await probe("file_read", "/data/hello.txt")
    assert ok == {"status": 0, "result": (probe.folder / "data" / "hello.txt").read_text()}
    for path in ("/etc/passwd", "/data/../module.toml", str(probe.folder / "module.toml")):
        denied = await probe("file_read", path)
        assert denied["status"] == 1 and denied["result"]["capability"] == "file.read", (path, denied)
    write = await probe("file_write", "/data/new.txt")
    assert write["status"] == 1 and write["result"]["grant"] == '[capabilities] files = { "data" = "rw" }'
    assert not (probe.folder / "data" / "new.txt").exists()
    assert [(e["capability"], e["decision"]) for e in probe.events()] == [
        ("file.read", "allow"), ("file.read", "deny"), ("file.read", "deny"), ("file.read", "deny"), ("file.write", "deny")
    ]
    assert all(e["request_id"] == "req-conformance" and e["module"] == "probe" for e in probe.events())
    await probe.still_serving()


async def test_an_rw_grant_is_writable(backend, install):
    probe = install(capabilities={"files": {"data": "rw"}})
    (probe.folder / "data").chmod(0o777)  # a sandboxed module's user (65534) owns nothing on the host
    assert (await probe("file_write", "/data/via-host.txt"))["status"] == 0
    assert (probe.folder / "data" / "via-host.txt").read_text() == "written by probe\n"
    if FILESYSTEM in backend.offers:
        assert (await probe("write_path", "/data/direct.txt"))["ok"] is True
        assert (probe.folder / "data" / "direct.txt").read_text() == "written by probe\n"
    assert [(e["capability"], e["decision"]) for e in probe.events()] == [("file.write", "allow")]


@needs(FILESYSTEM)
async def test_host_files_not_granted_are_not_there(install, tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the host's own file")
    other = install(name="other")  # another module's data
    (other.folder / "data" / "private.txt").write_text("another module's data")
    probe = install()
    assert (await probe("read_path", "/data/hello.txt"))["data"] == (probe.folder / "data" / "hello.txt").read_text()
    for path in (str(secret), str(other.folder / "data" / "private.txt"), str(probe.folder / "module.toml")):
        seen = await probe("read_path", path)
        assert seen["ok"] is False and seen["error"] in ERRORS_NOT_THERE, (path, seen)
    # A container image has its own of these, unreadable to the module's user; elsewhere they are not there.
    for path in ("/etc/shadow", os.path.expanduser("~"), "/root/.bashrc"):
        seen = await probe("read_path", path)
        assert seen["ok"] is False and seen["error"] in (*ERRORS_NOT_THERE, "EACCES"), (path, seen)
    assert probe.events() == []  # the kernel refused: nothing reached the runtime


@needs(FILESYSTEM)
async def test_writes_only_inside_an_rw_grant(install):
    probe = install()
    source = (await probe("whoami"))["source"]  # the module's own code
    for path in ("/data/new.txt", "/new.txt", "/usr/new.txt", "/etc/gati-was-here", source):
        refused = await probe("write_path", path)
        assert refused["ok"] is False and refused["error"] in ERRORS_READ_ONLY, (path, refused)
    assert not (probe.folder / "data" / "new.txt").exists()
    assert (await probe("write_path", "/tmp/scratch.txt"))["ok"] is True  # its own small tmpfs
