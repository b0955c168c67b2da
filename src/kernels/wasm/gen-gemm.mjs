// Generates src/kernels/wasm/gemm-wasm.ts (the WebAssembly SIMD GEMM bytes, base64) from the
// WAT written below. The bytes are checked in so nothing at runtime needs wabt.
//   node src/kernels/wasm/gen-gemm.mjs
//
// Kernel: C[Mp×Np] = A[Mp×Kp] · B, all float32, row-major A and C; B arrives packed in
// panels of 8 columns (panel jb holds B[k][8jb..8jb+8) for k = 0..Kp-1, contiguous), so the
// micro-kernel streams it. Mp % 4 == 0, Kp % 4 == 0, Np % 8 == 0: the caller pads with zeros.
// Micro-kernel: a 4×8 tile of C in 8 f32x4 accumulators; k unrolled by 4 so each row of A is
// one v128 load whose lanes are broadcast by shuffles. Columns are blocked by NC and rows by MC
// (GotoBLAS order): a Kp×NC slab of B and an MC×Kp block of A stay in L2 while each B panel
// (Kp×8, L1-sized for Kp ≤ 1024) passes over the A block.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const MC = 64;
const NC = 128;

function lane(v, l) {
  const idx = [];
  for (let r = 0; r < 4; r++) for (let b = 0; b < 4; b++) idx.push(l * 4 + b);
  return `(i8x16.shuffle ${idx.join(' ')} (local.get ${v}) (local.get ${v}))`;
}

function microKernelBody() {
  const lines = [];
  // a0..a3: four consecutive k of rows 0..3; bp advances 4 k × 32 bytes per step.
  for (let r = 0; r < 4; r++) lines.push(`(local.set $a${r} (v128.load (i32.add (local.get $ap) (i32.mul (local.get $rs) (i32.const ${r})))))`);
  for (let kk = 0; kk < 4; kk++) {
    lines.push(`(local.set $b0 (v128.load offset=${kk * 32} (local.get $bp)))`);
    lines.push(`(local.set $b1 (v128.load offset=${kk * 32 + 16} (local.get $bp)))`);
    for (let r = 0; r < 4; r++) {
      lines.push(`(local.set $s ${lane(`$a${r}`, kk)})`);
      lines.push(`(local.set $c${r}0 (f32x4.add (local.get $c${r}0) (f32x4.mul (local.get $s) (local.get $b0))))`);
      lines.push(`(local.set $c${r}1 (f32x4.add (local.get $c${r}1) (f32x4.mul (local.get $s) (local.get $b1))))`);
    }
  }
  return lines.join('\n          ');
}

const accLocals = [];
for (let r = 0; r < 4; r++) for (let h = 0; h < 2; h++) accLocals.push(`(local $c${r}${h} v128)`);
const zeroAcc = [];
for (let r = 0; r < 4; r++) for (let h = 0; h < 2; h++) zeroAcc.push(`(local.set $c${r}${h} (v128.const i32x4 0 0 0 0))`);
const storeAcc = [];
for (let r = 0; r < 4; r++) {
  for (let h = 0; h < 2; h++) {
    storeAcc.push(`(v128.store offset=${h * 16} (i32.add (local.get $cp) (i32.mul (local.get $cs) (i32.const ${r}))) (local.get $c${r}${h}))`);
  }
}

const wat = `
(module
  (memory (export "memory") 1)
  ;; gemm(a, bp, c, Mp, Np, Kp): byte offsets a, bp, c; sizes in elements.
  (func (export "gemm") (param $a i32) (param $bpBase i32) (param $c i32) (param $M i32) (param $N i32) (param $K i32)
    (local $rs i32) (local $cs i32) (local $ic i32) (local $icEnd i32) (local $jb i32) (local $i i32)
    (local $ap i32) (local $bp i32) (local $cp i32) (local $kEnd i32) (local $panel i32)
    (local $jc i32) (local $jcEnd i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $s v128)
    ${accLocals.join(' ')}
    (local.set $rs (i32.shl (local.get $K) (i32.const 2)))
    (local.set $cs (i32.shl (local.get $N) (i32.const 2)))
    (local.set $jc (i32.const 0))
    (block $doneJc (loop $loopJc
    (br_if $doneJc (i32.ge_u (local.get $jc) (local.get $N)))
    (local.set $jcEnd (i32.add (local.get $jc) (i32.const ${NC})))
    (if (i32.gt_u (local.get $jcEnd) (local.get $N)) (then (local.set $jcEnd (local.get $N))))
    (local.set $ic (i32.const 0))
    (block $doneIc (loop $loopIc
      (br_if $doneIc (i32.ge_u (local.get $ic) (local.get $M)))
      (local.set $icEnd (i32.add (local.get $ic) (i32.const ${MC})))
      (if (i32.gt_u (local.get $icEnd) (local.get $M)) (then (local.set $icEnd (local.get $M))))
      (local.set $jb (local.get $jc))
      (block $doneJb (loop $loopJb
        (br_if $doneJb (i32.ge_u (local.get $jb) (local.get $jcEnd)))
        ;; panel start: bpBase + jb * Kp * 4 bytes (jb counts columns, 8 per panel)
        (local.set $panel (i32.add (local.get $bpBase) (i32.mul (local.get $jb) (local.get $rs))))
        (local.set $i (local.get $ic))
        (block $doneI (loop $loopI
          (br_if $doneI (i32.ge_u (local.get $i) (local.get $icEnd)))
          ${zeroAcc.join('\n          ')}
          (local.set $ap (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rs))))
          (local.set $kEnd (i32.add (local.get $ap) (local.get $rs)))
          (local.set $bp (local.get $panel))
          (block $doneK (loop $loopK
            (br_if $doneK (i32.ge_u (local.get $ap) (local.get $kEnd)))
          ${microKernelBody()}
            (local.set $ap (i32.add (local.get $ap) (i32.const 16)))
            (local.set $bp (i32.add (local.get $bp) (i32.const 128)))
            (br $loopK)))
          (local.set $cp (i32.add (local.get $c) (i32.add (i32.mul (local.get $i) (local.get $cs)) (i32.shl (local.get $jb) (i32.const 2)))))
          ${storeAcc.join('\n          ')}
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $loopI)))
        (local.set $jb (i32.add (local.get $jb) (i32.const 8)))
        (br $loopJb)))
      (local.set $ic (local.get $icEnd))
      (br $loopIc)))
    (local.set $jc (local.get $jcEnd))
    (br $loopJc)))
  )
)`;

const wabt = await wabtInit();
const mod = wabt.parseWat('gemm.wat', wat, { simd: true });
mod.validate();
const { buffer } = mod.toBinary({});
const b64 = Buffer.from(buffer).toString('base64');
const out = `// Generated by src/kernels/wasm/gen-gemm.mjs — do not edit; run \`node src/kernels/wasm/gen-gemm.mjs\`.
// WebAssembly SIMD float32 GEMM, 4×8 register tile (see the generator for the layout contract).
export const GEMM_WASM_BASE64 =
  '${b64}';
`;
writeFileSync(fileURLToPath(new URL('./gemm-wasm.ts', import.meta.url)), out);
console.log(`gemm-wasm.ts: ${buffer.length} bytes of wasm`);
