"""For any sequence of appends and any single change to the log, verification fails exactly when
the log's records changed: an edit to any field (with or without every later hash recomputed, as
someone without the key can), a record dropped, the file cut at any byte, a record forged on the
end. A change that leaves every record as it was (an edit to the same value, a cut of only the
final newline) must still verify. The report's own pass always agrees with `verify`, and one more
append by the runtime never turns a changed log back into one that verifies.
"""

import json

from audit_support import rechain, rehash, write_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.core.audit_log import AuditLog, verify
from runtime.reports.usage import scan

RESERVED = {"seq", "time", "key_id", "prev", "hash", "mac"}  # set by the log itself
values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12)
)
events = st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: k not in RESERVED), values, max_size=4)
CHANGES = ["edit", "edit and rechain", "drop", "drop and rechain", "cut", "forge"]


def records_of(data: bytes) -> list[str]:
    """The log's records as canonical text: what "the log changed" means."""
    out = []
    for line in data.split(b"\n"):
        try:
            out.append(json.dumps(json.loads(line), sort_keys=True))
        except ValueError:
            continue
    return out


def change(path, kind, data):
    raw = path.read_bytes()
    rows = [json.loads(line) for line in raw.splitlines()]
    i = data.draw(st.integers(0, len(rows) - 1), label="record")
    if kind.startswith("edit"):
        field = data.draw(st.sampled_from(sorted(rows[i])), label="field")
        rows[i][field] = data.draw(values, label="new value")
    elif kind.startswith("drop"):
        del rows[i]
        if kind == "drop and rechain":
            for seq, r in enumerate(rows, 1):
                r["seq"] = seq
    elif kind == "cut":
        # The file's length varies with the clock (the times' digits): draw a position, not an offset.
        path.write_bytes(raw[: int(len(raw) * data.draw(st.floats(0, 1, exclude_max=True), label="cut at"))])
        return
    else:
        forged = {**rows[-1], "seq": rows[-1]["seq"] + 1, "target": data.draw(st.text(max_size=8), label="forged target")}
        rows.append(rehash(forged, rows[-1]["hash"]))
    if kind.endswith("rechain"):
        rows = rechain(rows, min(i, len(rows)))
    write_rows(path, rows)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(appended=st.lists(events, min_size=1, max_size=6), kind=st.sampled_from(CHANGES), data=st.data())
def test_verify_fails_exactly_when_the_log_changed(tmp_path_factory, appended, kind, data):
    path = tmp_path_factory.mktemp("log") / "audit.log"
    log = AuditLog(path)
    for event in appended:
        log.record(**event)
    log.close()
    before = records_of(path.read_bytes())
    assert verify(path).ok

    change(path, kind, data)
    changed = records_of(path.read_bytes()) != before

    result = verify(path)
    assert result.ok is not changed, (kind, result)
    assert vars(scan(path).chain) == vars(result)

    log = AuditLog(path)  # the runtime goes on appending: a changed log stays failed
    log.record(module="m", capability="env", target="after", decision="allow")
    log.close()
    assert verify(path).ok is not changed, (kind, verify(path))
