"""A gati project on disk: `gati.toml`, `handlers/`, `modules/`, `hooks.py`; and `gati init`.

    [server]
    host = "127.0.0.1"
    port = 8080
    handler_timeout_ms = 30000        # the whole lifecycle: before hooks, handler, after hooks
    hook_timeout_ms = 5000            # each hook, unless hook(fn, timeout_ms=...) says otherwise
    health_path = "/healthz"          # liveness; "" turns an endpoint off
    ready_path = "/readyz"            # readiness: started, not stopping, modules and pub/sub healthy
    metrics_path = "/metrics"         # Prometheus
    openapi_path = "/openapi.json"    # the OpenAPI 3.1 document of the routes
    versions_path = "/_gati/versions" # every route's versions, their states and served times (JSON)

    [ingress]
    max_body_bytes = 1048576          # 413 past this; a handler file may set MAX_BODY_BYTES
    rate_limit = ""                   # default per route and client, e.g. "100/s"; files set RATE_LIMIT
    trust_request_id = false          # true: keep a caller's X-Request-Id (behind a proxy that sets it)
    api_key_header = "X-API-Key"

    [auth]                            # see runtime/auth.py
    [secrets]                         # providers = ["env", "file"], file = "secrets.toml", ttl_s = 30
    [pubsub]                          # backend = "memory" | "nats", url, queue_size, publish_timeout_ms
    [audit]                           # executions = true (executions.jsonl), snapshots = false,
                                      # key_secret = "audit_key" (the audit log's HMAC key; default .gati/audit.key)
                                      # snapshot_body_bytes, snapshot_keep, snapshot_max_bytes, redact_headers:
                                      # replayable snapshots in .gati/snapshots.db (runtime/http/recorder.py)
    [playground]                      # enabled = false, path = "/_gati/playground", token_secret = "playground_token"

    [modules]
    paths = ["../shared/thumbs"]      # module folders outside modules/, relative to the project

    [egress]
    hosts = { "api.internal" = "10.0.0.7" }   # static name -> address overrides for module egress

    [codegen]                         # where `gati codegen` writes: openapi = "openapi.json", typescript = "sdk/ts", python = "typings"

    [cluster]                         # several instances sharing state: docs/scaling.md
                                      # (GATI_CLUSTER_NATS, _NAMESPACE, _INSTANCE override these)
    nats = "nats://nats:4222"         # kv, registry, rate limits and audit mirror on JetStream; "" = local files
    namespace = "default"             # instances with the same nats and namespace share everything
    instance = ""                     # this instance in the audit stream (default: host name + state dir)
    timeout_ms = 2000                 # each shared-state operation; past it: 503

    [versions]                        # handler versions: docs/versions.md
    drain_after = "30d"               # retire a version no client asked for in this long; "" never
    check_interval_s = 1.0            # served times flushed, store changes read, drains decided

    [config]                          # anything; handlers read it as gctx.config, read-only
    greeting = "hello"
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from runtime.core.errors import GatiError
from runtime.core.secrets import SecretsSettings
from runtime.http.ratelimit import Rate

CONFIG_FILE = "gati.toml"
TEMPLATES = Path(__file__).parent / "templates"
# `gati init --template NAME`: each a folder under templates/, with handlers and tests (runtime.testing)
PROJECT_TEMPLATES = {
    "hello": "handlers calling a WebAssembly module (WAT, no build step)",
    "minimal": "one handler and its test, no modules",
    "api": "a JSON API: typed request and response validation, a hook for every route, tests",
}


class ProjectError(GatiError):
    """A project that cannot be served: names the file, the key, the problem and the fix."""

    code = "project_invalid"

    def __init__(self, file: Path | str, key: str, problem: str, fix: str):
        super().__init__(f"{file}: {key}: {problem}", fix=fix, file=str(file), key=key, problem=problem)


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class Server(_Strict):
    host: str = "127.0.0.1"
    port: int = 8080
    handler_timeout_ms: int = 30_000
    hook_timeout_ms: int = 5_000
    health_path: str = "/healthz"
    ready_path: str = "/readyz"
    metrics_path: str = "/metrics"
    openapi_path: str = "/openapi.json"  # the OpenAPI document of the routes (runtime.http.openapi)
    versions_path: str = "/_gati/versions"  # the versions of every route (runtime.http.versions.service)


class Ingress(_Strict):
    max_body_bytes: int = 1024 * 1024
    rate_limit: str = ""
    trust_request_id: bool = False
    api_key_header: str = "X-API-Key"


class ApiKey(_Strict):
    secret: str
    roles: list[str] = []


class Auth(_Strict):
    jwt_secret: str = ""
    jwt_algorithms: list[str] = msgspec.field(default_factory=lambda: ["HS256"])
    jwt_audience: str = ""
    jwt_issuer: str = ""
    jwt_leeway_s: float = 0
    roles_claim: str = "roles"
    api_keys: dict[str, ApiKey] = {}


class PubSub(_Strict):
    backend: str = "memory"
    url: str = "nats://127.0.0.1:4222"
    queue_size: int = 1000
    publish_timeout_ms: int = 1000
    subject_prefix: str = "gati."


class AuditSettings(_Strict):
    executions: bool = True
    snapshots: bool = False
    endpoint: str = ""  # e.g. "/_gati/audit": the `gati audit` report over HTTP; off when empty
    token_secret: str = "audit_token"  # the secret holding the endpoint's bearer token
    key_secret: str = ""  # a secret holding the audit log's HMAC key; empty: a 0600 key file in the state directory
    # Replayable snapshots (snapshots = true, or the playground on): how much of a body is kept, how many
    # snapshots and bytes the store keeps (the oldest go first), which headers besides Authorization,
    # Cookie, Set-Cookie and Proxy-Authorization are never stored.
    snapshot_body_bytes: int = 64 * 1024
    snapshot_keep: int = 1000
    snapshot_max_bytes: int = 64 * 1024 * 1024
    redact_headers: list[str] = []


class PlaygroundSettings(_Strict):
    """The playground (runtime/http/playground): a web UI over the running app; `gati dev` always serves it."""

    enabled: bool = False
    path: str = "/_gati/playground"
    token_secret: str = "playground_token"  # needed when the server listens beyond loopback


class Modules(_Strict):
    paths: list[str] = []


class Egress(_Strict):
    hosts: dict[str, str] = {}


class Codegen(_Strict):
    """Where `gati codegen` (with no sub-command) writes, relative to the project; "" skips an output."""

    openapi: str = ""  # e.g. "openapi.json"
    typescript: str = ""  # e.g. "sdk/ts"
    python: str = ""  # e.g. "typings" (gati_modules.pyi)
    version: str = ""  # e.g. "2": openapi and typescript describe the API as a client pinned to it sees it


class Cluster(_Strict):
    nats: str = ""
    namespace: str = "default"
    instance: str = ""
    timeout_ms: int = 2000


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_s(text: str) -> float | None:
    """ "30d", "12h", "90m", "45s", "2w" in seconds; None when it is none of these."""
    m = _DURATION.fullmatch(text.strip())
    return float(m.group(1)) * _UNIT_S[m.group(2)] if m else None


class Versions(_Strict):
    """Handler versions (docs/versions.md): a version no client asked for in drain_after is retired."""

    drain_after: str = ""  # e.g. "30d"; "" never drains
    check_interval_s: float = 1.0  # how often the server flushes served times, reads the store and drains

    @property
    def drain_after_s(self) -> float | None:
        return duration_s(self.drain_after) if self.drain_after else None


class Settings(_Strict):
    server: Server = Server()
    ingress: Ingress = Ingress()
    auth: Auth = Auth()
    secrets: SecretsSettings = SecretsSettings()
    pubsub: PubSub = PubSub()
    audit: AuditSettings = AuditSettings()
    playground: PlaygroundSettings = PlaygroundSettings()
    modules: Modules = Modules()
    egress: Egress = Egress()
    codegen: Codegen = Codegen()
    cluster: Cluster = Cluster()
    versions: Versions = Versions()
    config: dict[str, Any] = {}


@dataclass(frozen=True)
class Project:
    dir: Path
    settings: Settings

    @property
    def handlers_dir(self) -> Path:
        return self.dir / "handlers"

    @property
    def hooks_file(self) -> Path:
        return self.dir / "hooks.py"

    def module_dirs(self) -> list[Path]:
        """Every module folder to register on start: modules/*/ with a module.toml, then [modules] paths."""
        found = sorted(p.parent for p in (self.dir / "modules").glob("*/module.toml"))
        for i, extra in enumerate(self.settings.modules.paths):
            path = (self.dir / extra).resolve()
            if not (path / "module.toml").is_file():
                raise ProjectError(
                    self.dir / CONFIG_FILE, f"modules.paths[{i}]", f"{path} holds no module.toml", "point at a module folder"
                )
            found.append(path)
        return found


