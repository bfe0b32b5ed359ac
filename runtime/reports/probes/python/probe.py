#!/usr/bin/python3
"""The Python probe: each method attempts one thing and reports what happened, never raising.

One source for every backend that runs a Python process: the oci and native probe folders
link to it (probes/oci/probe.py, probes/native/probe.py), the audit's `--probe` and the
backend conformance suite (tests/conformance) drive it. Host-call methods follow the probe
contract of runtime/reports/probes/wasm/probe.wat ({"status": 0 ok | 1 denied | 2 not
found | 3 error, "result": ...}); the others try to get out of the sandbox directly and
report the error the kernel gave ({"ok": false, "error": "ENOENT", ...}).
"""

import errno
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

from gati_sdk import CapabilityDenied, HostError, Module

module = Module("probe")


def host_call(fn):
    try:
        value = fn()
    except CapabilityDenied as denied:
        return {"status": 1, "result": {"message": denied.message, **denied.details}}
    except HostError as err:
        return {"status": 3, "result": {"code": err.code, "message": err.message, **err.details}}
    if value is None:
        return {"status": 2, "result": None}
    return {"status": 0, "result": value.decode() if isinstance(value, bytes) else value}


def failure(exc: OSError) -> dict:
    return {"ok": False, "error": errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else type(exc).__name__, "message": str(exc)}


@module.method
def echo(payload, ctx):
    return payload


@module.method
def http(payload, ctx):
    def request():
        reply = ctx.host.http(payload.get("method", "GET"), payload["url"])
        return {**reply, "body": reply["body"].decode("utf-8", "replace")}  # as the wasm host answers

    return host_call(request)


@module.method
def env(payload, ctx):
    return host_call(lambda: ctx.host.env(payload))


@module.method
def env_as(payload, ctx):
    """The env host call presenting a call token of the test's choosing (another call's request id, say)."""
    return host_call(lambda: ctx.host.for_call(payload["token"]).env(payload["name"]))


@module.method
def secret(payload, ctx):
    return host_call(lambda: ctx.host.secret(payload))


@module.method
def file_read(payload, ctx):
    return host_call(lambda: ctx.host.file_read(payload))


@module.method
def file_write(payload, ctx):
    return host_call(lambda: ctx.host.file_write(payload, "written by probe\n") or b"")


@module.method
def kv_get(payload, ctx):
    store, key = payload.split("/", 1)
    return host_call(lambda: ctx.host.kv_get(store, key))


@module.method
def kv_put(payload, ctx):
    store, rest = payload.split("/", 1)
    key, value = rest.split("=", 1)
    return host_call(lambda: ctx.host.kv_put(store, key, value) or b"")


@module.method
def call_to(payload, ctx):
    target, method = payload.split("/", 1)
    return host_call(lambda: ctx.host.call(target, method, {}))


@module.method
def log(payload, ctx):
    ctx.host.log(str(payload))
    return {"logged": True}


@module.method
def spin(payload, ctx):
    while True:
        pass


@module.method
def sleep(payload, ctx):
    time.sleep(float(payload or 60))
    return {"slept": payload}


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
        LEFT_BEHIND["outcome"] = host_call(lambda: ctx.host.env(payload))

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
def crash(payload, ctx):
    os.kill(os.getpid(), signal.SIGKILL)


@module.method
def membomb(payload, ctx):
    """Allocate (and touch: the kernel must count it) up to `payload` MiB, or without end.

    Large steps cross the limit at once: small ones let the kernel trade the module's own
    code pages for each step for seconds before it gives up and kills it."""
    chunks, step = [], 32
    while payload is None or len(chunks) * step < payload:
        chunks.append(b"x" * (step << 20))
    return {"allocated_mb": len(chunks) * step}


@module.method
def whoami(payload, ctx):
    status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
    root_writable = os.access("/", os.W_OK)
    return {
        "uid": os.getuid(), "gid": os.getgid(),
        "cap_eff": status["CapEff"].strip(), "cap_bnd": status["CapBnd"].strip(),
        "no_new_privs": status.get("NoNewPrivs", "").strip(),
        "root_writable": root_writable,
        "interfaces": sorted(name for _, name in socket.if_nameindex()),
        "pid1": open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode(),
        "environ": sorted(os.environ),
        "pid": os.getpid(), "hostname": socket.gethostname(), "cwd": os.getcwd(),
        "root": sorted(os.listdir("/")), "source": os.path.abspath(__file__),
    }


@module.method
def tcp_out(payload, ctx):
    try:
        socket.create_connection((payload["host"], payload["port"]), timeout=2).close()
        return {"ok": True}
    except OSError as exc:
        return failure(exc)


@module.method
def resolve(payload, ctx):
    """Ask DNS directly, as a client library would before connecting."""
    try:
        return {"ok": True, "addresses": sorted({info[4][0] for info in socket.getaddrinfo(payload, 80)})}
    except OSError as exc:
        return failure(exc)


@module.method
def proxy_get(payload, ctx):
    """An ordinary HTTP client honouring HTTP_PROXY, as most libraries do."""
    try:
        with urllib.request.urlopen(payload, timeout=5) as reply:
            return {"ok": True, "status": reply.status, "body": reply.read(2000).decode("utf-8", "replace")}
    except HostError as err:  # the proxy refused: the SDK raises it as it does a host call's refusal
        return {"ok": False, "error": err.code, "grant": err.details.get("grant"), "reason": err.details.get("reason")}
    except urllib.error.HTTPError as err:
        return {"ok": False, "status": err.code, "body": err.read(2000).decode("utf-8", "replace")}
    except (OSError, urllib.error.URLError) as exc:
        return {"ok": False, "error": str(exc)}


@module.method
def read_path(payload, ctx):
    try:
        with open(payload, "rb") as f:
            return {"ok": True, "data": f.read(4000).decode("utf-8", "replace")}
    except OSError as exc:
        return failure(exc)


@module.method
def write_path(payload, ctx):
    try:
        with open(payload, "w") as f:
            f.write("written by probe\n")
        return {"ok": True}
    except OSError as exc:
        return failure(exc)


@module.method
def environ(payload, ctx):
    return {"present": payload in os.environ, "value": os.environ.get(payload)}


@module.method
def processes(payload, ctx):
    """Every process this sandbox can see: pid -> command line."""
    seen = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    seen[entry] = f.read().replace(b"\0", b" ").decode().strip()
            except OSError:
                pass  # gone meanwhile
    return seen


@module.method
def signal_pid(payload, ctx):
    """Signal 0 (existence only) to a pid, e.g. the runtime's own."""
    try:
        os.kill(int(payload), 0)
        return {"ok": True}
    except OSError as exc:
        return failure(exc)


@module.method
def fork_bomb(payload, ctx):
    # posix_spawn, not fork: grpc's fork handlers would stall a forking server before the limit does.
    children, error = [], None
    try:
        for _ in range(int(payload or 1000)):
            children.append(os.posix_spawn("/bin/sleep", ["sleep", "30"], {}))
    except OSError as exc:
        error = failure(exc)
    for pid in children:  # leave the container as it was, so the runtime goes on serving
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return {"spawned": len(children), "stopped_by": error}


if __name__ == "__main__":
    module.serve()
