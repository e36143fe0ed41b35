import { describe, expect, it } from 'vitest';
import { KvCache } from '../../../src/inference/engine/kv-cache.js';
import { SeededRandom } from '../../../src/inference/rng.js';
import { blendPrepared, LoraPool, RowFeeds, transposeFactors, type LoraSite } from '../../../src/inference/engine/lora-pool.js';
import { SlotTable } from '../../../src/inference/engine/slot-table.js';
import { StopMatcher } from '../../../src/inference/engine/stop.js';

describe('stop strings', () => {
  const run = (stops: string[], pieces: string[]) => {
    const m = new StopMatcher(stops);
    let out = '';
    for (const p of pieces) {
      const r = m.push(p);
      out += r.text;
      if (r.stopped) return { out, stopped: true };
    }
    return { out: out + m.flush(), stopped: false };
  };

  it('finds a stop string split across tokens and drops it', () => {
    expect(run(['###'], ['Hello', ' #', '#', '# more'])).toEqual({ out: 'Hello ', stopped: true });
  });

  it('holds back only what could start a stop string', () => {
    const m = new StopMatcher(['</end>']);
    expect(m.push('abc</')).toEqual({ text: 'abc', stopped: false });
    expect(m.push('en')).toEqual({ text: '', stopped: false });
    expect(m.push('x')).toEqual({ text: '</enx', stopped: false });
  });

  it('releases held-back text at the end when no stop completes', () => {
    expect(run(['STOP'], ['a', 'ST', 'O'])).toEqual({ out: 'aSTO', stopped: false });
  });

  it('stops at the earliest of several stop strings', () => {
    expect(run(['cd', 'b'], ['abcd'])).toEqual({ out: 'a', stopped: true });
    expect(run(['\n\n', 'User:'], ['one\n', '\ntwo'])).toEqual({ out: 'one', stopped: true });
  });

  it('passes text through untouched without stop strings', () => {
    expect(run([], ['a', 'b'])).toEqual({ out: 'ab', stopped: false });
    expect(run([''], ['a'])).toEqual({ out: 'a', stopped: false });
  });
});

