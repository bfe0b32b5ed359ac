#!/usr/bin/python3
"""The native probe: each method tries one way out of the sandbox and reports what happened.

Methods never raise for a refused attempt: they answer {"ok": false, "error": ...} so a test
can assert that the attempt was made and how it failed, and that the module still serves.
"""

import errno
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

from gati_sdk import CapabilityDenied, HostError, Module

module = Module("probe")


def failed(exc: BaseException) -> dict:
    code = getattr(exc, "errno", None)
    return {"ok": False, "error": errno.errorcode.get(code, type(exc).__name__) if code else type(exc).__name__, "detail": str(exc)}


@module.method
def echo(payload, ctx):
    return payload


@module.method
def whoami(payload, ctx):
    status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
    return {
        "uid": os.getuid(), "gid": os.getgid(), "cap_eff": status["CapEff"].strip(), "pid": os.getpid(),
        "hostname": socket.gethostname(), "interfaces": [name for _, name in socket.if_nameindex()],
        "root": sorted(os.listdir("/")), "cwd": os.getcwd(),
    }


@module.method
def environ(payload, ctx):
    return dict(os.environ)


@module.method
def connect(payload, ctx):
    """A raw TCP connection, no proxy."""
    try:
        with socket.create_connection((payload["host"], payload["port"]), timeout=2):
            return {"ok": True}
    except OSError as exc:
        return failed(exc)


@module.method
def resolve(payload, ctx):
    """Ask DNS ourselves (there is no resolver in the sandbox)."""
    try:
        return {"ok": True, "addresses": sorted({i[4][0] for i in socket.getaddrinfo(payload, 80)})}
    except OSError as exc:
        return failed(exc)


@module.method
def proxy_get(payload, ctx):
    """An ordinary HTTP client: urllib honours HTTP_PROXY, which points at the runtime's proxy."""
    try:
        with urllib.request.urlopen(payload, timeout=10) as resp:
            return {"ok": True, "status": resp.status, "body": resp.read().decode()}
    except HostError as exc:  # the proxy refused: the SDK raises it as it does a host call's refusal
        return {"ok": False, "error": exc.code, "grant": exc.details.get("grant"), "reason": exc.details.get("reason")}
    except urllib.error.HTTPError as exc:
        return {"ok": False, "status": exc.code}
    except OSError as exc:
        return failed(exc)


@module.method
def read(payload, ctx):
    try:
        with open(payload, "rb") as f:
            return {"ok": True, "data": f.read(4096).decode("utf-8", "replace")}
    except OSError as exc:
        return failed(exc)


@module.method
def write(payload, ctx):
    try:
        with open(payload, "w") as f:
            f.write("written by the native probe\n")
        return {"ok": True}
    except OSError as exc:
        return failed(exc)


@module.method
def host_read(payload, ctx):
    """The same read through the host service: checked by the Policy and audited."""
    try:
        data = ctx.host.file_read(payload)
        return {"ok": True, "data": None if data is None else data.decode()}
    except CapabilityDenied as exc:
        return {"ok": False, "error": exc.code, "grant": exc.details.get("grant")}


@module.method
def host_env(payload, ctx):
    try:
        return {"ok": True, "value": ctx.host.env(payload)}
    except CapabilityDenied as exc:
        return {"ok": False, "error": exc.code, "grant": exc.details.get("grant")}


@module.method
def host_env_as(payload, ctx):
    """The env host call presenting a call token of the test's choosing (a request id, say)."""
    try:
        return {"ok": True, "value": ctx.host.for_call(payload["token"]).env(payload["name"])}
    except HostError as exc:
        return {"ok": False, "error": exc.code, "reason": exc.details.get("reason")}


PARKED = {}  # name -> threading.Event: calls (or threads) that wait until another call lets them go


def _parked(name: str) -> threading.Event:
    return PARKED.setdefault(name, threading.Event())


@module.method
def park(payload, ctx):
    """Stay in flight until `unpark` names this payload (at most 10 s)."""
    return {"released": _parked(payload).wait(10)}


@module.method
def unpark(payload, ctx):
    _parked(payload).set()
    return {"ok": True}


LEFT_BEHIND = {}


@module.method
def leave_thread(payload, ctx):
    """Start a thread that, once let go (`unpark "thread"`), asks the host for env `payload`, and return at once."""

    def later():
        _parked("thread").wait(10)
        try:
            LEFT_BEHIND["outcome"] = {"ok": True, "value": ctx.host.env(payload)}
        except HostError as exc:
            LEFT_BEHIND["outcome"] = {"ok": False, "error": exc.code, "reason": exc.details.get("reason")}

    LEFT_BEHIND["thread"] = threading.Thread(target=later)
    LEFT_BEHIND["thread"].start()
    return {"started": True}


@module.method
def left_thread_outcome(payload, ctx):
    """Let the thread go and report what the host answered it."""
    _parked("thread").set()
    LEFT_BEHIND["thread"].join(10)
    return LEFT_BEHIND.get("outcome")


@module.method
def processes(payload, ctx):
    """Every process this sandbox can see, with its command line."""
    seen = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                seen[entry] = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
            except OSError:
                pass
    return seen


@module.method
def signal_pid(payload, ctx):
    try:
        os.kill(int(payload), 0)
        return {"ok": True}
    except OSError as exc:
        return failed(exc)


# Forking a process that runs gRPC's threads is unsafe, so the bomb runs in a fresh interpreter.
BOMB = """
import errno, os, signal, sys, time
children, error = [], None
for _ in range(int(sys.argv[1])):
    try:
        pid = os.fork()
    except OSError as exc:
        error = errno.errorcode.get(exc.errno, str(exc))
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(len(children), error)
"""


@module.method
def forkbomb(payload, ctx):
    """Fork until refused (at most `payload` children), then reap them all."""
    out = subprocess.run([sys.executable, "-c", BOMB, str(payload or 10000)], capture_output=True, text=True, timeout=20)
    forked, error = out.stdout.split()
    return {"forked": int(forked), "error": None if error == "None" else error}


@module.method
def membomb(payload, ctx):
    """Take memory 8 MiB at a time (touching every page) up to `payload` MiB."""
    hoard = []
    for _ in range(int(payload or 4096) // 8):
        hoard.append(bytearray(8 << 20))
    return {"held_mb": 8 * len(hoard)}


@module.method
def spin(payload, ctx):
    while True:
        pass


if __name__ == "__main__":
    module.serve()
