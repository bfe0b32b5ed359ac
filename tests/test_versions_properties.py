"""Properties of Timescape phase 1 (runtime.http.versions), for any input:

- the resolver picks the version the rules say (header, date pin, query, default);
- a rollout is sticky per client, and raising its share never moves a client back;
- a step between two versions said to be non-breaking breaks no client;
- a chain of transformers taken up then down gives back the value it started from;
- a served version whose file still says the contract it was served with is not "changed in place".
"""

import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_gtype import _at_random_place, _narrow, _widen, gtypes, values

from runtime.http.versions.compat import compare
from runtime.http.versions.in_place import changed_in_place
from runtime.http.versions.store import VersionStore
from runtime.http.versions.resolver import UnknownVersion, VersionTable, bucket
from runtime.http.versions.transformers import Chain, Transformer

DAYS = st.dates(datetime.date(2024, 1, 1), datetime.date(2028, 12, 31))


@st.composite
def tables(draw):
    labels = sorted(draw(st.sets(st.integers(1, 40), min_size=1, max_size=6)))
    # a version without SINCE is live from its predecessor's day (or the beginning: 0)
    since, day = [], 0
    for _ in labels:
        if draw(st.booleans()):
            day = max(day, draw(DAYS).toordinal())
        since.append(day)
    labels = [str(n) for n in labels]
    default = draw(st.sampled_from(labels))
    rollout, previous = 100, ""
    if labels.index(default) > 0 and draw(st.booleans()):
        rollout, previous = draw(st.integers(0, 100)), labels[labels.index(default) - 1]
    return VersionTable("/r", tuple(labels), tuple(since), default, rollout, previous)


def asked(table):
    """What a client may send: a version of the table, another number, a date, junk, or nothing."""
    return st.one_of(
        st.none(),
        st.just(""),
        st.sampled_from(table.labels),
        st.integers(0, 60).map(str),
        DAYS.map(datetime.date.isoformat),
        st.sampled_from(["latest", "v2", "2026-13-01", "2026-02-30", "20261101", "2026-W01-1"]),
        st.text(max_size=12),
    )


def expected(table, header, query, client):
    """The rules of docs/versions.md, written as plainly as possible."""
    value = header or query or None
    if value is None:
        in_share = bucket(table.route, client) < table.rollout
        return table.default if in_share else table.previous
    if value in table.labels:
        return value
    try:
        day = datetime.date.fromisoformat(value) if len(value) == 10 and value[4] == "-" and value[7] == "-" else None
    except ValueError:
        day = None
    if day is None:
        return UnknownVersion
    live = [label for label, since in zip(table.labels, table.since) if since <= day.toordinal()]
    return live[-1] if live else UnknownVersion


@settings(max_examples=1000, deadline=None)
@given(st.data())
def test_the_resolver_follows_the_rules(data):
    table = data.draw(tables())
    header, query, client = data.draw(asked(table)), data.draw(asked(table)), data.draw(st.text(max_size=8))
    want = expected(table, header, query, client)
    if want is UnknownVersion:
        with pytest.raises(UnknownVersion) as caught:
            table.resolve(header, query, client)
        assert caught.value.http_status == 400
        assert caught.value.details["versions"] == list(table.labels)  # the error names what exists
    else:
        assert table.resolve(header, query, client) == want


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=20, unique=True), st.integers(0, 100), st.integers(0, 100))
def test_a_rollout_is_sticky_and_only_grows(clients, a, b):
    low, high = sorted((a, b))
    at = {p: VersionTable("/r", ("1", "2"), (0, 0), "2", p, "1") for p in (0, low, high, 100)}
    for client in clients:
        assert at[0].resolve(None, None, client) == "1" and at[100].resolve(None, None, client) == "2"
        got = at[low].resolve(None, None, client)
        assert got == at[low].resolve(None, None, client)  # the same client, the same version
        if got == "2":
            assert at[high].resolve(None, None, client) == "2"  # a larger share keeps everyone it had
        assert at[low].resolve("1", None, client) == "1"  # asking by name is never overruled


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_non_breaking_verdict_breaks_no_client(data):
    """compat.compare says "not breaking" only when every body an old client sends still passes, and
    every answer the new version gives still reads with the old type; dropping a method always breaks."""
    maybe = lambda t: st.one_of(st.none(), st.just(t))  # noqa: E731 - a route may declare no type
    old_req, old_res = data.draw(gtypes(6)), data.draw(gtypes(6))
    changed = lambda t: st.one_of(  # noqa: E731
        gtypes(6), st.just(t).map(lambda x: _at_random_place(x, data, _widen)), st.just(t).map(lambda x: _at_random_place(x, data, _narrow) or x)
    )
    new_req, new_res = data.draw(changed(old_req)), data.draw(changed(old_res))
    old_req, new_req, old_res, new_res = (data.draw(maybe(t)) for t in (old_req, new_req, old_res, new_res))
    verdict = compare(old_req, new_req, old_res, new_res)
    if not verdict.breaking:
        assert new_req is None or old_req is not None
        assert old_res is None or new_res is not None
        for _ in range(5):
            if old_req is not None and new_req is not None:
                body = data.draw(values(old_req))
                assert new_req.accepts(body), (body, verdict)
            if old_res is not None:
                answer = data.draw(values(new_res))
                assert old_res.accepts(answer, ignore_extra_keys=True), (answer, verdict)
    lost = data.draw(st.lists(st.sampled_from(["GET", "POST", "PUT"]), min_size=1, unique=True))
    assert compare(old_req, new_req, old_res, new_res, tuple(lost)).breaking


def _step(kind: str, key: str) -> Transformer:
    """An invertible step, as a transformer file would define it; each wraps or renames differently,
    so applying the downs in the wrong order (or forgetting one) does not give the value back."""
    if kind == "wrap":
        return Transformer(Path(f"{key}.transform.py"), lambda b: {key: b}, lambda b: b[key])
    if kind == "pair":  # carries a second field the newer version wants, dropped on the way down
        return Transformer(Path(f"{key}.transform.py"), lambda b: [key, b], lambda b: b[1])
    return Transformer(Path(f"{key}.transform.py"), lambda b: {"v": b, "tag": key}, lambda b: b["v"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_up_then_down_through_a_chain_gives_the_request_back(data):
    t = data.draw(gtypes(6))
    body = data.draw(values(t))
    kinds = data.draw(st.lists(st.sampled_from(["wrap", "pair", "tag"]), min_size=1, max_size=6))
    chain = Chain(tuple(_step(kind, f"k{i}") for i, kind in enumerate(kinds)))
    up = chain.up(body)
    assert chain.down(up) == body
    assert t.accepts(chain.down(up))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=st.none() | gtypes(), response=st.none() | gtypes(), summary=st.text(max_size=8))
def test_an_unchanged_contract_is_not_changed_in_place(tmp_path_factory, request, response, summary):
    """Stored as JSON Schema and read back, any contract compares equal to itself (the file may change
    elsewhere: its summary here)."""
    manifest = {"path": "/r", "version": "", "file": "r.py", "methods": ["POST"], "summary": "",
                "request": request.json_schema() if request else None, "response": response.json_schema() if response else None}
    store = VersionStore(tmp_path_factory.mktemp("store") / "versions.db")
    try:
        store.record([{"route": "/r", "versions": [{"version": "1", "fingerprint": "served"}]}], {"served": manifest}, 1000.0)
        store.served([("/r", "1")], 1000.0)
        assert changed_in_place(store, {("/r", "1"): {**manifest, "summary": summary}}, now=2000.0) == []
    finally:
        store.close()
