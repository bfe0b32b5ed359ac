"""The OpenAPI 3.1 document of a project's routes: valid, complete, deterministic, served by the app."""

import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from runtime.http.app import build_app
from runtime.http.openapi import openapi_document, operation_id
from runtime.http.project import ProjectError, load_project
from runtime.http.routing import load_routes

ROOT = Path(__file__).resolve().parents[1]

ORDERS = '''
"""Create an order."""
from typing import Annotated, NotRequired, TypedDict
from annotated_types import Ge, MinLen

class NewOrder(TypedDict):
    sku: Annotated[str, MinLen(1)]
    qty: Annotated[int, Ge(1)]
    note: NotRequired[str | None]

class Order(TypedDict):
    id: int
    sku: str

METHODS = ["POST", "GET"]
REQUEST = NewOrder
RESPONSE = Order
AUTH = {"roles": ["orders:write"]}
RATE_LIMIT = "10/s"
MAX_BODY_BYTES = 4096
TIMEOUT_MS = 1500
VERSION = "2"

async def handler(req, res, gctx, lctx):
    return {"id": 1, "sku": req.data["sku"]}
'''

FILES = '''
async def handler(req, res, gctx, lctx):
    return {"path": req.params["path"]}
'''


def document(root: Path) -> dict:
    project = load_project(root)
    return openapi_document(project, load_routes(project.handlers_dir))


def test_the_sample_apps_document_is_valid_openapi_31():
    doc = document(ROOT / "examples" / "app")
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) >= {"/", "/greet/{name}", "/thumbs", "/thumbs/resize", "/thumbs/formats", "/visits"}
    post = doc["paths"]["/thumbs"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ThumbRequest"}
    assert doc["components"]["schemas"]["ThumbRequest"]["properties"]["width"] == {"type": "integer", "minimum": 1, "maximum": 1_000_000_000}
    assert post["x-gati"]["modules"] == ["thumbs.resize"]
    greet = doc["paths"]["/greet/{name}"]["get"]
    assert greet["operationId"] == "getGreetByName"
    assert greet["parameters"] == [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]


def test_the_document_is_the_same_bytes_every_time():
    a = json.dumps(document(ROOT / "examples" / "app"))
    b = json.dumps(document(ROOT / "examples" / "app"))
    assert a == b


def test_bodies_auth_limits_and_errors_are_described(make_project):
    root = make_project({"orders/index.py": ORDERS, "files/[...path].py": FILES})
    doc = document(root)
    validate(doc)
    post = doc["paths"]["/orders"]["post"]
    assert post["security"] == [{"bearerAuth": ["orders:write"]}, {"apiKey": ["orders:write"]}]
    assert {"400", "401", "403", "413", "429", "504", "default", "2XX"} == set(post["responses"])
    assert post["responses"]["429"]["headers"]["Retry-After"]
    assert "4096" in post["responses"]["413"]["description"] and "1500" in post["responses"]["504"]["description"]
    assert post["x-gati"] == {"handler": "orders/index.py", "timeout_ms": 1500, "max_body_bytes": 4096, "rate_limit": "10/s", "version": "2"}
    assert doc["components"]["schemas"]["NewOrder"]["required"] == ["sku", "qty"]
    assert doc["components"]["schemas"]["Order"]["additionalProperties"] is False
    get = doc["paths"]["/orders"]["get"]
    assert "requestBody" not in get and "400" not in get["responses"]  # GET carries no body
    assert doc["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    files = doc["paths"]["/files/{path}"]["get"]
    assert files["parameters"][0]["description"].startswith("the rest of the path")
    assert "security" not in files and "429" not in files["responses"]


def test_two_types_of_one_name_get_two_names(make_project):
    a = 'from typing import TypedDict\nclass Item(TypedDict):\n    a: int\nMETHODS = ["POST"]\nREQUEST = Item\nasync def handler(req, res, gctx, lctx):\n    return {}\n'
    b = 'from typing import TypedDict\nclass Item(TypedDict):\n    b: str\nMETHODS = ["POST"]\nREQUEST = Item\nasync def handler(req, res, gctx, lctx):\n    return {}\n'
    doc = document(make_project({"a.py": a, "b.py": b}))
    validate(doc)
    assert set(doc["components"]["schemas"]) >= {"Item", "Item2"}
    assert doc["components"]["schemas"]["Item"] != doc["components"]["schemas"]["Item2"]


@pytest.mark.parametrize("method, path, expected", [("GET", "/", "getRoot"), ("POST", "/users/{id}/tags", "postUsersByIdTags"), ("DELETE", "/my-files/{file_name}", "deleteMyFilesByFileName")])
def test_operation_ids_read_like_the_route(method, path, expected):
    assert operation_id(method, path) == expected


async def test_serve_answers_the_document_and_a_setting_turns_it_off(make_project, serve):
    on = make_project({"orders/index.py": ORDERS}, name="on")
    client = await serve(on)
    r = await client.get("/openapi.json")
    assert r.status == 200 and r.content_type == "application/json"
    assert await r.json() == document(on)

    off = make_project({"orders/index.py": ORDERS}, toml='[server]\nopenapi_path = ""\n', name="off")
    client = await serve(off)
    assert (await client.get("/openapi.json")).status == 404


def test_a_handler_on_the_documents_path_is_a_clear_start_up_error(make_project):
    root = make_project({"openapi.json.py": FILES.replace('req.params["path"]', '"x"')})
    with pytest.raises(ProjectError, match="openapi_path"):
        build_app(root)
