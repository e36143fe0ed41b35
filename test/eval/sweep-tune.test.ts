// A tuned sweep end to end on the demo model: CMA-ES asks for per-layer-group weights, each point is a real merge
// job whose recipe holds them, scored on the tune part of the suites (calibration and dev); the best is scored on
// the test part. Then
// the same sweep run again from its Redis hash with points removed asks for the same points (replayed evaluations
// into a seeded optimizer) and gets the same merges back; and the requests a tuned sweep cannot honour are refused.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evalKeys, type SweepJobData, type SweepStatus, type TuneSpec } from '../../src/eval/jobs.js';
import { splitSuite } from '../../src/eval/split.js';
import { loadSuites, validateItems, type SuiteItem } from '../../src/eval/suite.js';
import { readSweepState } from '../../src/eval/sweep.js';
import { readTuneResult, runTunedSweep } from '../../src/eval/tune.js';
import { silentLogger } from '../../src/util/log.js';
import { demoWithExperts, startEvalStack, type DemoWithExperts, type EvalStack } from './stack.js';

describe('tuned sweeps (cmaes)', () => {
  let root: string;
  let demo: DemoWithExperts;
  let stack: EvalStack;
  let items: Array<Omit<SuiteItem, 'id'>>;
  const adapters = ['code-expert', 'linux-commands-expert'];

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-sweep-tune-'));
    demo = await demoWithExperts(root);
    stack = await startEvalStack(demo, { name: 'sweep-tune' });
    const all = await loadSuites();
    items = ['code', 'linux-commands'].flatMap((c) => all.filter((i) => i.category === c).slice(0, 4)).map(({ id: _id, ...rest }) => rest);
  });
  afterAll(async () => {
    await stack?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('tunes per-layer weights on the tune part, reports the best on the test part, and replays after a crash', async () => {
    const queued = await stack.client.sweeps.create({ items, adapters, search: 'cmaes', budget: 10, perLayer: true, layerGroups: 2, seed: 5 });
    expect(queued).toMatchObject({ search: 'cmaes', totalPoints: 10 });
    const statuses: SweepStatus[] = [];
    const done = await stack.client.sweeps.wait(queued.id, (e) => e.event === 'status' && statuses.push(e.data));
    expect(done.state).toBe('completed');
    expect(new Set(statuses.map((s) => s.ranking.length)).size).toBeGreaterThan(2); // streamed point by point
    expect(done.ranking).toHaveLength(10);

    // the parts: tuned on calibration and dev items of the split, reported on the test items
    const parts = splitSuite(validateItems(items));
    const count = (p: string) => [...parts.values()].filter((x) => x === p).length;
    expect(done.tune).toMatchObject({ optimizer: 'cmaes', budget: 10, layerGroups: 2, tuneItems: count('calibration') + count('dev'), testItems: count('test') });
    expect(count('calibration')).toBeGreaterThan(0);
    expect(done.items).toBe(items.length);

    // every point is a registered merge whose recipe holds its group weights, 2 adapters × 2 groups, in bounds
    for (const p of done.ranking) {
      expect(p.state).toBe('completed');
      const recipe = (await stack.registry.find(p.adapter!))!.recipe!;
      const lw = (recipe as { layerWeights?: { weights: number[][] } }).layerWeights!;
      expect(lw.weights).toEqual((p.options as { layerWeights: { weights: number[][] } }).layerWeights.weights);
      expect(lw.weights).toHaveLength(2);
      for (const row of lw.weights) for (const g of row) expect(g >= 0 && g <= 1.5).toBe(true);
    }
    const test = done.tune!.test!;
    expect(test.point).toBe(done.best!.index);
    const retained = Object.values(test.categories).map((c) => c.retention!);
    expect(test.worstRetention).toBeCloseTo(Math.min(...retained), 10);
    // the test part is not the tune part: the best point's scores differ between them
    expect(test.categories.code!.perplexity).not.toBeCloseTo(done.best!.categories!.code!.perplexity, 6);

    // crash: points 3.. and the test score are gone; running the job again replays 0–2, re-asks the rest
    const key = evalKeys(stack.prefix).sweep(queued.id);
    await stack.rt.redis.hdel(key, 'test', ...Array.from({ length: 7 }, (_, k) => `point:${k + 3}`));
    const job = await stack.evals.queue.getJob(queued.id);
    const deps = { engine: stack.engine!, merges: stack.merges, registry: stack.registry, redis: stack.rt.redis, redisPrefix: stack.prefix, log: silentLogger() };
    await runTunedSweep(deps, queued.id, job!.data as SweepJobData);
    const again = await readSweepState(stack.rt.redis, stack.prefix, queued.id);
    const byIndex = (r: typeof again.ranking) => [...r].sort((a, b) => a.index - b.index).map((p) => ({ options: p.options, mergeId: p.mergeId, worst: p.worstRetention }));
    expect(byIndex(again.ranking)).toEqual(byIndex(done.ranking)); // same points (past the told generation), same merges
    expect((await stack.client.sweeps.get(queued.id)).tune!.test).toEqual(test);
    // a job queued before the tune part stored the size of its dev part instead: still read as what it tuned on
    const legacy = { ...(job!.data as SweepJobData).tune!, tuneItems: undefined, devItems: 3 } as unknown as TuneSpec;
    expect(await readTuneResult({ redis: stack.rt.redis, redisPrefix: stack.prefix }, queued.id, legacy, 8)).toMatchObject({ tuneItems: 3, testItems: 5 });

    // the best is kept under a name with its weights
    const kept = await stack.client.sweeps.register(queued.id, { name: 'tuned-merge' });
    const bestWeights = (done.best!.options as { layerWeights: { weights: number[][] } }).layerWeights.weights;
    expect((await stack.registry.find('tuned-merge'))?.recipe).toMatchObject({ layerWeights: { weights: bestWeights } });
    expect(kept.point.index).toBe(done.best!.index);
  });

  it('refuses what a tuned sweep cannot honour, saying what to do', async () => {
    const create = (extra: object) => stack.client.sweeps.create({ items, adapters, search: 'cmaes', budget: 4, ...extra });
    await expect(create({ perLayer: true, options: { space: 'factors' } })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/use delta space/) });
    await expect(create({ space: { weights: [0.5] } })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/drop space.weights/) });
    await expect(create({ space: { method: ['linear', 'ties'] } })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/give one method, not 2/) });
    await expect(stack.client.sweeps.create({ items: items.slice(0, 2), adapters, search: 'cmaes' })).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/needs test items/),
    });
  });
});
