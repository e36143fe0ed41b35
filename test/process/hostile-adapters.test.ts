// Broken and hostile adapters (test/helpers/corrupt-adapters.ts, seeded) thrown at the real `loraforge` process
// (`inspect` and `merge`) and at one running API process (register by path and by upload): exit 0 or 2 with one
// bounded stderr line and no stack, nothing written where the merge output would go; a 4xx JSON error with a
// bounded one-line message, /healthz answering after each, no registry entry or staging left for a refusal.
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MESSAGE_CHARS } from '../../src/errors.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { corruptions, sourceAdapter, type Corruption } from '../helpers/corrupt-adapters.js';
import { startTestService, type TestService } from '../helpers/service.js';

type Run = CliResult;

const cli = (...args: string[]): Promise<Run> => runCli(args, { timeout: 60_000 });

/** Runs `jobs` two at a time (the CLI's start-up dominates; more would only queue on a small machine). */
async function twoAtATime<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < jobs.length; i += 2) out.push(...(await Promise.all(jobs.slice(i, i + 2).map((j) => j()))));
  return out;
}

/** exit 0, or exit 2 with exactly one line on stderr (warnings aside); every line bounded, no stack trace. */
function expectClean(what: string, run: Run, expected: Corruption['expect']): void {
  const lines = run.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('warning: '));
  const seen = { what, code: run.code, lines: lines.length, stack: /\n\s+at |internal error|RangeError|ENOENT|EISDIR/.test(run.stderr) };
  // an accepted merge prints its progress on stderr
  if (expected === 'accept') expect({ ...seen, lines: 0 }).toEqual({ what, code: 0, lines: 0, stack: false });
  else if (expected === 'refuse' || run.code !== 0) expect(seen).toEqual({ what, code: 2, lines: 1, stack: false });
  for (const line of lines) expect(line.length).toBeLessThanOrEqual('loraforge: '.length + MAX_MESSAGE_CHARS);
  expect(run.stderr.split('\n').every((l) => l.length <= 'loraforge: '.length + MAX_MESSAGE_CHARS)).toBe(true);
}

let root: string;
let valid: string;
let cases: Corruption[];
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'lf-hostile-'));
  valid = path.join(root, 'valid');
  const src = await sourceAdapter(valid, 'F32', 31);
  cases = corruptions(src, path.join(valid, 'adapter_model.safetensors'), { seed: 1111, random: 24 });
  await mkdir(path.join(root, 'cases'));
  for (const [i, c] of cases.entries()) await c.make(path.join(root, 'cases', `case-${i}`));
});
afterAll(() => rm(root, { recursive: true, force: true }));

const dirOf = (name: string) => path.join(root, 'cases', `case-${cases.findIndex((c) => c.name.startsWith(name))}`);
const caseOf = (name: string) => cases.find((c) => c.name.startsWith(name))!;

