// A sweep end to end on the demo model with its four experts: each point a real merge job on the queue, run by a
// merge worker, registered, then scored by the engine; the ranking checked against the scores it reports, one
// point against a separate eval of its merge, and the best kept under a name.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SweepStatus } from '../../src/eval/jobs.js';
import { loadSuites, type SuiteItem } from '../../src/eval/suite.js';
import { demoWithExperts, startEvalStack, type DemoWithExperts, type EvalStack } from './stack.js';

describe('sweeps', () => {
  let root: string;
  let demo: DemoWithExperts;
  let stack: EvalStack;
  let items: Array<Omit<SuiteItem, 'id'>>;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-sweep-'));
    demo = await demoWithExperts(root);
    stack = await startEvalStack(demo, { name: 'sweep' });
    const all = await loadSuites();
    items = [...new Set(all.map((i) => i.category))].flatMap((c) => all.filter((i) => i.category === c).slice(0, 3)).map(({ id: _id, ...rest }) => rest);
  });
  afterAll(async () => {
    await stack?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('merges and scores every point of a small grid, and ranks them as the scores say', async () => {
    const queued = await stack.client.sweeps.create({
      items,
      space: { method: ['linear', 'ties'], weights: [0.25, 1], density: [0.5], rank: [4] },
    });
    expect(queued.totalPoints).toBe(4);
    expect(queued.adapters).toEqual(['code-expert', 'linux-commands-expert', 'python-automation-expert', 'troubleshooting-expert']);
    const statuses: SweepStatus[] = [];
    const done = await stack.client.sweeps.wait(queued.id, (e) => e.event === 'status' && statuses.push(e.data));
    expect(done.state).toBe('completed');
    // the ranking grows point by point on the stream
    expect(new Set(statuses.map((s) => s.ranking.length)).size).toBeGreaterThan(2);

    const { baseline, ranking } = done;
    expect(ranking).toHaveLength(4);
    expect(ranking.every((p) => p.state === 'completed')).toBe(true);
    const base = baseline!.perplexity[stack.engine!.modelId]!;
    for (const point of ranking) {
      // retention as defined, from the baseline's perplexities and the point's own
      const retained: number[] = [];
      for (const category of baseline!.categories) {
        const expert = baseline!.perplexity[`${category}-expert`]![category]!;
        const ppl = point.categories![category]!.perplexity;
        const r = (base[category]! - ppl) / (base[category]! - expert);
        expect(point.categories![category]!.retention).toBeCloseTo(r, 10);
        retained.push(r);
      }
      expect(point.worstRetention).toBeCloseTo(Math.min(...retained), 10);
      expect(point.meanRetention).toBeCloseTo(retained.reduce((a, b) => a + b) / retained.length, 10);
      // the point's merge is a registered adapter with the point's recipe, made by this sweep
      const record = await stack.registry.find(point.adapter!);
      expect(record?.registeredBy).toBe(`sweep:${queued.id}`);
      expect(record?.recipe?.method).toBe(point.options.method);
    }
    for (let i = 1; i < ranking.length; i++) {
      const [a, b] = [ranking[i - 1]!, ranking[i]!];
      expect(a.worstRetention! > b.worstRetention! || (a.worstRetention === b.worstRetention && a.meanRetention! >= b.meanRetention!)).toBe(true);
    }
    expect(done.best).toEqual(ranking[0]);

    // a separate eval of the best point's merge gives its perplexities again
    const evalDone = await stack.client.evals.wait((await stack.client.evals.create({ items, models: [ranking[0]!.adapter!] })).id);
    const again = evalDone.report!.models.find((m) => m.model === ranking[0]!.adapter)!;
    for (const category of baseline!.categories) {
      expect(again.categories[category]!.perplexity).toBeCloseTo(ranking[0]!.categories![category]!.perplexity, 3);
    }

    // one call keeps the best under a name, with its recipe
    const kept = await stack.client.sweeps.register(queued.id, { name: 'team-merge' });
    expect(kept.status).toBe('created');
    expect(kept.point.index).toBe(ranking[0]!.index);
    const record = await stack.registry.find('team-merge');
    expect(record?.recipe).toEqual((await stack.registry.find(ranking[0]!.adapter!))?.recipe);
    expect(record?.sha256).toBe((await stack.registry.find(ranking[0]!.adapter!))?.sha256);

    const png = await stack.client.sweeps.heatmap(queued.id);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  it('records a point whose merge is refused as failed and goes on', async () => {
    // factors space takes no rank for linear: the merge engine refuses that point, the others run
    await expect(
      stack.client.sweeps.create({ items, space: { method: ['linear'], weights: [0.25], rank: [2] }, options: { space: 'factors' } }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/in factors space only svd takes a rank/) });
  });
});
