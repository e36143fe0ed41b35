import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidFileError, InvalidInputError, NotFoundError } from '../../src/errors.js';
import {
  byCategory,
  listSuites,
  loadSuitePath,
  loadSuites,
  parseSuite,
  validateItems,
} from '../../src/eval/suite.js';
import { CheckThread, passesCheck, passesChecks } from '../../src/eval/checks.js';

const SKILLS = ['code', 'linux-commands', 'python-automation', 'troubleshooting'];

describe('built-in suites', () => {
  it('ship one suite per demo skill, 20+ items each, every item in its file category', async () => {
    expect(await listSuites()).toEqual(SKILLS);
    const items = await loadSuites();
    const groups = byCategory(items);
    expect([...groups.keys()]).toEqual(SKILLS);
    for (const skill of SKILLS) expect(groups.get(skill)!.length).toBeGreaterThanOrEqual(20);
    expect(new Set(items.map((i) => i.id)).size).toBe(items.length);
  });

  it('each reference passes its own checks, and fails them on another item', async () => {
    const items = await loadSuites();
    for (const item of items) {
      expect(item.checks?.length, item.id).toBeGreaterThan(0);
      expect(passesChecks(item.reference, item.checks), item.id).toBe(true);
    }
    // the checks discriminate: most references fail the checks of a different category's item
    const code = items.filter((i) => i.category === 'code');
    const linux = items.filter((i) => i.category === 'linux-commands');
    const crossPasses = code.filter((c, k) => passesChecks(linux[k % linux.length]!.reference, c.checks)).length;
    expect(crossPasses).toBeLessThan(code.length / 4);
  });

  it('loads selected suites by name and refuses unknown names, listing the available ones', async () => {
    const items = await loadSuites(['troubleshooting']);
    expect(new Set(items.map((i) => i.category))).toEqual(new Set(['troubleshooting']));
    await expect(loadSuites(['cooking'])).rejects.toThrow(NotFoundError);
    await expect(loadSuites(['cooking'])).rejects.toThrow(/available: code, linux-commands/);
    await expect(loadSuites(['../secrets'])).rejects.toThrow(NotFoundError);
  });
});

