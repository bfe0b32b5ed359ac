"""Method payload schemas: declared in module.toml, checked in both directions of every call, on every backend.

The cross-backend test registers the audit probe of each kind (WASM, native, container) with
schemas on its `echo` method: a payload outside the input schema never reaches the module, and an
answer outside the output schema never reaches the caller.
"""

import shutil
from pathlib import Path

import pytest

from runtime.core.call import CallContext
from runtime.core.errors import BadPayload, ManifestError
from runtime.core.manifest import load_manifest, parse_manifest
from runtime.core.payload_schema import PayloadSchema
from runtime.modules import register_module
from runtime.modules.contracts import Contracts
from runtime.modules.manager import ModuleManager
from sandboxes.oci import available as oci_unavailable

ROOT = Path(__file__).resolve().parents[1]
PROBES = ROOT / "runtime" / "reports" / "probes"
CTX = CallContext(request_id="req-schema", trace_id="trace-schema", caller="test")

HEAD = 'name = "m"\nversion = "1.0.0"\nkind = "wasm"\n[artifact]\npath = "m.wat"\n'


def manifest(method_body: str):
    return parse_manifest(HEAD + "[methods.run]\n" + method_body)


# -- declaring -----------------------------------------------------------------------------------


def test_an_inline_schema_is_kept_as_written():
    m = manifest('input = { type = "object", required = ["n"], properties = { n = { type = "integer" } } }\n')
    assert m.methods["run"].input == {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    assert m.methods["run"].output is None


def test_a_schema_as_toml_tables_works_too():
    m = parse_manifest(HEAD + '[methods.run]\n[methods.run.output]\ntype = "array"\n[methods.run.output.items]\ntype = "string"\n')
    assert m.methods["run"].output == {"type": "array", "items": {"type": "string"}}


@pytest.mark.parametrize(
    "body, says",
    [
        ('input = { type = "intger" }\n', "not a valid JSON Schema"),
        ('input = { properties = { n = { minimum = "x" } } }\n', "not a valid JSON Schema"),
        ('input = { pattern = "(" }\n', "not a valid JSON Schema"),
        ('input = { "$ref" = "http://169.254.169.254/schema.json" }\n', "points outside the schema"),
        ('input = { properties = { a = { "$ref" = "other.json" } } }\n', "points outside the schema"),
        ('input = { "$ref" = "#/$defs/missing" }\n', "not a valid JSON Schema"),
        ('output = "/etc/passwd"\n', "not a .json file inside"),
        ('output = "../other/s.json"\n', "not a .json file inside"),
        ("input = 3\n", "Expected"),
    ],
)
def test_a_broken_schema_is_a_manifest_error_naming_the_key(body, says):
    with pytest.raises(ManifestError) as caught:
        manifest(body)
    assert says in caught.value.message
    assert caught.value.details["key"].startswith("methods.run") or "input" in caught.value.message


def write_module(tmp_path: Path, method_body: str, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "m"
    root.mkdir()
    (root / "m.wat").write_text('(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))')
    (root / "module.toml").write_text(HEAD + "[methods.run]\n" + method_body)
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_a_schema_file_is_read_in_and_registered_as_the_schema_itself(tmp_path, state):
    root = write_module(tmp_path, 'input = "schemas/in.json"\n', {"schemas/in.json": '{"type": "object", "required": ["n"]}'})
    reg = register_module(state, root)
    (root / "schemas" / "in.json").write_text('{"type": "string"}')  # a later edit does not change the registered contract
    assert state.registry.get("m").manifest.methods["run"].input == {"type": "object", "required": ["n"]}
    assert reg.manifest.methods["run"].input == {"type": "object", "required": ["n"]}


def test_each_registration_is_checked_against_its_own_schemas_whichever_was_checked_last(tmp_path, state):
    # Contracts remembers the last registration it was asked about (by identity): a registration of
    # the same module with other schemas, and the first one again, must each get their own.
    root = write_module(tmp_path, "")
    plain = register_module(state, root)
    (root / "module.toml").write_text(HEAD.replace('"1.0.0"', '"1.1.0"') + '[methods.run]\ninput = { type = "string" }\n')
    strict = register_module(state, root)
    contracts = Contracts()
    for _ in range(2):
        contracts.check_input(plain, "run", 7)
        with pytest.raises(BadPayload, match="expected string"):
            contracts.check_input(strict, "run", 7)
    contracts.check_input(plain, "run", 7)


@pytest.mark.parametrize(
    "files, says",
    [
        ({}, "does not exist"),
        ({"schemas/in.json": "{not json"}, "not JSON"),
        ({"schemas/in.json": '{"type": 7}'}, "not a valid JSON Schema"),
    ],
)
def test_a_bad_schema_file_is_a_manifest_error(tmp_path, files, says):
    root = write_module(tmp_path, 'input = "schemas/in.json"\n', files)
    with pytest.raises(ManifestError) as caught:
        load_manifest(root)
    assert says in caught.value.message and caught.value.details["key"] == "methods.run.input"


def test_a_schema_file_linking_out_of_the_module_is_refused(tmp_path):
    secret = tmp_path / "outside.json"
    secret.write_text('{"type": "object"}')
    root = write_module(tmp_path, 'input = "schemas/in.json"\n')
    (root / "schemas").mkdir()
    (root / "schemas" / "in.json").symlink_to(secret)
    with pytest.raises(ManifestError, match="does not exist in"):
        load_manifest(root)


# -- what a mismatch says ------------------------------------------------------------------------------


def test_every_mismatch_is_listed_by_path_expected_and_actual():
    schema = PayloadSchema(
        {
            "type": "object",
            "required": ["width", "height"],
            "additionalProperties": False,
            "properties": {
                "width": {"type": "integer", "minimum": 1},
                "height": {"type": "integer"},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
                "owner": {"$ref": "#/$defs/user"},
            },
            "$defs": {"user": {"type": "object", "title": "User", "properties": {"name": {"type": "string"}}}},
        }
    )
    issues = [i.to_dict() for i in schema.issues({"width": 0, "tags": ["a", "c"], "owner": {"name": 3}, "zz": True})]
    assert sorted(issues, key=lambda i: i["path"]) == [
        {"path": "$.height", "expected": "integer (required)", "actual": "(missing)"},
        {"path": "$.owner.name", "expected": "string", "actual": 3},
        {"path": "$.tags[1]", "expected": "one of 'a', 'b'", "actual": "c"},
        {"path": "$.width", "expected": "integer, >= 1", "actual": 0},
        {"path": "$.zz", "expected": "no such field (known: height, owner, tags, width)", "actual": True},
    ]
    assert schema.issues({"width": 2, "height": 2.0}) == []  # 2.0 is an integer in JSON Schema, as in GType


# -- every backend, both directions ----------------------------------------------------------------

ECHO_SCHEMAS = (
    "[methods.echo]\n"
    'input = { type = "object", required = ["n"], additionalProperties = false, properties = { n = { type = "integer" }, note = { type = "string" } } }\n'
    'output = { type = "object", properties = { n = { type = "integer", maximum = 10 } } }\n'
)


def _install(tmp_path: Path, kind: str) -> Path:
    target = tmp_path / "modules" / f"probe-{kind}"
    shutil.copytree(PROBES / kind, target)
    manifest = target / "module.toml"
    text = manifest.read_text()
    assert "[methods.echo]\n" in text
    manifest.write_text(text.replace("[methods.echo]\n", ECHO_SCHEMAS, 1))
    return target


def _skip_unless_available(kind: str) -> None:
    if kind == "native" and shutil.which("bwrap") is None:
        pytest.skip("native modules need bubblewrap")
    if kind == "oci" and oci_unavailable() is not None:
        pytest.skip(f"container modules need a Docker engine: {oci_unavailable()}")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["wasm", "native", "oci"])
async def test_a_module_with_schemas_refuses_a_wrong_payload_both_ways(tmp_path, state, kind):
    _skip_unless_available(kind)
    register_module(state, _install(tmp_path, kind))
    manager = ModuleManager(state, environ={"PROBE_ALLOWED": "yes"})
    try:
        # in: refused before the sandbox even starts, every mismatch listed
        with pytest.raises(BadPayload) as caught:
            await manager.call("probe", "echo", {"n": "7", "extra": 1}, ctx=CTX)
        err = caught.value
        assert err.code == "bad_payload" and err.details["direction"] == "input"
        assert sorted(err.details["errors"], key=lambda i: i["path"]) == [
            {"path": "$.extra", "expected": "no such field (known: n, note)", "actual": 1},
            {"path": "$.n", "expected": "integer", "actual": "7"},
        ]
        assert manager.health()["probe"] == "idle"

        # fits both ways
        assert await manager.call("probe", "echo", {"n": 3, "note": "ok"}, ctx=CTX) == {"n": 3, "note": "ok"}

        # out: the module echoes n = 11, which its own output schema does not allow
        with pytest.raises(BadPayload) as caught:
            await manager.call("probe", "echo", {"n": 11}, ctx=CTX)
        err = caught.value
        assert err.details["direction"] == "output"
        assert err.details["errors"] == [{"path": "$.n", "expected": "integer, <= 10", "actual": 11}]
        assert "output schema" in err.message and err.fix

        # methods without schemas keep working as before
        assert (await manager.call("probe", "env", "PROBE_ALLOWED", ctx=CTX))["status"] == 0
    finally:
        await manager.close()
