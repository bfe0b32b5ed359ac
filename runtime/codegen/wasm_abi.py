"""The gati WebAssembly ABI (docs/wasm-abi.md, version 1) as a C header and as Rust bindings.

    c_header()        gati.h: every host import as a C prototype, the status codes, GATI_EXPORT
    rust_bindings()   gati.rs: the extern block, and safe wrappers (input, output, host calls as Results)

One table (IMPORTS) describes each import with named parameters; tests hold it to the functions
the runtime links (sandboxes/wasm/abi.py), so a header cannot promise an import that does not
exist or get an arity wrong. Nobody types the `extern` block by hand again.
"""

from __future__ import annotations

from dataclasses import dataclass

ABI_VERSION = 1


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "in" (bytes the module hands over), "out" (a buffer the host fills), "int", "rev" (a pointer to a u64 revision)


@dataclass(frozen=True)
class Import:
    name: str
    params: tuple[Param, ...]  # "in"/"out" pointers are followed by their length, except out buffers (sized by a *_len call)
    returns: bool  # an i32 status or length
    doc: str

    @property
    def arity(self) -> int:
        return sum(2 if p.kind == "in" else 1 for p in self.params)


def _in(name: str) -> Param:
    return Param(name, "in")


IMPORTS: tuple[Import, ...] = (
    Import("input_len", (), True, "length of this call's input (the JSON payload, UTF-8)"),
    Import("input_read", (Param("buf", "out"),), False, "copy the whole input to buf (input_len bytes)"),
    Import("output", (_in("json"),), False, "set the call's result: JSON bytes (the last call wins)"),
    Import("error", (_in("message"),), False, "set an error message (UTF-8); return non-zero from the method after it"),
    Import("log", (Param("level", "int"), _in("message")), False, "log a line; level 0 debug, 1 info, 2 warn, 3 error"),
    Import("result_len", (), True, "length of the last host call's result"),
    Import("result_read", (Param("buf", "out"),), False, "copy the last host call's result to buf (result_len bytes)"),
    Import("http_request", (_in("request_json"),), True, 'egress: {"method", "url", "headers", "body"} -> {"status", "headers", "body"}'),
    Import("kv_get", (_in("store"), _in("key")), True, "kv: the stored bytes"),
    Import("kv_put", (_in("store"), _in("key"), _in("value")), True, "kv: store value under key"),
    Import("kv_entry", (_in("store"), _in("key")), True, "kv: the entry's revision (8 bytes, little-endian), then its value"),
    Import("kv_cas", (_in("store"), _in("key"), _in("value"), Param("revision", "rev")), True,
           "kv: write only if the entry is at *revision (0: only if absent); the new revision, or GATI_CONFLICT with the current one"),
    Import("kv_increment", (_in("store"), _in("key"), Param("delta", "int")), True, "kv: add delta to the counter in one step; its new value, decimal text"),
    Import("kv_delete", (_in("store"), _in("key"), Param("revision", "rev")), True,
           "kv: delete the entry if at *revision (0: whatever is there); GATI_NOT_FOUND when absent, GATI_CONFLICT when at another"),
    Import("secret_get", (_in("name"),), True, "secrets: the secret's bytes"),
    Import("env_get", (_in("name"),), True, "env: the variable's value"),
    Import("file_read", (_in("path"),), True, "files: the file's bytes"),
    Import("file_write", (_in("path"), _in("data")), True, "files (rw): write data to path"),
    Import("call", (_in("module"), _in("method"), _in("payload_json")), True, "modules: call another module; the result is its JSON answer"),
    Import("trace_context", (), True, 'the call\'s W3C trace context, JSON {"traceparent", "tracestate", "baggage"}; GATI_NOT_FOUND when there is none'),
)

STATUS = (("OK", 0, "ok"), ("DENIED", 1, "denied by a capability (the result is the denial as JSON)"),
          ("NOT_FOUND", 2, "not found: missing kv key, unset env or secret, missing file"),
          ("ERROR", 3, "other error (the result is a JSON error object)"),
          ("CONFLICT", 4, "an atomic kv operation found the entry at another revision (the result is that revision, 8 bytes)"))  # fmt: skip


