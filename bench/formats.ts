// Throughput of the formats layer: half-precision conversions against a plain per-element baseline, and lazy
// safetensors reads against reading the whole file, and the NaN/inf scan registration runs against both. Run with `npm run bench:formats`. Medians of 5 runs; the
// machine is shared, so compare the ratios, not the absolute numbers.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bf16ToF32, countNonFinite, f16ToF32, f32ToBf16, f32ToF16 } from '../src/formats/dtype.js';
import { SafetensorsFile, SafetensorsWriter } from '../src/formats/safetensors.js';
import { median } from './stats.js';

const N = 1 << 24; // 16M elements
const RUNS = 5;

async function time(fn: () => unknown | Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

/** The obvious implementation: decode each half through arithmetic, one DataView call per element. */
function naiveF16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i]!;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
    out[i] = h & 0x8000 ? -v : v;
  }
  return out;
}

function naiveF32ToBf16(src: Float32Array): Uint16Array {
  const view = new DataView(new ArrayBuffer(4));
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    view.setFloat32(0, src[i]!, true);
    const x = view.getUint32(0, true);
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

const x = Float32Array.from({ length: N }, (_, i) => Math.sin(i) * 3);
const h = f32ToF16(x);
const b = f32ToBf16(x);
const rate = (ms: number) => `${((N / ms) * 1e-3).toFixed(0)} M elem/s`;

console.log(`conversions, ${N} elements, median of ${RUNS}`);
const rows: [string, number, number | null][] = [
  ['f16 → f32 (table)', await time(() => f16ToF32(h)), await time(() => naiveF16ToF32(h))],
  ['f32 → f16 (bits, RNE)', await time(() => f32ToF16(x)), null],
  ['bf16 → f32 (shift)', await time(() => bf16ToF32(b)), null],
  ['f32 → bf16 (bits, RNE)', await time(() => f32ToBf16(x)), await time(() => naiveF32ToBf16(x))],
  ['NaN/inf count, f32', await time(() => countNonFinite(new Uint8Array(x.buffer), 'F32')), await time(() => x.filter((v) => !Number.isFinite(v)).length)],
  ['NaN/inf count, f16', await time(() => countNonFinite(new Uint8Array(h.buffer), 'F16')), await time(() => f16ToF32(h).filter((v) => !Number.isFinite(v)).length)],
];
for (const [name, ms, baseline] of rows) {
  console.log(`  ${name.padEnd(24)} ${ms.toFixed(1).padStart(7)} ms  ${rate(ms).padStart(14)}${baseline ? `  (${(baseline / ms).toFixed(1)}× the per-element baseline)` : ''}`);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-bench-'));
try {
  const file = path.join(dir, 'big.safetensors');
  const tensors = 64;
  const each = 1 << 20; // 64 tensors of 4 MiB: a 256 MiB file
  const layout = Array.from({ length: tensors }, (_, i) => ({ name: `t${i}`, dtype: 'F32' as const, shape: [each] }));
  const data = x.subarray(0, each);
  const writeMs = await time(async () => {
    const w = await SafetensorsWriter.create(file, layout);
    for (const t of layout) await w.write(t.name, data);
    await w.finish();
  });
  const st = await SafetensorsFile.open(file);
  const oneMs = await time(() => st.readFloat32('t37'));
  const allMs = await time(async () => {
    for (const t of layout) await st.readFloat32(t.name);
  });
  const scanMs = await time(() => st.scanNonFinite());
  await st.close();
  const wholeMs = await time(() => readFileSync(file));
  console.log(`safetensors, ${tensors} × 4 MiB F32 (256 MiB), median of ${RUNS}`);
  console.log(`  streaming write + fsync     ${writeMs.toFixed(0).padStart(6)} ms  (${(256 / (writeMs / 1000)).toFixed(0)} MiB/s)`);
  console.log(`  read one tensor (lazy)      ${oneMs.toFixed(1).padStart(6)} ms  (${(wholeMs / oneMs).toFixed(0)}× faster than reading the whole file)`);
  console.log(`  read every tensor           ${allMs.toFixed(0).padStart(6)} ms  (${(allMs / wholeMs).toFixed(2)}× fs.readFileSync of the whole file)`);
  console.log(`  NaN/inf scan (registration) ${scanMs.toFixed(0).padStart(6)} ms  (${(scanMs / wholeMs).toFixed(2)}× fs.readFileSync of the whole file)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
