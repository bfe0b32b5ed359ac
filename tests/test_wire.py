"""The one wire protocol (gati_sdk.protocol.wire) that the runtime and the SDK share: each
rule holds for every input, and both sides read what the other writes."""

import pytest
from gati_sdk import CapabilityDenied as SdkCapabilityDenied
from gati_sdk.errors import from_error
from gati_sdk.protocol import wire
from hypothesis import given
from hypothesis import strategies as st

from runtime.core.errors import ERRORS_BY_CODE, CapabilityDenied, GatiError
from sandboxes.process.handshake import ModuleStartError, parse

text = st.text(st.characters(blacklist_categories=("Cs",)))
paths = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="|\r\n\x1c\x1d\x1e\x85\u2028\u2029"), min_size=1).filter(
    lambda p: p == p.strip()
)


@given(paths)
def test_the_handshake_line_names_the_socket_it_was_written_for(path):
    assert wire.parse_handshake(wire.handshake_line(path), "m") == path
    assert parse(wire.handshake_line(path) + "\n", "m") == path


@given(text)
def test_any_other_line_is_refused_with_a_message(line):
    try:
        wire.parse_handshake(line, "m")
    except wire.HandshakeError as err:
        assert err.message.startswith("module m ")
        with pytest.raises(ModuleStartError) as refused:
            parse(line, "m", stderr_tail="tail")
        assert (refused.value.message, refused.value.details["stderr"]) == (err.message, "tail")


def test_a_line_of_another_protocol_version_says_which():
    with pytest.raises(wire.HandshakeError) as err:
        wire.parse_handshake(f"GATI|{wire.PROTOCOL_VERSION + 1}|unix|/s", "m")
    assert f"speaks handshake protocol '{wire.PROTOCOL_VERSION + 1}'" in err.value.message and "rebuild" in err.value.fix


@given(text)
def test_a_call_token_survives_proxy_authorization(token):
    assert wire.token_from_proxy_authorization(wire.proxy_authorization(token)) == token


@given(text)
def test_any_proxy_authorization_value_gives_a_token_or_nothing(value):
    assert isinstance(wire.token_from_proxy_authorization(value), str)


bodies = st.fixed_dictionaries(
    {"code": st.text(min_size=1), "message": text},
    optional={"fix": st.text(min_size=1)},
).flatmap(lambda body: st.dictionaries(text.filter(lambda k: k not in ("code", "message", "fix")), text).map(lambda d: {**body, **d}))


@given(bodies)
def test_an_error_survives_the_wire(body):
    assert wire.error_body(wire.error_message(body)) == body


@pytest.mark.parametrize("code", sorted(ERRORS_BY_CODE))
def test_every_runtime_error_crosses_the_wire_as_itself(code):
    kind = ERRORS_BY_CODE[code]
    sent = GatiError.__new__(kind)
    GatiError.__init__(sent, "what happened", fix="what to do", module="m", grant='[capabilities] env = ["X"]')
    received = GatiError.from_dict(wire.error_body(wire.error_message(sent.to_dict())))
    assert type(received) is kind and received.to_dict() == sent.to_dict()


def test_a_denial_reaches_a_python_module_as_capability_denied():
    denied = CapabilityDenied("m", "env", "X", '[capabilities] env = ["X"]')
    received = from_error(wire.error_message(denied.to_dict()))
    assert isinstance(received, SdkCapabilityDenied)
    assert (received.code, received.details["grant"], received.fix) == ("capability_denied", '[capabilities] env = ["X"]', denied.fix)