def is_project(project_dir: str | Path) -> bool:
    """What serve, and every CLI verb that keeps state in a project, calls a project: a folder holding gati.toml."""
    return (Path(project_dir) / CONFIG_FILE).is_file()


def load_project(project_dir: str | Path) -> Project:
    root = Path(project_dir).resolve()
    file = root / CONFIG_FILE
    if not is_project(root):
        raise ProjectError(file, "(file)", "not a gati project (no gati.toml)", f"create one with: gati init {project_dir}")
    return Project(root, parse_settings(file.read_bytes(), file))


def load_settings(project_dir: str | Path) -> Settings:
    """gati.toml's settings when there is one, else the defaults (CLI verbs work outside projects)."""
    file = Path(project_dir) / CONFIG_FILE
    return parse_settings(file.read_bytes(), file) if file.is_file() else Settings()


def parse_settings(text: bytes, file: Path) -> Settings:
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProjectError(file, "(file)", f"not valid TOML: {exc}", "fix the TOML syntax at the position shown") from None
    try:
        settings = msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        problem, _, where = str(exc).partition(" - at `")
        key = where.rstrip("`").removeprefix("$").lstrip(".") or "(top level)"
        unknown = re.match(r"Object contains unknown field `(.+)`", problem)
        if unknown:
            key = unknown.group(1) if key == "(top level)" else f"{key}.{unknown.group(1)}"
            fix = "remove it; known sections are [server], [ingress], [auth], [secrets], [pubsub], [audit], [playground], [modules], [egress], [codegen], [cluster], [versions] and [config] (free-form)"
            raise ProjectError(file, key, "unknown key", fix) from None
        raise ProjectError(file, key, problem, "give it a value of the expected type") from None
    settings = _cluster_from_environment(settings)
    if not 0 < settings.server.port < 65536:
        raise ProjectError(file, "server.port", f"{settings.server.port} is not a TCP port", "use 1-65535")
    for key, value, example in (
        ("server.handler_timeout_ms", settings.server.handler_timeout_ms, "handler_timeout_ms = 30000"),
        ("server.hook_timeout_ms", settings.server.hook_timeout_ms, "hook_timeout_ms = 5000"),
        ("ingress.max_body_bytes", settings.ingress.max_body_bytes, "max_body_bytes = 1048576"),
        ("pubsub.queue_size", settings.pubsub.queue_size, "queue_size = 1000"),
        ("pubsub.publish_timeout_ms", settings.pubsub.publish_timeout_ms, "publish_timeout_ms = 1000"),
        ("cluster.timeout_ms", settings.cluster.timeout_ms, "timeout_ms = 2000"),
        ("audit.snapshot_keep", settings.audit.snapshot_keep, "snapshot_keep = 1000"),
        ("audit.snapshot_max_bytes", settings.audit.snapshot_max_bytes, "snapshot_max_bytes = 67108864"),
    ):
        if value <= 0:
            raise ProjectError(file, key, "must be positive", f"e.g. {example}")
    for key in ("health_path", "ready_path", "metrics_path", "openapi_path", "versions_path"):
        path = getattr(settings.server, key)
        if path and not re.fullmatch(r"/[A-Za-z0-9._~/-]*", path):
            raise ProjectError(file, f"server.{key}", f"{path!r} is not a URL path", 'e.g. "/metrics", or "" to turn it off')
    if settings.audit.snapshot_body_bytes < 0:
        raise ProjectError(file, "audit.snapshot_body_bytes", "must not be negative", "e.g. snapshot_body_bytes = 65536 (0: no bodies)")
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]", settings.playground.path):
        raise ProjectError(file, "playground.path", f"{settings.playground.path!r} is not a URL path", 'e.g. path = "/_gati/playground"')
    if settings.versions.drain_after and not settings.versions.drain_after_s:
        raise ProjectError(file, "versions.drain_after", f"{settings.versions.drain_after!r} is not a duration", 'e.g. drain_after = "30d" (s, m, h, d or w), or "" to never drain')
    if settings.versions.check_interval_s <= 0:
        raise ProjectError(file, "versions.check_interval_s", "must be positive", "e.g. check_interval_s = 1.0")
    if settings.pubsub.backend not in ("memory", "nats"):
        raise ProjectError(file, "pubsub.backend", f"unknown backend {settings.pubsub.backend!r}", 'use "memory" or "nats"')
    unknown = set(settings.secrets.providers) - {"env", "file"}
    if unknown:
        raise ProjectError(file, "secrets.providers", f"unknown provider(s) {sorted(unknown)}", 'use "env" and/or "file"')
    cluster = settings.cluster
    if cluster.nats and not re.fullmatch(r"(nats|tls)://\S+", cluster.nats):
        raise ProjectError(file, "cluster.nats", f"{cluster.nats!r} is not a NATS URL", 'e.g. nats = "nats://nats.internal:4222"')
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", cluster.namespace):
        raise ProjectError(file, "cluster.namespace", f"{cluster.namespace!r} is not a namespace", "use 1-32 letters, digits, _ and -")
    if cluster.instance and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cluster.instance):
        raise ProjectError(file, "cluster.instance", f"{cluster.instance!r} is not an instance name", 'use letters, digits, _ and -, or "" for the default')
    if settings.ingress.rate_limit:
        try:
            Rate.parse(settings.ingress.rate_limit)
        except ValueError as exc:
            raise ProjectError(file, "ingress.rate_limit", str(exc), 'e.g. rate_limit = "100/s"') from None
    return settings


def _cluster_from_environment(settings: Settings) -> Settings:
    """GATI_CLUSTER_NATS / _NAMESPACE / _INSTANCE over [cluster]: one image, many deployments (docs/kubernetes.md)."""
    given = {key: os.environ[f"GATI_CLUSTER_{key.upper()}"] for key in ("nats", "namespace", "instance") if os.environ.get(f"GATI_CLUSTER_{key.upper()}")}
    if not given:
        return settings
    return msgspec.structs.replace(settings, cluster=msgspec.structs.replace(settings.cluster, **given))


def scaffold(target: str | Path, template: str = "hello") -> Path:
    """Copy a project template into target (new or empty); returns the project path."""
    if template not in PROJECT_TEMPLATES:
        raise GatiError(f"there is no project template {template!r}", fix=f"use --template with one of: {', '.join(PROJECT_TEMPLATES)}")
    root = Path(target).resolve()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise GatiError(f"{root} exists and is not empty", fix="choose a new directory name")
    shutil.copytree(TEMPLATES / template, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "modules").mkdir(exist_ok=True)  # where `gati new module` puts modules, in every template
    (root / ".gitignore").write_text(".gati/\n__pycache__/\nbuild/\nnode_modules/\n")
    return root
