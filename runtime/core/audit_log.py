"""Append-only, keyed hash-chained audit log: one JSON line per capability decision.

What a record holds and what verification checks is in audit_chain.py; the key in
audit_key.py; the head checkpoint in audit_head.py. This file writes and reads the log.

Appends take an exclusive file lock, so the server and a CLI call can share one log;
the head checkpoint is rewritten under the same lock after every append.

A damaged tail never stops the log. When the writer finds the file changed under it (on
opening, or when another process wrote since its last append), it re-reads the tail:
- whatever follows the last complete record (an append cut short by a crash or a full
  disk, a line without a hash) is moved to `audit.log.quarantine-<time>` and a
  "quarantine" event is recorded; a complete record is never moved;
- a log that no longer matches its head (cut short, emptied, rewritten, head missing or
  forged) gets a "mismatch" event saying what was found, so that verification keeps
  failing at that record: appending on top never hides it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import msgspec

from runtime.core.audit_chain import (
    ENCODE_ERRORS,
    GENESIS,
    LOG_EVENT,
    RESERVED,
    Anchor,
    ChainCheck,
    VerifyResult,
    _digest,
    digest,
)
from runtime.core.audit_head import (
    Head,
    HeadUnreadable,
    head_path,
    open_head,
    read_head,
    write_head,
)
from runtime.core.audit_key import (
    AuditKey,
    AuditKeyError,
    key_path,
    load_key_file,
    publish_key_file,
)
from runtime.core.errors import GatiError

__all__ = ["GENESIS", "AuditLog", "AuditWriteFailed", "VerifyResult", "read_events", "read_head_checked", "start_check", "verify"]

log = logging.getLogger("gati.audit")


class AuditWriteFailed(GatiError):
    code = "audit_write_failed"


@dataclass(frozen=True)
class _Tail:
    seq: int
    hash: str
    signed: bool


_EMPTY = _Tail(0, GENESIS, False)
_encode_line = msgspec.json.Encoder().encode


class AuditLog:
    def __init__(self, path: str | Path, key: AuditKey | None = None):
        """key: the project's configured key; None uses (and on first use makes) the key file beside the log."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._configured_key = key
        self.key: AuditKey | None = key
        self._fd = self._head_fd = -1
        self._size = -1  # size of the file when we last knew its tail
        self._seq, self._prev = 0, GENESIS
        with self._lock:
            self._open()
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                try:
                    self._sync()
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            except BaseException:
                self.close()
                raise

    def record(self, **event: Any) -> dict[str, Any]:
        """Append one event; returns the record as written."""
        clash = RESERVED & event.keys()
        if clash:
            raise ValueError(f"an audit event may not set {sorted(clash)}: the log sets them")
        with self._lock:
            info = self._lock_current_file()
            try:
                if info.st_size != self._size:
                    self._sync()
                return self._append(event)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        for fd in (self._fd, self._head_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._head_fd = -1

    # under the lock ----------------------------------------------------------------------

    def _open(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = -1

    def _lock_current_file(self) -> os.stat_result:
        """Take the lock on the file the path names now (returns its fstat): a log deleted or replaced
        (its last link gone) is reopened, not written blind."""
        while True:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                info = os.fstat(self._fd)
            except BaseException:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                raise
            if info.st_nlink:
                return info
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._open()

    def _sync(self) -> None:
        """Find the tail, move a torn one aside, check the head against the log; record what was found."""
        tail, quarantined = self._repair_tail()
        self._seq, self._prev, self._size = tail.seq, tail.hash, os.fstat(self._fd).st_size
        hp = head_path(self.path)
        try:
            head: Head | HeadUnreadable | None = read_head(hp)
        except HeadUnreadable as exc:
            head = exc
        if self._head_fd >= 0:
            os.close(self._head_fd)
        self._head_fd = open_head(hp)

        # The key is read once: later syncs keep the key this log was opened with, even if its file goes.
        key, made, key_file_existed = self.key, False, self._configured_key is None
        if key is None:
            key = load_key_file(key_path(self.path))
            if key is None:
                key, made, key_file_existed = AuditKey.generate(str(key_path(self.path))), True, False
        self.key = key
        if made:
            # The head first, then the key: a key file never exists without a head beside it,
            # which is how a log and head removed together are told from a new log.
            write_head(self._head_fd, Head.sign(tail.seq, tail.hash, key))
            self.key = publish_key_file(key, key_path(self.path))
            problem = (
                "the key file was missing while the log holds signed records: a new key was made; "
                "the records before this one can only be checked with the old key"
                if tail.signed else None
            )
        else:
            problem = _head_problem(head, key, tail, key_file_existed)

        if problem:
            about = {"seq": head.seq, "hash": head.hash} if isinstance(head, Head) else None
            self._append(_log_event("mismatch", hp.name, problem, head=about))
            log.error("audit log %s: %s (recorded; `gati audit verify` names it)", self.path, problem)
        if quarantined:
            name, size = quarantined
            reason = f"the last {size} bytes were not a complete record (an append cut short by a crash or a full disk, or written by something else): moved aside"
            self._append(_log_event("quarantine", name, reason, bytes=size))
            log.warning("audit log %s: %s to %s", self.path, reason, name)
        if not (problem or quarantined or made) and not (isinstance(head, Head) and head.seq == self._seq):
            write_head(self._head_fd, Head.sign(self._seq, self._prev, key))  # a new head, or one left behind

    def _repair_tail(self) -> tuple[_Tail, tuple[str, int] | None]:
        """The last record; bytes after it (not a record) go to a quarantine file; a missing final newline is added."""
        size = os.fstat(self._fd).st_size
        record, end, terminated = _last_record(self._fd, size)
        tail = _EMPTY if record is None else _Tail(record["seq"], record["hash"], "key_id" in record)
        if not terminated:  # the whole record is there but for its newline: keep it
            os.write(self._fd, b"\n")
            return tail, None
        if end == size:
            return tail, None
        torn = os.pread(self._fd, size - end, end)
        name = _quarantine(self.path, torn)
        os.ftruncate(self._fd, end)
        return tail, (name, len(torn))

    def _append(self, event: dict[str, Any]) -> dict[str, Any]:
        key = self.key
        assert key is not None
        seq = self._seq + 1
        body = {"seq": seq, "time": time.time(), **event, "key_id": key.id, "prev": self._prev}
        try:  # msgspec for the hash and the line, or json for both: a reader re-encodes the line it reads
            chain = digest(self._prev, body)
            record = {**body, "hash": chain, "mac": key.mac(chain)}
            line = _encode_line(record) + b"\n"
        except ENCODE_ERRORS:
            chain = _digest(self._prev, body)
            record = {**body, "hash": chain, "mac": key.mac(chain)}
            line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        self._write_line(line)
        self._seq, self._prev, self._size = seq, chain, self._size + len(line)
        try:
            write_head(self._head_fd, Head.sign(seq, chain, key))
        except OSError as exc:  # the record is written; a head one behind still verifies
            log.warning("audit log %s: the head checkpoint was not updated: %s", self.path, exc)
        return record

    def _write_line(self, line: bytes) -> None:
        done = 0
        try:
            while done < len(line):  # a short write (a full disk, a file size limit) is retried: the next one says why
                done += os.write(self._fd, line[done:])
        except OSError as exc:
            try:
                os.ftruncate(self._fd, self._size)  # leave no half line for the next writer
            except OSError:
                pass
            raise AuditWriteFailed(
                f"cannot append to the audit log {self.path}: {exc.strerror or exc}",
                fix="free disk space (or fix the file's permissions); a capability decision that cannot be recorded is not carried out",
            ) from None


def _log_event(decision: str, target: str, reason: str, **extra: Any) -> dict[str, Any]:
    """An event of the log itself, shaped like the host's so every reader finds the usual fields."""
    return {
        "module": "gati", "version": None, "caller": "audit log", "request_id": None, "trace_id": None,
        "capability": LOG_EVENT, "target": target, "decision": decision, "rule": None, "grant": None,
        "reason": reason, **extra,
    }


def _head_problem(head: Head | HeadUnreadable | None, key: AuditKey, tail: _Tail, key_file_existed: bool) -> str | None:
    """What is wrong between the log's tail and its head checkpoint, or None. A head behind the tail is fine:
    an append whose checkpoint write was cut short (every record past it is signed)."""
    if isinstance(head, HeadUnreadable):
        return f"the head checkpoint cannot be read ({head}): it was overwritten"
    if head is None:
        if tail.signed:
            return "the head checkpoint is missing: records may have been removed from the end"
        if key_file_existed:
            return "the log and its head checkpoint were removed (the key file remains)" if tail.seq == 0 else "the head checkpoint is missing"
        return None  # a new log, or one written before keyed chaining: anchored from now on
    if head.key_id != key.id:
        return f"the head checkpoint was signed with key {head.key_id}, this log's key ({key.where}) is {key.id}: the key was changed, or the head forged"
    if not head.valid(key):
        return "the head checkpoint's mac does not match: it was forged or edited"
    if head.seq > tail.seq:
        gone = "the log was emptied" if tail.seq == 0 else "records were removed from its end"
        return f"the log ends at record {tail.seq} but its head checkpoint was at record {head.seq}: {gone}"
    if head.seq == tail.seq and head.hash != tail.hash:
        return f"record {tail.seq} differs from the head checkpoint: the log was rewritten"
    return None


def _as_record(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        r = json.loads(line)
    except ValueError:
        return None
    if type(r) is dict and type(r.get("seq")) is int and type(r.get("hash")) is str:
        return r
    return None


def _last_record(fd: int, size: int) -> tuple[dict[str, Any] | None, int, bool]:
    """(last record, offset just after it, whether its newline is there), reading only the end of the file."""
    block = 4096
    while True:
        start = max(0, size - block)
        data = os.pread(fd, size - start, start)
        lines = data.split(b"\n")
        pos = len(data)  # end of the line being looked at, relative to start
        first = 0 if start == 0 else 1  # in a block that starts mid-file, the first piece may be part of a line
        for i in range(len(lines) - 1, first - 1, -1):
            line = lines[i]
            record = _as_record(line)
            if record is not None:
                terminated = i < len(lines) - 1
                return record, start + pos + (1 if terminated else 0), terminated
            pos -= len(line) + 1
        if start == 0:
            return None, 0, True
        block *= 4


def _quarantine(path: Path, data: bytes) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        name = f"{path.name}.quarantine-{stamp}" + (f"-{n}" if n else "")
        try:
            fd = os.open(path.with_name(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return name
    raise AuditWriteFailed(f"cannot name a quarantine file beside {path}", fix="move the old audit.log.quarantine-* files away")


# reading ----------------------------------------------------------------------------------


def read_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream the records of a log (never loads the whole file). An incomplete last line is not a record: skipped."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            if not line.endswith(b"\n"):
                try:
                    yield json.loads(line)
                except ValueError:
                    pass
                return
            yield json.loads(line)


def _read_head_locked(path: Path) -> Head | None:
    """The head checkpoint, read under a shared lock on the log: never half of a rewrite."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return read_head(head_path(path))
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return read_head(head_path(path))
    finally:
        os.close(fd)


def start_check(path: str | Path, key: AuditKey | None = None, expect: Anchor | None = None, check: type[ChainCheck] = ChainCheck) -> ChainCheck:
    """A ChainCheck primed with the log's key and head, to be fed the log's records in order.

    The head is read before the records: an append racing the read lands after it, and
    records past the head are allowed (each is signed). key None: the key file beside the log.
    """
    path = Path(path)
    file_key = load_key_file(key_path(path)) if key is None else None
    try:
        head, problem = _read_head_locked(path), None
    except HeadUnreadable as exc:
        head, problem = None, f"the head checkpoint cannot be read ({exc}): it was overwritten"
    return check(key or file_key, head, head_problem=problem, head_required=file_key is not None, expect=expect)


def verify(path: str | Path, key: AuditKey | None = None, expect: Anchor | None = None) -> VerifyResult:
    """Walk the chain, check every mac and the head; report the first break."""
    path = Path(path)
    check = start_check(path, key, expect)
    if not path.exists():
        return check.result()
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if line.endswith(b"\n"):
                    check.invalid(lineno)
                else:
                    check.incomplete(lineno, len(line))
                continue
            if type(record) is not dict:
                check.invalid(lineno)
                continue
            check.feed(lineno, record)
    return check.result()


def read_head_checked(path: str | Path, key: AuditKey | None = None) -> Head:
    """The head checkpoint, only if the key signed it: what `gati audit head` prints."""
    path = Path(path)
    key = key or load_key_file(key_path(path))
    try:
        head = _read_head_locked(path)
    except HeadUnreadable as exc:
        raise AuditKeyError(f"the audit head checkpoint {head_path(path)} cannot be read ({exc})", fix="run: gati audit verify") from None
    if head is None:
        raise AuditKeyError(
            f"there is no audit head checkpoint at {head_path(path)}",
            fix="it is written with the log's next record (gati serve, or gati call); then run gati audit verify",
        )
    if key is None or head.key_id != key.id or not head.valid(key):
        raise AuditKeyError(
            f"the audit head checkpoint {head_path(path)} does not verify with the log's key",
            fix="run: gati audit verify (it says what does not match)",
        )
    return head
