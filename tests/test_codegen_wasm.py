"""The WASM ABI as generated C and Rust: every import the header promises is one the runtime links.

A C module and a Rust module that reference every import of gati.h / gati.rs are built and
instantiated by the real WASM backend (wasmtime checks each import's type against what the
runtime defines), the sample modules' checked-in bindings are what codegen makes today, and the
Rust sample (built by `make modules`) answers and refuses payloads by its schemas.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from runtime.codegen.generate import module_output
from runtime.codegen.wasm_abi import IMPORTS, c_header, rust_bindings
from runtime.core.call import CallContext
from runtime.core.errors import BadPayload
from runtime.modules import register_module
from runtime.modules.manager import ModuleManager
from sandboxes.wasm.abi import IMPORTS as LINKED

ROOT = Path(__file__).resolve().parents[1]
CTX = CallContext(request_id="req-abi", trace_id="trace-abi", caller="test")
MANIFEST = 'name = "abi"\nversion = "1.0.0"\nkind = "wasm"\n[artifact]\npath = "abi.wasm"\n[methods.all]\n[methods.ping]\n'


def test_the_abi_table_is_what_the_runtime_links():
    assert [(i.name, i.arity, i.returns) for i in IMPORTS] == [(name, params, returns) for name, params, returns, _ in LINKED]


@pytest.mark.parametrize(
    "module, lang, folder",
    [("sample_modules/thumbs-c", "c", "sample_modules/thumbs-c"), ("sample_modules/wordcount-rust", "rust", "sample_modules/wordcount-rust/src")],
)
def test_the_samples_checked_in_bindings_are_up_to_date(module, lang, folder, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert module_output(ROOT, module, lang, folder).stale(ROOT / folder) == []


async def _instantiate_and_ping(tmp_path: Path, state) -> None:
    (tmp_path / "module.toml").write_text(MANIFEST)
    register_module(state, tmp_path)
    manager = ModuleManager(state)
    try:
        assert await manager.call("abi", "ping", None, ctx=CTX) == "pong"
    finally:
        await manager.close()


C_SOURCE = r"""
#include "gati.h"

GATI_EXPORT("all") int all(void) {
    char b[16];
    int n = gati_input_len();
    gati_input_read(b);
    gati_output("1", 1);
    gati_error("e", 1);
    gati_log(GATI_LOG_INFO, "x", 1);
    n += gati_result_len();
    gati_result_read(b);
    n += gati_http_request("{}", 2);
    n += gati_kv_get("s", 1, "k", 1);
    n += gati_kv_put("s", 1, "k", 1, "v", 1);
    unsigned long long revision = 0;
    n += gati_kv_entry("s", 1, "k", 1);
    n += gati_kv_cas("s", 1, "k", 1, "v", 1, &revision);
    n += gati_kv_increment("s", 1, "n", 1, -1);
    n += gati_kv_delete("s", 1, "k", 1, &revision);
    n += gati_secret_get("s", 1);
    n += gati_env_get("e", 1);
    n += gati_file_read("f", 1);
    n += gati_file_write("f", 1, "d", 1);
    n += gati_call("m", 1, "x", 1, "{}", 2);
    n += gati_trace_context();
    gati_log_str(GATI_LOG_DEBUG, "done");
    return n == GATI_OK ? 0 : gati_fail("unexpected");
}

GATI_EXPORT("ping") int ping(void) {
    gati_output_str("\"pong\"");
    return GATI_OK;
}
"""


@pytest.mark.skipif(shutil.which("clang") is None or shutil.which("wasm-ld") is None, reason="needs clang and lld")
async def test_a_c_module_using_every_import_of_gati_h_instantiates(tmp_path, state):
    (tmp_path / "gati.h").write_text(c_header())
    (tmp_path / "abi.c").write_text(C_SOURCE)
    subprocess.run(
        ["clang", "--target=wasm32", "-nostdlib", "-O2", "-Wall", "-Wextra", "-Werror", "-Wl,--no-entry", "-o", "abi.wasm", "abi.c"],
        cwd=tmp_path, check=True, timeout=120,
    )  # fmt: skip
    await _instantiate_and_ping(tmp_path, state)


RUST_SOURCE = r"""
mod gati;

