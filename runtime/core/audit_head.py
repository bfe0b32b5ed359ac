"""The audit log's head checkpoint: the last record's seq and hash, signed, kept apart from the log.

The chain alone cannot show that records were dropped from the end, or that the whole log
went: what is left still chains. The head says how far the log reached, and only the key
can sign it. It sits beside the log (`audit.head`) and is rewritten after every append,
under the log's file lock.

It is one fixed-size slot (HEAD_BYTES, inside one disk sector) overwritten in place with a
single pwrite: a process killed at any point leaves the old or the new head, never a mix,
and it costs a microsecond. (Writing a temporary file and renaming it over the head cost
180 us per append here, ten times the rest of the append.)
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from runtime.core.audit_key import AuditKey

HEAD_BYTES = 256


class HeadUnreadable(ValueError):
    pass


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    key_id: str
    mac: str

    @classmethod
    def sign(cls, seq: int, record_hash: str, key: AuditKey) -> Head:
        return cls(seq, record_hash, key.id, key.head_mac(seq, record_hash))

    def valid(self, key: AuditKey) -> bool:
        return hmac.compare_digest(self.mac.encode(), key.head_mac(self.seq, self.hash).encode())

    def encode(self) -> bytes:
        # Formatted by hand, not json.dumps: this runs on every append, and every field is an int or hex.
        text = f'{{"seq":{self.seq},"hash":"{self.hash}","key_id":"{self.key_id}","mac":"{self.mac}"}}'
        return text.encode().ljust(HEAD_BYTES - 1) + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> Head:
        try:
            d = json.loads(data)
            head = cls(d["seq"], d["hash"], d["key_id"], d["mac"])
        except (ValueError, KeyError, TypeError) as exc:
            raise HeadUnreadable(f"not a head checkpoint ({exc.__class__.__name__})") from None
        if not (type(head.seq) is int and head.seq >= 0 and all(type(v) is str for v in (head.hash, head.key_id, head.mac))):
            raise HeadUnreadable("not a head checkpoint (a field of the wrong type)")
        return head

    def anchor(self) -> str:
        """The text to keep off the machine and give back to `gati audit verify --expect-head`."""
        return f"{self.seq}:{self.hash}"


def head_path(log_path: Path) -> Path:
    return log_path.with_suffix(".head")


def read_head(path: Path) -> Head | None:
    """None when there is no head (no file, or an empty one: created, not yet written); HeadUnreadable when it holds something else."""
    try:
        with open(path, "rb") as f:
            data = f.read(HEAD_BYTES * 4)
    except FileNotFoundError:
        return None
    return Head.decode(data) if data else None


def open_head(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    if os.fstat(fd).st_size > HEAD_BYTES:  # something longer was put there: cut it, or the slot would not parse
        os.ftruncate(fd, HEAD_BYTES)
    return fd


def write_head(fd: int, head: Head) -> None:
    data = head.encode()
    if os.pwrite(fd, data, 0) != len(data):
        raise OSError("short write of the audit head checkpoint")
