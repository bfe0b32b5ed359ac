;; kvatomic: the atomic kv host functions of docs/wasm-abi.md, driven by tests.
;; Every method but count works on key "k" of store "counts" and outputs {"status":S,"result":"HEX"}:
;; S the host call's status (one digit), HEX the host's result buffer in hex.
;; cas and delete take a JSON string input whose first 16 characters are the 8 bytes of
;; the revision (little-endian) in lower-case hex; cas's value follows a colon.
(module
  (import "gati" "input_len" (func $input_len (result i32)))
  (import "gati" "input_read" (func $input_read (param i32)))
  (import "gati" "output" (func $output (param i32 i32)))
  (import "gati" "error" (func $error (param i32 i32)))
  (import "gati" "result_len" (func $result_len (result i32)))
  (import "gati" "result_read" (func $result_read (param i32)))
  (import "gati" "kv_entry" (func $kv_entry (param i32 i32 i32 i32) (result i32)))
  (import "gati" "kv_cas" (func $kv_cas (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gati" "kv_increment" (func $kv_increment (param i32 i32 i32 i32 i32) (result i32)))
  (import "gati" "kv_delete" (func $kv_delete (param i32 i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)

  (data (i32.const 0) "counts")            ;; 6
  (data (i32.const 8) "k")                 ;; 1
  (data (i32.const 16) "0123456789abcdef") ;; 16
  (data (i32.const 32) "{\"status\":")     ;; 10
  (data (i32.const 48) ",\"result\":\"")   ;; 11
  (data (i32.const 64) "\"}")              ;; 2
  ;; 128..135: the revision; 1024..: the input; 8192..: the result; 16384..: the output

  ;; {"status":S,"result":"HEX"} from the status and the result buffer
  (func $answer (param $status i32) (result i32)
    (local $n i32) (local $i i32) (local $o i32) (local $b i32)
    (local.set $n (call $result_len))
    (call $result_read (i32.const 8192))
    (memory.copy (i32.const 16384) (i32.const 32) (i32.const 10))
    (i32.store8 (i32.const 16394) (i32.add (i32.const 48) (local.get $status)))
    (memory.copy (i32.const 16395) (i32.const 48) (i32.const 11))
    (local.set $o (i32.const 16406))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $b (i32.load8_u (i32.add (i32.const 8192) (local.get $i))))
        (i32.store8 (local.get $o) (i32.load8_u (i32.add (i32.const 16) (i32.shr_u (local.get $b) (i32.const 4)))))
        (i32.store8 (i32.add (local.get $o) (i32.const 1)) (i32.load8_u (i32.add (i32.const 16) (i32.and (local.get $b) (i32.const 15)))))
        (local.set $o (i32.add (local.get $o) (i32.const 2)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (memory.copy (local.get $o) (i32.const 64) (i32.const 2))
    (call $output (i32.const 16384) (i32.sub (i32.add (local.get $o) (i32.const 2)) (i32.const 16384)))
    (i32.const 0))

  (func $hexval (param $c i32) (result i32)
    (if (result i32) (i32.le_u (local.get $c) (i32.const 57))
      (then (i32.sub (local.get $c) (i32.const 48)))
      (else (i32.sub (local.get $c) (i32.const 87)))))

  ;; reads the input to 1024 and decodes its first 16 hex digits (after the quote) to 128; returns the input's length
  (func $read_revision (result i32)
    (local $n i32) (local $i i32) (local $at i32)
    (local.set $n (call $input_len))
    (call $input_read (i32.const 1024))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 8)))
        (local.set $at (i32.add (i32.const 1025) (i32.shl (local.get $i) (i32.const 1))))
        (i32.store8 (i32.add (i32.const 128) (local.get $i))
          (i32.or
            (i32.shl (call $hexval (i32.load8_u (local.get $at))) (i32.const 4))
            (call $hexval (i32.load8_u (i32.add (local.get $at) (i32.const 1))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $n))

  (func (export "entry") (result i32)
    (call $answer (call $kv_entry (i32.const 0) (i32.const 6) (i32.const 8) (i32.const 1))))

  (func (export "increment") (result i32)
    (call $answer (call $kv_increment (i32.const 0) (i32.const 6) (i32.const 8) (i32.const 1) (i32.const 1))))

  (func (export "decrement") (result i32)
    (call $answer (call $kv_increment (i32.const 0) (i32.const 6) (i32.const 8) (i32.const 1) (i32.const -5))))

  ;; count: what a real module does. The new value as the output; when the host call fails,
  ;; its error as the module's error (the runtime reports why shared state failed, if it did)
  (func (export "count") (result i32)
    (local $status i32) (local $n i32)
    (local.set $status (call $kv_increment (i32.const 0) (i32.const 6) (i32.const 8) (i32.const 1) (i32.const 1)))
    (local.set $n (call $result_len))
    (call $result_read (i32.const 8192))
    (if (i32.eqz (local.get $status))
      (then (call $output (i32.const 8192) (local.get $n)) (return (i32.const 0))))
    (call $error (i32.const 8192) (local.get $n))
    (i32.const 1))

  ;; the value runs from after the quote, 16 digits and the colon (1042) to before the closing quote
  (func (export "cas") (result i32)
    (local $n i32)
    (local.set $n (call $read_revision))
    (call $answer
      (call $kv_cas (i32.const 0) (i32.const 6) (i32.const 8) (i32.const 1)
        (i32.const 1042) (i32.sub (local.get $n) (i32.const 19)) (i32.const 128))))

  (func (export "delete") (result i32)
    (drop (call $read_revision))
    (call $answer (call $kv_delete (i32.const 0) (i32.const 6) (i32.const 8) (i32.const 1) (i32.const 128)))))