#[no_mangle]
pub extern "C" fn all() -> i32 {
    let mut b = [0u8; 16];
    let p = b.as_mut_ptr();
    let s = b"x".as_ptr();
    unsafe {
        let mut n = gati::raw::input_len();
        gati::raw::input_read(p);
        gati::raw::output(s, 1);
        gati::raw::error(s, 1);
        gati::raw::log(1, s, 1);
        n += gati::raw::result_len();
        gati::raw::result_read(p);
        n += gati::raw::http_request(s, 1);
        n += gati::raw::kv_get(s, 1, s, 1);
        n += gati::raw::kv_put(s, 1, s, 1, s, 1);
        let revision = 0u64;
        n += gati::raw::kv_entry(s, 1, s, 1);
        n += gati::raw::kv_cas(s, 1, s, 1, s, 1, &revision);
        n += gati::raw::kv_increment(s, 1, s, 1, -1);
        n += gati::raw::kv_delete(s, 1, s, 1, &revision);
        n += gati::raw::secret_get(s, 1);
        n += gati::raw::env_get(s, 1);
        n += gati::raw::file_read(s, 1);
        n += gati::raw::file_write(s, 1, s, 1);
        n += gati::raw::call(s, 1, s, 1, s, 1);
        n += gati::raw::trace_context();
        n
    }
}

#[no_mangle]
pub extern "C" fn ping() -> i32 {
    gati::output(b"\"pong\"");
    let _ = (gati::input(), gati::env_get("X"), gati::call("m", "x", b"{}"), gati::kv_put("s", b"k", b"v"), gati::file_write("f", b"d"));
    let _ = (gati::kv_entry("s", b"k"), gati::kv_cas("s", b"k", b"v", 0), gati::kv_increment("s", b"n", 1), gati::kv_delete("s", b"k", 0));
    let _ = gati::trace_context();
    gati::OK
}
"""


def _rustc() -> str | None:
    for candidate in ("/usr/bin/rustc", shutil.which("rustc")):
        if not candidate or not Path(candidate).exists():
            continue
        sysroot = subprocess.run([candidate, "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
        if list(Path(sysroot, "lib", "rustlib", "wasm32-unknown-unknown", "lib").glob("libstd-*.rlib")):
            return candidate
    return None


@pytest.mark.skipif(_rustc() is None, reason="needs rustc with the wasm32 target (rustc, libstd-rust-dev-wasm32)")
async def test_a_rust_module_using_every_import_of_gati_rs_instantiates(tmp_path, state):
    (tmp_path / "gati.rs").write_text(rust_bindings())
    (tmp_path / "lib.rs").write_text(RUST_SOURCE)
    subprocess.run(
        [_rustc(), "--edition", "2021", "--crate-type", "cdylib", "--target", "wasm32-unknown-unknown", "-D", "warnings", "-o", "abi.wasm", "lib.rs"],
        cwd=tmp_path, check=True, timeout=300,
    )  # fmt: skip
    await _instantiate_and_ping(tmp_path, state)


WORDCOUNT = ROOT / "sample_modules" / "wordcount-rust"


@pytest.mark.skipif(not (WORDCOUNT / "build" / "wordcount.wasm").exists(), reason="build it first: make modules (needs rustc with the wasm32 target)")
async def test_the_rust_sample_counts_and_its_schemas_hold(state):
    register_module(state, WORDCOUNT)
    manager = ModuleManager(state)
    try:
        text = "two words\nand a line \u00e9 \U0001f600"
        assert await manager.call("wordcount", "count", text, ctx=CTX) == {"words": 7, "lines": 2, "chars": len(text)}
        with pytest.raises(BadPayload) as caught:
            await manager.call("wordcount", "count", {"text": "x"}, ctx=CTX)
        assert caught.value.details["errors"] == [{"path": "$", "expected": "string, length <= 1000000", "actual": "an object"}]
    finally:
        await manager.close()
