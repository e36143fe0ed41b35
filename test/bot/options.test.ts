import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors.js';
import { checkDensity, parseNameList, parseWeights, resolveMergeInputs, suggestNames, type MergeCandidate } from '../../src/bot/options.js';
import { canOperate, operatorDenial } from '../../src/bot/permissions.js';
import { formatBytes, formatCount, formatDuration, progressBar, truncate } from '../../src/bot/format.js';

const adapter = (name: string, createdAt: string, extra: Partial<MergeCandidate> = {}): MergeCandidate => ({
  name,
  baseModel: 'demo/llama',
  createdAt,
  ...extra,
});

const registry = [
  adapter('troubleshooting', '2024-01-04T00:00:00Z'),
  adapter('code', '2024-01-01T00:00:00Z'),
  adapter('python-automation', '2024-01-03T00:00:00Z'),
  adapter('linux-commands', '2024-01-02T00:00:00Z'),
  adapter('ties-1a2b', '2024-01-05T00:00:00Z', { inputs: [{}, {}] }),
];

describe('option parsing', () => {
  it('reads weights separated by commas or spaces', () => {
    expect(parseWeights('1,1,0.5, -2')).toEqual([1, 1, 0.5, -2]);
    expect(parseWeights('1 1 1e-1')).toEqual([1, 1, 0.1]);
    expect(() => parseWeights('1,a')).toThrow(/`a` is not a number/);
    expect(() => parseWeights(' , ')).toThrow(InvalidInputError);
  });

  it('reads a list of adapter names and refuses duplicates', () => {
    expect(parseNameList('code, linux-commands')).toEqual(['code', 'linux-commands']);
    expect(() => parseNameList('code,code')).toThrow(/listed twice/);
  });

  it('accepts density in (0, 1] only', () => {
    expect(checkDensity(0.2)).toBe(0.2);
    expect(checkDensity(1)).toBe(1);
    for (const bad of [0, -0.1, 1.01, Number.NaN]) expect(() => checkDensity(bad)).toThrow(/density must be in \(0, 1\]/);
  });
});

describe('merge inputs', () => {
  it('defaults to the registered non-merged adapters, in registration order', () => {
    expect(resolveMergeInputs(registry, null, [1, 1, 1, 1])).toEqual(['code', 'linux-commands', 'python-automation', 'troubleshooting']);
  });

  it('says how many weights are needed, and for which adapters', () => {
    expect(() => resolveMergeInputs(registry, null, [1, 1, 1])).toThrow(
      '3 weights for 4 adapters (code, linux-commands, python-automation, troubleshooting): give one weight per adapter, e.g. `weights:1,1,1,1`.',
    );
  });

  it('takes named adapters in the order named, and suggests a close name for an unknown one', () => {
    expect(resolveMergeInputs(registry, ['ties-1a2b', 'code'], [0.5, 0.5])).toEqual(['ties-1a2b', 'code']);
    expect(() => resolveMergeInputs(registry, ['code', 'linux-comands'], [1, 1])).toThrow(/No adapter is registered as `linux-comands`. Did you mean `linux-commands`\?/);
  });

  it('refuses to guess between base models', () => {
    const mixed = [...registry, adapter('other', '2024-02-01T00:00:00Z', { baseModel: 'other/model' })];
    expect(() => resolveMergeInputs(mixed, null, [1, 1, 1, 1, 1])).toThrow(/Adapters of 2 base models are registered .*Say which to merge with `adapters:`/);
  });

  it('needs two adapters', () => {
    expect(() => resolveMergeInputs([], null, [1])).toThrow(/No adapters are registered yet/);
    expect(() => resolveMergeInputs(registry, ['code'], [1])).toThrow(/at least two adapters/);
  });

  it('suggests names by closeness', () => {
    expect(suggestNames('pyton', ['python-automation', 'code'])).toEqual(['python-automation']);
    expect(suggestNames('zzzz', ['code'])).toEqual([]);
  });
});

