"""`gati new module NAME --lang L [--kind K]`: a module from a template, ready to build, register and test.

Templates are package data under runtime/cli/templates/modules/<lang>-<kind>/; `{{name}}` (and
`{{crate}}`, the name as a Rust crate) in file names and contents become the module's name. Each
template answers one method, `hello`, with {"message": "hello from <language>", "input": <what it got>},
and brings its own test (tests/test_<name>.py, run by `gati test`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rich.markup import escape

from runtime.cli.common import JsonOpt, ProjectOpt, out, print_json, user_errors
from runtime.core.capabilities.modules import NAME_RE, NAME_RULE
from runtime.core.errors import GatiError

TEMPLATES = Path(__file__).parent / "templates" / "modules"
COMMON = TEMPLATES / "_common"

# language -> (kinds it comes in, the first being the default when only one fits; what it says hello as)
LANGUAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "wat": (("wasm",), "WAT"),
    "c": (("wasm",), "C"),
    "rust": (("wasm",), "Rust"),
    "assemblyscript": (("wasm",), "AssemblyScript"),
    "python": (("oci", "native"), "Python"),
    "node": (("oci",), "Node.js"),
    "go": (("native",), "Go"),
}

new_app = typer.Typer(help="Create a module from a template.", no_args_is_help=True, pretty_exceptions_enable=False)


def templates() -> list[dict[str, str]]:
    return [{"lang": lang, "kind": kind, "greeting": f"hello from {label}"} for lang, (kinds, label) in LANGUAGES.items() for kind in kinds]


def create_module(name: str, lang: str, kind: str | None, target: Path) -> Path:
    """Write the template for (lang, kind) into target (new or empty); returns target."""
    if not NAME_RE.fullmatch(name):
        raise GatiError(f"{name!r} is not a valid module name", fix=NAME_RULE)
    if lang not in LANGUAGES:
        raise GatiError(f"there is no template for {lang!r}", fix=f"use --lang with one of: {', '.join(LANGUAGES)}")
    kinds, label = LANGUAGES[lang]
    if kind is None:
        if len(kinds) > 1:
            raise GatiError(f"{lang} modules come in more than one kind", fix=f"add --kind with one of: {', '.join(kinds)}")
        kind = kinds[0]
    if kind not in kinds:
        raise GatiError(f"there is no {lang} template of kind {kind!r}", fix=f"use --kind {' or '.join(kinds)} with --lang {lang}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise GatiError(f"{target} exists and is not empty", fix="choose another name, or --dir DIR")
    values = {"name": name, "crate": name.replace("-", "_"), "greeting": f"hello from {label}"}
    files = [(p, p.relative_to(TEMPLATES / f"{lang}-{kind}")) for p in sorted((TEMPLATES / f"{lang}-{kind}").rglob("*"))]
    files.append((COMMON / "test_module.py", Path("tests") / "test_{{name}}.py"))
    for source, rel in files:
        if source.is_dir() or "__pycache__" in source.parts:
            continue
        dest = target / _fill(str(rel), values)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(_fill(source.read_text(), values))
        dest.chmod(source.stat().st_mode & 0o777 | 0o600)
    return target


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


@new_app.command("module")
@user_errors
def new_module(
    name: Annotated[str, typer.Argument(help="The module's name (what handlers call it by: gctx.modules.NAME).")],
    lang: Annotated[str, typer.Option("--lang", "-l", help=f"Its language: {', '.join(LANGUAGES)}.")] = "wat",
    kind: Annotated[Optional[str], typer.Option("--kind", "-k", help="wasm, oci or native (default: the one the language comes in).")] = None,
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Where to create it (default: PROJECT/modules/NAME).")] = None,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Create a module from a template: its source, module.toml, build step and its own test."""
    target = (directory or Path(project) / "modules" / name).resolve()
    create_module(name, lang, kind, target)
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    if as_json:
        return print_json({"name": name, "dir": str(target), "files": files})
    out.print(f"created {escape(str(target))}", highlight=False)
    for f in files:
        out.print(f"  {escape(f)}", highlight=False)
    out.print(f"next: gati build {name}   then: gati test   (or gati dev)", highlight=False)


@new_app.command("templates")
@user_errors
def list_templates(as_json: JsonOpt = False) -> None:
    """List the module templates: language and kind."""
    if as_json:
        return print_json(templates())
    for t in templates():
        out.print(f"  --lang {t['lang']:<15} --kind {t['kind']}", highlight=False)
