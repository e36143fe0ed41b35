// A sweep survives the death of the process running it: a real child process (the engine and an eval worker, see
// sweep-child.ts) is killed with SIGKILL after a few points; a second one takes the job over once its lock has
// expired and finishes it without redoing the points already finished, and with one merge per recipe.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rankPoints, readSweepState } from '../../src/eval/sweep.js';
import { loadSuites, type SuiteItem } from '../../src/eval/suite.js';
import { demoWithExperts, startEvalStack, type DemoWithExperts, type EvalStack } from './stack.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');

function sweepProcess(stack: EvalStack, demo: DemoWithExperts, dataDir: string): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'sweep-child.ts')], {
    cwd: repo,
    env: { ...process.env, EVAL_CHILD_PREFIX: stack.prefix, EVAL_CHILD_DATA_DIR: dataDir, EVAL_CHILD_MODEL_DIR: demo.modelDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
    child.once('exit', (code, signal) => reject(new Error(`the sweep process exited (${code ?? signal}) before it was ready`)));
  });
  return { child, ready };
}

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

describe('sweep resume', () => {
  let root: string;
  let dataDir: string;
  let demo: DemoWithExperts;
  let stack: EvalStack;
  let items: Array<Omit<SuiteItem, 'id'>>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-sweep-resume-'));
    dataDir = path.join(root, 'data');
    demo = await demoWithExperts(root);
    // this process queues, reports and runs merges; the children run the sweep
    stack = await startEvalStack(demo, { name: 'sweep-resume', engine: false, dataDir });
    const all = await loadSuites();
    items = [...new Set(all.map((i) => i.category))].flatMap((c) => all.filter((i) => i.category === c).slice(0, 2)).map(({ id: _id, ...rest }) => rest);
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    await stack?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('goes on after its process is killed, without redoing finished points', async () => {
    const first = sweepProcess(stack, demo, dataDir);
    children.push(first.child);
    await first.ready;
    const queued = await stack.client.sweeps.create({ items, space: { method: ['linear'], weights: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], rank: [4] } });
    expect(queued.totalPoints).toBe(6);

    // kill the process once two points are finished
    let before = await readSweepState(stack.rt.redis, stack.prefix, queued.id);
    for (const deadline = Date.now() + 240_000; before.ranking.length < 2; ) {
      if (Date.now() > deadline) throw new Error('the sweep made no progress');
      await new Promise((r) => setTimeout(r, 100));
      before = await readSweepState(stack.rt.redis, stack.prefix, queued.id);
    }
    first.child.kill('SIGKILL');
    await exited(first.child);
    expect(first.child.signalCode).toBe('SIGKILL');
    before = await readSweepState(stack.rt.redis, stack.prefix, queued.id);
    expect(before.ranking.length).toBeLessThan(6);
    expect((await stack.client.sweeps.get(queued.id)).state).toBe('running');

    const second = sweepProcess(stack, demo, dataDir);
    children.push(second.child);
    await second.ready;
    const done = await stack.client.sweeps.wait(queued.id);
    expect(done.state).toBe('completed');
    expect(done.ranking).toHaveLength(6);
    expect(done.ranking.every((p) => p.state === 'completed')).toBe(true);
    // the points finished before the kill are the same records, not scored again
    for (const point of before.ranking) expect(done.ranking.find((p) => p.index === point.index)).toEqual(point);
    // one merge per recipe, all made by this sweep
    const made = (await stack.registry.list()).filter((r) => r.registeredBy === `sweep:${queued.id}`);
    expect(made).toHaveLength(6);
    expect(new Set(made.map((r) => r.recipeHash)).size).toBe(6);
    expect(done.ranking).toEqual(rankPoints(done.ranking));
  });
});