describe('parseSuite', () => {
  it('reads items, skips blank lines and gives default ids by file and line', () => {
    const text = [
      JSON.stringify({ category: 'code', prompt: 'p1', reference: 'r1' }),
      '',
      JSON.stringify({ id: 'mine', category: 'code', prompt: 'p2', reference: 'r2', checks: ['r', { regex: '^R\\d$', flags: 'i' }] }),
    ].join('\n');
    const items = parseSuite(text, '/x/code.jsonl');
    expect(items.map((i) => i.id)).toEqual(['code.jsonl:1', 'mine']);
    expect(passesChecks(items[1]!.reference, items[1]!.checks)).toBe(true);
  });

  it('reports every bad line with its number and what is wrong', () => {
    const text = [
      JSON.stringify({ category: 'code', prompt: 'ok', reference: 'ok' }),
      '{"category": "code", "prompt": "p"',
      JSON.stringify({ category: 'code', prompt: 'p', refrence: 'typo' }),
      JSON.stringify({ category: 'code', prompt: '', reference: 'r' }),
      JSON.stringify({ category: 'code', prompt: 'p', reference: 'r', checks: [{ regex: '(unclosed' }] }),
      JSON.stringify({ category: 'code', prompt: 'p', reference: 'r', checks: [{ regex: 'x', flags: 'g' }] }),
      JSON.stringify({ category: ' code', prompt: 'p', reference: 'r' }),
    ].join('\n');
    let error: unknown;
    try {
      parseSuite(text, 'bad.jsonl');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidFileError);
    const message = (error as Error).message;
    expect(message).toMatch(/^bad\.jsonl: line 2: not valid JSON/);
    expect(message).toMatch(/line 3: .*reference.*\n?/);
    expect(message).toMatch(/line 3: .*refrence/);
    expect(message).toMatch(/line 4: prompt: /);
    expect(message).toMatch(/line 5: checks: .*Invalid regular expression/);
    expect(message).toMatch(/line 6: checks\.0\.flags/);
    expect(message).toMatch(/line 7: category: no leading or trailing spaces/);
    expect(message).not.toMatch(/line 1:/);
  });

  it('refuses an empty suite and duplicate ids', async () => {
    expect(() => parseSuite('\n\n', 'empty.jsonl')).toThrow(/no items/);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lf-suite-'));
    try {
      const line = JSON.stringify({ id: 'same', category: 'code', prompt: 'p', reference: 'r' });
      await writeFile(path.join(dir, 'a.jsonl'), `${line}\n`);
      await writeFile(path.join(dir, 'b.jsonl'), `${line}\n`);
      await expect(loadSuitePath(dir)).rejects.toThrow(/"same" is used twice/);
      expect((await loadSuitePath(path.join(dir, 'a.jsonl'))).length).toBe(1);
      await expect(loadSuitePath(path.join(dir, 'nope.jsonl'))).rejects.toThrow(NotFoundError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('validateItems (inline items from an API body)', () => {
  it('names the index of a bad item', () => {
    expect(() => validateItems([{ category: 'code', prompt: 'p', reference: 'r' }, { category: 'code', prompt: 'p' }])).toThrow(
      InvalidInputError,
    );
    expect(() => validateItems([{ category: 'code', prompt: 'p' }])).toThrow(/items\[0\]: reference/);
    expect(validateItems([{ category: 'code', prompt: 'p', reference: 'r' }])[0]!.id).toBe('items[0]');
  });
});

describe('checks', () => {
  it('substrings are case-sensitive; regexes take flags', () => {
    expect(passesCheck('Use chmod +x', 'chmod +x')).toBe(true);
    expect(passesCheck('Use CHMOD +x', 'chmod +x')).toBe(false);
    expect(passesCheck('Use CHMOD +x', { regex: 'chmod \\+x', flags: 'i' })).toBe(true);
    expect(passesChecks('anything', undefined)).toBe(true);
  });

  it('a regex with catastrophic backtracking fails instead of freezing the process', () => {
    expect(passesCheck(`${'a'.repeat(40)}!`, { regex: '^(a+)+$' })).toBe(false);
    expect(passesCheck('aaa', { regex: '^(a+)+$' })).toBe(true);
  });

  it("an eval's regexes run in a thread: the same answers, and this thread keeps running meanwhile", async () => {
    const thread = new CheckThread();
    try {
      const evil = [{ regex: '^(a+)+$' }];
      const checks = [{ regex: 'chmod \\+x', flags: 'i' }, 'x'];
      expect(await thread.passes('Use CHMOD +x', checks)).toBe(passesChecks('Use CHMOD +x', checks));
      expect(await thread.passes('aaa', evil)).toBe(true);
      // four patterns that each take their whole time limit: this thread's timer keeps ticking
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      const t0 = performance.now();
      const results = await Promise.all([1, 2, 3, 4].map(() => thread.passes(`${'a'.repeat(40)}!`, evil)));
      const elapsed = performance.now() - t0;
      clearInterval(timer);
      expect(results).toEqual([false, false, false, false]);
      expect(elapsed).toBeGreaterThanOrEqual(300); // they did run to their limits
      expect(ticks).toBeGreaterThan(elapsed / 5 / 4); // on the main thread the timer could not have fired at all
    } finally {
      await thread.close();
    }
    await expect(thread.passes('a', ['a'])).rejects.toThrow(/closed/);
  });
});

describe('suite files on disk', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lf-suite-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('an error names the file and the line', async () => {
    const file = path.join(dir, 'broken.jsonl');
    await writeFile(file, `${JSON.stringify({ category: 'code', prompt: 'p', reference: 'r' })}\n{"category":1}\n`);
    await expect(loadSuitePath(file)).rejects.toThrow(`${file}: line 2: category:`);
  });
});
