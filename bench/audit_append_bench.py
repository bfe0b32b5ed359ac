"""Appends per second to the audit log: one writer, and several processes sharing one log.

    .venv/bin/python bench/audit_append_bench.py [--appends 20000] [--writers 2] [--repeat 3]

Each append is what a host call costs the log: the file lock, the tail check, the
chained hash, the record's HMAC and the signed head checkpoint written beside the log.
The event is the shape the host writes. Several writers share one log through its
flock, as `gati serve` and a `gati call` do: each append then re-reads the tail (and
the head) the other process moved; their figure is the total appends/s of all of them.
The baseline is the least any such log costs: flock, one write of the same line, unlock.
The best of --repeat runs is kept, the rows interleaved so machine load hits them alike.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

from runtime.core.audit_log import AuditLog, verify

EVENT = {
    "module": "thumbs",
    "version": "1.2.0",
    "caller": "handler:/thumbs",
    "request_id": "5f0c6d1e9a7b4c2d8e3f1a0b9c8d7e6f",
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
    "capability": "kv.read",
    "target": "cache",
    "decision": "allow",
    "rule": "kv: cache",
    "grant": None,
    "reason": None,
}


def append(path: Path, n: int, start=None) -> None:
    log = AuditLog(path)
    if start is not None:
        start.wait()
    for _ in range(n):
        log.record(**EVENT)
    log.close()


def bare(folder: Path, n: int) -> float:
    line = (json.dumps({"seq": 1, "time": time.time(), **EVENT, "prev": "0" * 64, "hash": "0" * 64}) + "\n").encode()
    fd = os.open(folder / "bare.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    t = time.perf_counter()
    for _ in range(n):
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        fcntl.flock(fd, fcntl.LOCK_UN)
    elapsed = time.perf_counter() - t
    os.close(fd)
    return n / elapsed


def one_writer(folder: Path, n: int) -> float:
    path = folder / "audit.log"
    append(path, 10)  # key, head and file created outside the timing
    t = time.perf_counter()
    append(path, n)
    return n / (time.perf_counter() - t)


def shared(folder: Path, n: int, writers: int) -> float:
    path = folder / "audit.log"
    append(path, 10)
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(writers + 1)
    procs = [ctx.Process(target=append, args=(path, n, start)) for _ in range(writers)]
    for p in procs:
        p.start()
    start.wait()
    t = time.perf_counter()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t
    assert all(p.exitcode == 0 for p in procs)
    result = verify(path)
    assert result.ok and result.records == 10 + n * writers, vars(result)
    return n * writers / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=20000, help="appends per writer")
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = {
        "bare flock + write": lambda folder: bare(folder, args.appends),
        "1 writer": lambda folder: one_writer(folder, args.appends),
        f"{args.writers} processes, one log": lambda folder: shared(folder, args.appends, args.writers),
    }
    best = {name: 0.0 for name in rows}
    for _ in range(args.repeat):
        for name, run in rows.items():
            with tempfile.TemporaryDirectory(prefix="gati-append-bench-") as tmp:
                best[name] = max(best[name], run(Path(tmp)))
    base = best["bare flock + write"]
    print(f"{'':28} {'appends/s':>10} {'us/append':>10} {'x bare':>7}")
    for name, rate in best.items():
        print(f"{name:28} {rate:10,.0f} {1e6 / rate:10.1f} {base / rate:7.1f}")


if __name__ == "__main__":
    main()
