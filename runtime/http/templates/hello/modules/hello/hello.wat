;; The hello module (gati WASM ABI v1, see docs/wasm-abi.md).
;; hello: input is any JSON value X; output is {"greeting":"hello from WebAssembly","you_sent":X}
(module
  (import "gati" "input_len" (func $input_len (result i32)))
  (import "gati" "input_read" (func $input_read (param i32)))
  (import "gati" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)

  ;; the 48-byte prefix of the reply; the input is copied right after it
  (global $prefix i32 (i32.const 48))
  (data (i32.const 0) "{\"greeting\":\"hello from WebAssembly\",\"you_sent\":")

  (func (export "hello") (result i32)
    (local $n i32)
    (local $total i32)
    (local.set $n (call $input_len))
    ;; prefix + input + "}"
    (local.set $total (i32.add (i32.add (global.get $prefix) (local.get $n)) (i32.const 1)))
    ;; grow memory when a large input does not fit in what we have
    (if (i32.gt_u (local.get $total) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq (memory.grow (i32.sub (i32.div_u (i32.add (local.get $total) (i32.const 65535)) (i32.const 65536)) (memory.size)))
                    (i32.const -1))
          (then (return (i32.const 1))))))
    (call $input_read (global.get $prefix))
    (i32.store8 (i32.sub (local.get $total) (i32.const 1)) (i32.const 125)) ;; '}'
    (call $output (i32.const 0) (local.get $total))
    (i32.const 0)))
