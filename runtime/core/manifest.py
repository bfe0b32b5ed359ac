"""`module.toml`: what a module is, what it may do, and the limits it runs under.

One schema for all three kinds of sandbox (wasm, oci, native): only `[artifact]`
differs. Anything the parser cannot accept becomes a ManifestError naming the file,
the key, the problem and the fix; nothing else escapes `parse_manifest`. Each
`[capabilities]` entry and `[limits]` is validated by the capability unit that owns it
(runtime/core/capabilities/); this file checks the rest and hands each unit its section.

    name = "thumbs"
    version = "1.0.0"
    kind = "wasm"

    [artifact]
    path = "build/thumbs.wasm"
    build_command = "sh build.sh"      # optional: what `gati build` runs in the module's folder

    [methods.resize]
    timeout_ms = 2000
    input = { type = "object", properties = { width = { type = "integer" } } }   # JSON Schema
    output = "schemas/resize.out.json"                                          # or a file of it

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

    [health]                           # optional (runtime/core/health.py)
    method = "ping"
    interval_ms = 10000
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from runtime.core import health as health_unit
from runtime.core import payload_schema
from runtime.core.capabilities import egress, env, files, kv, modules, secrets
from runtime.core.capabilities import limits as limits_unit
from runtime.core.capabilities.egress import ALLOW_ALL
from runtime.core.capabilities.limits import Limits
from runtime.core.errors import ManifestError
from runtime.core.health import Health

KINDS = ("wasm", "oci", "native")
# Patterns are matched whole (fullmatch) and ASCII only: "greet\n" is not a name.
NAME_RE = modules.NAME_RE
VERSION_RE = re.compile(r"[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}([-+][0-9A-Za-z.-]{1,64})?", re.ASCII)
METHOD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}", re.ASCII)
MAX_TEXT = 4096  # characters of any one key or value (a description, an argument)
MAX_ARGS = 256


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class Artifact(_Strict):
    path: str | None = None  # wasm: a .wasm or .wat file; native: the executable
    args: list[str] = []  # native: arguments after the executable
    image: str | None = None  # oci: an image reference already in the local engine
    build: str | None = None  # oci: a build context directory holding a Dockerfile
    # Any kind: the shell command `gati build` runs in the module's folder to make the artifact
    # (not `build`, which names an oci module's Docker build context).
    build_command: str | None = None


class Method(_Strict):
    timeout_ms: int | None = None
    description: str = ""
    # JSON Schema of the payload in and of the answer out (runtime.core.payload_schema): inline, or
    # the path of a .json file next to module.toml, which load_manifest reads in (the registry keeps
    # the schema itself, pinned like the artifact).
    input: dict[str, Any] | str | None = None
    output: dict[str, Any] | str | None = None


class Capabilities(_Strict):
    egress: list[str] = []
    files: dict[str, Literal["ro", "rw"]] = {}
    env: list[str] = []
    secrets: list[str] = []
    kv: list[str] = []
    modules: list[str] = []


class Manifest(_Strict):
    name: str
    version: str
    kind: str
    artifact: Artifact
    methods: dict[str, Method]
    description: str = ""
    capabilities: Capabilities = Capabilities()
    limits: Limits = Limits()
    health: Health | None = None  # runtime/core/health.py

    def method_timeout_ms(self, method: str) -> int:
        m = self.methods.get(method)
        return (m.timeout_ms if m and m.timeout_ms else None) or self.limits.timeout_ms

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
        """The artifact file, refused when it resolves (links followed) outside the module's folder."""
        a = self.manifest.artifact
        return self._inside("artifact.path", a.path) if a.path else None

    def build_context(self) -> Path | None:
        """An oci module's build context, refused like artifact_path when it lies outside the module's folder."""
        a = self.manifest.artifact
        return self._inside("artifact.build", a.build) if a.build else None

    def _inside(self, key: str, declared: str) -> Path:
        # Checked on every use, not only at registration: a link swapped in later must not lead the
        # runtime (or an error message quoting what it read) to /etc/shadow or /proc/self/environ.
        base = Path(self.base_dir).resolve()
        path = (base / declared).resolve()
        if not path.is_relative_to(base):
            raise ManifestError(
                self.file,
                key,
                f"{declared!r} resolves to {path}, outside the module's folder {base}",
                "keep what the module is built from inside its folder: no absolute path, no '..' or symlink out of it",
            )
        return path


