// The installed entry point as a shell runs it: bin/loraforge.js executed through its shebang (env -S, then node
// on the built dist/, which `npm ci` builds), with glibc's malloc settings added to the user's own.
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
  if (!existsSync(path.join(repoRoot, 'dist/cli/main.js'))) throw new Error('dist/ is missing: `npm run build` (npm ci runs it) before these tests');
  work = await mkdtemp(path.join(os.tmpdir(), 'lf-entry-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('bin/loraforge.js through its shebang', () => {
  it('merges, and its node runs with the user tunables and the huge-page malloc settings', async () => {
    const shape = { hidden: 32, kv: 16, layers: 2, rank: 4 };
    const a = await writeTestAdapter(path.join(work, 'a'), shape, 1);
    const b = await writeTestAdapter(path.join(work, 'b'), shape, 2);
    // a preload (NODE_OPTIONS reaches the node the shebang starts) writes down the environment node got
    const seen = path.join(work, 'tunables.txt');
    const preload = path.join(work, 'preload.cjs');
    await writeFile(preload, `require('node:fs').writeFileSync(${JSON.stringify(seen)}, process.env.GLIBC_TUNABLES ?? '(unset)');\n`);
    const out = path.join(work, 'merged');
    const { stdout } = await run(bin, ['merge', '--method', 'ties', '--weights', '1,1', '--density', '0.5', '--out', out, a, b], {
      env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.check=0', NODE_OPTIONS: `--require ${preload}`, LORAFORGE_LOG_LEVEL: 'warn' },
    });
    expect(stdout).toMatch(/^merged 2 adapter\(s\) with ties/);
    expect(existsSync(path.join(out, 'adapter_model.safetensors'))).toBe(true);
    expect((await readFile(seen, 'utf8')).split(':')).toEqual(['glibc.malloc.check=0', 'glibc.malloc.hugetlb=1', 'glibc.malloc.mmap_threshold=33554432']);
  }, 120_000);

  it('without tunables of the user, only its own are set', async () => {
    const seen = path.join(work, 'tunables-none.txt');
    const preload = path.join(work, 'preload-none.cjs');
    await writeFile(preload, `require('node:fs').writeFileSync(${JSON.stringify(seen)}, process.env.GLIBC_TUNABLES ?? '(unset)');\n`);
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `--require ${preload}` };
    delete env.GLIBC_TUNABLES;
    const { stdout } = await run(bin, ['--help'], { env });
    expect(stdout).toMatch(/^Usage: loraforge/);
    // the empty user part leaves a leading ':', which glibc skips
    expect(await readFile(seen, 'utf8')).toBe(':glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432');
  }, 60_000);
});
