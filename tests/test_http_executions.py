"""Execution records are written in batches, off the requests' path: every record reaches the
file, whole, within FLUSH_S of its request, at once past FLUSH_RECORDS, and at close."""

import asyncio

from runtime.http import executions
from runtime.http.executions import ExecutionRecords, read_records


def record(n: int) -> dict:
    return {"request_id": f"r{n}", "status": 200, "events": [{"type": "handler:start", "odd": object()}]}


async def test_a_record_reaches_the_file_without_anyone_flushing(tmp_path):
    records = ExecutionRecords(tmp_path / "executions.jsonl")
    records.write(record(1))
    written = []
    for _ in range(500):  # bounded: FLUSH_S is 50 ms; a busy machine may take longer
        written = list(read_records(records.path))
        if written:
            break
        await asyncio.sleep(0.01)
    assert [r["request_id"] for r in written] == ["r1"]
    assert written[0]["events"][0]["odd"].startswith("<object object")  # not JSON: kept as its repr
    records.close()


async def test_a_full_batch_is_written_at_once_and_close_writes_the_rest(tmp_path):
    records = ExecutionRecords(tmp_path / "executions.jsonl")
    for n in range(executions.FLUSH_RECORDS):
        records.write(record(n))
    assert len(list(read_records(records.path))) == executions.FLUSH_RECORDS  # no await: written already
    records.write(record(-1))
    records.close()
    assert [r["request_id"] for r in read_records(records.path)][-1] == "r-1"


def test_outside_an_event_loop_a_record_is_written_at_once(tmp_path):
    records = ExecutionRecords(tmp_path / "executions.jsonl")
    records.write(record(1))
    assert [r["request_id"] for r in read_records(records.path)] == ["r1"]
    records.close()
