import { mkdtemp, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from '../../src/util/onnxruntime.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExternalDataFile, OnnxModel, float } from '../../src/formats/onnx.js';

const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, logSeverityLevel: 3 };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'loraforge-onnx-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** y = RMSNorm(x @ W + b) with weight g, written with inline initializers. */
function matmulNormModel(W: Float32Array, b: Float32Array, g: Float32Array, eps: number): OnnxModel {
  const m = new OnnxModel({ opsets: { '': 21 } });
  m.input('x', 'float32', ['batch', 3]);
  m.initializer('W', 'float32', [3, 2], W);
  m.initializer('b', 'float32', [2], b);
  m.initializer('g', 'float32', [2], g);
  m.node('MatMul', ['x', 'W'], ['xw']);
  m.node('Add', ['xw', 'b'], ['h']);
  // epsilon is integral here on purpose: it must still be written as a FLOAT attribute
  m.node('SimplifiedLayerNormalization', ['h', 'g'], ['y'], { axis: -1, epsilon: float(eps), stash_type: 1 });
  m.output('y', 'float32', ['batch', 2]);
  return m;
}

function reference(x: number[][], W: Float32Array, b: Float32Array, g: Float32Array, eps: number): number[][] {
  return x.map((row) => {
    const h = [0, 1].map((j) => row.reduce((s, v, k) => s + v * W[k * 2 + j]!, b[j]!));
    const rms = Math.sqrt((h[0]! ** 2 + h[1]! ** 2) / 2 + eps);
    return h.map((v, j) => (v / rms) * g[j]!);
  });
}

describe('OnnxModel', () => {
  const W = Float32Array.from([1, 2, -1, 0.5, 3, -2]);
  const b = Float32Array.from([0.25, -0.5]);
  const g = Float32Array.from([1.5, 0.5]);
  const x = [
    [1, 2, 3],
    [-1, 0.5, 2],
  ];

  it('writes a model with inline initializers, symbolic dims and a forced-float attribute that ORT runs', async () => {
    const eps = 1; // integral: would be an INT attribute without float()
    const session = await ort.InferenceSession.create(matmulNormModel(W, b, g, eps).encode(), sessionOptions);
    expect(session.inputNames).toEqual(['x']);
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x.flat()), [2, 3]) });
    const y = out.y!;
    expect(y.dims).toEqual([2, 2]);
    const ref = reference(x, W, b, g, eps).flat();
    for (let i = 0; i < ref.length; i++) expect(y.data[i] as number).toBeCloseTo(ref[i]!, 5);
  });

  it('writes initializers to an external data file that ORT loads by path', async () => {
    const modelPath = path.join(dir, 'ext.onnx');
    // a low threshold and small alignment so the test also covers aligned offsets
    const data = await ExternalDataFile.create(`${modelPath}.data`, { alignThreshold: 8, alignment: 64 });
    const m = new OnnxModel({ opsets: { '': 21 } });
    m.input('x', 'float32', ['batch', 3]);
    m.externalInitializer(await data.append('W', 'float32', [3, 2], W));
    const bRef = await data.append('b', 'float32', [2], b);
    expect(bRef.offset % 64).toBe(0);
    m.externalInitializer(bRef);
    m.initializer('g', 'float32', [2], g);
    m.node('MatMul', ['x', 'W'], ['xw']);
    m.node('Add', ['xw', 'b'], ['h']);
    m.node('SimplifiedLayerNormalization', ['h', 'g'], ['y'], { axis: -1, epsilon: float(1e-5), stash_type: 1 });
    m.output('y', 'float32', ['batch', 2]);
    await data.close();
    expect(data.bytesWritten).toBe(64 + 8);
    await writeFile(modelPath, m.encode());
    expect((await stat(`${modelPath}.data`)).size).toBe(72);

    const session = await ort.InferenceSession.create(modelPath, sessionOptions);
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x.flat()), [2, 3]) });
    const ref = reference(x, W, b, g, 1e-5).flat();
    for (let i = 0; i < ref.length; i++) expect(out.y!.data[i] as number).toBeCloseTo(ref[i]!, 5);
  });

  it('keeps inputs without initializers visible in inputNames and com.microsoft ops usable', async () => {
    const m = new OnnxModel({ opsets: { '': 21, 'com.microsoft': 1 } });
    m.input('x', 'float32', ['n', 4]);
    m.input('w', 'float32', [4]);
    m.input('skip', 'float32', ['n', 4]);
    m.node('SkipSimplifiedLayerNormalization', ['x', 'skip', 'w'], ['y', '', '', 'sum'], { epsilon: float(1e-6) }, { domain: 'com.microsoft' });
    m.output('y', 'float32', ['n', 4]);
    m.output('sum', 'float32', ['n', 4]);
    const session = await ort.InferenceSession.create(m.encode(), sessionOptions);
    expect([...session.inputNames].sort()).toEqual(['skip', 'w', 'x']);
    const xs = Float32Array.from([1, 2, 3, 4]);
    const sk = Float32Array.from([1, 0, -1, 0]);
    const out = await session.run({
      x: new ort.Tensor('float32', xs, [1, 4]),
      skip: new ort.Tensor('float32', sk, [1, 4]),
      w: new ort.Tensor('float32', Float32Array.from([1, 1, 1, 1]), [4]),
    });
    expect(Array.from(out.sum!.data as Float32Array)).toEqual([2, 2, 2, 4]);
    const rms = Math.sqrt((4 + 4 + 4 + 16) / 4 + 1e-6);
    expect(out.y!.data[3] as number).toBeCloseTo(4 / rms, 5);
  });

  it('rejects wiring mistakes with the name of the value', () => {
    const m = new OnnxModel({ opsets: { '': 21 } });
    m.input('x', 'float32', [2]);
    expect(() => m.node('Relu', ['nope'], ['y'])).toThrow(/input "nope" is not defined/);
    m.node('Relu', ['x'], ['y']);
    expect(() => m.node('Relu', ['x'], ['y'])).toThrow(/"y" is already defined/);
    expect(() => m.initializer('w', 'float32', [3], new Float32Array(2))).toThrow(/8 bytes given.*needs 12/);
    m.output('z', 'float32', [2]);
    expect(() => m.encode()).toThrow(/graph output "z" is not produced/);
  });
});
