// `loraforge routers create|list|show|rm`, `loraforge eval <router>` and `loraforge tune` as a user runs them: the
// real CLI process (from sources, through tsx) against a running API with the engine and a merge worker; refusals on
// one line with exit code 2; the warning of a merge likely to hurt on stderr.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { demoWithExperts, startEvalStack, type EvalStack } from '../eval/stack.js';


describe('loraforge routers', () => {
  let root: string;
  let stack: EvalStack;

  const cli = (...args: string[]) => runCli(args, { server: stack.url });

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-routers-cli-'));
    stack = await startEvalStack(await demoWithExperts(root), { name: 'routers-cli' });
  }, 240_000);

  afterAll(async () => {
    await stack?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('creates, lists, shows, evaluates and removes a router', async () => {
    const created = await cli('routers', 'create', 'pair', 'code-expert', 'linux-commands-expert:linux-commands');
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(
      /^created pair: routes to code-expert \(code\), linux-commands-expert \(linux-commands\); when unsure: the nearest member; rule text, margin 0\.02; calibrated on suites, \d\/\d prompts\n$/,
    );
    expect((await cli('routers', 'list')).stdout).toMatch(/^NAME\s+MEMBERS\s+WHEN UNSURE\s+RULE\npair\s+code-expert,linux-commands-expert\s+the nearest member\s+text\n$/);
    expect(JSON.parse((await cli('routers', 'show', 'pair', '--json')).stdout)).toMatchObject({ name: 'pair', members: [{ model: 'code-expert' }, { model: 'linux-commands-expert' }] });

    const evaluated = await cli('eval', 'pair', '--suite', 'code,linux-commands');
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(evaluated.stdout).toMatch(/scored the test part of the suites\n/);
    expect(evaluated.stdout).toMatch(/\npair\s+router\s/);
    expect(evaluated.stdout).toMatch(/\nrouting of pair: \d+% of \d+ items to a member of their category \(code \d+%, linux-commands \d+%\)/);

    expect((await cli('routers', 'rm', 'pair')).stdout).toBe('removed router pair\n');
  });

  it('takes calibration prompts from a file', async () => {
    const file = path.join(root, 'prompts.json');
    await writeFile(file, JSON.stringify({ 'code-expert': ['Write a function'], 'troubleshooting-expert': ['Why does it crash?'] }));
    const created = await cli('routers', 'create', 'given', 'code-expert', 'troubleshooting-expert', '--prompts', file, '--json');
    expect(JSON.parse(created.stdout)).toMatchObject({ status: 'created', router: { calibration: { source: 'prompts', counts: [1, 1] } } });
    const blended = await cli('routers', 'create', 'blended', 'code-expert', 'troubleshooting-expert', '--prompts', file, '--blend');
    expect(blended.stdout).toMatch(/; when unsure: a blend of the two nearest at 0\.6; rule text, margin 0\.075;/);
    const half = await cli('routers', 'create', 'half', 'code-expert', 'troubleshooting-expert', '--prompts', file, '--blend', '0.5', '--margin', '0.1');
    expect(half.stdout).toMatch(/; when unsure: a blend of the two nearest at 0\.5; rule text, margin 0\.1;/);
  });

  it('bad input: one line on stderr that says what to fix, exit code 2', async () => {
    const bad = path.join(root, 'bad.json');
    await writeFile(bad, '{"code-expert": "not a list"}');
    const cases: Array<[string[], RegExp]> = [
      [['routers', 'create', 'x', 'code-expert', 'nope'], /member 'nope' is not a registered adapter or merge/],
      [['routers', 'create', 'x', 'code-expert', 'linux-commands-expert', '--prompts', bad], /--prompts .*bad\.json: expected \{"member": \["prompt", \.\.\.\]\}/],
      [['routers', 'show', 'nope'], /router 'nope' does not exist/],
      [['routers', 'create', 'x', 'code-expert', 'linux-commands-expert', '--rule', 'nearest'], /--rule must be one of text, value-last, value-mid, logprobs, got "nearest"/],
      [['routers', 'create', 'x', 'code-expert', 'linux-commands-expert', '--margin', 'wide'], /--margin must be a number, got "wide"/],
      [['routers', 'create', 'x', 'code-expert', 'linux-commands-expert', '--fallback', 'code-expert', '--blend', '0.5'], /a fallback or a blend, not both/],
      [['tune', 'code-expert', 'linux-commands-expert', '--name', 't', '--seed', 'x'], /--seed must be a whole number >= 0, got "x"/],
      [['eval', 'given', '--part', 'all'], /part "all" would score the calibration prompts of router given/],
    ];
    for (const [args, message] of cases) {
      const res = await cli(...args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(res.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('warns on stderr before queueing a merge likely to hurt', async () => {
    const res = await cli('merges', 'create', 'code-expert', 'linux-commands-expert', '--method', 'ties', '--space', 'factors', '--weights', '1,1', '--no-wait');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/^warning: ties in factors space with weights summing to 2 is likely to hurt every skill: .*\nqueued merge-/);
  });

  it('tune: CMA-ES over the weights on the tune part, the best reported on the test part, resumable from its state file', async () => {
    const state = path.join(root, 'tune.json');
    const args = ['tune', 'code-expert', 'linux-commands-expert', '--name', 'tuned', '--suite', 'code,linux-commands', '--state', state];
    const first = await cli(...args, '--budget', '2');
    expect(first.code, first.stderr).toBe(0);
    const lines = first.stderr.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^eval 1\/2: [\d.]+, [\d.]+ → worst retention -?[\d.]+; best tuned-0$/),
      expect.stringMatching(/^eval 2\/2: [\d.]+, [\d.]+ → worst retention -?[\d.]+; best tuned-[01]$/),
    ]);
    expect(first.stdout).toMatch(/^best tuned-[01]: weights [\d.]+, [\d.]+; worst retention -?[\d.]+ on the tune part, -?[\d.]+ on test\n$/);
    const recorded = JSON.parse(await readFile(state, 'utf8')) as { evaluations: Array<{ weights: number[]; merge: string }> };
    expect((await stack.registry.find('tuned-0'))?.recipe).toMatchObject({ method: 'linear', weights: recorded.evaluations[0]!.weights });

    // a longer budget on the same state replays the recorded evaluations and runs only the new one
    const resumed = await cli(...args, '--budget', '3', '--json');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ evaluations: 3, best: expect.stringMatching(/^tuned-[012]$/) });
    expect(await stack.registry.find('tuned-2')).toBeDefined();
  });
});
