"""The HTTP API as TypeScript: `types.ts` (every named schema), `client.ts` (one method per route), `index.ts`.

    import { Client, GatiApiError } from "./sdk/index.js";
    const api = new Client({ baseUrl: "http://127.0.0.1:8080", token: jwt });
    const { data, requestId } = await api.postThumbs({ width: 1920, height: 1080, max: 256 });

Made from the OpenAPI document (runtime.http.openapi), so the SDK and the document cannot
disagree. Each method takes the path parameters, then the body when the route has a REQUEST
type, then per-call options (request id, extra headers, query, an AbortSignal); it resolves to
`{status, data, requestId}` with `data` typed by RESPONSE, and throws GatiApiError holding the
runtime's error body for any other status. A route that declares VERSION is called with that
version in the `Gati-Version` header: the SDK asks for the handler version it was made from.
Made from a version's document (`gati codegen typescript --version 1`), every call to a versioned
route sends the label that version resolved to on that route, and the SDK has only the routes
that version reaches: a client pinned to version 1 keeps version 1's contract as defaults move.
The code needs only `fetch` (browsers, Node 18+, Deno, Bun) and compiles under `tsc --strict`.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.codegen.output import Output
from runtime.codegen.ts_types import IDENT, ts_declaration, ts_type

RUNTIME = '''export interface ClientOptions {
  /** Where the API is served, e.g. "http://127.0.0.1:8080". */
  baseUrl: string;
  /** A JWT, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** An API key, sent in the API key header. */
  apiKey?: string;
  /** Headers sent with every call. */
  headers?: Record<string, string>;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

export interface CallOptions {
  /** Sent as X-Request-Id (the server adopts it only when it trusts request ids; it always answers with the one it used). */
  requestId?: string;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean>;
  signal?: AbortSignal;
}

export interface ApiResult<T> {
  status: number;
  data: T;
  /** The id the server gave this request (X-Request-Id): quote it when reporting a problem. */
  requestId: string | null;
}

/** Any answer outside 2xx: the status, the runtime's error body ({error: {code, message, fix, request_id, ...}}), the request id. */
export class GatiApiError extends Error {
  readonly status: number;
  readonly body: T.ErrorBody | null;
  readonly code: string;
  readonly requestId: string | null;

  constructor(status: number, body: T.ErrorBody | null, requestId: string | null) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.name = "GatiApiError";
    this.status = status;
    this.body = body;
    this.code = body?.error?.code ?? "http_" + status;
    this.requestId = requestId;
  }
}

function pathPart(value: string, rest: boolean): string {
  return rest ? value.split("/").map(encodeURIComponent).join("/") : encodeURIComponent(value);
}

export class Client {
  private readonly options: ClientOptions;

  constructor(options: ClientOptions) {
    this.options = { ...options, baseUrl: options.baseUrl.replace(/\\/+$/, "") };
  }

  protected async request<R>(method: string, path: string, body: unknown, version: string | null, options: CallOptions | undefined): Promise<ApiResult<R>> {
    const headers: Record<string, string> = { Accept: "application/json", ...this.options.headers, ...options?.headers };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.options.token !== undefined) headers["Authorization"] = `Bearer ${this.options.token}`;
    if (this.options.apiKey !== undefined) headers[API_KEY_HEADER] = this.options.apiKey;
    if (options?.requestId !== undefined) headers["X-Request-Id"] = options.requestId;
    if (version !== null) headers[VERSION_HEADER] = version;
    let url = this.options.baseUrl + path;
    if (options?.query !== undefined) {
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(options.query)) query.append(key, String(value));
      url += "?" + query.toString();
    }
    const doFetch = this.options.fetch ?? fetch;
    const response = await doFetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: options?.signal });
    const requestId = response.headers.get("X-Request-Id");
    const text = await response.text();
    let parsed: unknown = null;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
    }
    if (response.status < 200 || response.status > 299) {
      throw new GatiApiError(response.status, isErrorBody(parsed) ? parsed : null, requestId);
    }
    return { status: response.status, data: parsed as R, requestId };
  }
'''

IS_ERROR = '''function isErrorBody(value: unknown): value is T.ErrorBody {
  if (typeof value !== "object" || value === null || !("error" in value)) return false;
  const error = (value as { error: unknown }).error;
  return typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "string";
}
'''


def typescript(doc: dict[str, Any], command: str) -> Output:
    out = Output(command, f"the OpenAPI document {doc['info']['title']} {doc['info']['version']}")
    out.add("types.ts", _types(doc), "//")
    out.add("client.ts", _client(doc), "//")
    out.add("index.ts", 'export * from "./types.js";\nexport * from "./client.js";\n', "//")
    return out


def _types(doc: dict[str, Any]) -> str:
    schemas = doc.get("components", {}).get("schemas", {})
    parts = [ts_declaration(name, schema) for name, schema in sorted(schemas.items())]
    return "\n\n".join(parts) + "\n"


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            found.append((path, method.upper(), op))
    return sorted(found, key=lambda o: o[2]["operationId"])


def _client(doc: dict[str, Any]) -> str:
    api_key = doc.get("components", {}).get("securitySchemes", {}).get("apiKey", {}).get("name", "X-API-Key")
    # the header the server reads a version from (the document's x-gati says so when the project has versions)
    version_header = doc.get("x-gati", {}).get("versions", {}).get("header", "Gati-Version")
    lines = [
        'import type * as T from "./types.js";',
        "",
        f"const API_KEY_HEADER = {json.dumps(api_key)};",
        f"const VERSION_HEADER = {json.dumps(version_header)};",
        "",
        RUNTIME.rstrip("\n"),
    ]
    for path, method, op in _operations(doc):
        lines.append("")
        lines.extend(_method(path, method, op))
    lines.append("}")
    lines.append("")
    lines.append(IS_ERROR)
    return "\n".join(lines)


def _method(path: str, method: str, op: dict[str, Any]) -> list[str]:
    params = [p for p in op.get("parameters", []) if p.get("in") == "path"]
    args = []
    if params:
        fields = "; ".join(f"{_prop(p['name'])}: string" for p in params)
        args.append(f"params: {{ {fields} }}")
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body is not None:
        args.append(f"body: {_qualified(body)}")
    args.append("options?: CallOptions")
    ok = op.get("responses", {}).get("2XX", {}).get("content", {}).get("application/json", {}).get("schema")
    result = _qualified(ok) if ok is not None else "unknown"
    url = path
    for p in params:
        rest = "rest of the path" in p.get("description", "")
        url = url.replace("{" + p["name"] + "}", "${pathPart(params[" + json.dumps(p["name"]) + "], " + ("true" if rest else "false") + ")}")
    version = op.get("x-gati", {}).get("version")
    doc = f"{op.get('summary') or f'{method} {path}'} (handlers/{op.get('x-gati', {}).get('handler', '')})"
    return [f"  /** {doc.replace('*/', '* /')} */",
        f"  async {op['operationId']}({', '.join(args)}): Promise<ApiResult<{result}>> {{",
        f"    return this.request<{result}>({json.dumps(method)}, `{_template(url)}`, {'body' if body is not None else 'undefined'}, {json.dumps(version) if version else 'null'}, options);",
        "  }",
    ]


def _qualified(schema: Any) -> str:
    """A type as client.ts names it: named types as `T.Name` (types.ts imported as T), so none can shadow a global."""
    return ts_type(schema, "  ", prefix="T.")


def _prop(name: str) -> str:
    return name if IDENT.match(name) else json.dumps(name)


def _template(url: str) -> str:
    # the path is literal text apart from the ${...} parts we put in: escape backticks and stray ${
    out, i = [], 0
    while i < len(url):
        if url.startswith("${pathPart(", i):
            end = url.index(")}", i) + 2
            out.append(url[i:end])
            i = end
            continue
        ch = url[i]
        out.append("\\" + ch if ch in "`\\$" else ch)
        i += 1
    return "".join(out)
