"""Capability decisions: allowed exactly when declared, and a denial names the grant."""


from hypothesis import given
from hypothesis import strategies as st

from runtime.core.policy import Policy
from runtime.core.manifest import LoadedManifest, parse_manifest

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


def policy_for(capabilities: str, base_dir: str = "/nonexistent") -> Policy:
    text = f"""
name = "m"
version = "1.0.0"
kind = "wasm"
[artifact]
path = "m.wasm"
[methods.run]
[capabilities]
{capabilities}
"""
    return Policy(LoadedManifest(parse_manifest(text), "module.toml", base_dir))


def toml_list(values):
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


@given(st.lists(names, max_size=5, unique=True), st.lists(names, max_size=5, unique=True), names)
def test_named_capabilities_allow_exactly_the_declared(declared, _, asked):
    for field, check in (("env", "env"), ("secrets", "secret"), ("modules", "module_call")):
        policy = policy_for(f"{field} = {toml_list(declared)}")
        decision = getattr(policy, check)(asked)
        assert decision.allowed == (asked in declared)
        if not decision.allowed:
            assert asked in decision.grant and field in decision.grant


@given(st.lists(names, max_size=4, unique=True), names, st.booleans())
def test_kv_allows_declared_stores_for_read_and_write(declared, store, write):
    decision = policy_for(f"kv = {toml_list(declared)}").kv(store, write)
    assert decision.allowed == (store in declared)
    assert decision.capability == ("kv.write" if write else "kv.read")


def test_files_ro_rw_and_escape(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "out").mkdir()
    policy = policy_for('files = { "data" = "ro", "out" = "rw" }', str(tmp_path))
    ok, located = policy.file("/data/a.txt", write=False)
    assert ok.allowed and located.host == tmp_path / "data" / "a.txt"
    denied, _ = policy.file("/data/a.txt", write=True)
    assert not denied.allowed and '"data" = "rw"' in denied.grant
    assert policy.file("/out/b.txt", write=True)[0].allowed
    assert not policy.file("/data/../etc/passwd", write=False)[0].allowed
    assert not policy.file("/etc/shadow", write=False)[0].allowed
    (tmp_path / "data" / "link").symlink_to("/etc")
    assert not policy.file("/data/link/passwd", write=False)[0].allowed


def test_egress_decisions_name_the_grant():
    policy = policy_for('egress = ["https://api.example.com:443"]')
    allowed, _ = policy.egress("https://api.example.com/v1")
    assert allowed.allowed and allowed.rule == "https://api.example.com:443"
    denied, _ = policy.egress("https://evil.example.net/")
    assert not denied.allowed and 'egress = ["https://evil.example.net:443"]' in denied.grant
    assert not policy_for("egress = []").egress("https://api.example.com/")[0].allowed
    assert policy_for('egress = ["insecure:allow-all"]').egress("https://anything.test/")[0].allowed
