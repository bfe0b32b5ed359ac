"""Call tokens (sandboxes/process/call_tokens.py): a request is attributed to a call in flight
by the token it presents, and to nothing else."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.core.audit_log import read_events
from runtime.core.call import CallContext
from runtime.core.host import Host, Resolver
from runtime.core.manifest import load_manifest
from runtime.core.secrets import Secrets
from sandboxes.process import call_tokens
from sandboxes.process.call_tokens import CallTokenRefused, CallTokens


@pytest.fixture
def tokens(tmp_path, state):
    mod = tmp_path / "m"
    mod.mkdir()
    (mod / "m.wat").write_text('(module (memory (export "memory") 1) (func (export "run") (result i32) i32.const 0))')
    (mod / "module.toml").write_text('name = "m"\nversion = "1.0.0"\nkind = "wasm"\n[artifact]\npath = "m.wat"\n[methods.run]\n')
    host = Host(load_manifest(mod), audit=state.audit, environ={}, secrets=Secrets(), kv=state.kv, resolver=Resolver(), call_module=None)
    return CallTokens(host)


def test_a_token_names_its_call_while_it_runs_and_is_unguessable(tokens):
    a, b = CallContext(request_id="a"), CallContext(request_id="b")
    with tokens.issued(a) as token_a, tokens.issued(b) as token_b:
        assert tokens.context(token_a, "env", "X") is a and tokens.context(token_b, "env", "X") is b
        assert token_a != token_b and min(len(token_a), len(token_b)) >= 43  # 256 random bits
    with pytest.raises(CallTokenRefused) as ended:
        tokens.context(token_a, "env", "X")
    assert ended.value.details["reason"] == "the call this token was issued to has ended"


def test_a_long_ended_call_is_still_refused(tokens, state, monkeypatch):
    monkeypatch.setattr(call_tokens, "ENDED_REMEMBERED", 3)
    with tokens.issued(CallContext(request_id="old")) as old:
        pass
    for i in range(3):
        with tokens.issued(CallContext(request_id=f"later-{i}")):
            pass
    with pytest.raises(CallTokenRefused) as refused:
        tokens.context(old, "kv.read", "store")
    assert refused.value.details["reason"] == "unknown call token"
    [record] = read_events(state.audit_path)
    assert (record["capability"], record["target"], record["decision"]) == ("kv.read", "store", "deny")


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_no_other_string_is_taken_for_a_call_in_flight(tokens, presented):
    with tokens.issued(CallContext(request_id="live")) as live:
        if presented == live:
            return
        with pytest.raises(CallTokenRefused):
            tokens.context(presented, "env", "X")
