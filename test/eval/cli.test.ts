// `loraforge eval` and `loraforge sweep` as a user runs them: the real CLI process (from sources, through tsx)
// against a running API with the engine, on a suite file of the user's, and refusals on one line with exit code 2.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { formatEvalReport, formatPerplexity, parseExperts } from '../../src/cli/commands/eval.js';
import { parseDensities, parseWeights } from '../../src/cli/commands/sweep.js';
import type { EvalStatus, SweepStatus } from '../../src/eval/jobs.js';
import { loadSuites } from '../../src/eval/suite.js';
import { demoWithExperts, startEvalStack, type DemoWithExperts, type EvalStack } from './stack.js';


describe('loraforge eval / sweep', () => {
  let root: string;
  let demo: DemoWithExperts;
  let stack: EvalStack;
  let suiteFile: string;

  const cli = (...args: string[]) => runCli(args, { server: stack.url });

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-eval-cli-'));
    demo = await demoWithExperts(root);
    stack = await startEvalStack(demo, { name: 'eval-cli' });
    const all = await loadSuites();
    const items = [...new Set(all.map((i) => i.category))].flatMap((c) => all.filter((i) => i.category === c).slice(0, 2));
    suiteFile = path.join(root, 'my-suite.jsonl');
    await writeFile(suiteFile, items.map(({ id: _id, ...rest }) => JSON.stringify(rest)).join('\n'));
  });
  afterAll(async () => {
    await stack?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('eval: scores a local suite file, prints a table per model, writes the heat map', async () => {
    const heatmap = path.join(root, 'eval.png');
    const res = await cli('eval', 'code-expert', '--suite-file', suiteFile, '--heatmap', heatmap);
    expect(res.stderr).toMatch(/queued eval-[0-9a-f]{24}/);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/completed: 8 items from inline; asked for code-expert\n/);
    expect(res.stdout).toMatch(/perplexity \(retention\) per category, item-weighted .*retention uses it\); ppl\/token: token-weighted .*; experts: code=code-expert/);
    expect(res.stdout).toMatch(/worst\s+mean\s+ppl\/token\s+tokens\n/);
    expect(res.stdout).toMatch(/code-expert\s+adapter\s+[\d.e]+ \(1\.00\)/);
    expect((await readFile(heatmap)).subarray(1, 4).toString()).toBe('PNG');

    const json = await cli('eval', '--suite-file', suiteFile, '--json');
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as EvalStatus;
    expect(status.state).toBe('completed');
    expect(status.report!.models.length).toBe(5);
  });

  it('sweep: runs a grid, ranks it, and keeps the best with one more command', async () => {
    const res = await cli('sweep', '--suite-file', suiteFile, '--method', 'linear', '--weights', '0.25,0.5', '--rank', '4', '--json');
    expect(res.code).toBe(0);
    const status = JSON.parse(res.stdout) as SweepStatus;
    expect(status.state).toBe('completed');
    expect(status.ranking.map((p) => p.label).sort()).toEqual(['linear w=0.25 r=4', 'linear w=0.5 r=4']);

    const shown = await cli('sweeps', 'show', status.id);
    expect(shown.stdout).toMatch(/retention per category, best first/);
    expect(shown.stdout).toContain(`keep the best: loraforge sweeps register ${status.id} <name>`);
    const kept = await cli('sweeps', 'register', status.id, 'team-merge');
    expect(kept.code).toBe(0);
    expect(kept.stdout).toMatch(new RegExp(`registered ${status.best!.label.replace(/[.]/g, '\\.')} \\(point ${status.best!.index}\\) as team-merge \\(created\\)`));
    expect((await stack.registry.find('team-merge'))?.recipe?.method).toBe('linear');
  });

  it('sweep --tune cmaes: tunes on the tune part and reports the best on the test part', async () => {
    const all = await loadSuites();
    const three = path.join(root, 'three.jsonl');
    const items = ['code', 'linux-commands'].flatMap((c) => all.filter((i) => i.category === c).slice(0, 3));
    await writeFile(three, items.map(({ id: _id, ...rest }) => JSON.stringify(rest)).join('\n'));
    const res = await cli('sweep', 'code-expert', 'linux-commands-expert', '--suite-file', three, '--tune', 'cmaes', '--budget', '3', '--per-layer');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/completed: 3 of 3 points \(cmaes over code-expert, linux-commands-expert\)/);
    expect(res.stdout).toMatch(/linear w=1 g=[\d.,]+\/[\d.,]+/);
    expect(res.stdout).toMatch(/tuned by CMA-ES: a weight per adapter per layer group \(3 groups\), 3 merges, ranked on the tune part \(calibration and dev, 4 items\)/);
    // a category's retention is n/a where its expert does not beat the base on the one test item
    expect(res.stdout).toMatch(/best point on the test part \(2 items, never seen by the search\): worst -?[\d.]+, mean -?[\d.]+ \(code (-?[\d.]+|n\/a), linux-commands (-?[\d.]+|n\/a)\)/);
  });

  it('eval --part tune scores the calibration and dev parts, and says so', async () => {
    const all = await loadSuites();
    const file = path.join(root, 'three-each.jsonl');
    const items = ['code', 'linux-commands'].flatMap((c) => all.filter((i) => i.category === c).slice(0, 3));
    await writeFile(file, items.map(({ id: _id, ...rest }) => JSON.stringify(rest)).join('\n'));
    const res = await cli('eval', 'code-expert', '--suite-file', file, '--part', 'tune', '--json');
    expect(res.code, res.stderr).toBe(0);
    const report = (JSON.parse(res.stdout) as EvalStatus).report!;
    expect(report.part).toBe('tune');
    expect(report.items).toHaveLength(4); // of 3 items per category: 1 calibration, 1 dev, 1 test
    expect(formatEvalReport(report)).toMatch(/; scored the tune part of the suites \(calibration and dev\)\n/);
  });

  it('bad input: one line on stderr that says what to fix, exit code 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['eval', '--suite', 'cooking'], /no suite "cooking"/],
      [['eval', '--suite-file', path.join(root, 'missing.jsonl')], /suite path .*missing\.jsonl does not exist/],
      [['sweep', '--suite-file', suiteFile, '--weights', '0.1/0.2'], /has 2 weights for 4 adapters/],
      [['sweeps', 'register', 'sweep-000000000000000000000000', 'x'], /no sweep "sweep-000000000000000000000000"/],
      [['sweep', '--suite-file', suiteFile, '--budget', '4'], /--budget, --per-layer and --layer-groups go with --tune cmaes/],
      [['sweep', '--suite-file', suiteFile, '--tune', 'nelder-mead'], /--tune: "nelder-mead" is not an optimizer; use cmaes/],
      [['sweep', '--suite-file', suiteFile, '--tune', 'cmaes'], /needs test items/],
    ];
    for (const [args, message] of cases) {
      const res = await cli(...args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(res.stderr, args.join(' ')).toMatch(message);
    }
    expect(() => parseExperts(['code'])).toThrow(/--expert takes category=adapter/);
    expect(parseExperts(['code=a', 'linux-commands = b'])).toEqual({ code: 'a', 'linux-commands': 'b' });
    expect(() => parseDensities(['lots'])).toThrow(/--density: "lots" is not a number/);
    expect(parseDensities(['0.1:0.9'])).toEqual({ min: 0.1, max: 0.9 });
    expect(parseWeights(['0.25', '0.4/0.2'])).toEqual([0.25, [0.4, 0.2]]);
    expect([4.731, 12.54, 873.2, 340767.4].map(formatPerplexity)).toEqual(['4.73', '12.5', '873', '3.41e5']);
  });
});
