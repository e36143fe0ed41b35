// /v1/evals end to end: the real API, eval service and worker, engine, registry and Redis, driven through the typed
// client (as the CLI and the bot use it): progress events, the report, the heat map, and refusals of bad requests.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobStreamEvent } from '../../src/client/eval.js';
import { fewerPoints } from '../../src/cli/commands/sweep.js';
import type { EvalStatus } from '../../src/eval/jobs.js';
import { loadSuites, type SuiteItem } from '../../src/eval/suite.js';
import { demoWithExperts, startEvalStack, type DemoWithExperts, type EvalStack } from './stack.js';

describe('evals over HTTP', () => {
  let root: string;
  let demo: DemoWithExperts;
  let stack: EvalStack;
  let items: Array<Omit<SuiteItem, 'id'>>;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-eval-api-'));
    demo = await demoWithExperts(root);
    stack = await startEvalStack(demo, { name: 'eval-api' });
    const all = await loadSuites();
    // three items per skill keep the test short
    items = [...new Set(all.map((i) => i.category))].flatMap((c) => all.filter((i) => i.category === c).slice(0, 3)).map(({ id: _id, ...rest }) => rest);
  });
  afterAll(async () => {
    await stack?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('runs an eval: progress events, then a report with every model and the experts found by category', async () => {
    const queued = await stack.client.evals.create({ items, models: ['code-expert'] });
    expect(queued.state).toMatch(/queued|running/);
    expect(queued.id).toMatch(/^eval-[0-9a-f]{24}$/);
    const events: Array<JobStreamEvent<EvalStatus>> = [];
    const done = await stack.client.evals.wait(queued.id, (e) => events.push(e));
    expect(done.state).toBe('completed');
    expect(events.some((e) => e.event === 'progress' && e.data.phase === 'score')).toBe(true);

    const report = done.report!;
    // the base model, the requested model, and every category's expert
    expect(report.models.map((m) => m.model).sort()).toEqual(
      [stack.engine!.modelId, 'code-expert', 'linux-commands-expert', 'python-automation-expert', 'troubleshooting-expert'].sort(),
    );
    for (const category of report.categories) {
      expect(report.experts[category]!.model).toBe(`${category}-expert`);
      const expert = report.models.find((m) => m.model === `${category}-expert`)!;
      const base = report.models.find((m) => m.kind === 'base')!;
      expect(expert.categories[category]!.perplexity).toBeLessThan(base.categories[category]!.perplexity);
      expect(expert.categories[category]!.retention).toBe(1);
    }
    expect(report.items).toHaveLength(items.length);
    expect(Object.keys(report.itemNll)).toHaveLength(report.models.length);

    // the same status by GET; the heat map once completed
    expect((await stack.client.evals.get(queued.id)).report).toEqual(report);
    const png = await stack.client.evals.heatmap(queued.id);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  it('lists the suites it can name', async () => {
    expect(await stack.client.evals.suites()).toEqual(['code', 'linux-commands', 'python-automation', 'troubleshooting']);
  });

  it('refuses bad requests with a message that says what to fix, and queues nothing', async () => {
    const before = await stack.evals.queue.getJobCounts('waiting', 'active', 'completed', 'failed');
    await expect(stack.client.evals.create({ suites: ['cooking'] })).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/no suite "cooking".*available: code/) });
    await expect(stack.client.evals.create({ items: [{ category: 'code', prompt: 'p' } as never] })).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/items\.0\.reference/),
    });
    await expect(stack.client.evals.create({ items, models: ['no-such-adapter'] })).rejects.toMatchObject({
      status: 404,
      message: expect.stringMatching(/unknown adapter "no-such-adapter"; registered: code-expert/),
    });
    await expect(stack.client.evals.create({ items: [{ category: 'code', prompt: 'p', reference: 'r', checks: [{ regex: '(' }] }] })).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/checks: .*Invalid regular expression/),
    });
    await expect(stack.client.sweeps.create({ items, adapters: ['code-expert'] })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/adapters/) });
    await expect(stack.client.sweeps.create({ items, space: { method: ['ties'], density: [0.1, 0.2, 0.3], weights: [0.1, 0.2, 0.3] }, maxPoints: 4 })).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/the grid has 9 points, more than maxPoints 4/),
    });
    await expect(stack.client.sweeps.create({ items, space: { method: ['linear'], weights: [[1, 2]] } })).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/has 2 weights for 4 adapters/),
    });
    await expect(stack.client.evals.get('eval-000000000000000000000000')).rejects.toMatchObject({ status: 404 });
    await expect(stack.client.evals.get('nonsense')).rejects.toMatchObject({ status: 400 });
    expect(await stack.evals.queue.getJobCounts('waiting', 'active', 'completed', 'failed')).toEqual(before);
  });

  it('says when a random sweep asks for more points than its space has', async () => {
    const queued = await stack.client.sweeps.create({ items, search: 'random', samples: 24, space: { method: ['linear'], weights: [0.25, 0.5] } });
    expect(queued).toMatchObject({ totalPoints: 2, requestedPoints: 24 });
    expect(fewerPoints(queued)).toBe(' (of 24 asked: the space has only 2 distinct points)');
    await stack.client.sweeps.cancel(queued.id);
    expect((await stack.client.sweeps.wait(queued.id)).state).toBe('cancelled');
  });

  it('cancels an eval', async () => {
    const queued = await stack.client.evals.create({ items, checks: true, maxTokens: 64 });
    const cancelled = await stack.client.evals.cancel(queued.id);
    expect(cancelled.cancelRequested).toBe(true);
    const done = await stack.client.evals.wait(queued.id);
    expect(done.state).toBe('cancelled');
    expect(done.error?.code).toBe('cancelled');
    await expect(stack.client.evals.cancel(queued.id)).rejects.toMatchObject({ status: expect.any(Number) });
  });
});
