// The installed entry point as a shell runs it: bin/loraforge.js executed through its shebang (env -S, then node
// on the bundle in dist/, which `npm ci` builds), with glibc's malloc settings added to the user's own.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestAdapter } from '../helpers/adapters.js';
import { repoRoot } from '../helpers/cli.js';

const run = promisify(execFile);
const bin = path.join(repoRoot, 'bin/loraforge.js');
let work: string;

beforeAll(async () => {
  if (!existsSync(path.join(repoRoot, 'dist/bundle/main.js'))) throw new Error('dist/ is missing: `npm run build` (npm ci runs it) before these tests');
  work = await mkdtemp(path.join(os.tmpdir(), 'lf-entry-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A preload (NODE_OPTIONS reaches the node the shebang starts) that writes down the GLIBC_TUNABLES node got. */
async function tunablesProbe(name: string): Promise<{ nodeOptions: string; seen: () => Promise<string> }> {
  const file = path.join(work, `${name}.txt`);
  const preload = path.join(work, `${name}.cjs`);
  await writeFile(preload, `require('node:fs').writeFileSync(${JSON.stringify(file)}, process.env.GLIBC_TUNABLES ?? '(unset)');\n`);
  return { nodeOptions: `--require ${preload}`, seen: () => readFile(file, 'utf8') };
}

describe('bin/loraforge.js through its shebang', () => {
  it('merges, and its node runs with the user tunables and the huge-page malloc settings', async () => {
    const shape = { hidden: 32, kv: 16, layers: 2, rank: 4 };
    const a = await writeTestAdapter(path.join(work, 'a'), shape, 1);
    const b = await writeTestAdapter(path.join(work, 'b'), shape, 2);
    const probe = await tunablesProbe('with-user');
    const out = path.join(work, 'merged');
    const { stdout } = await run(bin, ['merge', '--method', 'ties', '--weights', '1,1', '--density', '0.5', '--out', out, a, b], {
      env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.check=0', NODE_OPTIONS: probe.nodeOptions, LORAFORGE_LOG_LEVEL: 'warn' },
    });
    expect(stdout).toMatch(/^merged 2 adapter\(s\) with ties/);
    expect(existsSync(path.join(out, 'adapter_model.safetensors'))).toBe(true);
    expect((await probe.seen()).split(':')).toEqual(['glibc.malloc.check=0', 'glibc.malloc.hugetlb=1', 'glibc.malloc.mmap_threshold=33554432']);
  }, 120_000);

  it('without tunables of the user, only its own are set', async () => {
    const probe = await tunablesProbe('without-user');
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: probe.nodeOptions };
    delete env.GLIBC_TUNABLES;
    const { stdout } = await run(bin, ['--help'], { env });
    expect(stdout).toMatch(/^Usage: loraforge/);
    // the empty user part leaves a leading ':', which glibc skips
    expect(await probe.seen()).toBe(':glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432');
  }, 60_000);
});
