;; probe: a gati test module (ABI version 1, docs/wasm-abi.md) with one method per
;; host call and one per way of misbehaving. Tests drive it with plain ASCII inputs.
;;
;; Input conventions (so that the WAT never parses JSON):
;;   verbatim   the input bytes are used as they are
;;   "ARG"      the input is a JSON string; the first and last byte (the quotes) are
;;              dropped and the rest is used as is, WITHOUT unescaping: use plain
;;              ASCII with no quotes, backslashes or control characters
;;
;; method       input                   does
;; ----------   ---------------------   ----------------------------------------------
;; echo         anything (verbatim)     outputs the input
;; http         request JSON (verbatim) http_request(input)                      [json]
;; env          "NAME"                  env_get(NAME)                             [raw]
;; secret       "NAME"                  secret_get(NAME)                          [raw]
;; file_read    "PATH"                  file_read(PATH), e.g. "/data/hello.txt"   [raw]
;; file_write   "PATH"                  file_write(PATH, "written by probe\n")    [raw]
;; kv_get       "STORE/KEY"             kv_get(STORE, KEY) (split at the first /) [raw]
;; kv_put       "STORE/KEY=VALUE"       kv_put(STORE, KEY, VALUE) (first /, then first =) [raw]
;; call         any JSON (verbatim)     call("greet", "hello", payload = input)   [json]
;; call_to      "MODULE/METHOD"         call(MODULE, METHOD, payload = {})        [json]
;; log          anything (verbatim)     log(1 = info, input); outputs {"logged":true}
;; spin         ignored                 loops forever (for the wall-clock deadline)
;; membomb      ignored                 memory.grow(1) and touches each new page until
;;                                      grow returns -1, then calls error("memory.grow
;;                                      failed after N pages") and returns 1; a host
;;                                      that traps on a refused grow ends it as a trap
;; trap         ignored                 executes `unreachable`
;; crash        ignored                 the same (the name every probe gives its crash)
;; fail         ignored                 error("probe failed on purpose"), returns 1
;; silent_fail  ignored                 returns 7 without calling error
;; bad_output   ignored                 outputs the non-JSON bytes `not json`
;;
;; Host-call methods output {"status":S,"result":R}, S the status code and R the
;; host's result buffer:
;;   [json] methods (results are JSON): R is the buffer verbatim, null when empty.
;;   [raw] methods: on status 0, R is the buffer as a JSON string (" \ and control
;;          bytes escaped, other bytes copied, so the value must be UTF-8); on other
;;          statuses R is the buffer verbatim when it starts with { or [ (a JSON error
;;          or denial), null when empty, else a JSON string.
;; A malformed "ARG" input makes the method call error(...) and return 1.
(module
  (import "gati" "input_len" (func $input_len (result i32)))
  (import "gati" "input_read" (func $input_read (param i32)))
  (import "gati" "output" (func $output (param i32 i32)))
  (import "gati" "error" (func $error (param i32 i32)))
  (import "gati" "log" (func $log (param i32 i32 i32)))
  (import "gati" "result_len" (func $result_len (result i32)))
  (import "gati" "result_read" (func $result_read (param i32)))
  (import "gati" "http_request" (func $http_request (param i32 i32) (result i32)))
  (import "gati" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "gati" "kv_put" (func $kv_put (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gati" "secret_get" (func $secret_get (param i32 i32) (result i32)))
  (import "gati" "env_get" (func $env_get (param i32 i32) (result i32)))
  (import "gati" "file_read" (func $file_read (param i32 i32) (result i32)))
  (import "gati" "file_write" (func $file_write (param i32 i32 i32 i32) (result i32)))
  (import "gati" "call" (func $call (param i32 i32 i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)

  ;; constants (offset: length)
  (data (i32.const 0) "greet")                              ;; 5
  (data (i32.const 8) "hello")                              ;; 5
  (data (i32.const 16) "{\"status\":")                      ;; 10
  (data (i32.const 32) ",\"result\":")                      ;; 10
  (data (i32.const 48) "null")                              ;; 4
  (data (i32.const 56) "input must be a JSON string")       ;; 27
  (data (i32.const 88) "input must be \"STORE/KEY\"")       ;; 25
  (data (i32.const 120) "input must be \"STORE/KEY=VALUE\"") ;; 31
  (data (i32.const 152) "input must be \"MODULE/METHOD\"")  ;; 29
  (data (i32.const 184) "probe failed on purpose")          ;; 23
  (data (i32.const 208) "memory.grow failed after ")        ;; 25
  (data (i32.const 240) " pages")                           ;; 6
  (data (i32.const 248) "not json")                         ;; 8
  (data (i32.const 256) "{\"logged\":true}")                ;; 15
  (data (i32.const 272) "written by probe\n")               ;; 17
  (data (i32.const 296) "{}")                               ;; 2
  (data (i32.const 304) "0123456789abcdef")                 ;; 16
  ;; 512..1007: scratch for the membomb message; 1008..1023: decimal digits
  ;; 4096..: bump-allocated buffers

  (global $heap (mut i32) (i32.const 4096))
  (global $in (mut i32) (i32.const 0))
  (global $in_len (mut i32) (i32.const 0))
  (global $arg (mut i32) (i32.const 0))
  (global $arg_len (mut i32) (i32.const 0))
  (global $pos (mut i32) (i32.const 0))

  ;; ---- helpers -------------------------------------------------------------

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
    (global.set $heap (i32.and (i32.add (local.get $end) (i32.const 7)) (i32.const -8)))
    (local.get $p))

  (func $read_input
    (global.set $in_len (call $input_len))
    (global.set $in (call $alloc (global.get $in_len)))
    (if (global.get $in_len) (then (call $input_read (global.get $in)))))

  ;; Read an input of the form "ARG" into $arg/$arg_len; 0 (after error) if it is not.
  (func $read_arg (result i32)
    (call $read_input)
    (if (i32.or
          (i32.lt_u (global.get $in_len) (i32.const 2))
          (i32.or
            (i32.ne (i32.load8_u (global.get $in)) (i32.const 34))
            (i32.ne (i32.load8_u (i32.sub (i32.add (global.get $in) (global.get $in_len)) (i32.const 1)))
                    (i32.const 34))))
      (then
        (call $error (i32.const 56) (i32.const 27))
        (return (i32.const 0))))
    (global.set $arg (i32.add (global.get $in) (i32.const 1)))
    (global.set $arg_len (i32.sub (global.get $in_len) (i32.const 2)))
    (i32.const 1))

  ;; Index of the first byte ch in [p, p+n), or -1.
  (func $find (param $p i32) (param $n i32) (param $ch i32) (result i32)
    (local $i i32)
    (block $none
      (loop $next
        (br_if $none (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.eq (i32.load8_u (i32.add (local.get $p) (local.get $i))) (local.get $ch))
          (then (return (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const -1))

  (func $put (param $src i32) (param $n i32)
    (memory.copy (global.get $pos) (local.get $src) (local.get $n))
    (global.set $pos (i32.add (global.get $pos) (local.get $n))))

  (func $put_byte (param $b i32)
    (i32.store8 (global.get $pos) (local.get $b))
    (global.set $pos (i32.add (global.get $pos) (i32.const 1))))

  ;; Append v in decimal (signed).
  (func $put_dec (param $v i32)
    (local $p i32)
    (if (i32.lt_s (local.get $v) (i32.const 0))
      (then
        (call $put_byte (i32.const 45))
        (local.set $v (i32.sub (i32.const 0) (local.get $v)))))
    (local.set $p (i32.const 1024))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digit (local.get $v)))
    (call $put (local.get $p) (i32.sub (i32.const 1024) (local.get $p))))

  ;; Append [src, src+n) as a JSON string literal (at most 6n+2 bytes).
  (func $put_string (param $src i32) (param $n i32)
    (local $end i32) (local $c i32)
    (local.set $end (i32.add (local.get $src) (local.get $n)))
    (call $put_byte (i32.const 34))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $src)))
        (if (i32.or (i32.eq (local.get $c) (i32.const 34)) (i32.eq (local.get $c) (i32.const 92)))
          (then (call $put_byte (i32.const 92)) (call $put_byte (local.get $c)))
          (else
            (if (i32.lt_u (local.get $c) (i32.const 32))
              (then
                (call $put_byte (i32.const 92))  ;; \u00XX
                (call $put_byte (i32.const 117))
                (call $put_byte (i32.const 48))
                (call $put_byte (i32.const 48))
                (call $put_byte (i32.load8_u (i32.add (i32.const 304) (i32.shr_u (local.get $c) (i32.const 4)))))
                (call $put_byte (i32.load8_u (i32.add (i32.const 304) (i32.and (local.get $c) (i32.const 15))))))
              (else (call $put_byte (local.get $c))))))
        (local.set $src (i32.add (local.get $src) (i32.const 1)))
        (br $next)))
    (call $put_byte (i32.const 34)))

  ;; Output {"status":S,"result":R} for the last host call (see the table above).
  (func $report (param $status i32) (param $json i32) (result i32)
    (local $n i32) (local $buf i32) (local $out i32) (local $c i32)
    (local.set $n (call $result_len))
    (local.set $buf (call $alloc (local.get $n)))
    (if (local.get $n) (then (call $result_read (local.get $buf))))
    (local.set $out (call $alloc (i32.add (i32.mul (local.get $n) (i32.const 6)) (i32.const 64))))
    (global.set $pos (local.get $out))
    (call $put (i32.const 16) (i32.const 10))
    (call $put_dec (local.get $status))
    (call $put (i32.const 32) (i32.const 10))
    (if (i32.eqz (local.get $json))
      (then (if (i32.eqz (local.get $status))
        (then (call $put_string (local.get $buf) (local.get $n))
              (call $put_byte (i32.const 125))
              (call $output (local.get $out) (i32.sub (global.get $pos) (local.get $out)))
              (return (i32.const 0))))))
    (if (i32.eqz (local.get $n))
      (then (call $put (i32.const 48) (i32.const 4)))
      (else
        (local.set $c (i32.load8_u (local.get $buf)))
        (if (i32.or (local.get $json)
                    (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91))))
          (then (call $put (local.get $buf) (local.get $n)))
          (else (call $put_string (local.get $buf) (local.get $n))))))
    (call $put_byte (i32.const 125))
    (call $output (local.get $out) (i32.sub (global.get $pos) (local.get $out)))
    (i32.const 0))

  ;; ---- methods -------------------------------------------------------------

  (func (export "echo") (result i32)
    (call $read_input)
    (call $output (global.get $in) (global.get $in_len))
    (i32.const 0))

  (func (export "http") (result i32)
    (call $read_input)
    (call $report (call $http_request (global.get $in) (global.get $in_len)) (i32.const 1)))

  (func (export "env") (result i32)
    (if (i32.eqz (call $read_arg)) (then (return (i32.const 1))))
    (call $report (call $env_get (global.get $arg) (global.get $arg_len)) (i32.const 0)))

  (func (export "secret") (result i32)
    (if (i32.eqz (call $read_arg)) (then (return (i32.const 1))))
    (call $report (call $secret_get (global.get $arg) (global.get $arg_len)) (i32.const 0)))

  (func (export "file_read") (result i32)
    (if (i32.eqz (call $read_arg)) (then (return (i32.const 1))))
    (call $report (call $file_read (global.get $arg) (global.get $arg_len)) (i32.const 0)))

  (func (export "file_write") (result i32)
    (if (i32.eqz (call $read_arg)) (then (return (i32.const 1))))
    (call $report
      (call $file_write (global.get $arg) (global.get $arg_len) (i32.const 272) (i32.const 17))
      (i32.const 0)))

  (func (export "kv_get") (result i32)
    (local $i i32)
    (if (i32.eqz (call $read_arg)) (then (return (i32.const 1))))
    (local.set $i (call $find (global.get $arg) (global.get $arg_len) (i32.const 47)))
    (if (i32.lt_s (local.get $i) (i32.const 0))
      (then (call $error (i32.const 88) (i32.const 25)) (return (i32.const 1))))
    (call $report
      (call $kv_get
        (global.get $arg) (local.get $i)
        (i32.add (global.get $arg) (i32.add (local.get $i) (i32.const 1)))
        (i32.sub (global.get $arg_len) (i32.add (local.get $i) (i32.const 1))))
      (i32.const 0)))

  (func (export "kv_put") (result i32)
    (local $i i32) (local $rest i32) (local $rest_len i32) (local $j i32)
    (if (i32.eqz (call $read_arg)) (then (return (i32.const 1))))
    (local.set $i (call $find (global.get $arg) (global.get $arg_len) (i32.const 47)))
    (if (i32.lt_s (local.get $i) (i32.const 0))
      (then (call $error (i32.const 120) (i32.const 31)) (return (i32.const 1))))
    (local.set $rest (i32.add (global.get $arg) (i32.add (local.get $i) (i32.const 1))))
    (local.set $rest_len (i32.sub (global.get $arg_len) (i32.add (local.get $i) (i32.const 1))))
    (local.set $j (call $find (local.get $rest) (local.get $rest_len) (i32.const 61)))
    (if (i32.lt_s (local.get $j) (i32.const 0))
      (then (call $error (i32.const 120) (i32.const 31)) (return (i32.const 1))))
    (call $report
      (call $kv_put
        (global.get $arg) (local.get $i)
        (local.get $rest) (local.get $j)
        (i32.add (local.get $rest) (i32.add (local.get $j) (i32.const 1)))
        (i32.sub (local.get $rest_len) (i32.add (local.get $j) (i32.const 1))))
      (i32.const 0)))

  (func (export "call") (result i32)
    (call $read_input)
    (call $report
      (call $call (i32.const 0) (i32.const 5) (i32.const 8) (i32.const 5)
                  (global.get $in) (global.get $in_len))
      (i32.const 1)))

  (func (export "call_to") (result i32)
    (local $i i32)
    (if (i32.eqz (call $read_arg)) (then (return (i32.const 1))))
    (local.set $i (call $find (global.get $arg) (global.get $arg_len) (i32.const 47)))
    (if (i32.lt_s (local.get $i) (i32.const 0))
      (then (call $error (i32.const 152) (i32.const 29)) (return (i32.const 1))))
    (call $report
      (call $call
        (global.get $arg) (local.get $i)
        (i32.add (global.get $arg) (i32.add (local.get $i) (i32.const 1)))
        (i32.sub (global.get $arg_len) (i32.add (local.get $i) (i32.const 1)))
        (i32.const 296) (i32.const 2))
      (i32.const 1)))

  (func (export "log") (result i32)
    (call $read_input)
    (call $log (i32.const 1) (global.get $in) (global.get $in_len))
    (call $output (i32.const 256) (i32.const 15))
    (i32.const 0))

  (func (export "spin") (result i32)
    (loop $forever (br $forever))
    (i32.const 0))

  (func (export "membomb") (result i32)
    (local $old i32)
    (block $refused
      (loop $more
        (local.set $old (memory.grow (i32.const 1)))
        (br_if $refused (i32.eq (local.get $old) (i32.const -1)))
        ;; touch the new page so that it is really committed
        (i32.store8 (i32.shl (local.get $old) (i32.const 16)) (i32.const 1))
        (br $more)))
    (global.set $pos (i32.const 512))
    (call $put (i32.const 208) (i32.const 25))
    (call $put_dec (memory.size))
    (call $put (i32.const 240) (i32.const 6))
    (call $error (i32.const 512) (i32.sub (global.get $pos) (i32.const 512)))
    (i32.const 1))

  (func (export "trap") (export "crash") (result i32)
    unreachable)

  (func (export "fail") (result i32)
    (call $error (i32.const 184) (i32.const 23))
    (i32.const 1))

  (func (export "silent_fail") (result i32)
    (i32.const 7))

  (func (export "bad_output") (result i32)
    (call $output (i32.const 248) (i32.const 8))
    (i32.const 0))
)
