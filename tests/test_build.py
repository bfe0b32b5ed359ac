"""gati build (runtime.modules.build): what is up to date, what a failed build leaves, what streams."""

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli.main import app
from runtime.core.errors import ManifestError
from runtime.core.manifest import load_manifest
from runtime.modules.build import build_module, sources_digest
from sandboxes.oci import available

MANIFEST = """\
name = "m"
version = "0.1.0"
kind = "wasm"

[artifact]
path = "build/m.wat"
build_command = "{command}"

[methods.hello]
"""
WAT = '(module (memory (export "memory") 1) (func (export "hello") (result i32) (i32.const 0)))'


def module(tmp_path: Path, command: str = "mkdir -p build && cp m.src build/m.wat && echo copied") -> Path:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "module.toml").write_text(MANIFEST.format(command=command))
    (folder / "m.src").write_text(WAT)
    return folder


async def test_built_once_then_up_to_date_until_a_source_changes(tmp_path):
    folder = module(tmp_path)
    lines = []
    first = await build_module(folder, on_line=lines.append)
    assert first.status == "built" and "copied" in lines
    assert (await build_module(folder)).status == "up-to-date"
    # outputs and caches are not sources
    (folder / "node_modules").mkdir()
    (folder / "node_modules" / "x.js").write_text("1")
    (folder / "build" / "other").write_text("1")
    assert (await build_module(folder)).status == "up-to-date"
    (folder / "m.src").write_text(WAT + " ")
    assert (await build_module(folder)).status == "built"
    # an artifact changed by hand is not what the build left
    (folder / "build" / "m.wat").write_text(WAT + "  ")
    assert (await build_module(folder)).status == "built"
    assert (await build_module(folder, force=True)).status == "built"


def test_the_digest_names_paths_and_contents(tmp_path):
    folder = module(tmp_path)
    before = sources_digest(load_manifest(folder, built=False))
    (folder / "m.src").rename(folder / "n.src")
    assert sources_digest(load_manifest(folder, built=False)) != before


async def test_a_failed_build_says_what_broke_and_leaves_the_last_artifact(tmp_path):
    folder = module(tmp_path)
    assert (await build_module(folder)).status == "built"
    manifest = folder / "module.toml"
    manifest.write_text(MANIFEST.format(command="echo compiling; echo 'm.src:1: error: nope' >&2; exit 3"))
    failed = await build_module(folder)
    assert failed.status == "failed" and "exit 3" in failed.error and "gati build m" in failed.error
    assert failed.output[-1] == "m.src:1: error: nope"
    assert (folder / "build" / "m.wat").read_text() == WAT
    again = await build_module(folder)
    assert again.status == "failed"  # no stamp for a failed build: it is tried again


async def test_a_build_that_makes_no_artifact_fails(tmp_path):
    folder = module(tmp_path, command="true")
    result = await build_module(folder)
    assert result.status == "failed" and "artifact.path" in result.error


def test_the_field_is_build_command_and_a_wrong_name_says_so(tmp_path):
    folder = module(tmp_path)
    (folder / "module.toml").write_text(MANIFEST.format(command="x").replace("build_command", "command"))
    with pytest.raises(ManifestError) as raised:
        load_manifest(folder, built=False)
    assert "build_command" in raised.value.fix


@pytest.mark.slow
@pytest.mark.skipif(available() is not None, reason="needs a Docker engine")
async def test_an_image_build_streams_its_steps(tmp_path):
    folder = tmp_path / "py"
    folder.mkdir()
    (folder / "module.toml").write_text(textwrap.dedent('''\
        name = "py"
        version = "0.1.0"
        kind = "oci"
        [artifact]
        build = "."
        [methods.hello]
    '''))
    (folder / "Dockerfile").write_text("ARG GATI_PYTHON\nFROM ${GATI_PYTHON}\nCOPY main.py /module/main.py\nENTRYPOINT [\"python3\", \"/module/main.py\"]\n")
    (folder / "main.py").write_text("print('x')\n")
    lines = []
    result = await build_module(folder, force=True, on_line=lines.append)
    assert result.status == "built", result
    assert any("Step 1/" in line for line in lines) and any("COPY main.py" in line for line in lines), lines
    assert (await build_module(folder)).status == "up-to-date"
    stamp = json.loads((folder / "build" / ".gati-build.json").read_text())
    assert stamp["artifact"].startswith("sha256:")


def test_a_long_image_step_streams_its_lines_to_the_log(caplog):
    # debootstrap and docker import run through images._run: each line is a gati.oci log record as it comes
    from sandboxes.oci import images

    with caplog.at_level("INFO", logger="gati.oci"):
        images._run(["sh", "-c", "echo 'I: Retrieving Release'; echo 'I: Validating Packages'"], "debootstrap")
    assert [r.getMessage() for r in caplog.records] == ["debootstrap: I: Retrieving Release", "debootstrap: I: Validating Packages"]
    with pytest.raises(images.ImageError, match=r"debootstrap failed \(exit 2\): E: no mirror"):
        images._run(["sh", "-c", "echo 'E: no mirror'; exit 2"], "debootstrap")


def test_gati_build_takes_module_folders_outside_any_project(tmp_path, monkeypatch):
    # `make modules` builds the repo's samples this way; the stamp it leaves is what `gati serve` checks.
    folder = module(tmp_path)
    monkeypatch.chdir(tmp_path)  # no gati.toml here
    result = CliRunner().invoke(app, ["build", "--json", str(folder)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["status"] == "built"
    assert (folder / "build" / ".gati-build.json").is_file()