describe('kv cache', () => {
  const shape = { layers: 2, kvHeads: 2, headDim: 3 };
  // kv_new rows for `rows` rows × `seq` positions whose values encode (tag, row, position, head, dim)
  const newRows = (tag: number, rows: number, seq: number, startPos: number[]) => {
    const data = new Float32Array(rows * seq * shape.kvHeads * shape.headDim);
    for (let j = 0; j < rows; j++)
      for (let s = 0; s < seq; s++)
        for (let h = 0; h < shape.kvHeads; h++)
          for (let d = 0; d < shape.headDim; d++) data[((j * seq + s) * shape.kvHeads + h) * shape.headDim + d] = tag * 1000 + (startPos[j]! + s) * 10 + h * 3 + d;
    return data;
  };
  const read = (kv: KvCache, layer: number, row: number, pos: number, h: number) => {
    const view = kv.past(layer, 'key', row, 1);
    const at = (h * kv.capacity + pos) * shape.headDim;
    return Array.from(view.subarray(at, at + shape.headDim));
  };

  it('scatters new rows at their positions, grows in chunks and keeps contents', () => {
    const kv = new KvCache(shape, { maxRows: 4, chunk: 4, maxPositions: 64 });
    const a = kv.addRow();
    const b = kv.addRow();
    kv.reserve(3);
    expect(kv.capacity).toBe(4);
    for (let l = 0; l < 2; l++) kv.scatter(l, newRows(l + 1, 2, 3, [0, 0]), newRows(l + 5, 2, 3, [0, 0]), 3, [a, b], [0, 0], [3, 2]);
    kv.setLength(a, 3);
    kv.setLength(b, 2);
    expect(read(kv, 1, a, 2, 1)).toEqual([2023, 2024, 2025]);
    expect(read(kv, 1, b, 2, 1)).toEqual([0, 0, 0]); // only 2 valid positions were taken for row b
    kv.reserve(9);
    expect(kv.capacity).toBe(12);
    expect(read(kv, 1, a, 2, 1)).toEqual([2023, 2024, 2025]);
    expect(read(kv, 0, b, 1, 0)).toEqual([1010, 1011, 1012]);
    // a decode step: one new position per row
    for (let l = 0; l < 2; l++) kv.scatter(l, newRows(l + 1, 2, 1, [3, 2]), newRows(l + 5, 2, 1, [3, 2]), 1, [a, b], [3, 2], [1, 1]);
    expect(read(kv, 0, a, 3, 1)).toEqual([1033, 1034, 1035]);
    expect(read(kv, 0, b, 2, 0)).toEqual([1020, 1021, 1022]);
  });

  it('keeps rows compact: removing a row moves the last one into its place', () => {
    const kv = new KvCache(shape, { maxRows: 4, chunk: 4, maxPositions: 64 });
    for (let r = 0; r < 3; r++) kv.addRow();
    kv.reserve(2);
    for (let l = 0; l < 2; l++) kv.scatter(l, newRows(l + 1, 3, 1, [0, 0, 0]).map((v, i) => v + Math.floor(i / 6) * 100), newRows(9, 3, 1, [0, 0, 0]), 1, [0, 1, 2], [0, 0, 0], [1, 1, 1]);
    for (let r = 0; r < 3; r++) kv.setLength(r, r + 1);
    expect(kv.removeRow(0)).toBe(2);
    expect(kv.rows).toBe(2);
    expect(read(kv, 0, 0, 0, 0)).toEqual([1200, 1201, 1202]); // row 2's data now in row 0
    expect(kv.length(0)).toBe(3);
    expect(kv.removeRow(1)).toBeNull();
    expect(kv.rows).toBe(1);
    kv.addRow();
    kv.swapRows(0, 1);
    expect(kv.length(1)).toBe(3);
    expect(read(kv, 0, 1, 0, 0)).toEqual([1200, 1201, 1202]);
  });

  it('a view of the first b rows is contiguous and zero-copy', () => {
    const kv = new KvCache(shape, { maxRows: 4, chunk: 8, maxPositions: 64 });
    kv.addRow();
    kv.addRow();
    kv.reserve(5);
    const view = kv.past(0, 'value', 0, 2);
    expect(view.length).toBe(2 * shape.kvHeads * 8 * shape.headDim);
    view[0] = 42;
    expect(kv.past(0, 'value', 0, 1)[0]).toBe(42);
  });

  it('trims capacity after long rows leave, and refuses beyond the model context', () => {
    const kv = new KvCache(shape, { maxRows: 2, chunk: 4, maxPositions: 16 });
    kv.addRow();
    kv.addRow();
    kv.reserve(15);
    expect(kv.capacity).toBe(16);
    kv.setLength(0, 14);
    kv.setLength(1, 2);
    kv.removeRow(0);
    kv.trim();
    expect(kv.capacity).toBe(4);
    expect(() => kv.reserve(17)).toThrow(/exceed/);
    expect(() => {
      kv.addRow();
      kv.addRow();
    }).toThrow(/full/);
  });
});

describe('adapter slots', () => {
  it('evicts the least recently used unpinned slot, never slot 0 or a pinned one', () => {
    const t = new SlotTable(4);
    expect(t.victim()).toBe(1);
    t.assign(1, 'a');
    t.assign(t.victim()!, 'b');
    t.assign(t.victim()!, 'c');
    expect(t.loaded()).toEqual(['a', 'b', 'c']);
    expect(t.lookup('a')).toBe(1); // a is now the most recent
    expect(t.victim()).toBe(2); // b is the least recent
    t.pin(2);
    expect(t.victim()).toBe(3);
    t.pin(3);
    t.pin(1);
    expect(t.victim()).toBeNull();
    expect(() => t.assign(1, 'd')).toThrow(/in use/);
    t.unpin(1);
    expect(t.victim()).toBe(1);
    t.clear(1);
    expect(t.lookup('a')).toBeNull();
  });
});