describe('the CLI on broken adapters', () => {
  it('inspect shows or refuses each in one line; NaN is shown, flagged', { timeout: 180_000 }, async () => {
    const names = ['config with a UTF-8 BOM', 'keys wrapped twice', 'config target_modules nested', 'header data_offsets nested', 'header shape nested', 'a 20000-character tensor name', 'weights a FIFO', 'weights a symlink to /dev/zero'];
    const runs = await twoAtATime(names.map((n) => () => cli('inspect', dirOf(n))));
    names.forEach((n, i) => expectClean(`inspect ${n}`, runs[i]!, caseOf(n).expect));
    expect(runs[names.indexOf('header data_offsets nested')]!.stderr).toMatch(/^loraforge: .*adapter_model.safetensors: the safetensors header nests JSON more than 64 levels deep/);
    expect(runs[names.indexOf('a 20000-character tensor name')]!.stderr).toMatch(/"nnnn+…"/);
    expect(runs[names.indexOf('keys wrapped twice')]!.stderr).toMatch(/^warning: 8 tensor key\(s\) carry PEFT's prefix twice/m);
    expect(runs[names.indexOf('keys wrapped twice')]!.stdout).toMatch(/model\.layers\.0\.self_attn\.q_proj /);

    const nan = cases.find((c) => c.name.startsWith('NaN in'))!;
    const shown = await cli('inspect', dirOf(nan.name));
    expectClean('inspect NaN', { ...shown, code: shown.code }, 'accept');
    expect(shown.stdout).toMatch(/model\.layers\.0\.self_attn\.q_proj \(NaN\/inf!\)/);
    expect(shown.stderr).toMatch(/^warning: 1 NaN or infinite value\(s\) in 1 tensor\(s\), first in module "model.layers.0.self_attn.q_proj"/m);
  });

  it('merge refuses each in one line, before reading, and writes nothing', { timeout: 180_000 }, async () => {
    const names = ['config alone', 'only adapter_model.bin', 'weights a dangling symlink', 'weights a symlink to /dev/zero', 'weights a directory', 'NaN in', 'keys wrapped twice'];
    const outs = names.map((_, i) => path.join(root, `outs-${i}`));
    for (const o of outs) await mkdir(o);
    const runs = await twoAtATime(names.map((n, i) => () => cli('merge', '--method', 'linear', valid, dirOf(n), '--out', path.join(outs[i]!, 'merged'))));
    for (const [i, n] of names.entries()) {
      expectClean(`merge ${n}`, runs[i]!, caseOf(n).expect);
      const written = await readdir(outs[i]!);
      if (caseOf(n).expect === 'refuse') expect({ n, written }).toEqual({ n, written: [] });
    }
    expect(runs[names.indexOf('only adapter_model.bin')]!.stderr).toMatch(/^loraforge: .*adapter_model.bin is a PyTorch pickle.*python -c "import torch;.*"\n$/);
    expect(runs[names.indexOf('weights a directory')]!.stderr).toMatch(/adapter_model.safetensors: is a directory, not a regular file\n$/);
    // the doubly wrapped adapter merges, under the names it wraps, written with PEFT's prefix once
    const merged = JSON.parse(await readFile(path.join(outs[names.indexOf('keys wrapped twice')]!, 'merged', 'merge-report.json'), 'utf8'));
    expect(merged.output.modules).toBe(4);
  });
});

describe('the API on broken adapters', () => {
  let svc: TestService;
  let headers: Record<string, string>;
  beforeAll(async () => {
    svc = await startTestService({ name: 'hostile-adapters', worker: false, server: { importDir: path.join(root, 'cases') } });
    const token = svc.rt.config.server.authToken;
    headers = token ? { authorization: `Bearer ${token}` } : {};
  });
  afterAll(() => svc?.close());

  async function answer(res: Response, c: Corruption, how: string): Promise<boolean> {
    const text = await res.text();
    const what = { case: c.name, how, status: res.status };
    if (c.expect === 'accept') expect({ ...what, text }).toEqual({ ...what, status: 201, text: expect.any(String) });
    if (c.expect === 'refuse') expect(res.status, `${c.name} (${how}): ${text.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
    expect(res.status, `${c.name} (${how}): ${text.slice(0, 300)}`).toBeLessThan(500);
    if (res.status >= 400) {
      const body = JSON.parse(text) as { error: { code: string; message: string } };
      expect(body.error.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS);
      expect(body.error.message).not.toMatch(/[\r\n]/);
      expect(text.length).toBeLessThan(20_000);
    }
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    return res.status < 400;
  }

  it('refuses each with a bounded 4xx, stays up, and keeps no entry or staging of a refusal', { timeout: 120_000 }, async () => {
    const kept: string[] = [];
    for (const [i, c] of cases.entries()) {
      const name = `case-${i}`;
      const byPath = await fetch(`${svc.url}/v1/adapters`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ name, path: name, replace: true }),
      });
      if (await answer(byPath, c, 'path')) kept.push(name);
      if (!c.uploadable) continue;
      const form = new FormData();
      form.append('name', `${name}-up`);
      for (const file of await readdir(path.join(root, 'cases', name))) {
        form.append('files', new Blob([await readFile(path.join(root, 'cases', name, file))]), file);
      }
      const upload = await fetch(`${svc.url}/v1/adapters`, { method: 'POST', headers, body: form });
      if (await answer(upload, c, 'upload')) kept.push(`${name}-up`);
    }
    const listed = (await svc.registry.list()).map((a) => a.name).sort();
    expect(listed).toEqual(kept.sort());
    expect(kept.length).toBeGreaterThanOrEqual(6); // valid, BOM and doubly wrapped, by path and by upload
    expect(await readdir(path.join(svc.dataDir, 'tmp')).catch(() => [])).toEqual([]);
    // the doubly wrapped adapter is registered under the module names it wraps, and the record says so
    const wrapped = await svc.registry.get(`case-${cases.findIndex((c) => c.name.startsWith('keys wrapped twice'))}`);
    expect(Object.keys(wrapped.moduleShapes)[0]).toBe('model.layers.0.self_attn.q_proj');
    expect(wrapped.warnings).toEqual([expect.stringMatching(/^8 tensor key\(s\) carry PEFT's prefix twice/)]);
  });
});