def parse_manifest(text: str | bytes, file: str = "module.toml") -> Manifest:
    """Parse and validate manifest text; raises only ManifestError."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        data = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(file, "(file)", f"not valid TOML: {exc}", "fix the TOML syntax at the position shown") from None
    _check_text(data, file, "")
    try:
        manifest = msgspec.convert(data, Manifest)
    except msgspec.ValidationError as exc:
        raise _from_validation_error(file, str(exc)) from None
    _check_semantics(manifest, file)
    return manifest


def load_manifest(path: str | Path, *, built: bool = True) -> LoadedManifest:
    """Read a module.toml (or the directory holding one) and check its artifact exists (unless built=False:
    codegen reads manifests to make what a module is built from)."""
    path = Path(path)
    if path.is_dir():
        path = path / "module.toml"
    if not path.is_file():
        raise ManifestError(str(path), "(file)", "no such manifest", "point at a module directory holding module.toml")
    manifest = parse_manifest(path.read_bytes(), str(path))
    manifest = _read_schema_files(manifest, str(path), path.parent.resolve())
    loaded = LoadedManifest(manifest, str(path.resolve()), str(path.parent.resolve()))
    if built:
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
    return {"artifact": Artifact, "capabilities": Capabilities, "limits": Limits, "health": Health}.get(section) or (
        Method if section.startswith("methods") else None
    )


def _check_text(value, file: str, key: str) -> None:
    """No NUL byte and nothing over-long anywhere: they would surface as OSError or ValueError later."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, file, key or "(top level)")
            _check_text(v, file, f"{key}.{k}" if key else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_text(v, file, f"{key}[{i}]")
    elif isinstance(value, str):
        if "\x00" in value:
            raise ManifestError(file, key, f"{value[:64]!r} holds a NUL byte", "remove the \\u0000 from it")
        if len(value) > MAX_TEXT:
            raise ManifestError(file, key, f"a text of {len(value)} characters is too long", f"shorten it to at most {MAX_TEXT} characters")


def _check_semantics(m: Manifest, file: str) -> None:
    def bad(key: str, problem: str, fix: str) -> ManifestError:
        return ManifestError(file, key, problem, fix)

    if not NAME_RE.fullmatch(m.name):
        raise bad("name", f"{m.name!r} is not a valid module name", modules.NAME_RULE)
    if not VERSION_RE.fullmatch(m.version):
        raise bad("version", f"{m.version!r} is not a semantic version", 'write it as "1.2.3"')
    if m.kind not in KINDS:
        raise bad("kind", f"{m.kind!r} is not a kind of module", f"use one of: {', '.join(KINDS)}")
    if m.kind in ("wasm", "native") and not m.artifact.path:
        raise bad("artifact.path", f"a {m.kind} module needs an artifact path", 'add path = "build/module.wasm" under [artifact]')
    if m.kind == "oci" and not (m.artifact.image or m.artifact.build):
        raise bad("artifact", "an oci module needs an image or a build context", 'add image = "name:tag" or build = "." under [artifact]')
    for key in ("path", "build"):
        problem = files.path_too_long(getattr(m.artifact, key) or "")
        if problem:
            raise bad(f"artifact.{key}", problem, "name a shorter path")
    if len(m.artifact.args) > MAX_ARGS:
        raise bad("artifact.args", f"{len(m.artifact.args)} arguments are too many", f"pass at most {MAX_ARGS}")
    if not m.methods:
        raise bad("methods", "no methods declared", "declare each callable method, e.g. [methods.run]")
    for method, spec in m.methods.items():
        if not METHOD_RE.fullmatch(method):
            raise bad(f"methods.{method[:64]}", "not a valid method name", "use letters, digits and _, starting with a letter (at most 64)")
        limits_unit.method_timeout(method, spec.timeout_ms, file)
        for direction in ("input", "output"):
            _check_schema_ref(getattr(spec, direction), file, f"methods.{method}.{direction}")
    caps = m.capabilities
    egress.check(caps.egress, file)
    files.check(caps.files, file)
    env.check(caps.env, file)
    secrets.check(caps.secrets, file)
    kv.check(caps.kv, file)
    modules.check(caps.modules, file)
    limits_unit.check(m.limits, file)
    health_unit.check(m.health, m.methods, file)


def _check_schema_ref(schema: dict | str | None, file: str, key: str) -> None:
    if schema is None:
        return
    if isinstance(schema, str):
        if not schema.endswith(".json") or schema.startswith("/") or ".." in Path(schema).parts:
            raise ManifestError(file, key, f"{schema!r} is not a .json file inside the module's folder", 'e.g. input = "schemas/resize.json", or the schema inline as a table')
        return
    problem = payload_schema.problem(schema)
    if problem:
        raise ManifestError(file, key, problem, "write JSON Schema (draft 2020-12), e.g. { type = \"object\", properties = { n = { type = \"integer\" } } }")


def _read_schema_files(m: Manifest, file: str, base: Path) -> Manifest:
    """Replace each schema file path by the schema it holds, so what is registered is the schema itself."""
    methods = dict(m.methods)
    for name, spec in m.methods.items():
        for direction in ("input", "output"):
            ref = getattr(spec, direction)
            if not isinstance(ref, str):
                continue
            key = f"methods.{name}.{direction}"
            target = (base / ref).resolve()
            if not target.is_relative_to(base) or not target.is_file():
                raise ManifestError(file, key, f"schema file {ref} does not exist in {base}", "create it, or write the schema inline")
            schema, problem = payload_schema.parse_file(target.read_bytes())
            if problem:
                raise ManifestError(file, key, f"{ref}: {problem}", "the file must hold one JSON Schema as JSON")
            try:
                _check_schema_ref(schema, file, key)
            except ManifestError as err:
                raise ManifestError(file, key, f"{ref}: {err.details['problem']}", err.fix or "") from None
            spec = msgspec.structs.replace(spec, **{direction: schema})
        methods[name] = spec
    return msgspec.structs.replace(m, methods=methods)


def _check_paths(loaded: LoadedManifest) -> None:
    m = loaded.manifest
    artifact = loaded.artifact_path()
    if artifact is not None and not artifact.is_file():
        problem = f"artifact {artifact} is not a regular file" if artifact.exists() else f"artifact {artifact} does not exist"
        fix = f"build it first: gati build {loaded.name}" if m.artifact.build_command else "build the module first (see its build script)"
        raise ManifestError(loaded.file, "artifact.path", problem, fix)
    context = loaded.build_context()
    if context is not None and not context.is_dir():
        raise ManifestError(loaded.file, "artifact.build", f"build context {context} is not a directory", "name the folder holding the Dockerfile")
    for declared, mode in m.capabilities.files.items():
        host = Path(declared) if Path(declared).is_absolute() else Path(loaded.base_dir) / declared
        if not host.exists():
            raise ManifestError(
                loaded.file, f"capabilities.files.{declared!r}", f"{host} does not exist", "create it or remove the grant"
            )
