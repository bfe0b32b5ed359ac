"""`module.toml`: what a module is, what it may do, and the limits it runs under.

One schema for all three kinds of sandbox (wasm, oci, native): only `[artifact]`
differs. Anything the parser cannot accept becomes a ManifestError naming the file,
the key, the problem and the fix; nothing else escapes `parse_manifest`.

    name = "thumbs"
    version = "1.0.0"
    kind = "wasm"

    [artifact]
    path = "build/thumbs.wasm"

    [methods.resize]
    timeout_ms = 2000

    [capabilities]
    egress = ["https://api.example.com:443"]
    files = { "data" = "ro" }
    env = ["LANG"]
    secrets = ["API_KEY"]
    kv = ["cache"]
    modules = ["other"]

    [limits]
    memory_mb = 64
    timeout_ms = 5000
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from runtime.core.capabilities.egress import ALLOW_ALL, EgressRule, parse_rule
from runtime.core.errors import ManifestError

KINDS = ("wasm", "oci", "native")
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class Artifact(_Strict):
    path: str | None = None  # wasm: a .wasm or .wat file; native: the executable
    args: list[str] = []  # native: arguments after the executable
    image: str | None = None  # oci: an image reference already in the local engine
    build: str | None = None  # oci: a build context directory holding a Dockerfile


class Method(_Strict):
    timeout_ms: int | None = None
    description: str = ""


class Capabilities(_Strict):
    egress: list[str] = []
    files: dict[str, Literal["ro", "rw"]] = {}
    env: list[str] = []
    secrets: list[str] = []
    kv: list[str] = []
    modules: list[str] = []


class Limits(_Strict):
    memory_mb: int = 64
    timeout_ms: int = 10_000
    fuel: int | None = None  # wasm: instructions per call (deterministic CPU budget)
    cpu: float = 1.0  # oci/native: CPU cores
    processes: int = 32  # oci/native: pids limit
    concurrency: int = 4  # calls in flight; more wait, up to queue
    warm: int = 1  # oci/native: instances kept running
    queue: int = 64  # calls waiting beyond `concurrency`; past that a call is refused as busy


class Manifest(_Strict):
    name: str
    version: str
    kind: str
    artifact: Artifact
    methods: dict[str, Method]
    description: str = ""
    capabilities: Capabilities = Capabilities()
    limits: Limits = Limits()

    def method_timeout_ms(self, method: str) -> int:
        m = self.methods.get(method)
        return (m.timeout_ms if m and m.timeout_ms else None) or self.limits.timeout_ms

    @property
    def egress_rules(self) -> list[EgressRule]:
        return [parse_rule(r) for r in self.capabilities.egress if r != ALLOW_ALL]

    @property
    def allows_all_egress(self) -> bool:
        return ALLOW_ALL in self.capabilities.egress


class LoadedManifest(msgspec.Struct, frozen=True):
    """A parsed manifest together with where it came from and the artifact it points at."""

    manifest: Manifest
    file: str
    base_dir: str

    @property
    def name(self) -> str:
        return self.manifest.name

    def artifact_path(self) -> Path | None:
        a = self.manifest.artifact
        return (Path(self.base_dir) / a.path).resolve() if a.path else None

    def file_grants(self) -> list[tuple[str, Path, bool]]:
        """(guest path, host path, writable) for each declared file grant."""
        grants = []
        for declared, mode in self.manifest.capabilities.files.items():
            host = Path(declared) if Path(declared).is_absolute() else Path(self.base_dir) / declared
            guest = declared if declared.startswith("/") else "/" + declared.strip("/")
            grants.append((guest.rstrip("/") or "/", host.resolve(), mode == "rw"))
        return grants


def parse_manifest(text: str | bytes, file: str = "module.toml") -> Manifest:
    """Parse and validate manifest text; raises only ManifestError."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(file, "(file)", f"not valid TOML: {exc}", "fix the TOML syntax at the position shown") from None
    try:
        manifest = msgspec.convert(data, Manifest)
    except msgspec.ValidationError as exc:
        raise _from_validation_error(file, str(exc)) from None
    _check_semantics(manifest, file)
    return manifest


