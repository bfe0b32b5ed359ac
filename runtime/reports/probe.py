"""`--probe`: prove each sandbox backend on this machine refuses what it must.

Each backend ships a probe module at runtime/reports/probes/<kind>/module.toml implementing
the method contract at the top of runtime/reports/probes/wasm/probe.wat, and declaring the
known [capabilities] below. (probes/python/ holds the one Python probe that the oci and
native folders link to; with no module.toml of its own it is no backend.) For every such folder the runner registers the probe into a
throwaway state directory, makes the same fixed list of attempts through the normal
module client (so the real Host, Policy and sandbox are what answer), and compares
expected with observed. A refusal only counts when the audit log recorded it.

Backends are found by folder, never by name in this file: when an oci or native
backend lands with its probe folder, it is probed with no change here. A backend that
cannot start on this machine (no docker, no bwrap) is reported as skipped, with why.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime.core.call import CallContext
from runtime.core.errors import GatiError, ModuleTimeout
from runtime.core.manifest import Capabilities, Limits, load_manifest
from runtime.core.state import StateDir
from runtime.modules import ModuleManager, register_module

PROBES = Path(__file__).resolve().parent / "probes"

# The grants every probe runs under: the attempts below are written against them. Limits
# are each probe's own (a container needs more memory than a wasm instance); the memory
# and time attempts are judged against the limits the probe declares.
KNOWN_CAPABILITIES = Capabilities(
    egress=["http://private.probe:80", "http://metadata.probe:80"],
    files={"data": "ro"},
    env=["PROBE_ALLOWED"],
    secrets=["probe_token"],
    kv=["probe"],
    modules=[],
)
# Granted names that only the resolved-address check may refuse (anti-SSRF).
EGRESS_HOSTS = {"private.probe": "127.0.0.1", "metadata.probe": "169.254.169.254"}
# Present in the environment, so that a sandbox that fails to refuse HOME would return it.
ENVIRON = {"PROBE_ALLOWED": "yes", "HOME": "/probe-home"}
# How long past its limit a stopped call may take to come back.
STOP_SLACK_S = 1.5
# How long a replaced instance may take to answer before a limit attempt (a container starts in seconds).
READY_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class Attempt:
    name: str
    method: str
    payload: Any
    expect: str  # "allowed" (a control: the probe works), "refused" (a capability), "stopped" (a limit)
    capability: str = ""  # for refusals: the capability the denial must name


ATTEMPTS = [
    Attempt("read a granted file (control)", "file_read", "/data/hello.txt", "allowed"),
    Attempt("read a declared env name (control)", "env", "PROBE_ALLOWED", "allowed"),
    Attempt("egress to a host not granted", "http", {"method": "GET", "url": "http://not-granted.probe/"}, "refused", "egress"),
    Attempt("egress to a name resolving to 127.0.0.1", "http", {"method": "GET", "url": "http://private.probe/"}, "refused", "egress"),
    Attempt("egress to the metadata address 169.254.169.254", "http", {"method": "GET", "url": "http://metadata.probe/latest/meta-data"}, "refused", "egress"),
    Attempt("read a file outside its grants", "file_read", "/etc/passwd", "refused", "file.read"),
    Attempt("climb out of a grant with ..", "file_read", "/data/../module.toml", "refused", "file.read"),
    Attempt("write to a read-only grant", "file_write", "/data/probe-wrote-this.txt", "refused", "file.write"),
    Attempt("read an env name not declared", "env", "HOME", "refused", "env"),
    Attempt("read a secret not declared", "secret", "probe_other", "refused", "secret"),
    Attempt("use a kv store not declared", "kv_get", "other/key", "refused", "kv.read"),
    Attempt("call a module not granted", "call_to", "greet/hello", "refused", "module.call"),
    Attempt("grow memory past the limit", "membomb", None, "stopped"),
    Attempt("run past the time limit", "spin", None, "stopped"),
]


@dataclass
class Outcome:
    attempt: str
    expected: str
    observed: str
    ok: bool
    detail: str = ""  # what the sandbox said (the denial's reason, the error)


@dataclass
class BackendProbe:
    kind: str
    status: str  # passed | failed | skipped
    reason: str = ""
    outcomes: list[Outcome] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def probe_dirs(root: Path = PROBES) -> dict[str, Path]:
    """kind -> probe folder, for every runtime/reports/probes/<kind>/module.toml."""
    return {p.parent.name: p.parent for p in sorted(root.glob("*/module.toml"))}


async def run_probes(root: Path = PROBES) -> list[BackendProbe]:
    return [await probe_backend(kind, folder) for kind, folder in probe_dirs(root).items()]


async def probe_backend(kind: str, folder: Path) -> BackendProbe:
    reason = _unavailable(kind)
    if reason:
        return BackendProbe(kind, "skipped", reason)
    with tempfile.TemporaryDirectory(prefix=f"gati-probe-{kind}-") as tmp:
        module_dir = Path(tmp) / "probe"
        shutil.copytree(folder, module_dir)
        try:
            loaded = load_manifest(module_dir)
        except GatiError as exc:
            return BackendProbe(kind, "failed", f"its probe manifest does not load: {exc}")
        m = loaded.manifest
        if m.kind != kind or m.capabilities != KNOWN_CAPABILITIES:
            return BackendProbe(kind, "failed", f"{folder}/module.toml must declare kind {kind!r} and the known [capabilities]")
        state = StateDir(Path(tmp) / "state")
        manager = ModuleManager(state, egress_hosts=EGRESS_HOSTS, environ=ENVIRON)
        try:
            register_module(state, module_dir)
            try:
                await manager.call(m.name, "echo", "ready", ctx=_ctx(m.limits.timeout_ms))
            except GatiError as exc:  # the backend is there but cannot run here
                return BackendProbe(kind, "skipped", f"the {kind} sandbox did not start: {exc.message}")
            outcomes = [await _attempt(manager, state, m.name, a, m.limits) for a in ATTEMPTS]
        finally:
            await manager.close()
            state.close()
    failed = [o for o in outcomes if not o.ok]
    return BackendProbe(kind, "failed" if failed else "passed", f"{len(failed)} of {len(outcomes)} attempts not as expected" if failed else "", outcomes)


def _unavailable(kind: str) -> str | None:
    """Why this backend cannot run here, or None. A backend may offer `available()`: None/True, or a reason."""
    try:
        backend = importlib.import_module(f"sandboxes.{kind}")
    except ImportError as exc:
        return f"this runtime has no {kind} backend ({exc})"
    check = getattr(backend, "available", None)
    if check is None:
        return None
    try:
        answer = check()
    except Exception as exc:  # a failing check is a reason too, not a crash of the audit
        return f"availability check failed: {exc}"
    if answer is None or answer is True:
        return None
    return answer if isinstance(answer, str) else f"the {kind} backend reports it is unavailable"


def _ctx(timeout_ms: int) -> CallContext:
    # A deadline bounds anything a weakened sandbox might let through (a connect to 169.254.169.254).
    return CallContext(request_id="audit-probe", trace_id="audit-probe", caller="audit:probe", deadline=time.monotonic() + timeout_ms / 1000 + STOP_SLACK_S)


async def _attempt(manager, state, name: str, a: Attempt, limits: Limits) -> Outcome:
    if a.expect == "stopped":
        # The previous attempt may have cost the module its instance: wait for the replacement
        # first, so that the clock measures how the sandbox stops this call, not a restart.
        try:
            await manager.call(name, "echo", None, ctx=_ctx(READY_TIMEOUT_MS))
        except GatiError:
            pass  # the attempt below meets the same trouble and reports it
    before = state.audit_path.stat().st_size if state.audit_path.exists() else 0
    started = time.monotonic()
    try:
        # A memory bomb is bounded (4x the limit, in MiB) so that a sandbox failing to stop it cannot take the host down.
        payload = limits.memory_mb * 4 if a.method == "membomb" else a.payload
        reply = await manager.call(name, a.method, payload, ctx=_ctx(limits.timeout_ms))
        error = None
    except GatiError as exc:
        reply, error = None, exc
    elapsed = time.monotonic() - started

    if a.expect == "stopped":
        return _stopped(a, error, elapsed, limits)
    if error is not None:
        return Outcome(a.name, a.expect, f"call failed ({error.code})", False, error.message)
    status = reply.get("status") if isinstance(reply, dict) else None
    result = reply.get("result") if isinstance(reply, dict) else None
    if a.expect == "allowed":
        return Outcome(a.name, "allowed", "allowed" if status == 0 else f"status {status}", status == 0, "" if status == 0 else _short(result))
    expected = f"refused: {a.capability}"
    if status != 1:
        what = {0: "ALLOWED", 2: "ALLOWED (not found)", 3: "NOT refused (error)"}.get(status, f"status {status}")
        return Outcome(a.name, expected, what, False, _short(result))
    named = result.get("capability") if isinstance(result, dict) else None
    if named != a.capability:
        return Outcome(a.name, expected, f"refused as {named!r}", False, str(result))
    audited = _denial_logged(state.audit_path, before, a.capability)
    return Outcome(a.name, expected, "refused, audited" if audited else "refused, NOT AUDITED", audited, result.get("reason", ""))


def _stopped(a: Attempt, error: GatiError | None, elapsed: float, limits: Limits) -> Outcome:
    detail = "returned normally" if error is None else f"{error.code}: {error.message}"
    if a.method == "spin":
        expected = f"stopped by {limits.timeout_ms} ms"
        ok = isinstance(error, ModuleTimeout) and elapsed <= limits.timeout_ms / 1000 + STOP_SLACK_S
        return Outcome(a.name, expected, f"stopped at {elapsed * 1000:.0f} ms" if ok else "NOT stopped in time", ok, detail)
    expected = f"stopped by {limits.memory_mb} MiB"
    message = error.message if error else ""
    pages = _pages(message)
    ok = error is not None and "memory" in message and (pages is None or pages * 64 <= limits.memory_mb * 1024)
    observed = (f"stopped at {pages * 64 // 1024} MiB" if pages is not None else "stopped") if ok else "NOT stopped"
    return Outcome(a.name, expected, observed, ok, detail)


def _pages(message: str) -> int | None:
    """The page count the probe reports when memory.grow was refused (64 KiB pages)."""
    after = message.split("after ", 1)
    try:
        return int(after[1].split()[0]) if len(after) == 2 else None
    except ValueError:
        return None


def _denial_logged(path: Path, offset: int, capability: str) -> bool:
    """Did the log gain a deny record for this capability since offset?"""
    if not path.exists():
        return False
    with open(path, "rb") as f:
        f.seek(offset)
        return any((e := json.loads(line)).get("decision") == "deny" and e.get("capability") == capability for line in f if line.strip())


def _short(value: Any, limit: int = 60) -> str:
    text = value.get("message", value) if isinstance(value, dict) else value
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run(root: Path = PROBES) -> list[BackendProbe]:
    """Synchronous entry point for the CLI."""
    return asyncio.run(run_probes(root))
