"""Contract checks between handlers and the modules they call (runtime/http/contracts.py, `gati contracts check`)."""

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli.main import app
from runtime.core.manifest import load_manifest
from runtime.http.contracts import check_contracts
from runtime.http.routing import load_routes

ROOT = Path(__file__).resolve().parents[1]

ORDERS_MODULE = """
name = "orders"
version = "1.2.0"
kind = "wasm"
[artifact]
path = "echo.wat"
[methods.create]
input = { type = "object", required = ["sku", "qty"], additionalProperties = false, properties = { sku = { type = "string", minLength = 1 }, qty = { type = "integer", minimum = 1 } } }
output = { type = "object", required = ["id", "sku"], additionalProperties = false, properties = { id = { type = "integer" }, sku = { type = "string" }, note = { type = "string" } } }
[methods.tag]
input = { type = "object", properties = { tag = { type = "string" } } }
[methods.ping]
"""

ECHO = '(module (import "gati" "input_len" (func $l (result i32))) (import "gati" "input_read" (func $r (param i32))) (import "gati" "output" (func $o (param i32 i32))) (memory (export "memory") 1) (func (export "create") (result i32) (call $r (i32.const 0)) (call $o (i32.const 0) (call $l)) (i32.const 0)) (func (export "tag") (result i32) (call $r (i32.const 0)) (call $o (i32.const 0) (call $l)) (i32.const 0)) (func (export "ping") (result i32) (i32.const 0)))'

HANDLERS = {
    "declared.py": """
        from typing import TypedDict
        class NewOrder(TypedDict):
            sku: str
            qty: int
        METHODS = ["POST"]
        REQUEST = NewOrder
        async def handler(req, res, gctx, lctx):
            return await gctx.modules.orders.create(req.data)
    """,
    "bounded.py": """
        from typing import Annotated, NotRequired, TypedDict
        from annotated_types import Ge, MinLen
        class NewOrder(TypedDict):
            sku: Annotated[str, MinLen(1)]
            qty: Annotated[int, Ge(1)]
        class Order(TypedDict):
            id: int
            sku: str
            note: NotRequired[str | None]
        METHODS = ["POST"]
        REQUEST = NewOrder
        RESPONSE = Order
        async def handler(req, res, gctx, lctx):
            return await gctx.modules["orders"].call("create", req.data)
    """,
    "inferred.py": """
        async def handler(req, res, gctx, lctx):
            qty = int(req.query["qty"])
            await gctx.modules.orders.create({"sku": req.params.get("sku", "x"), "qty": qty})
            await gctx.modules.orders.create({"sku": "a", "qty": "2"})
            await gctx.modules.orders.create({"sku": "a"})
            await gctx.modules.orders.create({"sku": "a", "qty": 1, "colour": "red"})
            await gctx.modules.orders.tag({"tag": "t", "colour": "red"})
            return await gctx.modules.orders.create(some_payload())
    """,
    "reads.py": """
        from typing import TypedDict
        class Narrow(TypedDict):
            id: int
        async def handler(req, res, gctx, lctx):
            got: Narrow = await gctx.modules.orders.create({"sku": "a", "qty": 1})
            return got
    """,
    "names.py": """
        async def handler(req, res, gctx, lctx):
            await gctx.modules.ordrs.create({})
            await gctx.modules.orders.cancel({})
            await gctx.modules["orders@2"].ping()
            await gctx.modules["orders@1.2"].ping()
            return await gctx.modules["orders@1"].ping()
    """,
}


@pytest.fixture
def project(make_project):
    root = make_project(HANDLERS)
    module = root / "modules" / "orders"
    module.mkdir(parents=True)
    (module / "module.toml").write_text(ORDERS_MODULE)
    (module / "echo.wat").write_text(ECHO)
    return root


def findings(root: Path) -> list:
    manifest = load_manifest(root / "modules" / "orders").manifest
    return check_contracts(load_routes(root / "handlers"), {"orders": manifest}, {"orders": ["1.0.0", "1.2.0"]})


def at(found, handler, severity=None):
    return [(f.line, f.direction, f.path, f.problem) for f in found if f.handler == handler and (severity is None or f.severity == severity)]


def test_a_declared_type_is_held_to_the_schema_whole(project):
    found = findings(project)
    assert at(found, "declared.py") == [
        (9, "input", "$.qty", "the module refuses some values the handler may send: minimum 1"),
        (9, "input", "$.sku", "the module refuses some values the handler may send: minLength 1"),
    ]
    assert {f.severity for f in found if f.handler == "declared.py"} == {"error"}
    # the same call with the bounds in the type, and an answer read as a type that admits every answer: nothing to say
    assert at(found, "bounded.py") == []


