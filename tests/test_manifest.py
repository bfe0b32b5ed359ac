"""module.toml parsing: good manifests load, bad ones are refused naming file, key, problem and fix."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.core.errors import ManifestError
from runtime.core.manifest import load_manifest, parse_manifest

GOOD = """
name = "thumbs"
version = "1.0.0"
kind = "wasm"
[artifact]
path = "thumbs.wasm"
[methods.resize]
timeout_ms = 2000
[capabilities]
egress = ["https://api.example.com:443"]
files = { "data" = "ro" }
env = ["LANG"]
[limits]
memory_mb = 32
"""


def test_good_manifest():
    m = parse_manifest(GOOD)
    assert m.name == "thumbs" and m.method_timeout_ms("resize") == 2000
    assert m.capabilities.files == {"data": "ro"} and m.limits.memory_mb == 32 and m.limits.timeout_ms == 10_000


@pytest.mark.parametrize(
    "change, key, fix_word",
    [
        (("[limits]\nmemory_mb = 32", "[limits]\nmemory_mb = 32\nmemroy = 1"), "limits.memroy", "memory_mb"),
        (("memory_mb = 32", 'memory_mb = "lots"'), "limits.memory_mb", "type"),
        (('"https://api.example.com:443"', '"https://ex*.com:443"'), "capabilities.egress[0]", "api.example.com"),
        (('kind = "wasm"', 'kind = "jar"'), "kind", "wasm"),
        (('name = "thumbs"', 'name = "Thumbs!"'), "name", "lower-case"),
        (('version = "1.0.0"', 'version = "one"'), "version", "1.2.3"),
        (('"data" = "ro"', '"data" = "rwx"'), "capabilities.files.<key>", "type"),
        (("timeout_ms = 2000", "timeout_ms = -1"), "methods.resize.timeout_ms", "milliseconds"),
        (('version = "1.0.0"', 'version = "1.0.0"\nextra = 1'), "extra", "name"),
    ],
)
def test_bad_manifest_names_key_and_fix(change, key, fix_word):
    old, new = change
    with pytest.raises(ManifestError) as err:
        parse_manifest(GOOD.replace(old, new), "mods/thumbs/module.toml")
    e = err.value
    assert e.details["file"] == "mods/thumbs/module.toml"
    assert e.details["key"] == key
    assert fix_word in e.fix or fix_word in e.details["problem"]


def test_not_toml():
    with pytest.raises(ManifestError, match="not valid TOML"):
        parse_manifest("name = ")


def test_missing_artifact_is_refused(tmp_path):
    (tmp_path / "module.toml").write_text(GOOD)
    (tmp_path / "data").mkdir()
    with pytest.raises(ManifestError) as err:
        load_manifest(tmp_path)
    assert err.value.details["key"] == "artifact.path" and "build" in err.value.fix
    (tmp_path / "thumbs.wasm").write_bytes(b"\0asm")
    assert load_manifest(tmp_path).manifest.name == "thumbs"


def test_missing_file_grant_is_refused(tmp_path):
    (tmp_path / "module.toml").write_text(GOOD)
    (tmp_path / "thumbs.wasm").write_bytes(b"\0asm")
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path)


toml_scalar = st.one_of(st.integers(), st.text(max_size=10), st.booleans(), st.floats(allow_nan=False))
toml_value = st.recursive(
    toml_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3)),
    max_leaves=10,
)
known_keys = st.sampled_from(["name", "version", "kind", "artifact", "methods", "capabilities", "limits", "description"])


def _toml(value) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


@given(st.dictionaries(st.one_of(known_keys, st.text(min_size=1, max_size=8)), toml_value, max_size=8))
def test_parser_raises_only_manifest_error_on_any_toml(doc):
    text = "\n".join(f"{_toml(k)} = {_toml(v)}" for k, v in doc.items())
    try:
        parse_manifest(text)
    except ManifestError as e:
        assert e.details["key"] and e.fix


@given(st.binary(max_size=200))
def test_parser_raises_only_manifest_error_on_any_bytes(data):
    try:
        parse_manifest(data)
    except ManifestError:
        pass


# Every pattern is anchored whole; NUL bytes and over-long names are manifest errors -------------

@pytest.mark.parametrize(
    "old, new, key",
    [
        ('name = "thumbs"', 'name = "thumbs\\n"', "name"),
        ('version = "1.0.0"', 'version = "1.0.0\\n"', "version"),
        ('version = "1.0.0"', 'version = "\u0661.0.0"', "version"),  # an Arabic-Indic digit is not [0-9]
        ("[methods.resize]", '[methods."resize\\n"]', "methods.resize\n"),
        ('env = ["LANG"]', 'env = ["LANG\\n"]', "capabilities.env[0]"),
        ('env = ["LANG"]', 'env = ["LANG"]\nsecrets = ["k\\n"]', "capabilities.secrets[0]"),
        ('env = ["LANG"]', 'env = ["LANG"]\nkv = ["cache\\n"]', "capabilities.kv[0]"),
        ('env = ["LANG"]', 'env = ["LANG"]\nmodules = ["greet\\n"]', "capabilities.modules[0]"),
    ],
)
def test_a_trailing_newline_or_foreign_digit_is_not_a_name(old, new, key):
    with pytest.raises(ManifestError) as err:
        parse_manifest(GOOD.replace(old, new))
    assert err.value.details["key"] == key


@pytest.mark.parametrize(
    "old, new, key",
    [
        ('path = "thumbs.wasm"', 'path = "thumbs\\u0000.wasm"', "artifact.path"),
        ('path = "thumbs.wasm"', 'path = "thumbs.wasm"\nargs = ["a\\u0000"]', "artifact.args[0]"),
        ('kind = "wasm"', 'kind = "wasm"\ndescription = "x\\u0000"', "description"),
        ("timeout_ms = 2000", 'timeout_ms = 2000\ndescription = "\\u0000"', "methods.resize.description"),
        ('"data" = "ro"', '"da\\u0000ta" = "ro"', "capabilities.files"),
        ('"https://api.example.com:443"', '"https://api.example.com\\u0000:443"', "capabilities.egress[0]"),
    ],
)
def test_a_nul_byte_anywhere_is_a_manifest_error(old, new, key):
    with pytest.raises(ManifestError) as err:
        parse_manifest(GOOD.replace(old, new))
    assert err.value.details["key"] == key and "NUL" in err.value.details["problem"]


@pytest.mark.parametrize(
    "artifact",
    ["thumbs\u0000.wasm", "a" * 300, "a/" * 3000 + "x", "b" * 5000],
)
def test_load_refuses_nul_and_overlong_artifact_paths_without_a_traceback(tmp_path, artifact):
    (tmp_path / "data").mkdir()
    (tmp_path / "module.toml").write_text(GOOD.replace('path = "thumbs.wasm"', f"path = {json.dumps(artifact)}"))
    with pytest.raises(ManifestError) as err:
        load_manifest(tmp_path)
    assert err.value.details["key"] == "artifact.path" and err.value.fix


def test_load_refuses_an_overlong_file_grant_without_a_traceback(tmp_path):
    (tmp_path / "thumbs.wasm").write_bytes(b"\0asm")
    (tmp_path / "module.toml").write_text(GOOD.replace('"data" = "ro"', f'"{"d" * 300}" = "ro"'))
    with pytest.raises(ManifestError, match="too long"):
        load_manifest(tmp_path)


path_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="ab/.\x00", max_size=40),
    st.integers(250, 5000).map(lambda n: "a" * n),
    st.integers(1, 3000).map(lambda n: "a/" * n),
)


@settings(max_examples=150, deadline=None)
@given(path_text, st.dictionaries(path_text, st.sampled_from(["ro", "rw"]), max_size=3), st.lists(path_text, max_size=3))
def test_load_manifest_raises_only_manifest_error_on_any_paths(tmp_path_factory, artifact, grants, args):
    folder = tmp_path_factory.mktemp("m")
    text = GOOD.replace('path = "thumbs.wasm"', f"path = {json.dumps(artifact)}\nargs = {json.dumps(args)}")
    text = text.replace('files = { "data" = "ro" }', "files = {" + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in grants.items()) + "}")
    (folder / "module.toml").write_text(text)
    try:
        load_manifest(folder)
    except ManifestError as e:
        assert e.details["key"] and e.fix
