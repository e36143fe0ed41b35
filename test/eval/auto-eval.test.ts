// Finished merges measured on their own (eval/auto-eval.ts): a merge of two category experts gets one eval of the
// merge on the test part of their suites, shown on its status with the report's retention; reading the status again
// queues nothing more; with eval.autoEvalMerges off, or inputs without a category, there is none.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoEvalId } from '../../src/eval/auto-eval.js';
import { runCli } from '../helpers/cli.js';
import { demoWithExperts, startEvalStack, type DemoWithExperts, type EvalStack } from './stack.js';

let root: string;
let demo: DemoWithExperts;
let stack: EvalStack;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'lf-auto-eval-'));
  demo = await demoWithExperts(root);
  stack = await startEvalStack(demo, { name: 'auto-eval' });
}, 240_000);

afterAll(async () => {
  await stack?.close();
  await rm(root, { recursive: true, force: true });
});

describe('a finished merge', () => {
  it('carries the retention of an eval queued when it finished, on the test part of its inputs\' suites', async () => {
    const queued = await stack.client.merges.create({ adapters: ['code-expert', 'linux-commands-expert'], weights: [0.5, 0.5], method: 'linear', name: 'two-skills' });
    const done = await stack.client.merges.wait(queued.id);
    expect(done.state).toBe('completed');
    expect(done.autoEval).toMatchObject({ id: autoEvalId(queued.id), part: 'test', categories: ['code', 'linux-commands'] });

    const evalDone = await stack.client.evals.wait(done.autoEval!.id);
    expect(evalDone).toMatchObject({ state: 'completed', models: ['two-skills'], suites: ['code', 'linux-commands'] });
    expect(evalDone.report!.part).toBe('test');
    const merged = evalDone.report!.models.find((m) => m.model === 'two-skills')!;

    const status = await stack.client.merges.get(queued.id);
    expect(status.autoEval).toEqual({
      id: done.autoEval!.id,
      state: 'completed',
      part: 'test',
      categories: ['code', 'linux-commands'],
      worstRetention: merged.overall.worstRetention,
      meanRetention: merged.overall.meanRetention,
      retention: { code: merged.categories.code!.retention, 'linux-commands': merged.categories['linux-commands']!.retention },
    });
    expect(typeof status.autoEval!.worstRetention).toBe('number');
    // read again (here by the CLI, which prints it): still that one eval
    const shown = await runCli(['merges', 'show', queued.id], { server: stack.url });
    expect(shown.stdout).toContain(
      `skill retention (test part): worst ${merged.overall.worstRetention!.toFixed(2)}, mean ${merged.overall.meanRetention!.toFixed(2)}; code ${merged.categories.code!.retention!.toFixed(2)}, linux-commands`,
    );
    expect(await stack.evals.queue.getJobCounts('completed', 'waiting', 'active')).toEqual({ completed: 1, waiting: 0, active: 0 });
  });

  it('has none when a search (here `loraforge tune`) registered it: the search scores its merges', async () => {
    const queued = await stack.client.merges.create({ adapters: ['code-expert', 'linux-commands-expert'], weights: [0.3, 0.7], method: 'linear', name: 'tuned-0', registeredBy: 'tune:tuned' });
    const done = await stack.client.merges.wait(queued.id);
    expect(done.state).toBe('completed');
    expect(done.autoEval).toBeUndefined();
  });

  it('has none when its inputs have no category with a suite', async () => {
    await stack.registry.registerCopy('code-expert', { name: 'plain-a', replace: false, registeredBy: 'test' });
    await stack.registry.registerCopy('linux-commands-expert', { name: 'plain-b', replace: false, registeredBy: 'test' });
    const queued = await stack.client.merges.create({ adapters: ['plain-a', 'plain-b'], weights: [0.4, 0.6], method: 'linear', name: 'no-category' });
    const done = await stack.client.merges.wait(queued.id);
    expect(done.state).toBe('completed');
    expect(done.autoEval).toBeUndefined();
  });
});

describe('with eval.autoEvalMerges off', () => {
  it('a finished merge has no auto-eval, and none is queued', async () => {
    const off = await startEvalStack(demo, { name: 'auto-eval-off', autoEvalMerges: false });
    try {
      const queued = await off.client.merges.create({ adapters: ['code-expert', 'linux-commands-expert'], weights: [0.5, 0.5], method: 'linear', name: 'two-skills' });
      const done = await off.client.merges.wait(queued.id);
      expect(done.state).toBe('completed');
      expect(done.autoEval).toBeUndefined();
      expect(await off.evals.queue.getJobCounts('completed', 'waiting', 'active')).toEqual({ completed: 0, waiting: 0, active: 0 });
    } finally {
      await off.close();
    }
  });
});
