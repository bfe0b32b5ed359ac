#!/usr/bin/python3
"""The walls probe (tests/test_walls_native.py, tests/test_walls_oci.py): what a module sees of
the runtime and how far it can write. Methods report what happened, never raise."""

import errno
import os
import time

from gati_sdk import Module

module = Module("walls")


def failed(exc: OSError) -> dict:
    return {"ok": False, "error": errno.errorcode.get(exc.errno, type(exc).__name__), "detail": str(exc)}


@module.method
def echo(payload, ctx):
    return payload


@module.method
def sleep(payload, ctx):
    time.sleep(payload)
    return payload


@module.method
def environs(payload, ctx):
    """The environment of every process this sandbox shows (pid -> {NAME: VALUE}), and which it could not read."""
    seen, unreadable = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() or entry == "self":
            try:
                raw = open(f"/proc/{entry}/environ", "rb").read()
            except OSError as exc:
                unreadable[entry] = failed(exc)["error"]
                continue
            pairs = [item.decode("utf-8", "replace").partition("=") for item in raw.split(b"\0") if item]
            seen[entry] = {name: value for name, _, value in pairs}
    return {"environ": seen, "unreadable": unreadable}


@module.method
def open_for_write(payload, ctx):
    """Open each path for writing, and write nothing: whether the kernel would let it."""
    result = {}
    for path in payload:
        try:
            os.close(os.open(path, os.O_WRONLY))
            result[path] = {"ok": True}
        except OSError as exc:
            result[path] = failed(exc)
    return result


@module.method
def peek(payload, ctx):
    """How much of each path can be read (bytes of a file, entries of a folder), or why not."""
    result = {}
    for path in payload:
        try:
            if os.path.isdir(path):
                result[path] = {"ok": True, "entries": len(os.listdir(path))}
            else:
                with open(path, "rb") as f:
                    result[path] = {"ok": True, "bytes": len(f.read(4096))}
        except OSError as exc:
            result[path] = failed(exc)
    return result


@module.method
def fill(payload, ctx):
    """Write payload["mib"] MiB to payload["path"], 64 KiB at a time, until done or refused."""
    chunk = b"x" * (64 << 10)
    written = 0
    try:
        with open(payload["path"], "wb") as f:
            for _ in range(payload["mib"] * 16):
                f.write(chunk)
                f.flush()
                written += len(chunk)
            os.fsync(f.fileno())
        return {"ok": True, "written": written}
    except OSError as exc:
        return {**failed(exc), "written": written}
    finally:
        try:
            os.unlink(payload["path"])
        except OSError:
            pass


if __name__ == "__main__":
    module.serve()
