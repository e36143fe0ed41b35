// Memory read bandwidth for the serving benchmarks' decode bound: a decode step reads every weight once and writes
// almost nothing, so its bound is weight bytes / read bandwidth (a copy's read+write rate is the wrong yardstick:
// writes cost more than reads, so it understates the bound). Measured STREAM-style as a sum over a 1 GiB array
// by ONNX Runtime's ReduceSum (vectorized, on every core), which reads its input in place.
import os from 'node:os';
import ort from '../src/util/onnxruntime.js';
import { OnnxModel } from '../src/formats/onnx.js';
import { median } from './stats.js';

/** Bytes read per second: median of `reps` sums over `bytes` of float32 (1 GiB by default), on `threads` cores. */
export async function readBandwidth(bytes = 2 ** 30, reps = 7, threads = os.availableParallelism()): Promise<number> {
  const g = new OnnxModel({ opsets: { '': 17 }, graphName: 'read-bandwidth' });
  g.node('ReduceSum', [g.input('X', 'float32', ['n'])], ['S'], { keepdims: 0 });
  g.output('S', 'float32', []);
  const session = await ort.InferenceSession.create(g.encode(), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  try {
    const x = new Float32Array(bytes / 4).fill(1);
    const feeds = { X: new ort.Tensor('float32', x, [x.length]) };
    await session.run(feeds); // pages in and warms the threads
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      times.push((performance.now() - t0) / 1000);
    }
    return bytes / median(times);
  } finally {
    await session.release();
  }
}
