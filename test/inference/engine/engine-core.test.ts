// The engine core against a real ONNX Runtime session of a built fp32 model, checked against the float64 reference
// forward pass: batched prefill, ragged decode, chunked prefill, KV growth, per-row adapters, cancellation,
// seeds, the adapter pool's LRU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax, referenceLogits, type ReferenceLora } from '../reference.js';
import { CoreHarness, makeTestModel, removeTestModel, type TestModel } from './model.js';

let model: TestModel;

function referenceGreedy(prompt: number[], n: number, lora?: ReferenceLora): { tokens: number[]; logprobs: number[] } {
  const seq = [...prompt];
  const tokens: number[] = [];
  const logprobs: number[] = [];
  for (let i = 0; i < n; i++) {
    const all = referenceLogits(model.cfg, (name) => model.tensors.get(name), seq, lora);
    const last = all[all.length - 1]!;
    const t = argmax(last);
    let max = -Infinity;
    for (const v of last) max = Math.max(max, v);
    let sum = 0;
    for (const v of last) sum += Math.exp(v - max);
    logprobs.push(last[t]! - max - Math.log(sum));
    tokens.push(t);
    seq.push(t);
  }
  return { tokens, logprobs };
}

const prompt = (seed: number, length: number) => Array.from({ length }, (_, i) => 3 + ((seed * 131 + i * 71) % 250));

beforeAll(async () => {
  model = await makeTestModel();
});
afterAll(() => removeTestModel(model));

describe('engine core on a real graph', () => {
  let harness: CoreHarness;
  beforeAll(async () => {
    harness = await CoreHarness.open(model);
  });
  afterAll(() => harness.close());

  it('greedy tokens and logprobs match the float64 reference', async () => {
    const p = prompt(1, 7);
    const { result } = harness.submit([{ prompt: p }], { maxTokens: 10, logprobs: 0 });
    await result.done;
    const ref = referenceGreedy(p, 10);
    expect(result.error).toBeNull();
    expect(result.tokens[0]).toEqual(ref.tokens);
    result.logprobs[0]!.forEach((lp, i) => expect(lp).toBeCloseTo(ref.logprobs[i]!, 3));
    expect(result.finish[0]).toMatchObject({ reason: 'length', promptTokens: 7, completionTokens: 10 });
  });

  it('a batch of ragged prompts with mixed adapters gives what each row gives alone, and the reference', async () => {
    const rows = [
      { prompt: prompt(2, 3) },
      { prompt: prompt(3, 11), adapter: 0 },
      { prompt: prompt(4, 6), adapter: 1 },
      { prompt: prompt(5, 9), adapter: 2 },
    ];
    const batch = harness.submit(rows, { maxTokens: 12 });
    await batch.result.done;
    expect(batch.result.error).toBeNull();
    for (const [i, row] of rows.entries()) {
      const alone = harness.submit([row], { maxTokens: 12 });
      await alone.result.done;
      expect(batch.result.tokens[i]).toEqual(alone.result.tokens[0]);
      const lora = row.adapter === undefined ? undefined : model.adapters[row.adapter];
      expect(batch.result.tokens[i]).toEqual(referenceGreedy(row.prompt, 12, lora).tokens);
    }
  });

  it('rows joining while others decode (continuous batching) do not disturb them', async () => {
    const a = harness.submit([{ prompt: prompt(6, 5), adapter: 1 }], { maxTokens: 30 });
    await new Promise((r) => setTimeout(r, 5));
    const b = harness.submit([{ prompt: prompt(7, 8) }], { maxTokens: 6 });
    const c = harness.submit([{ prompt: prompt(8, 4), adapter: 0 }], { maxTokens: 9 });
    await Promise.all([a.result.done, b.result.done, c.result.done]);
    expect(a.result.tokens[0]).toEqual(referenceGreedy(prompt(6, 5), 30, model.adapters[1]).tokens);
    expect(b.result.tokens[0]).toEqual(referenceGreedy(prompt(7, 8), 6).tokens);
    expect(c.result.tokens[0]).toEqual(referenceGreedy(prompt(8, 4), 9, model.adapters[0]).tokens);
    expect(harness.core.snapshot().activeRows).toBe(0);
  });

  it('the same seed gives the same tokens alone and in any batch; another seed differs', async () => {
    const sampling = { temperature: 1, topP: 0.95 };
    const p = prompt(9, 6);
    const alone = harness.submit([{ prompt: p, adapter: 2 }], { maxTokens: 16, seed: 1234, sampling });
    await alone.result.done;
    const crowd = harness.submit(
      [{ prompt: prompt(10, 3) }, { prompt: p, adapter: 2 }, { prompt: prompt(11, 12), adapter: 1 }],
      { maxTokens: 16, seed: 1234, sampling },
    );
    await crowd.result.done;
    expect(crowd.result.tokens[1]).toEqual(alone.result.tokens[0]);
    const other = harness.submit([{ prompt: p, adapter: 2 }], { maxTokens: 16, seed: 99, sampling });
    await other.result.done;
    expect(other.result.tokens[0]).not.toEqual(alone.result.tokens[0]);
    // n > 1: each choice its own stream
    const two = harness.submit([{ prompt: p, stream: 0 }, { prompt: p, stream: 1 }], { maxTokens: 16, seed: 1234, sampling });
    await two.result.done;
    expect(two.result.tokens[0]).not.toEqual(two.result.tokens[1]);
  });

  it('cancellation frees the row at the next step', async () => {
    const { id, result } = harness.submit([{ prompt: prompt(12, 5) }], { maxTokens: 200 });
    while (result.tokens[0]!.length < 3) await new Promise((r) => setTimeout(r, 1));
    harness.core.cancel(id);
    await result.done;
    expect(result.finish[0]!.reason).toBe('cancelled');
    expect(result.tokens[0]!.length).toBeLessThan(200);
    expect(harness.core.snapshot().activeRows).toBe(0);
    // a waiting request can be cancelled too
    const w = harness.submit([{ prompt: prompt(13, 5) }], { maxTokens: 5 });
    harness.core.cancel(w.id);
    await w.result.done;
    expect(w.result.finish[0]!.reason).toBe('cancelled');
  });

  it('stops at stop strings, EOS and the context end', async () => {
    const p = prompt(14, 5);
    const free = harness.submit([{ prompt: p }], { maxTokens: 20 });
    await free.result.done;
    const text = free.result.texts[0]!;
    const stop = text.slice(4, 6);
    expect(stop.length).toBe(2);
    const stopped = harness.submit([{ prompt: p }], { maxTokens: 20, stop: [stop] });
    await stopped.result.done;
    expect(stopped.result.texts[0]).toBe(text.slice(0, text.indexOf(stop)));
    expect(stopped.result.finish[0]!.reason).toBe('stop');
    // the model's own first token as EOS
    const first = free.result.tokens[0]![0]!;
    const eosHarness = harness.submit([{ prompt: p }], { maxTokens: 20, ignoreEos: false, sampling: { logitBias: new Map([[model.eosTokenId, 100]]) } });
    await eosHarness.result.done;
    expect(eosHarness.result.tokens[0]).toEqual([model.eosTokenId]);
    expect(eosHarness.result.finish[0]!.reason).toBe('stop');
    expect(first).toBeGreaterThanOrEqual(0);
  });
});

