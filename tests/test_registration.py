"""Registration refuses at the door what would fail (or leak) later.

An artifact lies inside its module's folder once links are resolved, and its backend accepts
it: WebAssembly that compiles and exports every declared method as a `() -> i32` function,
or a native executable. No refusal quotes the artifact's bytes.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.core.call import CallContext
from runtime.core.errors import GatiError, ManifestError
from runtime.core.manifest import load_manifest
from runtime.modules import ModuleManager, register_module
from sandboxes.wasm.engine import ArtifactInvalid, compile_module, make_engine

ROOT = Path(__file__).resolve().parents[1]
GATI = str(Path(sys.executable).parent / "gati")
SECRET = "s3cr3t-marker-0c1d2e"  # stands for a file's content that must never be printed

MEMORY_AND_HELLO = '(memory (export "memory") 1) (func (export "hello") (result i32) i32.const 0)'


def wasm_module(folder: Path, artifact: str, *, methods=("hello",), kind="wasm") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    declared = "\n".join(f"[methods.{m}]" for m in methods)
    (folder / "module.toml").write_text(
        f'name = "m"\nversion = "1.0.0"\nkind = "{kind}"\n\n[artifact]\npath = "{artifact}"\n\n{declared}\n'
    )
    return folder


def refused(state, folder: Path) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        register_module(state, folder)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.to_dict())
    return caught.value


def secret_file(tmp_path: Path) -> Path:
    outside = tmp_path / "outside.txt"
    outside.write_text(f"root:{SECRET}:19000:0:99999:7:::\n")
    return outside


# 10: inside the module's folder, links resolved -------------------------------------------------


def test_a_symlink_out_of_the_folder_is_refused(state, tmp_path):
    folder = wasm_module(tmp_path / "m", "build/m.wat")
    (folder / "build").mkdir()
    (folder / "build" / "m.wat").symlink_to(secret_file(tmp_path))
    error = refused(state, folder)
    assert error.details["key"] == "artifact.path" and "outside the module's folder" in error.message


@pytest.mark.parametrize("path", ["../../../../../../etc/hostname", "/proc/self/environ", "/etc/hostname"])
def test_dotdot_and_absolute_paths_out_of_the_folder_are_refused(state, tmp_path, path):
    error = refused(state, wasm_module(tmp_path / "m", path))
    assert "outside the module's folder" in error.message


def test_links_and_dotdot_that_stay_inside_are_fine(state, tmp_path):
    folder = wasm_module(tmp_path / "m", "build/../link.wat")
    (folder / "real.wat").write_text(f"(module {MEMORY_AND_HELLO})")
    (folder / "link.wat").symlink_to("real.wat")
    assert register_module(state, folder).name == "m"


def test_an_oci_build_context_out_of_the_folder_is_refused(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "module.toml").write_text('name = "m"\nversion = "1.0.0"\nkind = "oci"\n[artifact]\nbuild = "../.."\n[methods.run]\n')
    with pytest.raises(ManifestError) as caught:
        load_manifest(folder)
    assert caught.value.details["key"] == "artifact.build" and "outside the module's folder" in caught.value.message


async def test_a_link_swapped_in_after_registration_is_refused_at_load(state, tmp_path):
    folder = wasm_module(tmp_path / "m", "m.wat")
    (folder / "m.wat").write_text(f"(module {MEMORY_AND_HELLO})")
    register_module(state, folder)
    (folder / "m.wat").unlink()
    (folder / "m.wat").symlink_to(secret_file(tmp_path))
    manager = ModuleManager(state)
    try:
        with pytest.raises(GatiError) as caught:
            await manager.call("m", "hello", {}, ctx=CallContext(caller="test"))
    finally:
        await manager.close()
    assert "outside the module's folder" in caught.value.message and SECRET not in str(caught.value)


def test_the_cli_refuses_in_two_lines_and_prints_no_content(tmp_path):
    """The real command, pointed at a link to a file holding a secret: refused, nothing of it shown."""
    project = tmp_path / "app"
    project.mkdir()
    (project / "gati.toml").write_text("")
    folder = wasm_module(project / "modules" / "m", "m.wat")
    (folder / "m.wat").symlink_to(secret_file(tmp_path))
    inside = wasm_module(project / "modules" / "text", "m.wat")
    (inside / "m.wat").write_text(f"{SECRET}\n")  # inside the folder, but text that is not WAT
    env = {**{k: v for k, v in os.environ.items() if k != "GATI_HOME"}, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'sdk' / 'python'}"}
    for module in (folder, inside):
        proc = subprocess.run([GATI, "module", "register", str(module), "--project", str(project)], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert SECRET not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 2  # error: ... / fix: ...


# 11: the backend accepts the artifact -----------------------------------------------------------


@pytest.mark.parametrize(
    "content, methods, key, says",
    [
        (f"{SECRET}\nmore text\n", ("hello",), "artifact.path", "line 1, column 1"),
        (f"(module\n  (func {SECRET}))", ("hello",), "artifact.path", "line 2, column 9"),
        (b"\x00asm\x01\x00\x00\x00\x05\xff", ("hello",), "artifact.path", "not valid WebAssembly"),
        (b"\xff\xfe" + SECRET.encode(), ("hello",), "artifact.path", "not UTF-8"),
        (f"(module {MEMORY_AND_HELLO})", ("memory",), "methods.memory", "as a memory, not a function"),
        (f"(module {MEMORY_AND_HELLO})", ("hello", "absent"), "methods.absent", "exports no function 'absent'"),
        (f'(module {MEMORY_AND_HELLO} (global (export "g") i32 (i32.const 0)))', ("g",), "methods.g", "as a global"),
        (f'(module {MEMORY_AND_HELLO} (func (export "two") (param i32) (result i32) i32.const 0))', ("two",), "methods.two", "(i32) -> (i32)"),
        ('(module (func (export "hello") (result i32) i32.const 0))', ("hello",), "artifact.path", 'no linear memory named "memory"'),
        (f'(module (import "gati" "nope" (func)) {MEMORY_AND_HELLO})', ("hello",), "artifact.path", "gati::nope"),
    ],
)
def test_wasm_that_would_fail_its_first_call_is_refused(state, tmp_path, content, methods, key, says):
    folder = wasm_module(tmp_path / "m", "m.wat", methods=methods)
    data = content if isinstance(content, bytes) else content.encode()
    (folder / "m.wat").write_bytes(data)
    error = refused(state, folder)
    assert error.details["key"] == key and says in error.message, error


@pytest.mark.parametrize("sample", ["greet-wat", "thumbs-c"])
def test_the_sample_modules_register(state, sample):
    assert register_module(state, ROOT / "sample_modules" / sample).artifact_sha256


@pytest.mark.parametrize(
    "content, mode, says",
    [
        (b"\x7fELF" + b"\x00" * 60, 0o644, "is not executable"),
        (b"#!/bin/sh\necho hi\n", 0o644, "is not executable"),
        (f"{SECRET}\n".encode(), 0o755, "neither an executable binary (ELF) nor a script starting with #!"),
    ],
)
def test_native_artifacts_must_be_executables(state, tmp_path, content, mode, says):
    folder = wasm_module(tmp_path / "m", "run", kind="native")
    (folder / "run").write_bytes(content)
    (folder / "run").chmod(mode)
    error = refused(state, folder)
    assert error.details["key"] == "artifact.path" and says in error.message


def test_a_native_script_with_its_interpreter_registers(state, tmp_path):
    folder = wasm_module(tmp_path / "m", "run", kind="native")
    (folder / "run").write_text("#!/bin/sh\nexec sleep 1\n")
    (folder / "run").chmod(0o755)
    assert register_module(state, folder).manifest.kind == "native"


async def test_the_check_compiles_once_into_the_cache_the_runtime_loads_from(state, tmp_path):
    folder = wasm_module(tmp_path / "m", "m.wat")
    (folder / "m.wat").write_text(f"(module {MEMORY_AND_HELLO})")
    register_module(state, folder)
    [cached] = (state.cache_dir / "wasm").glob("*.cwasm")
    compiled_at = cached.stat().st_mtime_ns
    register_module(state, folder)  # again, as every `gati serve` start does
    manager = ModuleManager(state)
    try:
        assert await manager.call("m", "hello", {}, ctx=CallContext(caller="test")) is None
    finally:
        await manager.close()
    assert list((state.cache_dir / "wasm").glob("*.cwasm")) == [cached]
    assert cached.stat().st_mtime_ns == compiled_at  # deserialized since, never compiled again


# no error quotes the artifact, whatever it holds ---------------------------------------------------


ENGINE = make_engine(False)


@settings(max_examples=150, deadline=None)
@given(before=st.text(max_size=200), after=st.text(max_size=200), marker=st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=24))
def test_a_compile_error_never_quotes_the_text(before, after, marker):
    data = f"{before}{marker}{after}".encode()
    try:
        compile_module(ENGINE, data)
    except ArtifactInvalid as exc:
        assert marker not in f"{exc.message} {exc.fix}"


def test_compile_module_reads_wat_and_binaries():
    assert {e.name for e in compile_module(ENGINE, f"(module {MEMORY_AND_HELLO})".encode()).exports} == {"memory", "hello"}
    wasm = (ROOT / "sample_modules" / "greet-wat" / "build" / "greet.wasm").read_bytes()
    assert {e.name for e in compile_module(ENGINE, wasm).exports} >= {"memory", "hello"}
