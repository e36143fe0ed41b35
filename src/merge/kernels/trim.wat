;; The pruning methods' elementwise kernels on WebAssembly SIMD; trim.ts lays out the memory and is the only
;; caller, and scripts/wasm.mjs assembles this file into trim-wasm.ts.
;;
;; Top-k by magnitude (radix select on the bits: for non-negative floats the bit pattern orders like the value):
;; `histogram` counts the high 15 bits of |x|, `bucket` finds the bucket holding the k-th largest, `collect` gathers
;; that bucket's magnitudes (a few hundred, sorted in JS) or, when it holds too many, `lowHistogram` counts their
;; low 16 bits. MagnitudeSelector (select.ts) is the same select fed in chunks, in JS.
;;
;; DARE's random drop and rescale (`dare`), TIES' trim, sign election and disjoint mean (`elect`), and the trimmed
;; weighted sum (`sum`), four elements at a time, bit-identical to the scalar rules (primitives.ts documents them):
;; - a value is kept when its magnitude bits exceed the input's threshold bits, or equal them while the input's
;;   tie count lasts, in element order (the rare case, lane by lane in $keepTies);
;; - the 'total' vote adds the kept values in f32 (f32 sums rounded through f64 are f32 sums: 53 >= 2*24 + 2);
;; - weighted sums run in f64 and round to f32 after every addition, as Math.fround does.
;; Layout of `elect` and `sum`, offsets in bytes: params holds per input {threshold bits i32, ties left i32, weight f64} (16 bytes),
;; then per input a 16-byte scratch for the kept mask; input i's values start at in + i*len*4; len is a multiple of
;; 4. stats receives three i32x4 of per-lane counts: entries combined, contested elements, sign conflicts.
(module
  (memory (export "memory") 1)

  ;; adds the high 15 bits of each |x| of $len values at $src to the 2^15 i32 counts at $hist; returns the OR of
  ;; the magnitudes (no bucket above its high bits holds a value)
  (func (export "histogram") (param $src i32) (param $len i32) (param $hist i32) (result i32)
    (local $end i32) (local $m i32) (local $seen i32) (local $at i32)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $len) (i32.const 2))))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $m (i32.and (i32.load (local.get $src)) (i32.const 0x7fffffff)))
        (local.set $seen (i32.or (local.get $seen) (local.get $m)))
        (local.set $at (i32.add (local.get $hist) (i32.shl (i32.shr_u (local.get $m) (i32.const 16)) (i32.const 2))))
        (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br $each)))
    (local.get $seen))

  ;; the highest bucket at or below $top whose counts, with those above it, reach $k (>= 1, at most the total);
  ;; the count above it goes to $above
  (func (export "bucket") (param $hist i32) (param $top i32) (param $k i32) (param $above i32) (result i32)
    (local $b i32) (local $seen i32) (local $c i32)
    (local.set $b (local.get $top))
    (loop $each
      (local.set $c (i32.load (i32.add (local.get $hist) (i32.shl (local.get $b) (i32.const 2)))))
      (if (i32.ge_u (i32.add (local.get $seen) (local.get $c)) (local.get $k))
        (then
          (i32.store (local.get $above) (local.get $seen))
          (return (local.get $b))))
      (local.set $seen (i32.add (local.get $seen) (local.get $c)))
      (local.set $b (i32.sub (local.get $b) (i32.const 1)))
      (br_if $each (i32.ge_s (local.get $b) (i32.const 0))))
    (unreachable))

  ;; the values from $src to $end one by one: see collect
  (func $collectEach (param $src i32) (param $end i32) (param $bucket i32) (param $dst i32) (param $cap i32)
    (param $found i32) (result i32)
    (local $m i32)
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $m (i32.and (i32.load (local.get $src)) (i32.const 0x7fffffff)))
        (if (i32.eq (i32.shr_u (local.get $m) (i32.const 16)) (local.get $bucket))
          (then
            (if (i32.lt_u (local.get $found) (local.get $cap))
              (then (i32.store (i32.add (local.get $dst) (i32.shl (local.get $found) (i32.const 2))) (local.get $m))))
            (local.set $found (i32.add (local.get $found) (i32.const 1)))))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br $each)))
    (local.get $found))

  ;; appends the magnitudes of the $len values at $src whose high 15 bits are $bucket to the $found already at
  ;; $dst, while fewer than $cap are there; returns how many there are in all (which may pass $cap)
  (func (export "collect") (param $src i32) (param $len i32) (param $bucket i32) (param $dst i32) (param $cap i32)
    (param $found i32) (result i32)
    (local $end4 i32) (local $want v128)
    (local.set $end4 (i32.add (local.get $src) (i32.shl (i32.and (local.get $len) (i32.const -4)) (i32.const 2))))
    (local.set $want (i32x4.splat (local.get $bucket)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $src) (local.get $end4)))
        (if (v128.any_true (i32x4.eq (local.get $want) (i32x4.shr_u
              (v128.and (v128.load (local.get $src)) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))
              (i32.const 16))))
          (then
            (local.set $found (call $collectEach (local.get $src) (i32.add (local.get $src) (i32.const 16))
              (local.get $bucket) (local.get $dst) (local.get $cap) (local.get $found)))))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (br $each)))
    (call $collectEach (local.get $src) (i32.add (local.get $src) (i32.shl (i32.and (local.get $len) (i32.const 3)) (i32.const 2)))
      (local.get $bucket) (local.get $dst) (local.get $cap) (local.get $found)))

  ;; adds the low 16 bits of the magnitudes whose high 15 bits are $bucket to the 2^16 i32 counts at $hist
  (func (export "lowHistogram") (param $src i32) (param $len i32) (param $bucket i32) (param $hist i32)
    (local $end i32) (local $m i32) (local $at i32)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $len) (i32.const 2))))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $m (i32.and (i32.load (local.get $src)) (i32.const 0x7fffffff)))
        (if (i32.eq (i32.shr_u (local.get $m) (i32.const 16)) (local.get $bucket))
          (then
            (local.set $at (i32.add (local.get $hist) (i32.shl (i32.and (local.get $m) (i32.const 0xffff)) (i32.const 2))))
            (i32.store (local.get $at) (i32.add (i32.load (local.get $at)) (i32.const 1)))))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br $each))))

  ;; DARE in place on the $len values at $at ($len a multiple of 4): value j, element $offset + j of its tensor, is
  ;; kept times $scale when mix32(mix32(index ^ $k0) + $k1) is below $cut (unsigned), and zeroed otherwise;
  ;; prng.ts's randomBits is that mix, and primitives.ts's darePrune the rule
  (func (export "dare") (param $at i32) (param $len i32) (param $offset i32) (param $k0 i32) (param $k1 i32)
    (param $cut i32) (param $scale f64)
    (local $end i32) (local $index v128) (local $x v128) (local $v v128) (local $s v128)
    (local.set $end (i32.add (local.get $at) (i32.shl (local.get $len) (i32.const 2))))
    (local.set $index (i32x4.add (i32x4.splat (local.get $offset)) (v128.const i32x4 0 1 2 3)))
    (local.set $s (f64x2.splat (local.get $scale)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        ;; x = mix32(index ^ k0) + k1
        (local.set $x (v128.xor (local.get $index) (i32x4.splat (local.get $k0))))
        (local.set $x (v128.xor (local.get $x) (i32x4.shr_u (local.get $x) (i32.const 16))))
        (local.set $x (i32x4.mul (local.get $x) (v128.const i32x4 0x7feb352d 0x7feb352d 0x7feb352d 0x7feb352d)))
        (local.set $x (v128.xor (local.get $x) (i32x4.shr_u (local.get $x) (i32.const 15))))
        (local.set $x (i32x4.mul (local.get $x) (v128.const i32x4 0x846ca68b 0x846ca68b 0x846ca68b 0x846ca68b)))
        (local.set $x (v128.xor (local.get $x) (i32x4.shr_u (local.get $x) (i32.const 16))))
        (local.set $x (i32x4.add (local.get $x) (i32x4.splat (local.get $k1))))
        ;; x = mix32(x)
        (local.set $x (v128.xor (local.get $x) (i32x4.shr_u (local.get $x) (i32.const 16))))
        (local.set $x (i32x4.mul (local.get $x) (v128.const i32x4 0x7feb352d 0x7feb352d 0x7feb352d 0x7feb352d)))
        (local.set $x (v128.xor (local.get $x) (i32x4.shr_u (local.get $x) (i32.const 15))))
        (local.set $x (i32x4.mul (local.get $x) (v128.const i32x4 0x846ca68b 0x846ca68b 0x846ca68b 0x846ca68b)))
        (local.set $x (v128.xor (local.get $x) (i32x4.shr_u (local.get $x) (i32.const 16))))
        ;; f32(v * scale), the product in f64 as JS takes it, where kept
        (local.set $v (v128.load (local.get $at)))
        (local.set $v (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (f64x2.mul (f64x2.promote_low_f32x4 (local.get $v)) (local.get $s)))
          (f32x4.demote_f64x2_zero (f64x2.mul (f64x2.promote_low_f32x4
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))) (local.get $s)))))
        (v128.store (local.get $at) (v128.and (local.get $v) (i32x4.lt_u (local.get $x) (i32x4.splat (local.get $cut)))))
        (local.set $index (i32x4.add (local.get $index) (v128.const i32x4 4 4 4 4)))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $each))))

  ;; lanes whose magnitude equals the threshold are kept, in lane order, while the input's tie count lasts
  (func $keepTies (param $k v128) (param $eq v128) (param $ties i32) (result v128)
    (local $r i32)
    (local.set $r (i32.load (local.get $ties)))
    (if (i32.and (i32x4.extract_lane 0 (local.get $eq)) (i32.gt_s (local.get $r) (i32.const 0)))
      (then
        (local.set $k (i32x4.replace_lane 0 (local.get $k) (i32.const -1)))
        (local.set $r (i32.sub (local.get $r) (i32.const 1)))))
    (if (i32.and (i32x4.extract_lane 1 (local.get $eq)) (i32.gt_s (local.get $r) (i32.const 0)))
      (then
        (local.set $k (i32x4.replace_lane 1 (local.get $k) (i32.const -1)))
        (local.set $r (i32.sub (local.get $r) (i32.const 1)))))
    (if (i32.and (i32x4.extract_lane 2 (local.get $eq)) (i32.gt_s (local.get $r) (i32.const 0)))
      (then
        (local.set $k (i32x4.replace_lane 2 (local.get $k) (i32.const -1)))
        (local.set $r (i32.sub (local.get $r) (i32.const 1)))))
    (if (i32.and (i32x4.extract_lane 3 (local.get $eq)) (i32.gt_s (local.get $r) (i32.const 0)))
      (then
        (local.set $k (i32x4.replace_lane 3 (local.get $k) (i32.const -1)))
        (local.set $r (i32.sub (local.get $r) (i32.const 1)))))
    (i32.store (local.get $ties) (local.get $r))
    (local.get $k))

  ;; TIES: per element the sign of the kept values' sum ($byFrequency = 0) or of their count ($byFrequency = 1)
  ;; wins (a tie elects +); out = the weighted sum of the kept values of that sign over their count (at least 1)
  (func (export "elect") (param $n i32) (param $len i32) (param $byFrequency i32) (param $params i32) (param $in i32)
    (param $out i32) (param $stats i32)
    (local $stride i32) (local $scratch i32) (local $j i32) (local $i i32) (local $src i32) (local $p i32)
    (local $x v128) (local $k v128) (local $v v128) (local $a v128) (local $w v128) (local $e v128)
    (local $sum v128) (local $negc v128) (local $keptc v128) (local $cnt v128) (local $lo v128) (local $hi v128)
    (local $c v128) (local $sk v128) (local $sc v128) (local $sf v128) (local $t i32) (local $m v128) (local $eq v128)
    (local.set $stride (i32.shl (local.get $len) (i32.const 2)))
    (local.set $scratch (i32.add (local.get $params) (i32.shl (local.get $n) (i32.const 4))))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $j) (local.get $stride)))
        ;; trim and vote; counts are kept negated (a true mask is -1)
        (local.set $sum (v128.const i32x4 0 0 0 0))
        (local.set $negc (v128.const i32x4 0 0 0 0))
        (local.set $keptc (v128.const i32x4 0 0 0 0))
        (local.set $src (i32.add (local.get $in) (local.get $j)))
        (local.set $p (local.get $params))
        (local.set $i (i32.const 0))
        (loop $trim
          (local.set $x (v128.load (local.get $src)))
          ;; kept: magnitude bits above the threshold (both below 2^31, so the signed comparison orders them)
          (local.set $t (i32.load (local.get $p)))
          (local.set $m (v128.and (local.get $x) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
          (local.set $k (i32x4.gt_s (local.get $m) (i32x4.splat (local.get $t))))
          ;; or equal while ties last (a threshold of 0 keeps every non-zero value: its zeros are never ties)
          (if (i32.and (i32.ne (local.get $t) (i32.const 0)) (i32.gt_s (i32.load offset=4 (local.get $p)) (i32.const 0)))
            (then
              (local.set $eq (i32x4.eq (local.get $m) (i32x4.splat (local.get $t))))
              (if (v128.any_true (local.get $eq))
                (then (local.set $k (call $keepTies (local.get $k) (local.get $eq) (i32.add (local.get $p) (i32.const 4))))))))
          (v128.store (i32.add (local.get $scratch) (i32.shl (local.get $i) (i32.const 4))) (local.get $k))
          (local.set $sum (f32x4.add (local.get $sum) (v128.and (local.get $x) (local.get $k))))
          (local.set $negc (i32x4.add (local.get $negc) (v128.and (local.get $k) (i32x4.shr_s (local.get $x) (i32.const 31)))))
          (local.set $keptc (i32x4.add (local.get $keptc) (local.get $k)))
          (local.set $src (i32.add (local.get $src) (local.get $stride)))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $trim (i32.lt_u (local.get $i) (local.get $n))))
        ;; e: all ones where the negative sign won (negc = -neg, keptc - negc = -pos)
        (if (local.get $byFrequency)
          (then (local.set $e (i32x4.lt_s (local.get $negc) (i32x4.sub (local.get $keptc) (local.get $negc)))))
          (else (local.set $e (f32x4.lt (local.get $sum) (v128.const f32x4 0 0 0 0)))))
        ;; disjoint mean over the kept values whose sign won
        (local.set $lo (v128.const i32x4 0 0 0 0))
        (local.set $hi (v128.const i32x4 0 0 0 0))
        (local.set $cnt (v128.const i32x4 0 0 0 0))
        (local.set $src (i32.add (local.get $in) (local.get $j)))
        (local.set $p (local.get $params))
        (local.set $i (i32.const 0))
        (loop $mean
          (local.set $x (v128.load (local.get $src)))
          (local.set $k (v128.load (i32.add (local.get $scratch) (i32.shl (local.get $i) (i32.const 4)))))
          (local.set $a (v128.andnot (local.get $k) (v128.xor (i32x4.shr_s (local.get $x) (i32.const 31)) (local.get $e))))
          (local.set $cnt (i32x4.add (local.get $cnt) (local.get $a)))
          (local.set $v (v128.and (local.get $x) (local.get $a)))
          (local.set $w (f64x2.splat (f64.load offset=8 (local.get $p))))
          ;; lo, hi = fr(acc + w*v) for lanes 0-1 and 2-3: the sum in f64, rounded to f32
          (local.set $lo (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero
            (f64x2.add (local.get $lo) (f64x2.mul (local.get $w) (f64x2.promote_low_f32x4 (local.get $v)))))))
          (local.set $hi (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero
            (f64x2.add (local.get $hi) (f64x2.mul (local.get $w) (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))))))
          (local.set $src (i32.add (local.get $src) (local.get $stride)))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $mean (i32.lt_u (local.get $i) (local.get $n))))
        (local.set $c (i32x4.max_s (i32x4.neg (local.get $cnt)) (v128.const i32x4 1 1 1 1)))
        (local.set $lo (f64x2.div (local.get $lo) (f64x2.convert_low_i32x4_s (local.get $c))))
        (local.set $hi (f64x2.div (local.get $hi) (f64x2.convert_low_i32x4_s
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $c) (local.get $c)))))
        (v128.store (i32.add (local.get $out) (local.get $j)) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (local.get $lo)) (f32x4.demote_f64x2_zero (local.get $hi))))
        ;; stats: kept = agreeing entries, contested = two or more kept, conflicts = kept of both signs
        (local.set $sk (i32x4.sub (local.get $sk) (local.get $cnt)))
        (local.set $sc (i32x4.sub (local.get $sc) (i32x4.lt_s (local.get $keptc) (v128.const i32x4 -1 -1 -1 -1))))
        (local.set $sf (i32x4.sub (local.get $sf)
          (v128.and
            (i32x4.lt_s (local.get $negc) (v128.const i32x4 0 0 0 0))
            (i32x4.lt_s (i32x4.sub (local.get $keptc) (local.get $negc)) (v128.const i32x4 0 0 0 0)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $block)))
    (v128.store (local.get $stats) (local.get $sk))
    (v128.store offset=16 (local.get $stats) (local.get $sc))
    (v128.store offset=32 (local.get $stats) (local.get $sf)))

  ;; out = the weighted sum of every input's kept values; stats' first counts are the entries kept
  (func (export "sum") (param $n i32) (param $len i32) (param $params i32) (param $in i32) (param $out i32)
    (param $stats i32)
    (local $stride i32) (local $j i32) (local $i i32) (local $src i32) (local $p i32)
    (local $x v128) (local $k v128) (local $v v128) (local $w v128) (local $lo v128) (local $hi v128) (local $sk v128)
    (local $t i32) (local $m v128) (local $eq v128)
    (local.set $stride (i32.shl (local.get $len) (i32.const 2)))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $j) (local.get $stride)))
        (local.set $lo (v128.const i32x4 0 0 0 0))
        (local.set $hi (v128.const i32x4 0 0 0 0))
        (local.set $src (i32.add (local.get $in) (local.get $j)))
        (local.set $p (local.get $params))
        (local.set $i (i32.const 0))
        (loop $each
          (local.set $x (v128.load (local.get $src)))
          ;; kept: magnitude bits above the threshold (both below 2^31, so the signed comparison orders them)
          (local.set $t (i32.load (local.get $p)))
          (local.set $m (v128.and (local.get $x) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
          (local.set $k (i32x4.gt_s (local.get $m) (i32x4.splat (local.get $t))))
          ;; or equal while ties last (a threshold of 0 keeps every non-zero value: its zeros are never ties)
          (if (i32.and (i32.ne (local.get $t) (i32.const 0)) (i32.gt_s (i32.load offset=4 (local.get $p)) (i32.const 0)))
            (then
              (local.set $eq (i32x4.eq (local.get $m) (i32x4.splat (local.get $t))))
              (if (v128.any_true (local.get $eq))
                (then (local.set $k (call $keepTies (local.get $k) (local.get $eq) (i32.add (local.get $p) (i32.const 4))))))))
          (local.set $sk (i32x4.sub (local.get $sk) (local.get $k)))
          (local.set $v (v128.and (local.get $x) (local.get $k)))
          (local.set $w (f64x2.splat (f64.load offset=8 (local.get $p))))
          ;; lo, hi = fr(acc + w*v) for lanes 0-1 and 2-3: the sum in f64, rounded to f32
          (local.set $lo (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero
            (f64x2.add (local.get $lo) (f64x2.mul (local.get $w) (f64x2.promote_low_f32x4 (local.get $v)))))))
          (local.set $hi (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero
            (f64x2.add (local.get $hi) (f64x2.mul (local.get $w) (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))))))
          (local.set $src (i32.add (local.get $src) (local.get $stride)))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $each (i32.lt_u (local.get $i) (local.get $n))))
        (v128.store (i32.add (local.get $out) (local.get $j)) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (local.get $lo)) (f32x4.demote_f64x2_zero (local.get $hi))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $block)))
    (v128.store (local.get $stats) (local.get $sk))
    (v128.store offset=16 (local.get $stats) (v128.const i32x4 0 0 0 0))
    (v128.store offset=32 (local.get $stats) (v128.const i32x4 0 0 0 0))))
