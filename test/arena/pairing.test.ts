import { describe, expect, it } from 'vitest';
import { choosePair } from '../../src/arena/pairing.js';
import { seededUniform } from '../../src/arena/random.js';
import type { ArenaAdapter } from '../../src/arena/types.js';
import { InvalidInputError, NotFoundError } from '../../src/errors.js';

const base = 'org/base';
const adapters: ArenaAdapter[] = [
  { name: 'a', baseModel: base },
  { name: 'b', baseModel: base },
  { name: 'c', baseModel: base },
  { name: 'other', baseModel: 'org/other-base' },
];

describe('choosePair', () => {
  it('pairs adapters whose base models are one model written two ways (gpt2, openai-community/gpt2)', () => {
    const pool: ArenaAdapter[] = [
      { name: 'x', baseModel: 'gpt2' },
      { name: 'y', baseModel: 'openai-community/gpt2' },
      { name: 'z', baseModel: 'openai-community/gpt2-medium' },
    ];
    const pair = choosePair(pool, new Map(), { a: 'x', b: 'y' }, seededUniform(3));
    expect([pair.A.name, pair.B.name].sort()).toEqual(['x', 'y']);
    expect(() => choosePair(pool, new Map(), { a: 'x', b: 'z' }, seededUniform(3))).toThrow(InvalidInputError);
    for (let i = 0; i < 50; i++) {
      const drawn = choosePair(pool, new Map(), { a: 'x' }, seededUniform(i));
      expect([drawn.A.name, drawn.B.name].sort()).toEqual(['x', 'y']);
    }
  });

  it('keeps the named adapters and flips a fair coin for the sides', () => {
    const uniform = seededUniform(1);
    let aFirst = 0;
    for (let i = 0; i < 2000; i++) {
      const pair = choosePair(adapters, new Map(), { a: 'a', b: 'c' }, uniform);
      expect([pair.A.name, pair.B.name].sort()).toEqual(['a', 'c']);
      if (pair.A.name === 'a') aFirst++;
    }
    expect(aFirst / 2000).toBeGreaterThan(0.45);
    expect(aFirst / 2000).toBeLessThan(0.55);
  });

  it('draws adapters with few votes more often, and only of the same base model', () => {
    const uniform = seededUniform(2);
    const votes = new Map([
      ['a', 0],
      ['b', 99],
      ['c', 99],
    ]);
    const seen = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const pair = choosePair(adapters, votes, {}, uniform);
      expect(pair.A.name).not.toBe(pair.B.name);
      for (const side of [pair.A, pair.B]) {
        expect(side.name).not.toBe('other');
        seen.set(side.name, (seen.get(side.name) ?? 0) + 1);
      }
    }
    // 'a' has weight 1 against 0.1 for the others: it plays in nearly every battle
    expect(seen.get('a')! / 3000).toBeGreaterThan(0.9);
  });

  it('says what is wrong with an impossible request', () => {
    const uniform = seededUniform(3);
    expect(() => choosePair(adapters, new Map(), { a: 'nope' }, uniform)).toThrow(NotFoundError);
    expect(() => choosePair(adapters, new Map(), { a: 'a', b: 'a' }, uniform)).toThrow(/two different adapters/);
    expect(() => choosePair(adapters, new Map(), { a: 'a', b: 'other' }, uniform)).toThrow(/different base models/);
    expect(() => choosePair(adapters, new Map(), { a: 'other' }, uniform)).toThrow(/no other registered adapter/);
    expect(() => choosePair(adapters.slice(0, 1), new Map(), {}, uniform)).toThrow(InvalidInputError);
  });
});