def load_manifest(path: str | Path) -> LoadedManifest:
    """Read a module.toml (or the directory holding one) and check its artifact exists."""
    path = Path(path)
    if path.is_dir():
        path = path / "module.toml"
    if not path.is_file():
        raise ManifestError(str(path), "(file)", "no such manifest", "point at a module directory holding module.toml")
    manifest = parse_manifest(path.read_bytes(), str(path))
    loaded = LoadedManifest(manifest, str(path.resolve()), str(path.parent.resolve()))
    _check_paths(loaded)
    return loaded


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _from_validation_error(file: str, message: str) -> ManifestError:
    problem, _, where = message.partition(" - at `")
    key = where.rstrip("`").removeprefix("$").lstrip(".").replace("[...]", ".<key>") or "(top level)"
    unknown = re.match(r"Object contains unknown field `(.+)`", problem)
    if unknown:
        key = f"{key}.{unknown.group(1)}" if key != "(top level)" else unknown.group(1)
        parent = _struct_for(where)
        allowed = ", ".join(parent.__struct_fields__) if parent else "see docs/manifest.md"
        return ManifestError(file, key, "unknown key", f"remove it or use one of: {allowed}")
    missing = re.match(r"Object missing required field `(.+)`", problem)
    if missing:
        key = f"{key}.{missing.group(1)}" if key != "(top level)" else missing.group(1)
        return ManifestError(file, key, "required key is missing", f"add {missing.group(1)} = ... (see docs/manifest.md)")
    return ManifestError(file, key, problem, "give it a value of the expected type (see docs/manifest.md)")


def _struct_for(where: str) -> type[msgspec.Struct] | None:
    section = where.rstrip("`").removeprefix("$").lstrip(".").split(".")[0]
    if not section:
        return Manifest
    return {"artifact": Artifact, "capabilities": Capabilities, "limits": Limits}.get(section) or (
        Method if section.startswith("methods") else None
    )


def _check_semantics(m: Manifest, file: str) -> None:
    def bad(key: str, problem: str, fix: str) -> ManifestError:
        return ManifestError(file, key, problem, fix)

    if not NAME_RE.match(m.name):
        raise bad("name", f"{m.name!r} is not a valid module name", "use lower-case letters, digits, - and _, starting with a letter")
    if not VERSION_RE.match(m.version):
        raise bad("version", f"{m.version!r} is not a semantic version", 'write it as "1.2.3"')
    if m.kind not in KINDS:
        raise bad("kind", f"{m.kind!r} is not a kind of module", f"use one of: {', '.join(KINDS)}")
    if m.kind in ("wasm", "native") and not m.artifact.path:
        raise bad("artifact.path", f"a {m.kind} module needs an artifact path", 'add path = "build/module.wasm" under [artifact]')
    if m.kind == "oci" and not (m.artifact.image or m.artifact.build):
        raise bad("artifact", "an oci module needs an image or a build context", 'add image = "name:tag" or build = "." under [artifact]')
    if not m.methods:
        raise bad("methods", "no methods declared", "declare each callable method, e.g. [methods.run]")
    for method, spec in m.methods.items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", method):
            raise bad(f"methods.{method}", "not a valid method name", "use letters, digits and _, starting with a letter")
        if spec.timeout_ms is not None and spec.timeout_ms <= 0:
            raise bad(f"methods.{method}.timeout_ms", "must be positive", "give a timeout in milliseconds, e.g. 2000")
    caps = m.capabilities
    for i, rule in enumerate(caps.egress):
        if rule == ALLOW_ALL:
            continue
        try:
            parse_rule(rule)
        except ValueError as exc:
            raise bad(f"capabilities.egress[{i}]", str(exc), 'e.g. egress = ["https://api.example.com:443"]') from None
    for field in ("env", "secrets", "kv", "modules"):
        for i, value in enumerate(getattr(caps, field)):
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$", value):
                raise bad(f"capabilities.{field}[{i}]", f"{value!r} is not a valid name", "use letters, digits, _, . and -")
    for declared in caps.files:
        if not declared or "\x00" in declared or ".." in Path(declared).parts:
            raise bad(f"capabilities.files.{declared!r}", "not an acceptable path", "name a directory or file without '..'")
    lim = m.limits
    for field in ("memory_mb", "timeout_ms", "concurrency", "processes", "warm"):
        if getattr(lim, field) <= 0:
            raise bad(f"limits.{field}", "must be positive", f"set {field} to a positive number")
    if lim.queue < 0:
        raise bad("limits.queue", "must not be negative", "set queue to 0 or more")
    if lim.fuel is not None and lim.fuel <= 0:
        raise bad("limits.fuel", "must be positive", "remove fuel or set it to a positive instruction count")
    if not 0 < lim.cpu <= 1024:
        raise bad("limits.cpu", "must be a positive number of cores", "e.g. cpu = 0.5")


def _check_paths(loaded: LoadedManifest) -> None:
    m = loaded.manifest
    artifact = loaded.artifact_path()
    if artifact is not None and not artifact.is_file():
        raise ManifestError(
            loaded.file, "artifact.path", f"artifact {artifact} does not exist", "build the module first (see its build script)"
        )
    for declared, mode in m.capabilities.files.items():
        host = Path(declared) if Path(declared).is_absolute() else Path(loaded.base_dir) / declared
        if not host.exists():
            raise ManifestError(
                loaded.file, f"capabilities.files.{declared!r}", f"{host} does not exist", "create it or remove the grant"
            )
