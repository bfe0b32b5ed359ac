"""OpenAPI 3.1: the project's HTTP API as a document clients and tools read.

    openapi_document(project, router) -> dict       `gati codegen openapi` writes it; `gati serve`
                                                     answers it at [server] openapi_path (/openapi.json)
    openapi_document(project, router, "1") -> dict  the API as a client pinned to version 1 (or a date
                                                     YYYY-MM-DD) sees it: `--version 1`, `?version=1`

Paths and path parameters come from the file routes, bodies from REQUEST / RESPONSE (their JSON
Schema, named types under components/schemas), security from AUTH (roles as the scopes of the
requirement, as OpenAPI 3.1 allows for any scheme), and every answer the runtime itself may
give: 400 when the body is validated, 401/403 with AUTH, 413 past the body limit, 429 under a
rate limit (with Retry-After), 504 past the handler's timeout, all in the one error body shape.
`x-gati` on each operation holds the handler file, its limits, its VERSION and the module
methods it calls. The document is deterministic: the same project gives the same bytes, and
`info.version` is a digest of the rest, so it changes exactly when the API does.

Versions (docs/versions.md): the default document describes each route's default version, and
its top-level `x-gati.versions` lists every versioned route's versions (since, served by,
deprecated, sunset, methods) and how to ask for one. A version's document (runtime.http.openapi_versions)
holds, per route, what a client sending `Gati-Version: <version>` is served: a route without that
version answers such a client 400, so its document leaves the route out; its versioned operations
declare the header as a required parameter, `x-gati.version` naming the label, and
`x-gati.versions.pinned` maps every versioned route to the label it resolved to (null: left out).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from runtime.core.errors import GatiError
from runtime.http.handler_manifest import HandlerManifest
from runtime.http.openapi_versions import (
    Resolution,
    entries,
    listing,
    resolution,
    retired,
    seen_by,
)
from runtime.http.project import Project, Settings
from runtime.http.routing import Router
from runtime.http.versions.graph import ALT_HEADER, HEADER
from runtime.http.versions.resolver import QUERY_PARAM

OPENAPI = "3.1.0"
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

ISSUE = {
    "type": "object",
    "required": ["path", "expected", "actual"],
    "properties": {"path": {"type": "string"}, "expected": {"type": "string"}, "actual": {}},
    "additionalProperties": False,
}
ERROR = {
    "type": "object",
    "description": "Every error the runtime or a handler answers with: a stable code, what went wrong, what to do.",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fix": {"type": "string"},
                "request_id": {"type": "string"},
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
            },
            "additionalProperties": True,
        }
    },
}
REQUEST_ID = {"description": "This request's id (also in the error body and the server's records)", "schema": {"type": "string"}}


def openapi_document(project: Project, router: Router, version: str | None = None) -> dict[str, Any]:
    """The default document, or with version (a label or a date) the one a client pinned to it sees;
    UnknownVersion (400) when no route resolves that version."""
    if not version:
        return document_of([HandlerManifest.of(r) for r in entries(router)], project.settings, project.dir.name, listing(router))
    return pinned_document(project, router, resolution(router, version))


def pinned_document(project: Project, router: Router, resolved: Resolution) -> dict[str, Any]:
    """The document of what each route serves a client whose version resolved so (openapi_versions.resolution)."""
    return document_of(seen_by(router, resolved), project.settings, project.dir.name, listing(router), dict(resolved))


def document_of(
    manifests: list[HandlerManifest],
    settings: Settings,
    title: str,
    versions: dict[str, Any] | None = None,
    pinned: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """The document of these handler manifests, under these settings (defaults of ingress and server).

    versions: the top-level `x-gati.versions` (openapi_versions.listing); pinned: a version's
    document's resolution, {route: label or None}: its versioned operations require the header."""
    components: dict[str, Any] = {"ErrorBody": ERROR, "Issue": ISSUE}
    paths: dict[str, Any] = {}
    taken: set[str] = set()
    secured = False
    for m in manifests:
        item = paths.setdefault(m.path, {})
        for method in m.methods:
            if method == "HEAD":
                continue
            op = _operation(m, method, settings, components, taken)
            if pinned is not None and pinned.get(m.path):
                op["parameters"] = [*op.get("parameters", ()), _version_header(pinned[m.path])]
            secured |= "security" in op
            item[method.lower()] = op
    doc: dict[str, Any] = {
        "openapi": OPENAPI,
        "info": {
            "title": title,
            "version": "",
            "description": "Generated by gati from the project's handler files (runtime/http/openapi.py); do not edit: run `gati codegen openapi` again.",
        },
        "paths": paths,
        "components": {"schemas": dict(sorted(components.items()))},
    }
    if versions is not None:
        doc["x-gati"] = {"versions": {**versions, "pinned": pinned} if pinned is not None else versions}
    if secured:
        doc["components"]["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "apiKey": {"type": "apiKey", "in": "header", "name": settings.ingress.api_key_header},
        }
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]
    doc["info"]["version"] = f"0.0.0+{digest}"
    return doc


