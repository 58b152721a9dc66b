;; The core module of the tiny test guest (see `testing.rs`): a
;; `wasi:http/incoming-handler` that reads its request head and answers
;; through `wasmhost:platform/exchange`. Every request counts; the response
;; body is the count of requests this instance has served, unless the path
;; asks for something else:
;;
;;   /trap        traps (`unreachable`)
;;   /loop        spins forever (only epoch interruption stops it)
;;   /grow        grows its memory by 64 MiB (refused past the memory limit),
;;                then answers the count
;;   /noresponse  returns without answering
;;   /spin/N      busy-waits N milliseconds on the monotonic clock, then
;;                answers the count
;;   anything else: the count
;;
;; Memory map: 16..128 constant strings, 1024 the request-head record,
;; 1100 the result area of `respond`, 1200..1232 digits, 4096.. a bump heap
;; for `cabi_realloc`, reset at every request.
(module
  (import "wasmhost:platform/exchange@0.1.0" "head" (func $head (param i32 i32)))
  (import "wasmhost:platform/exchange@0.1.0" "respond"
    (func $respond (param i32 i32 i32 i32 i32 i32 i32)))
  (import "wasi:clocks/monotonic-clock@0.2.12" "now" (func $now (result i64)))
  (import "wasi:http/types@0.2.12" "[resource-drop]incoming-request" (func $drop_request (param i32)))
  (import "wasi:http/types@0.2.12" "[resource-drop]response-outparam" (func $drop_outparam (param i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (global $count (mut i32) (i32.const 0))

  (data (i32.const 32) "/trap")
  (data (i32.const 48) "/loop")
  (data (i32.const 64) "/grow")
  (data (i32.const 80) "/noresponse")
  (data (i32.const 96) "/spin/")

  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32)
    (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (block $fits
      (loop $grow
        (br_if $fits (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (if (local.get $old_size)
      (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
    (local.get $ptr))

  ;; Whether the `len` bytes at `ptr` start with the `n` bytes at `lit`.
  (func $starts (param $ptr i32) (param $len i32) (param $lit i32) (param $n i32) (result i32)
    (local $i i32)
    (if (i32.lt_u (local.get $len) (local.get $n)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $lit) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; Whether the path (up to `?`) at `ptr` is exactly the `n` bytes at `lit`.
  (func $is (param $ptr i32) (param $len i32) (param $lit i32) (param $n i32) (result i32)
    (if (i32.eqz (call $starts (local.get $ptr) (local.get $len) (local.get $lit) (local.get $n)))
      (then (return (i32.const 0))))
    (if (i32.eq (local.get $len) (local.get $n)) (then (return (i32.const 1))))
    (i32.eq (i32.load8_u (i32.add (local.get $ptr) (local.get $n))) (i32.const 63)))

  ;; The decimal number in the `len` bytes at `ptr` (stops at a non-digit).
  (func $parse (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $value i32) (local $digit i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $digit (i32.sub (i32.load8_u (i32.add (local.get $ptr) (local.get $i))) (i32.const 48)))
        (br_if $done (i32.gt_u (local.get $digit) (i32.const 9)))
        (local.set $value (i32.add (i32.mul (local.get $value) (i32.const 10)) (local.get $digit)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $value))

  ;; Busy-waits `ms` milliseconds on the monotonic clock.
  (func $spin (param $ms i32)
    (local $until i64)
    (local.set $until (i64.add (call $now) (i64.mul (i64.extend_i32_u (local.get $ms)) (i64.const 1000000))))
    (block $done
      (loop $wait
        (br_if $done (i64.ge_u (call $now) (local.get $until)))
        (br $wait))))

  ;; Answers 200 with the request count as its body.
  (func $respond_count (param $out i32)
    (local $n i32) (local $pos i32)
    (local.set $n (global.get $count))
    (local.set $pos (i32.const 1232))
    (loop $digit
      (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
      (i32.store8 (local.get $pos) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digit (local.get $n)))
    (call $respond (local.get $out) (i32.const 200) (i32.const 0) (i32.const 0)
      (local.get $pos) (i32.sub (i32.const 1232) (local.get $pos)) (i32.const 1100)))

  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $path i32) (local $len i32)
    (global.set $heap (i32.const 4096))
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (call $head (local.get $request) (i32.const 1024))
    (local.set $path (i32.load offset=8 (i32.const 1024)))
    (local.set $len (i32.load offset=12 (i32.const 1024)))
    (call $drop_request (local.get $request))
    (if (call $is (local.get $path) (local.get $len) (i32.const 32) (i32.const 5)) (then unreachable))
    (if (call $is (local.get $path) (local.get $len) (i32.const 48) (i32.const 5))
      (then (loop $forever (br $forever))))
    (if (call $is (local.get $path) (local.get $len) (i32.const 80) (i32.const 11))
      (then (call $drop_outparam (local.get $out)) (return)))
    (if (call $is (local.get $path) (local.get $len) (i32.const 64) (i32.const 5))
      (then (drop (memory.grow (i32.const 1024)))))
    (if (call $starts (local.get $path) (local.get $len) (i32.const 96) (i32.const 6))
      (then (call $spin (call $parse (i32.add (local.get $path) (i32.const 6))
                                     (i32.sub (local.get $len) (i32.const 6))))))
    (call $respond_count (local.get $out)))
)
