// npm run bench:matmul: why the merge runs its matrix products as ONNX Runtime graphs. Times a plain JS loop,
// ORT float32 (MLAS sgemm) and ORT float64 (Cast + Gemm) at the shapes the merge uses, medians of several runs.
// ORT reads inputs in place and copies outputs (~0.5–1 ms/MiB): the dense ΔW case shows what that costs.
import { MatmulKernel, type GemmSpec, type Mat32 } from '../src/merge/kernels/matmul.js';
import { randomBits, streamKey } from '../src/merge/kernels/prng.js';

function rand(rows: number, cols: number, seed: number): Mat32 {
  const key = streamKey(seed, 'bench', 0);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = randomBits(key, i) / 2147483648 - 1;
  return { data, rows, cols };
}

/** The obvious JS loop (i-p-j order, float64 accumulation per row), the baseline. */
function jsGemm(a: Mat32, b: Mat32, spec: GemmSpec): Float32Array {
  const m = spec.transA ? a.cols : a.rows;
  const k = spec.transA ? a.rows : a.cols;
  const n = spec.transB ? b.rows : b.cols;
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const av = spec.transA ? a.data[p * a.cols + i]! : a.data[i * a.cols + p]!;
      const row = i * n;
      if (spec.transB) for (let j = 0; j < n; j++) c[row + j] = c[row + j]! + av * b.data[j * b.cols + p]!;
      else for (let j = 0, bo = p * b.cols; j < n; j++) c[row + j] = c[row + j]! + av * b.data[bo + j]!;
    }
  return Float32Array.from(c);
}

async function time(fn: () => unknown, runs: number): Promise<number> {
  await fn();
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return ts.sort((x, y) => x - y)[Math.floor(runs / 2)]!;
}

const cases: { what: string; a: [number, number]; b: [number, number]; spec: GemmSpec; js: boolean }[] = [
  { what: 'Gram B̃ᵀB̃ (4096×64)', a: [4096, 64], b: [4096, 64], spec: { transA: true }, js: true },
  { what: 'Gram ÃÃᵀ (64×4096)', a: [64, 4096], b: [64, 4096], spec: { transB: true }, js: true },
  { what: 'projection B̃·T (4096×64·64×64)', a: [4096, 64], b: [64, 64], spec: {}, js: true },
  { what: 'dense ΔW = B·A (4096×16·16×4096)', a: [4096, 16], b: [16, 4096], spec: {}, js: true },
  { what: 'range finder M·Ω (4096²·4096×72)', a: [4096, 4096], b: [4096, 72], spec: {}, js: false },
  { what: 'power step Mᵀ·Q (4096²ᵀ·4096×72)', a: [4096, 4096], b: [4096, 72], spec: { transA: true }, js: false },
];

const kernel = new MatmulKernel();
console.log('shape                                   JS loop ms   ORT f32 ms   ORT f64 ms   JS / ORT f32');
for (const c of cases) {
  const a = rand(c.a[0], c.a[1], 1);
  const b = rand(c.b[0], c.b[1], 2);
  const f32 = await time(() => kernel.gemm(a, b, c.spec), 9);
  const f64 = await time(() => kernel.gemm64(a, b, c.spec), 9);
  const js = c.js ? await time(() => jsGemm(a, b, c.spec), 3) : NaN;
  console.log(
    `${c.what.padEnd(38)}${(c.js ? js.toFixed(1) : '(minutes)').padStart(11)}${f32.toFixed(2).padStart(13)}${f64.toFixed(2).padStart(13)}${(c.js ? `${(js / f32).toFixed(0)}×` : '–').padStart(15)}`,
  );
}
await kernel.release();
