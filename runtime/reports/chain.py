"""The hash-chain check, fed one record at a time so the report verifies in its own pass.

Same rules and the same answer as runtime.core.audit_log.verify (which `gati audit verify`
uses), but it hashes with msgspec's sorted encoder, several times faster than
json.dumps(sort_keys=True). The two encodings agree on the records the host writes;
where they might not (exotic floats or escapes), a mismatch is re-checked with the
log's own digest before the record is called edited, so the fast path can never
invent a break.
"""

from __future__ import annotations

import hashlib

import msgspec

from runtime.core.audit_log import GENESIS, VerifyResult, _digest

_canonical = msgspec.json.Encoder(order="sorted").encode


class ChainCheck:
    def __init__(self) -> None:
        self.prev = GENESIS
        self.expected_seq = 1
        self.records = 0
        self.broken: VerifyResult | None = None

    def invalid(self, lineno: int) -> None:
        if self.broken is None:
            self.broken = VerifyResult(False, self.records, lineno, None, "not a valid audit record (unparseable or missing hash)")

    def feed(self, lineno: int, record: dict) -> None:
        """Check one decoded record (its "hash" key is popped). Only the first break is kept."""
        if self.broken is not None:
            return
        try:
            seq, stored = record["seq"], record.pop("hash")
        except (KeyError, TypeError):
            return self.invalid(lineno)
        if seq != self.expected_seq:
            what = "removed" if isinstance(seq, int) and seq > self.expected_seq else "reordered or duplicated"
            problem = f"expected record {self.expected_seq}, found {seq}: records {what}"
            self.broken = VerifyResult(False, self.records, lineno, seq, problem)
            return
        prev = self.prev
        if record.get("prev") != prev:
            problem = "prev hash does not match the record before it: records removed or reordered"
            self.broken = VerifyResult(False, self.records, lineno, seq, problem)
            return
        if hashlib.sha256(prev.encode() + _canonical(record)).hexdigest() != stored and _digest(prev, record) != stored:
            self.broken = VerifyResult(False, self.records, lineno, seq, "hash does not match the content: the record was edited")
            return
        self.prev, self.expected_seq, self.records = stored, seq + 1, self.records + 1

    def result(self) -> VerifyResult:
        return self.broken or VerifyResult(True, self.records)
