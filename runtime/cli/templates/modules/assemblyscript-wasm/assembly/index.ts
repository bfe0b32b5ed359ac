// {{name}}: a gati WebAssembly module in AssemblyScript (ABI v1, docs/wasm-abi.md).
//
// hello: input any JSON value X; output {"message":"hello from AssemblyScript","input":X}

@external("gati", "input_len") declare function input_len(): i32;
@external("gati", "input_read") declare function input_read(ptr: usize): void;
@external("gati", "output") declare function output(ptr: usize, len: i32): void;

const PREFIX = '{"message":"hello from AssemblyScript","input":';

export function hello(): i32 {
  const prefix = String.UTF8.encode(PREFIX);
  const head = prefix.byteLength;
  const total = head + input_len() + 1;
  const out = changetype<usize>(new ArrayBuffer(total));
  memory.copy(out, changetype<usize>(prefix), head);
  input_read(out + head); // the input is JSON already: it goes into the reply as it came
  store<u8>(out + total - 1, 0x7d); // '}'
  output(out, total);
  return 0;
}