describe('lora pool', () => {
  const sites: LoraSite[] = [
    { module: 'm.q', inFeatures: 3, outFeatures: 2, inputA: 'q.A', inputB: 'q.B' },
    { module: 'm.o', inFeatures: 2, outFeatures: 4, inputA: 'o.A', inputB: 'o.B' },
  ];
  // y = x·(A'·B') must equal scaling·x·Aᵀ·Bᵀ for PEFT's A [r, in], B [out, r]
  it('transposes and folds the scaling so the delta equals PEFT', () => {
    const r = 2;
    const A = Float32Array.from([1, 2, 3, 4, 5, 6]); // [2, 3]
    const B = Float32Array.from([1, -1, 2, 0.5]); // [2, 2]
    const f = transposeFactors(A, B, r, 3, 2, 0.5);
    const x = [0.3, -1, 2];
    for (let n = 0; n < 2; n++) {
      let viaPool = 0;
      let viaPeft = 0;
      for (let j = 0; j < r; j++) {
        let xa = 0;
        let xaPeft = 0;
        for (let k = 0; k < 3; k++) {
          xa += x[k]! * f.A[k * r + j]!;
          xaPeft += x[k]! * A[j * 3 + k]!;
        }
        viaPool += xa * f.B[j * 2 + n]!;
        viaPeft += 0.5 * xaPeft * B[n * r + j]!;
      }
      expect(viaPool).toBeCloseTo(viaPeft, 6);
    }
  });

  it('blends prepared adapters into one whose update is the weighted sum of theirs', () => {
    const rng = new SeededRandom(7);
    const factors = (rank: number, inF: number, outF: number) =>
      transposeFactors(Float32Array.from({ length: rank * inF }, () => rng.normal()), Float32Array.from({ length: outF * rank }, () => rng.normal()), rank, inF, outF, 0.5);
    // a: both sites (ranks 2, 1); b: site q only (rank 3); neither: nothing to blend on a site
    const a = { rank: 2, sites: [factors(2, 3, 2), factors(1, 2, 4)] };
    const b = { rank: 3, sites: [factors(3, 3, 2), null] };
    const dense = (f: { A: Float32Array; B: Float32Array; rank: number }, inF: number, outF: number) =>
      Array.from({ length: inF * outF }, (_, i) => {
        const [k, n] = [Math.floor(i / outF), i % outF];
        let sum = 0;
        for (let j = 0; j < f.rank; j++) sum += f.A[k * f.rank + j]! * f.B[j * outF + n]!;
        return sum;
      });
    const blend = blendPrepared([a, b], 0.6, 8, 'a+b');
    expect(blend.rank).toBe(5);
    expect(blend.sites.map((f) => f?.rank)).toEqual([5, 1]);
    const q = dense(blend.sites[0]!, 3, 2);
    const qa = dense(a.sites[0]!, 3, 2);
    const qb = dense(b.sites[0]!, 3, 2);
    q.forEach((v, i) => expect(v).toBeCloseTo(0.6 * (qa[i]! + qb[i]!), 5));
    const o = dense(blend.sites[1]!, 2, 4);
    dense(a.sites[1]!, 2, 4).forEach((v, i) => expect(o[i]).toBeCloseTo(0.6 * v, 5));
    expect(blendPrepared([{ rank: 0, sites: [null, null] }, { rank: 0, sites: [null, null] }], 0.6, 8, 'x').sites).toEqual([null, null]);
    expect(() => blendPrepared([a, b], 0.6, 4, 'a+b')).toThrow(/the blend a\+b has rank 5, above the served graph's max rank 4: rebuild the model with --max-rank 5 or more \(loraforge build-model <checkpoint> --max-rank 8\), or give the router a fallback/);
  });

  it('pads to the pool rank, grows and shrinks it', () => {
    const pool = new LoraPool(sites, 3, 8);
    const a = { rank: 1, sites: [transposeFactors(Float32Array.from([1, 2, 3]), Float32Array.from([4, 5]), 1, 3, 2, 1), null] };
    pool.write(1, a);
    expect(pool.rank).toBe(1);
    const b = {
      rank: 2,
      sites: [null, transposeFactors(Float32Array.from([1, 2, 3, 4]), Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 2, 2, 4, 2)],
    };
    pool.write(2, b);
    expect(pool.rank).toBe(2);
    // site 0 is q [3 → 2], site 1 is o [2 → 4]; slot 1, q: A' = [[1],[2],[3]] padded with a zero column
    expect(Array.from(pool.slotFactors(0, 1).A)).toEqual([1, 0, 2, 0, 3, 0]);
    expect(Array.from(pool.slotFactors(0, 1).B)).toEqual([4, 5, 0, 0]);
    // slot 2 has nothing on q, and slot 0 is all zeros
    expect(Array.from(pool.slotFactors(0, 0).A).every((v) => v === 0)).toBe(true);
    expect(Array.from(pool.slotFactors(0, 2).A).every((v) => v === 0)).toBe(true);
    expect(Array.from(pool.slotFactors(1, 2).B)).toEqual([2, 6, 10, 14, 4, 8, 12, 16]);
    const v = pool.version;
    pool.clear(2);
    expect(pool.version).toBeGreaterThan(v);
    expect(pool.rank).toBe(1);
    expect(Array.from(pool.slotFactors(0, 1).A)).toEqual([1, 2, 3]);
    expect(() => pool.write(1, { rank: 9, sites: [null, null] })).toThrow(/exceeds/);
  });

  it("feeds each run its rows' factors: views of a shared slot, rows copied only when their slot changed, rank 0 unused", () => {
    const rng = new SeededRandom(7);
    const adapter = (rank: number) => ({
      rank,
      sites: sites.map((site) => ({
        A: Float32Array.from({ length: site.inFeatures * rank }, () => rng.uniform() - 0.5),
        B: Float32Array.from({ length: rank * site.outFeatures }, () => rng.uniform() - 0.5),
        rank,
      })),
    });
    const pool = new LoraPool(sites, 4, 8);
    pool.write(1, adapter(2));
    pool.write(2, adapter(2));
    pool.write(3, adapter(1));
    const rows = new RowFeeds(pool);
    // the plain reference: each row's slot, at the pool's rank
    const gathered = (slots: number[]) =>
      sites.flatMap((site, i) => [
        slots.flatMap((s) => Array.from(pool.slotFactors(i, s).A)),
        slots.flatMap((s) => Array.from(pool.slotFactors(i, s).B)),
      ]);
    const check = (slots: number[]) => {
      const { key, build } = rows.feeds(slots);
      const feeds = build();
      expect(feeds.map((f) => Array.from(f.data))).toEqual(gathered(slots));
      expect(feeds.map((f) => f.dims)).toEqual(sites.flatMap((s) => [[slots.length, s.inFeatures, 2], [slots.length, 2, s.outFeatures]]));
      return { key, feeds };
    };
    const first = check([1, 2, 0, 3]);
    // the same batch again: the same key and arrays; another order: the same key, and the arrays built for it
    // before (what a caller keeps per key) now hold the new rows
    const again = rows.feeds([1, 2, 0, 3]);
    expect(again.key).toBe(first.key);
    again.build().forEach((f, i) => expect(f.data.buffer).toBe(first.feeds[i]!.data.buffer));
    expect(rows.feeds([3, 1, 2, 0]).key).toBe(first.key);
    expect(first.feeds.map((f) => Array.from(f.data))).toEqual(gathered([3, 1, 2, 0]));
    // a changed slot is copied again, into the same arrays
    pool.write(2, adapter(2));
    expect(rows.feeds([3, 1, 2, 0]).key).toBe(first.key);
    expect(first.feeds.map((f) => Array.from(f.data))).toEqual(gathered([3, 1, 2, 0]));
    // every row on one slot: views of it, [1, in, r], broadcast by the graph
    const shared = rows.feeds([2, 2, 2]).build();
    expect(shared.map((f) => f.dims[0])).toEqual([1, 1, 1, 1]);
    expect(shared.map((f) => Array.from(f.data))).toEqual(gathered([2]));
    // no row on an adapter: rank 0, whatever the pool holds
    expect(rows.feeds([0, 0]).build().map((f) => f.dims)).toEqual([[1, 3, 0], [1, 0, 2], [1, 2, 0], [1, 0, 4]]);
    // a larger batch, and a pool whose rank grew, get new buffers
    pool.write(1, adapter(4));
    const grown = rows.feeds([1, 2, 3, 0, 1]);
    expect(grown.key).not.toBe(first.key);
    expect(grown.build().map((f) => Array.from(f.data))).toEqual(gathered([1, 2, 3, 0, 1]));
  });
});
