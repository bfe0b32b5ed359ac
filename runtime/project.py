"""A gati project on disk: `gati.toml`, `handlers/`, `modules/`; and `gati init`, which scaffolds one.

    [server]
    host = "127.0.0.1"
    port = 8080
    handler_timeout_ms = 30000

    [modules]
    paths = ["../shared/thumbs"]      # module folders outside modules/, relative to the project

    [egress]
    hosts = { "api.internal" = "10.0.0.7" }   # static name -> address overrides for module egress

    [config]                          # anything; handlers read it as gctx.config, read-only
    greeting = "hello"
"""

from __future__ import annotations

import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from runtime.errors import GatiError

CONFIG_FILE = "gati.toml"
TEMPLATE = Path(__file__).parent / "templates" / "project"


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


class Modules(_Strict):
    paths: list[str] = []


class Egress(_Strict):
    hosts: dict[str, str] = {}


class Settings(_Strict):
    server: Server = Server()
    modules: Modules = Modules()
    egress: Egress = Egress()
    config: dict[str, Any] = {}


@dataclass(frozen=True)
class Project:
    dir: Path
    settings: Settings

    @property
    def handlers_dir(self) -> Path:
        return self.dir / "handlers"

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


def load_project(project_dir: str | Path) -> Project:
    root = Path(project_dir).resolve()
    file = root / CONFIG_FILE
    if not file.is_file():
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
            fix = "remove it; known sections are [server], [modules], [egress] and [config] (free-form)"
            raise ProjectError(file, key, "unknown key", fix) from None
        raise ProjectError(file, key, problem, "give it a value of the expected type") from None
    if not 0 < settings.server.port < 65536:
        raise ProjectError(file, "server.port", f"{settings.server.port} is not a TCP port", "use 1-65535")
    if settings.server.handler_timeout_ms <= 0:
        raise ProjectError(file, "server.handler_timeout_ms", "must be positive", "e.g. handler_timeout_ms = 30000")
    return settings


def scaffold(target: str | Path) -> Path:
    """Copy the project template into target (new or empty); returns the project path."""
    root = Path(target).resolve()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise GatiError(f"{root} exists and is not empty", fix="choose a new directory name")
    shutil.copytree(TEMPLATE, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".gitignore").write_text(".gati/\n__pycache__/\n")
    return root