describe('engine core scheduling limits', () => {
  it('chunked prefill and small KV chunks give the same tokens', async () => {
    const harness = await CoreHarness.open(model, { prefillChunk: 4, kvChunk: 3 });
    try {
      const long = prompt(20, 23);
      const a = harness.submit([{ prompt: long, adapter: 1 }], { maxTokens: 10 });
      const b = harness.submit([{ prompt: prompt(21, 3) }], { maxTokens: 14 });
      await Promise.all([a.result.done, b.result.done]);
      expect(a.result.tokens[0]).toEqual(referenceGreedy(long, 10, model.adapters[1]).tokens);
      expect(b.result.tokens[0]).toEqual(referenceGreedy(prompt(21, 3), 14).tokens);
      expect(harness.core.snapshot().kvCapacity).toBeLessThanOrEqual(6); // trimmed back after the long row left
      // decoding rows that finish while a long prompt is still being prefilled in chunks behind them
      const long2 = prompt(22, 41);
      const rows = [
        harness.submit([{ prompt: prompt(23, 3) }], { maxTokens: 2 }),
        harness.submit([{ prompt: prompt(24, 5), adapter: 0 }], { maxTokens: 20 }),
        harness.submit([{ prompt: long2, adapter: 2 }], { maxTokens: 6 }),
        harness.submit([{ prompt: prompt(25, 2), adapter: 1 }], { maxTokens: 4 }),
      ];
      await Promise.all(rows.map((r) => r.result.done));
      expect(rows[0]!.result.tokens[0]).toEqual(referenceGreedy(prompt(23, 3), 2).tokens);
      expect(rows[1]!.result.tokens[0]).toEqual(referenceGreedy(prompt(24, 5), 20, model.adapters[0]).tokens);
      expect(rows[2]!.result.tokens[0]).toEqual(referenceGreedy(long2, 6, model.adapters[2]).tokens);
      expect(rows[3]!.result.tokens[0]).toEqual(referenceGreedy(prompt(25, 2), 4, model.adapters[1]).tokens);
    } finally {
      await harness.close();
    }
  });

  it("a row's adapter changing under a running batch: the row gets the new adapter's factors, the others keep theirs", async () => {
    const harness = await CoreHarness.open(model, { maxBatch: 2 });
    try {
      // one long row on adapter 1 while its neighbour row goes from adapter 2 to the base model to adapter 2 again
      const long = harness.submit([{ prompt: prompt(60, 4), adapter: 1 }], { maxTokens: 24 });
      const short = [2, 0, 2].map((adapter, i) => ({ adapter, i, request: harness.submit([{ prompt: prompt(61 + i, 3), adapter }], { maxTokens: 4 }) }));
      await Promise.all([long, ...short.map((r) => r.request)].map((r) => r.result.done));
      expect(long.result.tokens[0]).toEqual(referenceGreedy(prompt(60, 4), 24, model.adapters[1]).tokens);
      for (const { adapter, i, request } of short) expect(request.result.tokens[0]).toEqual(referenceGreedy(prompt(61 + i, 3), 4, model.adapters[adapter]).tokens);
    } finally {
      await harness.close();
    }
  });

  it('more requests than rows wait their turn', async () => {
    const harness = await CoreHarness.open(model, { maxBatch: 2 });
    try {
      const all = [0, 1, 2, 3, 4].map((i) => harness.submit([{ prompt: prompt(30 + i, 4), adapter: i % 3 }], { maxTokens: 5 }));
      await Promise.all(all.map((r) => r.result.done));
      for (const [i, r] of all.entries()) expect(r.result.tokens[0]).toEqual(referenceGreedy(prompt(30 + i, 4), 5, model.adapters[i % 3]).tokens);
      const tooBig = harness.submit([{ prompt: [5] }, { prompt: [6] }, { prompt: [7] }]);
      await tooBig.result.done;
      expect(String(tooBig.result.error)).toMatch(/at most 2/);
    } finally {
      await harness.close();
    }
  });
});