def c_header() -> str:
    lines = [
        f"/* gati.h: the gati WebAssembly ABI, version {ABI_VERSION} (docs/wasm-abi.md), for C compiled to wasm32.",
        " *",
        " * Every import lives in module \"gati\". Pointers and lengths are offsets and byte counts in the",
        " * module's memory. Host calls return a GATI_* status and leave their result in a per-call buffer",
        " * read with gati_result_len / gati_result_read. A method is an export `int name(void)` returning 0",
        " * on success: declare it with GATI_EXPORT(\"name\").",
        " */",
        "#ifndef GATI_H",
        "#define GATI_H",
        "",
        f"#define GATI_ABI_VERSION {ABI_VERSION}",
        "",
    ]
    for name, value, doc in STATUS:
        lines.append(f"#define GATI_{name} {value}  /* {doc} */")
    lines += [
        "",
        "#define GATI_LOG_DEBUG 0",
        "#define GATI_LOG_INFO 1",
        "#define GATI_LOG_WARN 2",
        "#define GATI_LOG_ERROR 3",
        "",
        '#define GATI_IMPORT(name) __attribute__((import_module("gati"), import_name(name)))',
        "#define GATI_EXPORT(name) __attribute__((export_name(name)))",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
    ]
    for imp in IMPORTS:
        args = []
        for p in imp.params:
            if p.kind == "in":
                args += [f"const char *{p.name}", f"int {p.name}_len"]
            elif p.kind == "out":
                args.append(f"char *{p.name}")
            elif p.kind == "rev":
                args.append(f"const unsigned long long *{p.name}")
            else:
                args.append(f"int {p.name}")
        lines.append(f"/* {imp.doc} */")
        lines.append(f'GATI_IMPORT("{imp.name}") {"int" if imp.returns else "void"} gati_{imp.name}({", ".join(args) or "void"});')
    lines += [
        "",
        "/* Conveniences over the imports, for NUL-terminated text. */",
        "static inline int gati_strlen(const char *s) { return (int)__builtin_strlen(s); }",
        "static inline void gati_output_str(const char *json) { gati_output(json, gati_strlen(json)); }",
        "static inline int gati_fail(const char *message) { gati_error(message, gati_strlen(message)); return 1; }",
        "static inline void gati_log_str(int level, const char *message) { gati_log(level, message, gati_strlen(message)); }",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        "#endif  /* GATI_H */",
    ]
    return "\n".join(lines)


def rust_bindings() -> str:
    raw = []
    for imp in IMPORTS:
        args = []
        for p in imp.params:
            if p.kind == "in":
                args += [f"{p.name}: *const u8", f"{p.name}_len: i32"]
            elif p.kind == "out":
                args.append(f"{p.name}: *mut u8")
            elif p.kind == "rev":
                args.append(f"{p.name}: *const u64")
            else:
                args.append(f"{p.name}: i32")
        raw.append(f"        /// {imp.doc}")
        raw.append(f'        #[link_name = "{imp.name}"]')
        raw.append(f"        pub fn {imp.name}({', '.join(args)}){' -> i32' if imp.returns else ''};")
    status = "\n".join(f"/// {doc}\npub const {name}: i32 = {value};" for name, value, doc in STATUS)
    return RUST.replace("@RAW@", "\n".join(raw)).replace("@STATUS@", status).replace("@VERSION@", str(ABI_VERSION))


