// bin/loraforge.js runs the bundle in dist/bundle (scripts/bundle.mjs), where every worker thread starts from an
// entry beside the chunk that starts it. Each thread of the bundle is driven here with real work, and the engine's
// two threads through the bin itself.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAdapter } from '../../src/formats/peft.js';
import { TileArena } from '../../src/merge/dense.js';
import { MatmulKernel } from '../../src/merge/kernels/matmul.js';
import { mergeModule, type ModuleJob, type ModuleOutcome } from '../../src/merge/module-step.js';
import { parseMergeOptions } from '../../src/merge/options.js';
import { planMerge } from '../../src/merge/plan.js';
import type { MergeThreadData, ThreadMessage } from '../../src/queue/merge-thread.js';
import { writeTestAdapter } from '../helpers/adapters.js';
import { repoRoot } from '../helpers/cli.js';

const run = promisify(execFile);
const bundle = path.join(repoRoot, 'dist/bundle');
let work: string;
let adapters: string[];

beforeAll(async () => {
  if (!existsSync(path.join(bundle, 'main.js'))) throw new Error('dist/bundle is missing: `npm run build` (npm ci runs it) before these tests');
  work = await mkdtemp(path.join(os.tmpdir(), 'lf-bundle-'));
  const shape = { hidden: 32, kv: 16, layers: 2, rank: 4 };
  adapters = [await writeTestAdapter(path.join(work, 'a'), shape, 1), await writeTestAdapter(path.join(work, 'b'), shape, 2)];
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Starts a thread entry of the bundle and resolves with its first message (or fails with its error). */
function firstReply<T>(entry: string, message: unknown, workerData?: unknown): Promise<T> {
  const worker = new Worker(path.join(bundle, `${entry}.js`), { workerData });
  return new Promise<T>((resolve, reject) => {
    worker.once('message', (reply: T) => resolve(reply));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`${entry} exited with code ${code} before answering`)));
    worker.postMessage(message);
  }).finally(() => void worker.terminate());
}

describe('the bundle bin/loraforge.js runs', () => {
  it('has an entry for every thread the sources start', () => {
    const names = new Set<string>();
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else for (const m of readFileSync(p, 'utf8').matchAll(/siblingModule\(import\.meta\.url, '([\w-]+)'\)/g)) names.add(m[1]!);
      }
    };
    walk(path.join(repoRoot, 'src'));
    expect(names.size).toBeGreaterThanOrEqual(6);
    for (const name of names) expect(existsSync(path.join(bundle, `${name}.js`)), `dist/bundle/${name}.js`).toBe(true);
  });

  it('merges in its merge thread (which hashes the inputs in a thread of its own)', async () => {
    const out = path.join(work, 'merged');
    const data: MergeThreadData = {
      inputDirs: adapters,
      outDir: out,
      options: parseMergeOptions({ method: 'ties', weights: [1, 1], density: 0.5 }),
      labels: ['a', 'b'],
      compute: { device: 'cpu' },
      denseCacheBytes: 1 << 26,
    };
    const merged = await new Promise<ThreadMessage>((resolve, reject) => {
      const worker = new Worker(path.join(bundle, 'merge-thread.js'));
      worker.on('message', (m: ThreadMessage) => m.type !== 'progress' && resolve(m));
      worker.once('error', reject);
      worker.postMessage({ type: 'run', data });
    });
    expect(merged.type).toBe('done');
    const report = (merged as Extract<ThreadMessage, { type: 'done' }>).report as { inputs: { sha256?: string }[] };
    expect(report.inputs.map((x) => x.sha256)).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/), expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect(existsSync(path.join(out, 'adapter_model.safetensors'))).toBe(true);
  }, 60_000);

  it('merges a module in its module thread exactly as in-process', async () => {
    const inputs = await Promise.all(adapters.map((dir) => readAdapter(dir)));
    const options = parseMergeOptions({ method: 'ties', weights: [1, 0.5], density: 0.5, space: 'delta', rank: 8 });
    const plan = planMerge(inputs, ['a', 'b'], options);
    const work0 = plan.modules[0]!;
    const job: ModuleJob = {
      work: work0,
      inputs: work0.present.map((i) => ({ adapter: i, module: inputs[i]!.modules.get(work0.name)!, weight: options.weights[i]! })),
      method: plan.method,
      options,
      adapterCount: 2,
      dtype: 'F32',
      cacheBytes: 1 << 26,
    };
    const kernel = new MatmulKernel({ threads: 1 });
    const here = await mergeModule(kernel, new TileArena(), job, null);
    await kernel.release();
    const reply = await firstReply<{ type: string; outcome: ModuleOutcome }>('module-thread', { type: 'job', job }, { device: 'cpu' });
    expect(reply.type).toBe('done');
    expect(reply.outcome.merged.B.data).toEqual(here.merged.B.data);
    expect(reply.outcome.merged.A.data).toEqual(here.merged.A.data);
  }, 60_000);

  it('checks answers in its check thread', async () => {
    const reply = await firstReply<{ id: number; pass: boolean }>('check-thread', { id: 7, answer: 'du -sh */', checks: [{ regex: '^du -s' }] });
    expect(reply).toEqual({ id: 7, pass: true });
  });

  it('generates through the bin with its engine and tokenizer threads', async () => {
    const data = path.join(work, 'data');
    const { stdout } = await run(
      path.join(repoRoot, 'bin/loraforge.js'),
      ['generate', '--model', 'assets/demo/base', '--adapter', 'assets/demo/adapters/linux-commands', '--prompt', 'Show disk usage by folder', '--chat', '--max-tokens', '12', '--temperature', '0'],
      { cwd: repoRoot, env: { ...process.env, LORAFORGE_DATA_DIR: data, LORAFORGE_LOG_LEVEL: 'warn' } },
    );
    expect(stdout).toContain('du -sh');
  }, 120_000);
});
