"""The rules a log must meet to verify, checked one record at a time (no file access here).

A record is {"seq", "time", ...the event..., "key_id", "prev", "hash", "mac"}:

- `hash`: sha256 over `prev` and the canonical JSON (sorted keys, compact) of the record
  without `hash` and `mac`.
  Editing, removing or reordering a record breaks the chain at that record. Anyone can
  recompute it, so on its own it does not stop a rewrite that recomputes every later hash.
- `mac`: HMAC-SHA256 of `hash` under the log's key (audit_key.py). Without the key no one
  can make a record that verifies: a forged record, or a chain recomputed after an edit,
  is named at its first record.
- the head checkpoint (audit_head.py): how far the log reached, signed. A log that ends
  before it (records dropped from the end, or the whole log emptied) is named.
- an anchor (`--expect-head SEQ:HASH`, kept off the machine): the record at SEQ must have
  HASH. This is what catches someone who holds the key and rewrote the log and head.

Records without `mac` and `key_id` before the first signed one are a legacy prefix, written
before keyed chaining: their hashes chain into the first signed record, so they cannot change
afterwards without breaking its mac, but a change made before then cannot be seen.
A record without `mac` after a signed one is refused.

The log's writer records its own events with capability LOG_EVENT: "quarantine" (an
incomplete last line moved aside: a note, nothing lost) and "mismatch" (on opening the log
it did not match its head: the log fails verification at that record from then on).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import msgspec

from runtime.core.audit_head import Head
from runtime.core.audit_key import AuditKey

GENESIS = "0" * 64
LOG_EVENT = "audit.log"  # the capability of the log's own events; reports skip them
RESERVED = frozenset({"seq", "key_id", "prev", "hash", "mac"})  # fields the log sets, never the event


_sorted_json = msgspec.json.Encoder(order="sorted").encode
ENCODE_ERRORS = (TypeError, ValueError, OverflowError, msgspec.EncodeError)


def digest(prev: str, body: dict[str, Any]) -> str:
    """The chain hash as the writer makes it: sorted compact JSON by msgspec (a microsecond, where
    json.dumps(sort_keys=True) takes ten on every host call). Raises ENCODE_ERRORS for what msgspec
    cannot encode; the writer then uses _digest."""
    return hashlib.sha256(prev.encode() + _sorted_json(body)).hexdigest()


def _digest(prev: str, body: dict[str, Any]) -> str:
    """The same hash by json.dumps: how records were hashed before, and the fallback for odd values.
    The two encodings agree except in a float's spelling (1e+16 against 1e16)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


@dataclass
class VerifyResult:
    ok: bool
    records: int  # records that verified (before the break, if any)
    broken_line: int | None = None
    broken_seq: int | None = None
    problem: str = ""
    legacy: int = 0  # records without a mac, written before keyed chaining
    head: dict[str, Any] | None = None  # the head checkpoint read ({"seq", "hash"}), when it verified
    notes: list[str] = field(default_factory=list)  # worth knowing, not a break (a tail moved aside)


@dataclass(frozen=True)
class Anchor:
    """A head kept outside the machine: the record at seq must have this hash."""

    seq: int
    hash: str


