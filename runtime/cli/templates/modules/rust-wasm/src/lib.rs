//! {{name}}: a gati WebAssembly module in Rust (ABI v1, docs/wasm-abi.md).
//!
//! hello: input any JSON value X; output {"message":"hello from Rust","input":X}

#[link(wasm_import_module = "gati")]
extern "C" {
    fn input_len() -> i32;
    fn input_read(ptr: *mut u8);
    fn output(ptr: *const u8, len: i32);
}

const PREFIX: &[u8] = b"{\"message\":\"hello from Rust\",\"input\":";

#[no_mangle]
pub extern "C" fn hello() -> i32 {
    let input = unsafe {
        let mut buf = vec![0u8; input_len() as usize];
        input_read(buf.as_mut_ptr());
        buf
    };
    // The input is JSON already: it goes into the reply as it came.
    let mut out = Vec::with_capacity(PREFIX.len() + input.len() + 1);
    out.extend_from_slice(PREFIX);
    out.extend_from_slice(&input);
    out.push(b'}');
    unsafe { output(out.as_ptr(), out.len() as i32) };
    0
}