describe('permissions', () => {
  const member = (roles: { id: string; name: string }[], permissions = 0n) => ({ roles, permissions });

  it('lets the operator role (by id or name) and server managers operate', () => {
    expect(canOperate(member([{ id: '42', name: 'ML Ops' }]), '42')).toBe(true);
    expect(canOperate(member([{ id: '42', name: 'ML Ops' }]), 'ml ops')).toBe(true);
    expect(canOperate(member([{ id: '42', name: 'ML Ops' }]), '@ML Ops')).toBe(true);
    expect(canOperate(member([{ id: '7', name: 'guest' }]), '42')).toBe(false);
    expect(canOperate(member([], 1n << 5n), '42')).toBe(true);
    expect(canOperate(member([], 1n << 3n), undefined)).toBe(true);
    expect(canOperate(member([{ id: '42', name: 'ml-ops' }]), undefined)).toBe(false);
  });

  it('says what to do in a denial', () => {
    expect(operatorDenial('merge adapters', 'ml-ops')).toMatch(/You need the \*\*ml-ops\*\* role to merge adapters/);
    expect(operatorDenial('merge adapters', '123456789012345678')).toMatch(/You need the <@&123456789012345678> role/);
    expect(operatorDenial('merge adapters', undefined)).toMatch(/LORAFORGE_OPERATOR_ROLE/);
  });
});

describe('formatting', () => {
  it('draws progress bars', () => {
    expect(progressBar(0, 10)).toBe('▱▱▱▱▱▱▱▱▱▱ 0%');
    expect(progressBar(0.42, 10)).toBe('▰▰▰▰▱▱▱▱▱▱ 42%');
    expect(progressBar(2, 4)).toBe('▰▰▰▰ 100%');
    expect(progressBar(Number.NaN, 4)).toBe('▱▱▱▱ 0%');
  });

  it('formats durations, sizes, counts and long text', () => {
    expect(formatDuration(4.4)).toBe('4 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(3720)).toBe('1 h 02 min');
    expect(formatBytes(812)).toBe('812 B');
    expect(formatBytes(12.34 * 1024 * 1024)).toBe('12.3 MiB');
    expect(formatCount(950)).toBe('950');
    expect(formatCount(12_500)).toBe('12.5 k');
    expect(formatCount(3_400_000)).toBe('3.40 M');
    expect(truncate('abcdef', 4)).toBe('abc…');
  });
});

describe('chat context', () => {
  it('sends the latest turns that fit, starting with a user turn, with consecutive user turns joined', async () => {
    const { contextTurns } = await import('../../src/bot/chat-store.js');
    const turns = [
      { role: 'user' as const, content: 'q1' },
      { role: 'assistant' as const, content: 'a1' },
      { role: 'user' as const, content: 'q2' },
      { role: 'user' as const, content: 'q3' },
      { role: 'assistant' as const, content: 'a3'.repeat(10) },
      { role: 'user' as const, content: 'q4' },
    ];
    expect(contextTurns(turns, 1000, 50)).toEqual([
      { role: 'user', content: 'q1' },
      { role: 'assistant', content: 'a1' },
      { role: 'user', content: 'q2\n\nq3' },
      { role: 'assistant', content: 'a3'.repeat(10) },
      { role: 'user', content: 'q4' },
    ]);
    // a budget that cuts inside the history drops the oldest turns, and never starts on an answer
    expect(contextTurns(turns, 23, 50)).toEqual([{ role: 'user', content: 'q4' }]);
    expect(contextTurns(turns, 1000, 3)).toEqual([{ role: 'user', content: 'q3' }, { role: 'assistant', content: 'a3'.repeat(10) }, { role: 'user', content: 'q4' }]);
    // the newest turn always goes, even alone over the budget
    expect(contextTurns([{ role: 'user', content: 'x'.repeat(50) }], 10, 5)).toEqual([{ role: 'user', content: 'x'.repeat(50) }]);
  });
});
