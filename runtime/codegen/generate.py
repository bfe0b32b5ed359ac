"""What each kind of output is made from, for one project: the CLI's one entry into codegen.

    generate("openapi", project_dir, "openapi.json")     the routes' OpenAPI document (one file)
    generate("typescript", project_dir, "sdk/ts")         types.ts, client.ts, index.ts
    generate("openapi", project_dir, "v1.json", version="1")   as a client pinned to version 1 sees
                                                         the API (a label or a date; openapi and typescript)
                                                         ([codegen] version in gati.toml: the same, by default)
    generate("python", project_dir, "typings")            gati_modules.pyi for the project's modules
    module_output(project_dir, "thumbs", "c", "stubs")    a module author's files

Handler files are imported (as `gati serve` does) to read their types. Module stubs are made from
the project's module folders (modules/*, [modules] paths), read afresh, so what is generated
depends on the repository alone, never on what this machine happens to have registered;
`registered=True` adds modules registered in the state directory that the project does not hold.
"""

from __future__ import annotations

import json
from pathlib import Path

from runtime.codegen.module_stubs import module_stubs
from runtime.codegen.output import CodegenError, Output
from runtime.codegen.python_stubs import python_stubs
from runtime.codegen.typescript import typescript
from runtime.core.errors import ModuleNotFound
from runtime.core.manifest import Manifest, load_manifest
from runtime.core.state import StateDir
from runtime.http.openapi import openapi_document
from runtime.http.project import Project, load_project
from runtime.http.routing import load_routes
from runtime.http.versions.resolver import UnknownVersion

KINDS = ("openapi", "typescript", "python")
HTTP_API = ("openapi", "typescript")  # the kinds a version applies to


def generate(kind: str, project_dir: Path, out: str, *, registered: bool = False, version: str | None = None) -> Output:
    """kind's output for out. The HTTP API's (openapi, typescript) is as a client pinned to version
    sees it: --version, else [codegen] version, else the default versions."""
    project = load_project(project_dir)
    if version and kind not in HTTP_API:
        raise CodegenError(f"--version is for the HTTP API (openapi, typescript), not {kind}", fix=f"run gati codegen {kind} without --version")
    if kind in HTTP_API:
        from_setting = not version and bool(project.settings.codegen.version)
        version = version or project.settings.codegen.version or None
        command = f"gati codegen {kind}{f' --version {version}' if version and not from_setting else ''} {out}"
        try:
            doc = openapi_document(project, load_routes(project.handlers_dir), version)
        except UnknownVersion as exc:
            if not from_setting:
                raise
            raise UnknownVersion(
                f"[codegen] version = {version!r} in gati.toml: {exc.message}",
                fix=f"set [codegen] version to a version of the project, or remove it to describe the default ones ({exc.fix})",
                **exc.details,
            ) from None
        if kind == "typescript":
            return typescript(doc, command)
        result = Output(command, "")
        result.add(Path(out).name, json.dumps(doc, indent=2, ensure_ascii=False) + "\n", None)
        return result
    command = f"gati codegen {kind} {out}"
    if kind == "python":
        return python_stubs(project_modules(project, registered=registered), command)
    raise CodegenError(f"unknown kind of output {kind!r}", fix=f"use one of: {', '.join(KINDS)}")


def module_output(project_dir: Path, name: str, lang: str, out: str) -> Output:
    """NAME is a module of the project, a registered one, or the path of a module folder."""
    project = load_project(project_dir) if (Path(project_dir) / "gati.toml").is_file() else None
    manifest = _find_module(project, Path(project_dir), name)
    return module_stubs(manifest, lang, f"gati codegen module {name} --lang {lang} {out}")


def project_modules(project: Project, *, registered: bool = False) -> list[Manifest]:
    found = {}
    for folder in project.module_dirs():
        m = load_manifest(folder, built=False).manifest
        found[m.name] = m
    if registered and (project.dir / ".gati").exists():
        state = StateDir.open(project.dir)
        try:
            for reg in state.registry.all():
                found.setdefault(reg.name, reg.manifest)
        finally:
            state.close()
    return [found[n] for n in sorted(found)]


def _find_module(project: Project | None, project_dir: Path, name: str) -> Manifest:
    folder = Path(name)
    if (folder / "module.toml").is_file() or (folder.name == "module.toml" and folder.is_file()):
        return load_manifest(folder, built=False).manifest
    if project is not None:
        for m in project_modules(project):
            if m.name == name:
                return m
    state = StateDir.open(project_dir)
    try:
        return state.registry.get(name).manifest
    except ModuleNotFound as err:
        raise ModuleNotFound(
            f"no module {name!r} in the project's module folders or the registry",
            fix="name a module of modules/* or [modules] paths, a registered one, or a module folder",
        ) from err
    finally:
        state.close()
