;; {{name}}: a gati WebAssembly module in WAT (ABI v1, docs/wasm-abi.md).
;; hello: input any JSON value X; output {"message":"hello from WAT","input":X}
(module
  (import "gati" "input_len" (func $input_len (result i32)))
  (import "gati" "input_read" (func $input_read (param i32)))
  (import "gati" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)

  ;; the 36-byte prefix of the reply; the input is copied right after it
  (global $prefix i32 (i32.const 36))
  (data (i32.const 0) "{\"message\":\"hello from WAT\",\"input\":")

  (func (export "hello") (result i32)
    (local $total i32)
    ;; prefix + input + "}"
    (local.set $total (i32.add (i32.add (global.get $prefix) (call $input_len)) (i32.const 1)))
    ;; grow the memory when a large input does not fit
    (if (i32.gt_u (local.get $total) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq (memory.grow (i32.sub (i32.div_u (i32.add (local.get $total) (i32.const 65535)) (i32.const 65536)) (memory.size)))
                    (i32.const -1))
          (then (return (i32.const 1))))))
    (call $input_read (global.get $prefix))
    (i32.store8 (i32.sub (local.get $total) (i32.const 1)) (i32.const 125)) ;; '}'
    (call $output (i32.const 0) (local.get $total))
    (i32.const 0)))