RUST = '''//! The gati WebAssembly ABI, version @VERSION@ (docs/wasm-abi.md), for Rust compiled to wasm32.
//!
//! `raw` is the extern block, one function per import of module "gati"; the functions below wrap
//! it safely. A method is `#[no_mangle] pub extern "C" fn name() -> i32` returning 0 on success.
//! Builds with Rust 1.63 (Debian's rustc) and no crates: `mod gati;` beside your lib.rs.
#![allow(dead_code)]

pub const ABI_VERSION: i32 = @VERSION@;

@STATUS@

pub mod raw {
    #[link(wasm_import_module = "gati")]
    extern "C" {
@RAW@
    }
}

/// How a host call failed: the status and the result bytes the host left (JSON for denials and errors).
#[derive(Debug)]
pub enum HostError {
    Denied(Vec<u8>),
    NotFound,
    /// an atomic kv operation found the entry at another revision: this one (0: absent)
    Conflict(u64),
    Other(i32, Vec<u8>),
}

/// This call's input: the JSON payload, as bytes.
pub fn input() -> Vec<u8> {
    let len = unsafe { raw::input_len() };
    let mut buf = vec![0u8; len.max(0) as usize];
    if len > 0 {
        unsafe { raw::input_read(buf.as_mut_ptr()) };
    }
    buf
}

/// Set the call's result (JSON bytes).
pub fn output(json: &[u8]) {
    unsafe { raw::output(json.as_ptr(), json.len() as i32) }
}

/// Set an error message; return the method's failure status from `fail`.
pub fn error(message: &str) {
    unsafe { raw::error(message.as_ptr(), message.len() as i32) }
}

/// Report message as the call's error and give the status a failed method returns.
pub fn fail(message: &str) -> i32 {
    error(message);
    1
}

/// Log a line (0 debug, 1 info, 2 warn, 3 error).
pub fn log(level: i32, message: &str) {
    unsafe { raw::log(level, message.as_ptr(), message.len() as i32) }
}

fn result() -> Vec<u8> {
    let len = unsafe { raw::result_len() };
    let mut buf = vec![0u8; len.max(0) as usize];
    if len > 0 {
        unsafe { raw::result_read(buf.as_mut_ptr()) };
    }
    buf
}

fn le_u64(bytes: &[u8]) -> u64 {
    bytes.iter().take(8).enumerate().fold(0u64, |v, (i, b)| v | (*b as u64) << (8 * i))
}

fn host(status: i32) -> Result<Vec<u8>, HostError> {
    match status {
        OK => Ok(result()),
        DENIED => Err(HostError::Denied(result())),
        NOT_FOUND => Err(HostError::NotFound),
        CONFLICT => Err(HostError::Conflict(le_u64(&result()))),
        other => Err(HostError::Other(other, result())),
    }
}

/// egress: a JSON request {"method", "url", "headers", "body"}; the answer {"status", "headers", "body"} as JSON.
pub fn http_request(request_json: &[u8]) -> Result<Vec<u8>, HostError> {
    host(unsafe { raw::http_request(request_json.as_ptr(), request_json.len() as i32) })
}

pub fn kv_get(store: &str, key: &[u8]) -> Result<Vec<u8>, HostError> {
    host(unsafe { raw::kv_get(store.as_ptr(), store.len() as i32, key.as_ptr(), key.len() as i32) })
}

pub fn kv_put(store: &str, key: &[u8], value: &[u8]) -> Result<(), HostError> {
    host(unsafe { raw::kv_put(store.as_ptr(), store.len() as i32, key.as_ptr(), key.len() as i32, value.as_ptr(), value.len() as i32) }).map(|_| ())
}

/// kv: the entry's revision and value.
pub fn kv_entry(store: &str, key: &[u8]) -> Result<(u64, Vec<u8>), HostError> {
    let r = host(unsafe { raw::kv_entry(store.as_ptr(), store.len() as i32, key.as_ptr(), key.len() as i32) })?;
    Ok((le_u64(&r), r[8.min(r.len())..].to_vec()))
}

/// kv: write value only if the entry is at revision (0: only if absent); the new revision, or Err(Conflict(current)).
pub fn kv_cas(store: &str, key: &[u8], value: &[u8], revision: u64) -> Result<u64, HostError> {
    host(unsafe {
        raw::kv_cas(store.as_ptr(), store.len() as i32, key.as_ptr(), key.len() as i32, value.as_ptr(), value.len() as i32, &revision)
    })
    .map(|r| le_u64(&r))
}

/// kv: add delta to the counter at key (absent: 0) in one step; its new value.
pub fn kv_increment(store: &str, key: &[u8], delta: i32) -> Result<i64, HostError> {
    let r = host(unsafe { raw::kv_increment(store.as_ptr(), store.len() as i32, key.as_ptr(), key.len() as i32, delta) })?;
    match core::str::from_utf8(&r).ok().and_then(|s| s.parse::<i64>().ok()) {
        Some(value) => Ok(value),
        None => Err(HostError::Other(ERROR, r)),
    }
}

/// kv: delete the entry if at revision (0: whatever is there); false when there was none.
pub fn kv_delete(store: &str, key: &[u8], revision: u64) -> Result<bool, HostError> {
    match host(unsafe { raw::kv_delete(store.as_ptr(), store.len() as i32, key.as_ptr(), key.len() as i32, &revision) }) {
        Ok(_) => Ok(true),
        Err(HostError::NotFound) => Ok(false),
        Err(other) => Err(other),
    }
}

pub fn secret_get(name: &str) -> Result<Vec<u8>, HostError> {
    host(unsafe { raw::secret_get(name.as_ptr(), name.len() as i32) })
}

pub fn env_get(name: &str) -> Result<Vec<u8>, HostError> {
    host(unsafe { raw::env_get(name.as_ptr(), name.len() as i32) })
}

pub fn file_read(path: &str) -> Result<Vec<u8>, HostError> {
    host(unsafe { raw::file_read(path.as_ptr(), path.len() as i32) })
}

pub fn file_write(path: &str, data: &[u8]) -> Result<(), HostError> {
    host(unsafe { raw::file_write(path.as_ptr(), path.len() as i32, data.as_ptr(), data.len() as i32) }).map(|_| ())
}

/// Call a method of another module (granted under [capabilities] modules); its JSON answer.
pub fn call(module: &str, method: &str, payload_json: &[u8]) -> Result<Vec<u8>, HostError> {
    host(unsafe {
        raw::call(module.as_ptr(), module.len() as i32, method.as_ptr(), method.len() as i32, payload_json.as_ptr(), payload_json.len() as i32)
    })
}

/// The call's W3C trace context as JSON {"traceparent", "tracestate", "baggage"}: continue the request's trace from it.
pub fn trace_context() -> Result<Vec<u8>, HostError> {
    host(unsafe { raw::trace_context() })
}
'''
