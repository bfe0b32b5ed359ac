"""The backends the conformance suite runs on: one `Backend` each, in BACKENDS.

Every test of tests/conformance takes the `backend` fixture (conftest.py) and so runs once per
backend, driving that backend's audit probe (runtime/reports/probes/<kind>, one method contract
for all) through the ordinary ModuleManager. A backend that cannot run here is skipped with
the reason; a scenario that does not apply to a backend (a fork bomb in WebAssembly) is marked
with `needs(...)` and skipped there, saying what the backend lacks.

A fourth backend plugs in with one more entry in BACKENDS: its probe folder under
runtime/reports/probes/<kind>, how to tell whether it can run here, and what it offers beyond
host calls.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.core.call import CallContext
from runtime.modules.manager import ModuleManager
from runtime.reports.probe import PROBES
from sandboxes import oci

CTX = CallContext(request_id="req-conformance", trace_id="trace-conformance", caller="test")
# The runtime's own environment: of these, a probe declares only PROBE_ALLOWED.
ENVIRON = {"PROBE_ALLOWED": "yes", "HOME": "/probe-home", "GATI_TEST_HIDDEN": "host-only-value"}

# What a backend may offer beyond host calls.
PROCESSES = "processes"  # the module is an OS process: a uid, capabilities, it can fork
SOCKETS = "sockets"  # a network stack of its own, whose only way out is the egress proxy
FILESYSTEM = "filesystem"  # it opens files itself: it sees what was bound in, nothing else
ENVIRON_LIST = "environ"  # an environment of its own that it can list
PYTHON_PROCESS = frozenset({PROCESSES, SOCKETS, FILESYSTEM, ENVIRON_LIST})


@dataclass(frozen=True)
class Backend:
    kind: str
    unavailable: Callable[[], str | None]  # None when it can run here, else why not
    offers: frozenset[str] = frozenset()
    audited_limits: frozenset[str] = frozenset()  # limits whose hitting the audit log records as limit.<name>
    own_environ: frozenset[str] = frozenset()  # names the sandbox itself sets (beyond GATI_*, PYTHON*, *_proxy)
    # The module's live workers (host pids), to check that a stopped one is really gone; none
    # for wasm, where each call is a fresh instance that its epoch deadline stops.
    workers: Callable[[ModuleManager], list[int]] = lambda manager: []
    marks: tuple = ()  # pytest marks for every test on this backend

    @property
    def probe(self) -> Path:
        return PROBES / self.kind


def process_workers(manager: ModuleManager) -> list[int]:
    """Host pids of the probe's running instances (containers and bwrap sandboxes alike)."""
    running = manager._running.get("probe")
    return [i.process.pid for i in running.sandbox.instances if i.process] if running else []


BACKENDS = {
    "wasm": Backend("wasm", lambda: None, audited_limits=frozenset({"timeout", "memory"})),
    "oci": Backend(
        "oci", oci.available, PYTHON_PROCESS,
        audited_limits=frozenset({"timeout", "memory"}),
        own_environ=frozenset({"PATH", "HOSTNAME", "HOME"}),  # the image's PATH, docker's HOSTNAME and HOME
        workers=process_workers,
        marks=(pytest.mark.slow,),
    ),
    "native": Backend(
        "native", lambda: None if shutil.which("bwrap") else "needs bubblewrap (make system-deps)", PYTHON_PROCESS,
        audited_limits=frozenset({"timeout", "memory", "processes"}),
        own_environ=frozenset({"PWD"}),  # bwrap's
        workers=process_workers,
    ),
}


def needs(*offers: str):
    """Mark a scenario as needing what only some backends offer; the others skip it, saying why."""
    return pytest.mark.needs(*offers)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def wait_for(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Until check() holds; a bounded wait, never a fixed sleep."""
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.01)
