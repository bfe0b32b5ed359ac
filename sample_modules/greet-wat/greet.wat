;; greet: a hand-written gati WebAssembly module (ABI version 1, docs/wasm-abi.md).
;;
;; Methods
;;   hello  input {"name":"NAME"}  ->  {"message":"hello, NAME"}
;;          "name" is looked up among the keys of the top-level object only; when it
;;          is absent (or the input is not an object) the name is "world". A "name"
;;          that is not a string is an error. The string is copied as written (its
;;          escapes included), so the output is valid JSON whenever the input is.
;;   count  input ignored          ->  {"visits":N}
;;          reads key "count" of kv store "visits" (decimal text, missing = 0), adds
;;          one, stores it back and returns the new value. Each call runs in a fresh
;;          instance, so the kv store is the only state that survives.
;;
;; Memory layout: constant strings below 1024; a bump allocator ($alloc) hands out
;; buffers from 4096 upwards and grows the memory when it has to.
(module
  (import "gati" "input_len" (func $input_len (result i32)))
  (import "gati" "input_read" (func $input_read (param i32)))
  (import "gati" "output" (func $output (param i32 i32)))
  (import "gati" "error" (func $error (param i32 i32)))
  (import "gati" "result_len" (func $result_len (result i32)))
  (import "gati" "result_read" (func $result_read (param i32)))
  (import "gati" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "gati" "kv_put" (func $kv_put (param i32 i32 i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)

  (data (i32.const 0) "visits")                                  ;; 6
  (data (i32.const 8) "count")                                   ;; 5
  (data (i32.const 16) "{\"message\":\"hello, ")                 ;; 19
  (data (i32.const 48) "world")                                  ;; 5
  (data (i32.const 56) "\"}")                                    ;; 2
  (data (i32.const 64) "{\"visits\":")                           ;; 10
  (data (i32.const 80) "}")                                      ;; 1
  (data (i32.const 96) "name must be a string")                  ;; 21
  (data (i32.const 128) "stored visits counter is not a number") ;; 37

  (global $heap (mut i32) (i32.const 4096))
  (global $str_len (mut i32) (i32.const 0))

  ;; Reserve n bytes and return their address; grows the memory (or traps).
  (func $alloc (param $n i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p (global.get $heap))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.shr_u
                (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    ;; keep the next block 8-byte aligned
    (global.set $heap (i32.and (i32.add (local.get $end) (i32.const 7)) (i32.const -8)))
    (local.get $p))

  (func $is_ws (param $c i32) (result i32)
    (i32.or
      (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 9)))
      (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13)))))

  (func $skip_ws (param $p i32) (param $end i32) (result i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (br_if $done (i32.eqz (call $is_ws (i32.load8_u (local.get $p)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.get $p))

  ;; $p points just past an opening quote: return the address of the closing quote,
  ;; or $end when the string is not terminated. Backslash escapes are skipped.
  (func $string_end (param $p i32) (param $end i32) (result i32)
    (local $c i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $done (i32.eq (local.get $c) (i32.const 34)))
        (local.set $p (i32.add (local.get $p)
          (select (i32.const 2) (i32.const 1) (i32.eq (local.get $c) (i32.const 92)))))
        (br $next)))
    (if (i32.gt_u (local.get $p) (local.get $end)) (then (local.set $p (local.get $end))))
    (local.get $p))

  ;; Find the value of key "name" in the top-level object of [p, end).
  ;; Returns the address of the string's contents (length in $str_len), -1 when the
  ;; key is absent, -2 when its value is not a string.
  (func $find_name (param $p i32) (param $end i32) (result i32)
    (local $c i32) (local $depth i32) (local $s i32) (local $e i32) (local $j i32)
    (block $absent
      (loop $next
        (br_if $absent (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $p)))
        (if (i32.eq (local.get $c) (i32.const 34)) ;; '"'
          (then
            (local.set $s (i32.add (local.get $p) (i32.const 1)))
            (local.set $e (call $string_end (local.get $s) (local.get $end)))
            (br_if $absent (i32.ge_u (local.get $e) (local.get $end)))
            ;; a string at depth 1 followed by ':' is a key of the top-level object
            (if (i32.and
                  (i32.and (i32.eq (local.get $depth) (i32.const 1))
                           (i32.eq (i32.sub (local.get $e) (local.get $s)) (i32.const 4)))
                  (i32.eq (i32.load (local.get $s)) (i32.const 0x656d616e))) ;; "name"
              (then
                (local.set $j (call $skip_ws (i32.add (local.get $e) (i32.const 1)) (local.get $end)))
                (if (i32.and (i32.lt_u (local.get $j) (local.get $end))
                             (i32.eq (i32.load8_u (local.get $j)) (i32.const 58))) ;; ':'
                  (then
                    (local.set $j (call $skip_ws (i32.add (local.get $j) (i32.const 1)) (local.get $end)))
                    (if (i32.or (i32.ge_u (local.get $j) (local.get $end))
                                (i32.ne (i32.load8_u (local.get $j)) (i32.const 34)))
                      (then (return (i32.const -2))))
                    (local.set $s (i32.add (local.get $j) (i32.const 1)))
                    (local.set $e (call $string_end (local.get $s) (local.get $end)))
                    (if (i32.ge_u (local.get $e) (local.get $end)) (then (return (i32.const -2))))
                    (global.set $str_len (i32.sub (local.get $e) (local.get $s)))
                    (return (local.get $s))))))
            (local.set $p (i32.add (local.get $e) (i32.const 1)))
            (br $next)))
        (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91))) ;; { [
          (then (local.set $depth (i32.add (local.get $depth) (i32.const 1)))))
        (if (i32.or (i32.eq (local.get $c) (i32.const 125)) (i32.eq (local.get $c) (i32.const 93))) ;; } ]
          (then (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (i32.const -1))

  (func (export "hello") (result i32)
    (local $in i32) (local $len i32) (local $name i32) (local $n i32) (local $out i32)
    (local.set $len (call $input_len))
    (local.set $in (call $alloc (local.get $len)))
    (call $input_read (local.get $in))
    (local.set $name (call $find_name (local.get $in) (i32.add (local.get $in) (local.get $len))))
    (if (i32.eq (local.get $name) (i32.const -2))
      (then
        (call $error (i32.const 96) (i32.const 21))
        (return (i32.const 1))))
    (if (i32.eq (local.get $name) (i32.const -1))
      (then (local.set $name (i32.const 48)) (local.set $n (i32.const 5)))
      (else (local.set $n (global.get $str_len))))
    (local.set $out (call $alloc (i32.add (local.get $n) (i32.const 21))))
    (memory.copy (local.get $out) (i32.const 16) (i32.const 19))
    (memory.copy (i32.add (local.get $out) (i32.const 19)) (local.get $name) (local.get $n))
    (memory.copy (i32.add (local.get $out) (i32.add (local.get $n) (i32.const 19))) (i32.const 56) (i32.const 2))
    (call $output (local.get $out) (i32.add (local.get $n) (i32.const 21)))
    (i32.const 0))

  ;; Pass the host's result buffer on as this call's error message.
  (func $fail_with_result (result i32)
    (local $n i32) (local $buf i32)
    (local.set $n (call $result_len))
    (local.set $buf (call $alloc (local.get $n)))
    (if (local.get $n) (then (call $result_read (local.get $buf))))
    (call $error (local.get $buf) (local.get $n))
    (i32.const 1))

  (func (export "count") (result i32)
    (local $status i32) (local $n i32) (local $buf i32) (local $i i32) (local $c i32)
    (local $visits i32) (local $digits i32) (local $dlen i32) (local $out i32)
    (local.set $status (call $kv_get (i32.const 0) (i32.const 6) (i32.const 8) (i32.const 5)))
    (if (i32.eq (local.get $status) (i32.const 0))
      (then
        (local.set $n (call $result_len))
        (local.set $buf (call $alloc (local.get $n)))
        (if (local.get $n) (then (call $result_read (local.get $buf))))
        ;; the stored value is decimal digits, possibly surrounded by white space
        (local.set $i (call $skip_ws (local.get $buf) (i32.add (local.get $buf) (local.get $n))))
        (local.set $c (i32.const 0))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $i) (i32.add (local.get $buf) (local.get $n))))
            (local.set $c (i32.sub (i32.load8_u (local.get $i)) (i32.const 48)))
            (br_if $done (i32.gt_u (local.get $c) (i32.const 9)))
            (local.set $visits (i32.add (i32.mul (local.get $visits) (i32.const 10)) (local.get $c)))
            (local.set $dlen (i32.add (local.get $dlen) (i32.const 1)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $next)))
        (if (i32.or (i32.or (i32.eqz (local.get $dlen)) (i32.gt_u (local.get $dlen) (i32.const 9)))
                    (i32.ne (call $skip_ws (local.get $i) (i32.add (local.get $buf) (local.get $n)))
                            (i32.add (local.get $buf) (local.get $n))))
          (then
            (call $error (i32.const 128) (i32.const 37))
            (return (i32.const 1)))))
      (else
        (if (i32.ne (local.get $status) (i32.const 2)) ;; 2 = not found: start from 0
          (then (return (call $fail_with_result))))))
    (local.set $visits (i32.add (local.get $visits) (i32.const 1)))
    ;; format $visits in decimal, right-aligned in a 16-byte buffer
    (local.set $digits (call $alloc (i32.const 16)))
    (local.set $i (i32.add (local.get $digits) (i32.const 16)))
    (loop $digit
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (local.get $i) (i32.add (i32.const 48) (i32.rem_u (local.get $visits) (i32.const 10))))
      (local.set $visits (i32.div_u (local.get $visits) (i32.const 10)))
      (br_if $digit (local.get $visits)))
    (local.set $dlen (i32.sub (i32.add (local.get $digits) (i32.const 16)) (local.get $i)))
    (local.set $status (call $kv_put (i32.const 0) (i32.const 6) (i32.const 8) (i32.const 5)
                                     (local.get $i) (local.get $dlen)))
    (if (local.get $status) (then (return (call $fail_with_result))))
    (local.set $out (call $alloc (i32.add (local.get $dlen) (i32.const 11))))
    (memory.copy (local.get $out) (i32.const 64) (i32.const 10))
    (memory.copy (i32.add (local.get $out) (i32.const 10)) (local.get $i) (local.get $dlen))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $dlen) (i32.const 10))) (i32.const 125))
    (call $output (local.get $out) (i32.add (local.get $dlen) (i32.const 11)))
    (i32.const 0))
)
