"""The contract every runtime.core.kv.KvStore keeps: SQLite (test_kv_atomic.py) and JetStream (test_cluster_state.py)."""

import pytest

from runtime.core.kv import Entry, KvConflict, KvInvalid


async def check_contract(kv) -> None:
    assert await kv.get("s", "k") is None and await kv.entry("s", "k") is None
    r1 = await kv.put("s", "k", b"one")
    assert await kv.entry("s", "k") == Entry(b"one", r1)
    with pytest.raises(KvConflict) as conflict:
        await kv.cas("s", "k", b"two", r1 + 1000)
    assert conflict.value.current == r1 and conflict.value.code == "kv_conflict"
    with pytest.raises(KvConflict) as conflict:
        await kv.cas("s", "k", b"two", 0)  # 0 creates only
    assert conflict.value.current == r1
    r2 = await kv.cas("s", "k", b"two", r1)
    assert r2 > r1 and await kv.get("s", "k") == b"two"
    with pytest.raises(KvConflict):
        await kv.cas("s", "k", b"three", r1)  # the revision read before the last write is stale
    # delete: at a stale revision refused; at the current one done; absent -> False
    with pytest.raises(KvConflict) as conflict:
        await kv.delete("s", "k", r1)
    assert conflict.value.current == r2
    assert await kv.delete("s", "k", r2) is True
    assert await kv.delete("s", "k") is False and await kv.get("s", "k") is None
    with pytest.raises(KvConflict) as conflict:
        await kv.delete("s", "k", r2)
    assert conflict.value.current == 0
    # a key deleted and written again never gets back a revision it had: no ABA
    r3 = await kv.cas("s", "k", b"again", 0)
    assert r3 > r2
    # counters: decimal text any client reads; absent is 0; other stores and keys untouched
    assert await kv.increment("s", "n", 1) == 1
    assert await kv.increment("s", "n", 41) == 42 and await kv.get("s", "n") == b"42"
    assert await kv.increment("s", "n", -50) == -8
    assert await kv.increment("other", "n", 1) == 1
    with pytest.raises(KvInvalid):
        await kv.increment("s", "k", 1)  # "again" is no counter
    await kv.put("s", "big", b"9223372036854775807")
    with pytest.raises(KvInvalid):
        await kv.increment("s", "big", 1)
    # keys are any text, stores are separate
    await kv.put("s", "a/b c.d*>", b"x")
    assert await kv.get("s", "a/b c.d*>") == b"x" and await kv.get("t", "a/b c.d*>") is None
    assert await kv.put("s", "", b"empty key") and await kv.get("s", "") == b"empty key"
