"""`gati serve --workers N`: one project served by N processes that share the port (SO_REUSEPORT).

One Python process runs Python on one core at a time, so a server that should use every core
runs several. Each worker is a whole gati app in a process of its own (its own event loop,
module sandboxes, metrics); all of them bind the same port with SO_REUSEPORT and the kernel
spreads the connections over them. The parent only supervises: it checks that the port can be
bound, starts the first worker and waits until it serves (it registers the project's modules,
so a broken project is reported once), then starts the others. It starts a new worker for one
that dies while serving, and on Ctrl+C or SIGTERM stops them all. A worker stops by itself when
the parent is gone (PR_SET_PDEATHSIG), so none is left holding the port.

What the workers share lives on disk and is safe to share: the registry and the kv stores
(SQLite in WAL mode; a writer waits for another's lock), the audit log (appends under flock,
each writer reading the tail another wrote, so the hash chain stays one chain) and the
execution records (O_APPEND, whole lines per write). What each keeps in memory is its own:
rate-limit counters, the in-memory pub/sub bus (use [pubsub] backend = "nats" to reach every
worker), /metrics, warm container instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Callable

from aiohttp import web

from runtime.core.errors import GatiError
from runtime.http.app import build_app
from runtime.http.logs import access_log_options, setup_logging

log = logging.getLogger("gati.workers")

STOP_GRACE_S = 15.0  # how long stopping workers may take to finish their requests before they are killed
RESTART_PAUSE_S = 1.0  # between a worker's death and its replacement, so a crash loop does not spin


class Stop(Exception):
    """SIGTERM reached the parent: stop like Ctrl+C."""


def default_count() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere every core counts
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def serve_workers(
    directory: Path, host: str, port: int, count: int, ready: Callable[[int], None], *, access_log: bool = True, log_format: str = "text"
) -> None:
    """Serve with `count` worker processes until Ctrl+C or SIGTERM; ready(port) once all of them serve.

    Raises OSError when the port cannot be bound, the worker's GatiError when the project cannot start."""
    reserved = reserve(host, port)  # the bind errors come from here, before any worker starts
    port = reserved.getsockname()[1]  # --port 0: every worker binds the port chosen here
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the parent's threads or imports
    workers: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    waits = _Waits()
    try:
        workers.append(_start(spawn, directory, host, port, access_log, log_format))
        _await_ready(*workers[0], waits)  # alone first: it registers the modules, and a broken project fails once
        workers.extend(_start(spawn, directory, host, port, access_log, log_format) for _ in range(count - 1))
        for worker in workers[1:]:
            _await_ready(*worker, waits)
        ready(port)
        while True:
            dead = waits.wait([process.sentinel for process, _ in workers])
            for i, (process, conn) in enumerate(workers):
                if process.sentinel in dead:
                    log.error("worker pid %s exited with code %s; starting another", process.pid, process.exitcode)
                    conn.close()
                    time.sleep(RESTART_PAUSE_S)
                    workers[i] = _start(spawn, directory, host, port, access_log, log_format)
                    _await_ready(*workers[i], waits)
    except (KeyboardInterrupt, Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_all([process for process, _ in workers])
        waits.close()
        reserved.close()


class _Waits:
    """The parent's waits, which a signal ends whichever thread of the process the kernel gave it to.

    Python runs signal handlers in the main thread, but the kernel may hand a process's signal to
    any of its threads, here the drift watch's (runtime/cli/drift.py). Such a signal did not
    interrupt the main thread's wait(), so Ctrl+C went unseen and `gati serve --workers N` never
    stopped. The C-level handler writes to a socket on whatever thread it runs
    (signal.set_wakeup_fd), every wait here includes that socket, and once the wait returns the
    main thread runs the Python handler (KeyboardInterrupt, Stop)."""

    def __init__(self):
        self.signalled, self._writable = socket.socketpair()
        self.signalled.setblocking(False)
        self._writable.setblocking(False)
        self._previous = signal.set_wakeup_fd(self._writable.fileno(), warn_on_full_buffer=False)

    def wait(self, objects: list) -> list:
        """multiprocessing's wait(objects), also ended by a signal: its handler raises in this thread."""
        while True:
            ready = wait([*objects, self.signalled])
            if self.signalled in ready:
                with contextlib.suppress(BlockingIOError):
                    self.signalled.recv(512)  # the signals' numbers: the handlers have them already
                ready.remove(self.signalled)
            if ready:
                return ready

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous)
        self.signalled.close()
        self._writable.close()


