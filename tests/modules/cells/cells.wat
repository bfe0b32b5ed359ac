;; cells: a test module for where WASM calls run and that each call gets a fresh instance
;; (tests/test_wasm_calls.py). Outputs are JSON numbers or true.
;;
;; leftovers     outputs how many of three cells it found set (a global, a cell in the first
;;               page, a cell in page 9 after growing the memory to 10 pages), then sets all
;;               three: a fresh instance always answers 0
;; log           log(info, "hello from cells"), outputs true
;; spin          loops forever
;; act_then_spin kv_put("cells", "n", "1"), then loops forever
;; egress        http_request to http://127.0.0.1:9/, outputs the status code
;; call          call("greet", "hello", {}), outputs the status code
;; nan           outputs NaN (not JSON)
(module
  (import "gati" "output" (func $output (param i32 i32)))
  (import "gati" "log" (func $log (param i32 i32 i32)))
  (import "gati" "kv_put" (func $kv_put (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "gati" "http_request" (func $http_request (param i32 i32) (result i32)))
  (import "gati" "call" (func $call (param i32 i32 i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)
  (global $seen (mut i32) (i32.const 0))

  (data (i32.const 0) "cells")                                          ;; 5
  (data (i32.const 8) "n")                                              ;; 1
  (data (i32.const 16) "1")                                             ;; 1
  (data (i32.const 24) "true")                                          ;; 4
  (data (i32.const 32) "hello from cells")                              ;; 16
  (data (i32.const 64) "{\"method\":\"GET\",\"url\":\"http://127.0.0.1:9/\"}") ;; 44
  (data (i32.const 112) "greet")                                        ;; 5
  (data (i32.const 120) "hello")                                        ;; 5
  (data (i32.const 128) "{}")                                           ;; 2
  (data (i32.const 136) "NaN")                                          ;; 3
  ;; 256: the one-digit answer; 1024: the first page's cell

  (func $digit (param $n i32) (result i32)
    (i32.store8 (i32.const 256) (i32.add (i32.const 48) (local.get $n)))
    (call $output (i32.const 256) (i32.const 1))
    (i32.const 0))

  (func (export "leftovers") (result i32)
    (local $found i32)
    (if (i32.lt_u (memory.size) (i32.const 10))
      (then (drop (memory.grow (i32.sub (i32.const 10) (memory.size))))))
    (local.set $found
      (i32.add (global.get $seen)
        (i32.add (i32.load (i32.const 1024)) (i32.load (i32.const 589832)))))
    (global.set $seen (i32.const 1))
    (i32.store (i32.const 1024) (i32.const 1))
    (i32.store (i32.const 589832) (i32.const 1))
    (call $digit (local.get $found)))

  (func (export "log") (result i32)
    (call $log (i32.const 1) (i32.const 32) (i32.const 16))
    (call $output (i32.const 24) (i32.const 4))
    (i32.const 0))

  (func (export "spin") (result i32)
    (loop $forever (br $forever))
    (i32.const 0))

  (func (export "act_then_spin") (result i32)
    (drop (call $kv_put (i32.const 0) (i32.const 5) (i32.const 8) (i32.const 1) (i32.const 16) (i32.const 1)))
    (loop $forever (br $forever))
    (i32.const 0))

  (func (export "egress") (result i32)
    (call $digit (call $http_request (i32.const 64) (i32.const 44))))

  (func (export "call") (result i32)
    (call $digit (call $call (i32.const 112) (i32.const 5) (i32.const 120) (i32.const 5) (i32.const 128) (i32.const 2))))

  (func (export "nan") (result i32)
    (call $output (i32.const 136) (i32.const 3))
    (i32.const 0))
)
