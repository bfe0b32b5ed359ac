"""Append-only, hash-chained audit log: one JSON line per capability decision.

Each record carries `seq`, the `prev` record's hash and its own `hash`
(sha256 over `prev` and the canonical JSON of the record without `hash`). Editing,
removing or reordering a record breaks the chain at that record, which `verify`
names. Appends take an exclusive file lock, so the server and a CLI call can share
one log.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

GENESIS = "0" * 64


def _digest(prev: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


class AuditLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = -1  # size of the file when we last knew its tail
        self._seq, self._prev = 0, GENESIS

    def record(self, **event: Any) -> dict[str, Any]:
        """Append one event; returns the record as written."""
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(self._fd).st_size
                if size != self._size:
                    self._seq, self._prev = _read_tail(self.path)
                body = {"seq": self._seq + 1, "time": time.time(), **event, "prev": self._prev}
                record = {**body, "hash": _digest(self._prev, body)}
                line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
                os.write(self._fd, line)
                self._seq, self._prev, self._size = record["seq"], record["hash"], size + len(line)
                return record
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def read_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream the records of a log (never loads the whole file)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


@dataclass
class VerifyResult:
    ok: bool
    records: int
    broken_line: int | None = None
    broken_seq: int | None = None
    problem: str = ""


def verify(path: str | Path) -> VerifyResult:
    """Walk the chain and report the first record that breaks it."""
    prev, expected_seq, count = GENESIS, 1, 0
    path = Path(path)
    if not path.exists():
        return VerifyResult(True, 0)
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                seq, stored = record["seq"], record.pop("hash")
            except (ValueError, KeyError, TypeError, AttributeError):
                return VerifyResult(False, count, lineno, None, "not a valid audit record (unparseable or missing hash)")
            if seq != expected_seq:
                what = "removed" if isinstance(seq, int) and seq > expected_seq else "reordered or duplicated"
                return VerifyResult(False, count, lineno, seq, f"expected record {expected_seq}, found {seq}: records {what}")
            if record.get("prev") != prev:
                return VerifyResult(False, count, lineno, seq, "prev hash does not match the record before it: records removed or reordered")
            if _digest(prev, record) != stored:
                return VerifyResult(False, count, lineno, seq, "hash does not match the content: the record was edited")
            prev, expected_seq, count = stored, expected_seq + 1, count + 1
    return VerifyResult(True, count)


def _read_tail(path: Path) -> tuple[int, str]:
    """(seq, hash) of the last record, reading only the end of the file."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        block = 4096
        while True:
            start = max(0, end - block)
            f.seek(start)
            lines = f.read(end - start).splitlines()
            complete = [l for l in lines if l.strip()]
            if len(complete) >= 2 or start == 0:
                break
            block *= 4
    if not complete:
        return 0, GENESIS
    last = json.loads(complete[-1])
    return last["seq"], last["hash"]