class ChainCheck:
    """Feed the records in order; result() is the first break, or ok.

    key: the log's key (None: signed records cannot be checked, and fail).
    head: the head checkpoint read before the records (None: there is none).
    head_problem: the head could not be read at all.
    head_required: a key file exists, so a head must (it is written before the key file).
    """

    def __init__(
        self,
        key: AuditKey | None = None,
        head: Head | None = None,
        *,
        head_problem: str | None = None,
        head_required: bool = False,
        expect: Anchor | None = None,
    ) -> None:
        self.key = key
        self.prev = GENESIS
        self.expected_seq = 1
        self.records = 0
        self.lines = 0
        self.legacy = 0
        self.signed = False
        self.notes: list[str] = []
        self.broken: VerifyResult | None = None
        self.expect = expect
        self.expect_seen = expect is not None and expect.seq == 0  # record 0 is the empty log: always reached
        self.head_required = head_required
        self.head_problem = head_problem
        self.head: Head | None = None  # only a head that verified is held against the records
        if head is not None:
            if key is None:
                self.head_problem = "the head checkpoint is signed but there is no key to check it" + _NO_KEY
            elif head.key_id != key.id:
                self.head_problem = f"the head checkpoint was signed with another key ({head.key_id}; the key given, {key.where}, is {key.id})"
            elif not head.valid(key):
                self.head_problem = "the head checkpoint's mac does not match: it was forged or edited"
            else:
                self.head = head

    def hash_matches(self, prev: str, record: dict, stored: str) -> bool:
        # Either spelling of the canonical JSON is the same content: a record is edited only if neither matches.
        try:
            if digest(prev, record) == stored:
                return True
        except ENCODE_ERRORS:
            pass
        return _digest(prev, record) == stored

    def _break(self, lineno: int | None, seq: Any, problem: str) -> None:
        self.broken = VerifyResult(False, self.records, lineno, seq, problem)

    def invalid(self, lineno: int) -> None:
        if self.broken is None:
            self._break(lineno, None, "not a valid audit record (unparseable or missing hash)")

    def incomplete(self, lineno: int, size: int) -> None:
        """An unterminated last line that is not a record: an append cut short (or being written)."""
        if self.broken is None:
            self.lines = lineno
            self.notes.append(
                f"line {lineno} is an incomplete record ({size} bytes): an append cut short by a crash or a full disk, "
                "or being written now; the next append moves it aside"
            )

    def feed(self, lineno: int, record: dict) -> None:
        """Check one decoded record (its "hash" and "mac" keys are popped). Only the first break is kept."""
        if self.broken is not None:
            return
        self.lines = lineno
        try:
            seq, stored = record["seq"], record.pop("hash")
            mac = record.pop("mac", None)
        except (KeyError, TypeError, AttributeError):
            return self.invalid(lineno)
        if seq != self.expected_seq:
            what = "removed" if isinstance(seq, int) and seq > self.expected_seq else "reordered or duplicated"
            return self._break(lineno, seq, f"expected record {self.expected_seq}, found {seq}: records {what}")
        prev = self.prev
        if record.get("prev") != prev:
            return self._break(lineno, seq, "prev hash does not match the record before it: records removed or reordered")
        if type(stored) is not str or not self.hash_matches(prev, record, stored):
            return self._break(lineno, seq, "hash does not match the content: the record was edited")
        if mac is None:
            if "key_id" in record:  # its hash covers key_id: it was written signed, and its mac was taken off
                return self._break(lineno, seq, "the record's mac was removed")
            if self.signed:
                return self._break(lineno, seq, "a record without a mac after signed records: written without the key (forged, or by a gati older than keyed chaining)")
            self.legacy += 1
        elif self.key is None:
            return self._break(lineno, seq, "the record is signed but there is no key to check it" + _NO_KEY)
        elif type(mac) is not str or not hmac.compare_digest(mac.encode(), self.key.mac(stored).encode()):
            signer = record.get("key_id")
            if isinstance(signer, str) and signer != self.key.id:
                why = f"it was signed with key {signer}, the key given ({self.key.where}) is {self.key.id}: verify with the key this log was written with; otherwise it was forged"
            else:
                why = "forged, or edited with every later hash recomputed"
            return self._break(lineno, seq, f"the record's mac does not match: {why}")
        else:
            self.signed = True
        head = self.head
        if head is not None and seq == head.seq and stored != head.hash:
            return self._break(lineno, seq, f"the record differs from the head checkpoint (record {head.seq}): the log was rewritten")
        if self.expect is not None and seq == self.expect.seq:
            if stored != self.expect.hash:
                return self._break(lineno, seq, f"the record differs from the expected head {self.expect.seq}:{self.expect.hash[:12]}...: the log was rewritten since it was anchored")
            self.expect_seen = True
        if record.get("capability") == LOG_EVENT:
            if record.get("decision") == "mismatch":
                return self._break(lineno, seq, f"the log's writer found the log tampered with: {record.get('reason')}")
            if record.get("decision") == "quarantine":
                self.notes.append(f"line {lineno} (record {seq}): {record.get('reason')} ({record.get('target')})")
        self.prev, self.expected_seq, self.records = stored, seq + 1, self.records + 1

    def result(self) -> VerifyResult:
        result = self.broken or self._end()
        result.legacy, result.notes = self.legacy, self.notes
        result.head = {"seq": self.head.seq, "hash": self.head.hash} if self.head is not None else None
        if self.legacy and result.ok:
            first_signed = f"; they chain into record {self.legacy + 1}, the first signed one" if self.signed else ""
            self.notes.insert(0, f"records 1-{self.legacy} carry no mac: written before keyed chaining, a change made to them before then cannot be detected{first_signed}")
        return result

    def _end(self) -> VerifyResult:
        last, head, expect = self.expected_seq - 1, self.head, self.expect
        end_line = self.lines + 1

        def fail(line: int | None, seq: int | None, problem: str) -> VerifyResult:
            return VerifyResult(False, self.records, line, seq, problem)

        if self.head_problem:
            return fail(None, None, self.head_problem)
        if head is not None and head.seq > last:
            gone = "the log was emptied" if last == 0 else "records were removed from its end"
            return fail(end_line, last + 1, f"the log ends at record {last} but its head checkpoint is at record {head.seq}: {gone}")
        if head is None and (self.signed or self.head_required):
            what = "the log and its head checkpoint were removed" if last == 0 else "records may have been removed from the end"
            return fail(None, None, f"the head checkpoint is missing while the key is there: {what}")
        if expect is not None and not self.expect_seen:
            return fail(end_line, last + 1, f"the log ends at record {last}, before the expected head (record {expect.seq}): records were removed since it was anchored")
        return VerifyResult(True, self.records)


_NO_KEY = ": the key file beside the log is missing, or the project's [audit] key_secret was not given (see docs/audit.md)"
