"""Files: a granted folder is readable, writable only when `rw`; nothing outside the grants is
reachable, neither through the host (refused and audited, naming the grant) nor, on backends
whose modules open files themselves, directly (not there, or read-only)."""

import os

from .backends import FILESYSTEM

ERRORS_NOT_THERE = ("ENOENT", "EISDIR")
ERRORS_READ_ONLY = ("EROFS", "EACCES")


async def test_a_granted_folder_is_readable_and_nothing_outside_it(backend, install, tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the host's own file")
    other = tmp_path / "other-module-data.txt"  # stands for another module's data
    other.write_text("another module's data")
    probe = install()
    hello = (probe.folder / "data" / "hello.txt").read_text()

    # through the host
    assert await probe("file_read", "/data/hello.txt") == {"status": 0, "result": hello}
    for path in ("/etc/passwd", "/data/../module.toml", str(probe.folder / "module.toml"), str(secret)):
        denied = await probe("file_read", path)
        assert denied["status"] == 1 and denied["result"]["capability"] == "file.read", (path, denied)
    write = await probe("file_write", "/data/new.txt")
    assert write["status"] == 1 and write["result"]["grant"] == '[capabilities] files = { "data" = "rw" }'
    assert [(e["capability"], e["decision"]) for e in probe.asked()] == [("file.read", "allow")] + [("file.read", "deny")] * 4 + [("file.write", "deny")]
    assert all(e["request_id"] == "req-conformance" and e["module"] == "probe" for e in probe.asked())
    # The folder bound into a sandbox at start is audited as a mount (the wasm probe, without WASI, gets none).
    mounts = [(e["target"], e["decision"], e["rule"]) for e in probe.handed() if e["capability"] == "file.mount"]
    assert mounts == ([("/data", "allow", '"data" = "ro"')] if FILESYSTEM in backend.offers else [])

    if FILESYSTEM in backend.offers:  # and directly: the kernel refuses, so nothing reaches the audit log
        before = len(probe.asked())
        assert (await probe("read_path", "/data/hello.txt"))["data"] == hello
        for path in (str(secret), str(other), str(probe.folder / "module.toml")):
            seen = await probe("read_path", path)
            assert seen["ok"] is False and seen["error"] in ERRORS_NOT_THERE, (path, seen)
        # A container image has its own of these, unreadable to the module's user; elsewhere they are not there.
        for path in ("/etc/shadow", os.path.expanduser("~"), "/root/.bashrc"):
            seen = await probe("read_path", path)
            assert seen["ok"] is False and seen["error"] in (*ERRORS_NOT_THERE, "EACCES"), (path, seen)
        source = (await probe("whoami"))["source"]  # the module's own code
        for path in ("/data/new.txt", "/new.txt", "/usr/new.txt", "/etc/gati-was-here", source):
            refused = await probe("write_path", path)
            assert refused["ok"] is False and refused["error"] in ERRORS_READ_ONLY, (path, refused)
        assert (await probe("write_path", "/tmp/scratch.txt"))["ok"] is True  # its own small tmpfs
        assert len(probe.asked()) == before
    assert not (probe.folder / "data" / "new.txt").exists()
    await probe.still_serving()


async def test_an_rw_grant_is_writable(backend, install):
    probe = install(capabilities={"files": {"data": "rw"}})
    (probe.folder / "data").chmod(0o777)  # a sandboxed module's user (65534) owns nothing on the host
    assert (await probe("file_write", "/data/via-host.txt"))["status"] == 0
    assert (probe.folder / "data" / "via-host.txt").read_text() == "written by probe\n"
    if FILESYSTEM in backend.offers:
        assert (await probe("write_path", "/data/direct.txt"))["ok"] is True
        assert (probe.folder / "data" / "direct.txt").read_text() == "written by probe\n"
        assert (await probe("write_path", "/new.txt"))["error"] in ERRORS_READ_ONLY  # only the grant
    assert [(e["capability"], e["decision"]) for e in probe.asked()] == [("file.write", "allow")]