def reserve(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to host:port with SO_REUSEPORT: proves the workers can bind it, and holds the port."""
    family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _start(spawn, directory: Path, host: str, port: int, access_log: bool, log_format: str):
    """Start one worker process; returns it with the end of the pipe on which it says "ready" (or why not)."""
    parent_conn, child_conn = spawn.Pipe(duplex=False)
    process = spawn.Process(target=_worker, args=(str(directory), host, port, access_log, log_format, os.getpid(), child_conn), name="gati-worker")
    process.start()
    child_conn.close()
    return process, parent_conn


def _await_ready(process, conn: Connection, waits: _Waits) -> None:
    """Wait until the worker serves; its start-up error, if any, is raised here as the same GatiError."""
    while True:
        if conn in waits.wait([conn, process.sentinel]):
            try:
                kind, body = conn.recv()
            except EOFError:
                kind, body = "exited", None
        else:
            kind, body = "exited", None
        if kind == "ready":
            return
        if kind == "error":
            raise GatiError.from_dict(body)
        if kind == "oserror":
            raise OSError(body[0], body[1])
        process.join(5)
        raise GatiError(
            f"a worker exited with code {process.exitcode} before it served",
            fix="run gati serve with --workers 1 to see its start-up in the foreground",
        )


def _stop_all(processes: list) -> None:
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)  # aiohttp's graceful exit: finish requests, run shutdown
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.warning("worker pid %s did not stop within %.0f s; killing it", process.pid, STOP_GRACE_S)
            process.kill()
            process.join()


def _raise_stop(signum, frame) -> None:
    raise Stop()


# in the worker process ------------------------------------------------------------------------


def _worker(directory: str, host: str, port: int, access_log: bool, log_format: str, parent: int, conn: Connection) -> None:
    # One stop, from the parent: Ctrl+C reaches the whole process group, and a second signal in
    # the middle of the graceful shutdown the first began would cut it short. So a worker ignores
    # SIGINT, and SIGTERM (the parent's, or the kernel's when the parent dies) starts aiohttp's
    # graceful exit once; aiohttp's own handlers, which take both signals every time, stay off.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    setup_logging(log_format, worker=os.getpid())
    try:
        application = build_app(directory, telemetry=True)  # each worker exports its own spans and metrics
        application.on_startup.append(_stop_gracefully_on_sigterm)
        web.run_app(
            application, host=host, port=port, reuse_port=True, **access_log_options(access_log, log_format),
            print=lambda _: conn.send(("ready", os.getpid())), handle_signals=False,
        )
    except GatiError as exc:
        _tell(conn, ("error", exc.to_dict()))
        sys.exit(1)
    except OSError as exc:
        _tell(conn, ("oserror", (exc.errno, exc.strerror or str(exc))))
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the parent reports it; a worker prints no traceback
        log.exception("worker failed")
        _tell(conn, ("error", GatiError(f"a worker failed: {type(exc).__name__}: {exc}", fix="see the worker's log above").to_dict()))
        sys.exit(1)


async def _stop_gracefully_on_sigterm(app: web.Application) -> None:
    # On the loop, as aiohttp does it: a GracefulExit raised from a plain signal handler would
    # burst out of whatever code it interrupted (a response being written) with a traceback.
    loop = asyncio.get_running_loop()

    def stop() -> None:
        loop.remove_signal_handler(signal.SIGTERM)  # once
        raise web.GracefulExit()

    loop.add_signal_handler(signal.SIGTERM, stop)


def _tell(conn: Connection, message) -> None:
    try:
        conn.send(message)
    except OSError:
        pass  # the parent is gone or stopped listening


def _die_with(parent: int) -> None:
    """SIGTERM this process when the parent dies (Linux), and stop now if it already has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        sys.exit(0)
