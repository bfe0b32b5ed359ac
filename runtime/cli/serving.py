"""One `gati serve` per state directory, unless in cluster mode: a second one is warned about.

Two instances on one state directory share its registry, kv and audit files correctly, but
not what lives in each process: rate limits count per instance, and nothing tells an operator
that a forgotten instance is answering too. Instances meant to share state use [cluster] nats
(docs/scaling.md). The claim is an flock on `serve.lock` held for the life of the command:
the kernel drops it when the process ends, however it ends, so a crash never leaves a stale
claim; the file says who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from rich.markup import escape

from runtime.cli.common import err
from runtime.core.state import StateDir

LOCK_FILE = "serve.lock"


def claim_state(project_dir: Path, settings, port: int) -> int | None:
    """Hold the state directory for this `gati serve`; warn when another one holds it. Returns the held fd."""
    if settings.cluster.nats:
        return None  # several instances on shared state is what cluster mode is for
    folder = StateDir.locate(project_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        err.print(
            f"[bold yellow]warning:[/] another gati serve{escape(holder)} already serves the state in {escape(str(folder.resolve()))}: "
            "both share its registry, kv and audit log, but each counts rate limits on its own",
            highlight=False,
        )
        fix = "stop the other one, give this one its own state (GATI_HOME), or share state on purpose with [cluster] nats (docs/scaling.md)"
        err.print(f"[bold]fix:[/] {escape(fix)}", highlight=False)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "port": port}).encode(), 0)
    return fd  # kept open (and locked) until the process ends


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 256, 0) or b"{}")
        return f" (pid {int(info['pid'])}, port {int(info['port'])})"
    except (ValueError, KeyError, TypeError, OSError):
        return ""