class Documents:
    """One set of routes' documents as JSON bytes: the default made at once, a version's when first
    asked, then kept. Kept by resolution, not by the text asked (any date may be asked): at most
    one per label and per SINCE date of the routes."""

    def __init__(self, project: Project, router: Router):
        self.project, self.router, self.retired = project, router, retired(router)
        self.default = _encode(openapi_document(project, router))
        self._pinned: dict[Resolution, bytes] = {}

    def body(self, version: str | None) -> bytes:
        if not version:
            return self.default
        resolved = resolution(self.router, version)
        body = self._pinned.get(resolved)
        if body is None:
            body = self._pinned[resolved] = _encode(pinned_document(self.project, self.router, resolved))
        return body


def openapi_view(project: Project, routes: Callable[[], Router]):
    """The aiohttp view answering the documents: ?version=N or the Gati-Version header (as for a handler)
    asks for a version's. routes() is the router being served: the documents are made again once
    after a reload (`gati dev`) or once a version is retired or restored, never per request."""
    current = [Documents(project, routes())]

    async def view(request: web.Request) -> web.Response:
        router = routes()
        if current[0].router is not router or current[0].retired != retired(router):
            current[0] = Documents(project, router)
        asked = request.headers.get(HEADER) or request.headers.get(ALT_HEADER) or request.query.get(QUERY_PARAM)
        try:
            body = current[0].body(asked)
        except GatiError as err:
            return web.json_response({"error": err.to_dict()}, status=err.http_status)
        return web.Response(body=body, content_type="application/json")

    return view


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=False).encode()


def _version_header(label: str) -> dict[str, Any]:
    return {
        "name": HEADER,
        "in": "header",
        "required": True,
        "description": f"the version of this route this document describes (or {ALT_HEADER}, or ?{QUERY_PARAM}=)",
        "schema": {"type": "string", "const": label},
    }


def operation_id(method: str, path: str) -> str:
    """GET /users/{id} -> getUsersById; GET / -> getRoot."""
    words = []
    for segment in path.strip("/").split("/"):
        if not segment:
            continue
        param = re.fullmatch(r"\{(\w+)\}", segment)
        parts = re.split(r"[^A-Za-z0-9]+", param.group(1) if param else segment)
        words.append(("By" if param else "") + "".join(p[:1].upper() + p[1:] for p in parts if p))
    return method.lower() + ("".join(words) or "Root")


def _operation(m: HandlerManifest, method: str, settings: Any, components: dict, taken: set[str]) -> dict[str, Any]:
    op_id = base = operation_id(method, m.path)
    n = 2
    while op_id in taken:
        op_id, n = f"{base}{n}", n + 1
    taken.add(op_id)
    op: dict[str, Any] = {"operationId": op_id}
    if m.summary:
        op["summary"] = m.summary
    if m.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                **({"description": "the rest of the path, slashes included"} if p.catch_all else {}),
            }
            for p in m.params
        ]
    if m.request is not None and method in BODY_METHODS:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _named(m.request.json_schema(), components)}}}
    ok: dict[str, Any] = {"description": "the handler's answer", "headers": {"X-Request-Id": REQUEST_ID}}
    if m.response is not None:
        ok["content"] = {"application/json": {"schema": _named(m.response.json_schema(), components)}}
    responses: dict[str, Any] = {"2XX": ok}
    if m.request is not None and method in BODY_METHODS:
        responses["400"] = _error("the body does not match the request type (`errors` lists every mismatch)")
    if m.auth_roles is not None:
        responses["401"] = _error("no valid credentials")
        responses["403"] = _error("the caller lacks a role this route requires")
        op["security"] = [{"bearerAuth": list(m.auth_roles)}, {"apiKey": list(m.auth_roles)}]
    max_body = m.max_body_bytes or settings.ingress.max_body_bytes
    responses["413"] = _error(f"the body is larger than {max_body} bytes")
    rate = m.rate_limit or settings.ingress.rate_limit
    if rate:
        responses["429"] = {**_error(f"more than {rate} from this client"), "headers": {"Retry-After": {"schema": {"type": "integer"}}}}
    timeout_ms = m.timeout_ms or settings.server.handler_timeout_ms
    responses["504"] = _error(f"the handler did not finish within {timeout_ms} ms")
    responses["default"] = _error("any other error")
    op["responses"] = responses
    gati: dict[str, Any] = {"handler": m.file, "timeout_ms": timeout_ms, "max_body_bytes": max_body}
    if rate:
        gati["rate_limit"] = rate
    if m.version:
        gati["version"] = m.version
    if m.pinned:  # a version served through transformers: the handler above runs, its answer comes down
        gati["served_by"] = m.pinned["runs"]
        gati["transformers"] = list(m.pinned["transformers"])
    if m.modules:
        gati["modules"] = sorted({f"{c.module}.{c.method}" for c in m.modules})
    op["x-gati"] = gati
    return op


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-Id": REQUEST_ID},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def _named(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """The schema with every titled object moved to components/schemas and referenced by name."""
    schema = {k: v for k, v in schema.items() if k != "$schema"}
    return _hoist(schema, components)


def _hoist(node: Any, components: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_hoist(v, components) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: (v if k in ("enum", "const", "required") else _hoist(v, components)) for k, v in node.items()}
    if k_title := out.get("title"):
        if out.get("type") == "object" and isinstance(k_title, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k_title):
            name, n = k_title, 2
            while name in components and components[name] != out:
                name, n = f"{k_title}{n}", n + 1
            components[name] = out
            return {"$ref": f"#/components/schemas/{name}"}
    return out
