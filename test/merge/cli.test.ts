// The CLI end to end: the real `loraforge` process (from sources, through tsx) on real adapter directories.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAdapter, writeAdapter } from '../../src/formats/peft.js';
import { runCli } from '../helpers/cli.js';
import { fixture, haveFixtures } from '../helpers/fixtures.js';
import { denseDelta, makeAdapter } from './adapters.js';
import { relError } from './reference.js';

const cli = (...args: string[]) => runCli(args, { timeout: 60_000 });

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'loraforge-merge-cli-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

const Q = 'model.layers.0.self_attn.q_proj';

describe('loraforge merge / inspect', () => {
  it.skipIf(!haveFixtures)('merges the two real SmolLM adapters, prints a summary and writes the report beside the adapter', async () => {
    const a = fixture('peft/SmolLM-135M-Instruct/tfm-hitesh-medai-5epochs');
    const b = fixture('peft/SmolLM-135M-Instruct/tfm-hitesh-medai-100epochs');
    const out = path.join(tmp, 'smollm-ties');
    const res = await cli('merge', '--method', 'ties', '--weights', '0.5,0.5', '--density', '0.2', a, b, '--out', out);
    expect(res.code).toBe(0);
    expect(res.stderr).not.toMatch(/warning|error/i); // progress lines only
    expect(res.stdout).toMatch(/merged 2 adapter\(s\) with ties \(delta space\)/);
    expect(res.stdout).toMatch(/relative error vs the exact weighted sum/);
    expect((await readdir(out)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'merge-report.json']);
    const merged = await readAdapter(out);
    expect(merged.modules.size).toBe((await readAdapter(a)).modules.size);
    const report = JSON.parse(await readFile(path.join(out, 'merge-report.json'), 'utf8'));
    expect(report.inputs[0].label).toBe(a);
    expect(report.inputs[0].sha256).toMatch(/^[0-9a-f]{64}$/);

    const inspected = await cli('inspect', out, '--json');
    expect(inspected.code).toBe(0);
    const summary = JSON.parse(inspected.stdout);
    expect(summary.modules.length).toBe(merged.modules.size);
    expect(summary.modules[0].norm).toBeGreaterThan(0);
    const text = await cli('inspect', a);
    expect(text.stdout).toMatch(/HuggingFaceTB\/SmolLM-135M-Instruct/);
    expect(text.stdout).toMatch(/q_proj, v_proj/);
  }, 120_000);

  it('--layer-weights gives each group of blocks its own weights, kept in the recipe', async () => {
    const layer = (l: number) => `model.layers.${l}.self_attn.q_proj`;
    const spec = (seed: number) => makeAdapter([0, 1, 2, 3].map((l) => ({ name: layer(l), out: 6, inn: 5, r: 2, seed: seed * 10 + l })));
    const [a, b] = [path.join(tmp, 'lw-a'), path.join(tmp, 'lw-b')];
    await writeAdapter(a, spec(1));
    await writeAdapter(b, spec(2));
    const out = path.join(tmp, 'lw-out');
    // early blocks (0, 1) from a only, late blocks (2, 3) from b only
    const res = await cli('merge', '--method', 'linear', '--weights', '1,1', '--layer-weights', '1,0;0,1', a, b, '--out', out);
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'merge-report.json'), 'utf8'));
    expect(report.recipe.layerWeights).toEqual({ weights: [[1, 0], [0, 1]] });
    const [merged, inA, inB] = await Promise.all([readAdapter(out), readAdapter(a), readAdapter(b)]);
    for (const l of [0, 1, 2, 3]) {
      const want = denseDelta((l < 2 ? inA : inB).modules.get(layer(l))!, 1);
      expect(relError(denseDelta(merged.modules.get(layer(l))!, 1), want), `block ${l}`).toBeLessThan(1e-5);
    }
    const bad = await cli('merge', '--method', 'linear', '--layer-weights', '1,x', a, b, '--out', path.join(tmp, 'x6'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--layer-weights takes rows of numbers/);
  }, 120_000);

  it('a bad argument or input prints one line saying what to fix and exits 2', async () => {
    const dir = path.join(tmp, 'one');
    await writeAdapter(dir, makeAdapter([{ name: Q, out: 4, inn: 4, r: 1 }]));
    const cases: [string[], RegExp][] = [
      [['merge', '--method', 'bogus', dir, dir, '--out', path.join(tmp, 'x1')], /--method must be one of linear, cat, svd/],
      [['merge', '--method', 'linear', '--weights', '1', dir, dir, '--out', path.join(tmp, 'x2')], /--weights has 1 value\(s\) for 2 adapter\(s\)/],
      [['merge', '--method', 'cat', '--density', '0.2', dir, dir, '--out', path.join(tmp, 'x3')], /cat keeps every entry and takes no density/],
      [['merge', '--method', 'linear', '--weights', 'a,b', dir, dir, '--out', path.join(tmp, 'x4')], /--weights takes numbers/],
      [['merge', '--method', 'linear', dir, path.join(tmp, 'nope'), '--out', path.join(tmp, 'x5')], /nope: no such directory/],
      [['inspect', path.join(tmp, 'nope')], /no such directory/],
    ];
    for (const [args, message] of cases) {
      const res = await cli(...args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect(res.stderr).toMatch(message);
    }
    expect((await readdir(tmp)).filter((f) => /^x\d/.test(f))).toEqual([]);
  }, 120_000);
});
