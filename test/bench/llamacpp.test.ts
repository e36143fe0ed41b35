import { describe, expect, it } from 'vitest';
import { batchedBenchRate, busySecondsOf, decodeBound, llamaBenchRate, streamsRate } from '../../bench/llamacpp.js';

describe('bench:vs-llamacpp helpers', () => {
  it('counts busy time from the first eight /proc/stat states, not guest time twice', () => {
    // user nice system idle iowait irq softirq steal guest guest_nice
    const stat = 'cpu  1000 200 300 5000 40 10 20 30 600 50\ncpu0 1 2 3 4 5 6 7 8 9 10\n';
    expect(busySecondsOf(stat)).toBeCloseTo((1000 + 200 + 300 + 10 + 20 + 30) / 100);
    expect(busySecondsOf('cpu  100 0 100 900 0 0 0\n')).toBeCloseTo(2); // older kernels: fewer fields
    expect(() => busySecondsOf('intr 1 2 3')).toThrow(/cpu line/);
  });

  it("reads llama-bench's one test and llama-batched-bench's row of the given parallel count", () => {
    expect(llamaBenchRate('[{"n_prompt": 0, "n_gen": 64, "avg_ts": 21.5, "stddev_ts": 0}]')).toBe(21.5);
    expect(() => llamaBenchRate('[]')).toThrow(/one test/);
    const jsonl = [
      'llama_model_loader: something',
      '{"pp": 16, "tg": 64, "pl": 1, "speed_tg": 20.0}',
      '{"pp": 16, "tg": 64, "pl": 4, "speed_tg": 55.5}',
    ].join('\n');
    expect(batchedBenchRate(jsonl, 4)).toBe(55.5);
    expect(batchedBenchRate(jsonl, 8)).toBeNull();
  });

  it('rates concurrent streams over the time all of them decode', () => {
    // two streams in lockstep from 100 ms, a step every 10 ms; the second starts one step late and ends one late
    const a = [100, 110, 120, 130, 140];
    const b = [110.5, 120.5, 130.5, 140.5, 150.5];
    // from 110.5 to 140: a's 120, 130, 140 and b's 120.5, 130.5 in 29.5 ms
    expect(streamsRate([a, b])).toBeCloseTo(5 / 0.0295);
    expect(() => streamsRate([[1, 2], [3, 4]])).toThrow(/together/);
  });

  it('bounds decode by weight bytes per token over read bandwidth', () => {
    expect(decodeBound(700e6, 14e9)).toBeCloseTo(20);
  });
});