def test_an_inferred_payload_is_held_to_its_shape_and_warned_about_ranges(project):
    found = findings(project)
    assert at(found, "inferred.py", "warning") == [
        (4, "input", "$.qty", "the module adds minimum 1: the handler's values are not known from its types"),
        (4, "input", "$.sku", "the module adds minLength 1: the handler's values are not known from its types"),
    ]
    errors = at(found, "inferred.py", "error")
    assert (5, "input", "$.qty", "the module refuses what the handler sends: string became integer") in errors
    assert (6, "input", "$.qty", "the module refuses what the handler sends: a field it requires is not sent") in errors
    assert (7, "input", "$.colour", "the module refuses what the handler sends: a field it does not know") in errors
    assert not [e for e in errors if e[0] == 8]  # tag's schema leaves the object open: an extra key is fine
    assert [f.problem for f in found if f.handler == "inferred.py" and f.line == 9] == ["unchecked: the payload's type cannot be derived from the source"]


def test_what_the_handler_reads_the_answer_as_must_admit_every_answer(project):
    assert at(findings(project), "reads.py", "error") == [
        (6, "output", "$.note", "the handler's type refuses some answers the module may give: a field it does not know"),
        (6, "output", "$.sku", "the handler's type refuses some answers the module may give: a field it does not know"),
    ]


def test_unknown_modules_methods_and_unregistered_pins_are_errors(project):
    found = at(findings(project), "names.py", "error")
    assert [(line, direction) for line, direction, _, _ in found] == [(3, "module"), (4, "method"), (5, "version")]
    assert "no module named 'ordrs'" in found[0][3] and "declared: create, ping, tag" in found[1][3]
    assert "pinned to 2, but the versions registered are 1.0.0, 1.2.0" in found[2][3]


def gati(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_the_command_fails_ci_on_incompatible_pairs_and_passes_the_sample_app(project):
    result = gati("contracts", "check", "--project", project)
    assert result.exit_code == 1
    assert "error   handlers/declared.py:9 orders.create input $.qty: the module refuses some values" in result.stdout
    data = json.loads(gati("contracts", "check", "--project", project, "--json").stdout)
    assert data["ok"] is False and {f["severity"] for f in data["findings"]} == {"error", "warning", "info"}

    sample = gati("contracts", "check", "--project", ROOT / "examples" / "app")
    assert sample.exit_code == 0, sample.output
    assert "0 incompatible" in sample.stdout
    assert gati("contracts", "check", "--project", ROOT / "examples" / "app", "--strict").exit_code == 1  # it has warnings to review


async def test_serve_warns_at_start_and_serves_anyway(project, serve, caplog):
    with caplog.at_level(logging.WARNING, logger="gati.http"):
        client = await serve(project)
        assert (await client.get("/healthz")).status == 200
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("contracts: ")]
    assert "contracts: handlers/declared.py:9 orders.create input $.qty: the module refuses some values the handler may send: minimum 1" in lines
    assert lines[-1].endswith("run `gati contracts check` for the list")


def orders_module(folder: Path, version: str, required: list[str]) -> None:
    """orders at `version`, whose create takes exactly sku and qty and requires `required`."""
    folder.mkdir(parents=True)
    toml = ORDERS_MODULE.replace('version = "1.2.0"', f'version = "{version}"').replace('required = ["sku", "qty"]', f"required = {json.dumps(required)}")
    (folder / "module.toml").write_text(toml)
    (folder / "echo.wat").write_text(ECHO)


def test_every_version_file_is_checked_against_the_module_version_its_pins_reach(make_project):
    root = make_project(
        {
            # version 1 pins orders 1.x, which takes a sku alone; against 2.0.0 the payload lacks qty
            "v.py": 'MODULES = {"orders": "^1"}\nasync def handler(req, res, gctx, lctx):\n    return await gctx.modules.orders.create({"sku": "a"})\n',
            # version 2, the default, pins 2.x (a list entry this time) and sends the qty 2.x requires
            "v@2.py": 'MODULES = ["orders@^2"]\nasync def handler(req, res, gctx, lctx):\n    return await gctx.modules.orders.create({"sku": "a", "qty": 1})\n',
            # version 3 breaks (a REQUEST where 2 had none): not the default, checked all the same
            "v@3.py": 'from typing import TypedDict\nclass B(TypedDict):\n    sku: str\nREQUEST = B\nMETHODS = ["GET"]\nasync def handler(req, res, gctx, lctx):\n    return await gctx.modules.orders.create({"sku": "a", "colour": "red"})\n',
            "w.py": 'MODULES = {"orders": "^3"}\nasync def handler(req, res, gctx, lctx):\n    return await gctx.modules.orders.create({"sku": "a", "qty": 1})\n',
        }
    )
    orders_module(root / "modules" / "orders-1", "1.0.0", ["sku"])
    orders_module(root / "modules" / "orders-2", "2.0.0", ["sku", "qty"])
    result = gati("contracts", "check", "--project", root, "--json")
    assert result.exit_code == 1, result.output
    errors = {(f["handler"], f["direction"], f["path"]) for f in json.loads(result.stdout)["findings"] if f["severity"] == "error"}
    # v.py is held to 1.0.0, its pin: against 2.0.0 (the module the router's default reaches) its payload lacks qty
    assert errors == {("v@3.py", "input", "$.colour"), ("v@3.py", "input", "$.qty"), ("w.py", "version", "")}
    problem = next(f["problem"] for f in json.loads(result.stdout)["findings"] if f["handler"] == "w.py")
    assert problem == "pinned to ^3 (MODULES), but the versions registered are 1.0.0, 2.0.0"