describe('adapter pool', () => {
  it('loads on first use, keeps adapters resident, evicts the least recently used, never one in use', async () => {
    // 3 slots: 2 adapters resident at once
    const small = await makeTestModel({ slots: 3 });
    const harness = await CoreHarness.open(small);
    try {
      const run = async (adapter: number, maxTokens = 3) => {
        const r = harness.submit([{ prompt: prompt(40 + adapter, 4), adapter }], { maxTokens });
        await r.result.done;
        return r.result.tokens[0]!;
      };
      const first0 = await run(0);
      await run(1);
      expect(harness.loads).toBe(2);
      await run(0); // resident: no load
      expect(harness.loads).toBe(2);
      await run(2); // evicts 1, the least recently used
      expect(harness.loads).toBe(3);
      expect(harness.core.slotTable.loaded().sort()).toEqual(['0', '2']);
      expect(await run(0)).toEqual(first0);
      expect(harness.loads).toBe(3);
      // 0 and 2 busy in long requests: 1 must wait for a free slot, not evict a slot in use
      const busy0 = harness.submit([{ prompt: prompt(50, 4), adapter: 0 }], { maxTokens: 40 });
      const busy2 = harness.submit([{ prompt: prompt(51, 4), adapter: 2 }], { maxTokens: 40 });
      const waiting = harness.submit([{ prompt: prompt(52, 4), adapter: 1 }], { maxTokens: 3 });
      await waiting.result.done;
      // 1 got a slot only after one of the busy ones finished
      expect(busy0.result.finish[0] ?? busy2.result.finish[0]).toBeDefined();
      await Promise.all([busy0.result.done, busy2.result.done]);
      expect(busy0.result.tokens[0]).toEqual(referenceGreedy(prompt(50, 4), 40, small.adapters[0]).tokens.slice(0, 40));
      // more distinct adapters in one request than the pool holds
      const crowd = harness.submit([{ prompt: [5], adapter: 0 }, { prompt: [5], adapter: 1 }, { prompt: [5], adapter: 2 }]);
      await crowd.result.done;
      expect(String(crowd.result.error)).toMatch(/--slots/);
    } finally {
      await harness.close();
      removeTestModel(small);
    }
  });
});

describe('int4 graph (int8 activations)', () => {
  it('a batch of mixed-adapter rows gives the same greedy tokens as each row alone', async () => {
    const int4 = await makeTestModel({ dtype: 'int4' });
    const harness = await CoreHarness.open(int4);
    try {
      const rows = [{ prompt: prompt(60, 5), adapter: 1 }, { prompt: prompt(61, 9) }, { prompt: prompt(62, 3), adapter: 0 }, { prompt: prompt(63, 7), adapter: 2 }];
      const batch = harness.submit(rows, { maxTokens: 16 });
      await batch.result.done;
      for (const [i, row] of rows.entries()) {
        const alone = harness.submit([row], { maxTokens: 16 });
        await alone.result.done;
        expect(batch.result.tokens[i]).toEqual(alone.result.tokens[0]);
      }
    } finally {
      await harness.close();
      removeTestModel(int4);
    }
  });
});
