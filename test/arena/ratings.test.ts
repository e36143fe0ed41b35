import { describe, expect, it } from 'vitest';
import { choleskySolve, fitBradleyTerry } from '../../src/arena/bradley-terry.js';
import { onlineElo } from '../../src/arena/elo.js';
import { aggregateVotes, computeLeaderboard, type LeaderboardOptions } from '../../src/arena/leaderboard.js';
import { seededUniform } from '../../src/arena/random.js';
import type { Choice, RatedVote } from '../../src/arena/types.js';
import { simulateVotes, spreadRatings } from '../helpers/arena.js';

const TRUE = { a: 1200, b: 1100, c: 1050, d: 1000, e: 900, f: 750 };
const OPTIONS: LeaderboardOptions = { category: null, minVotes: 0, bootstrapRounds: 200, seed: 0, anchor: { rating: 1000 } };
/** a prior so weak that the fit is the plain maximum likelihood estimate to many digits */
const FLAT = 1e7;

function votes(list: [string, string, Choice][]): RatedVote[] {
  return list.map(([a, b, choice], at) => ({ a, b, choice, at, category: null }));
}

describe('Bradley–Terry fit', async () => {
  it('recovers known strengths from 3000 simulated votes inside its 95% intervals', async () => {
    // the true ratings have mean 1000, the default anchor
    const { board } = await computeLeaderboard(simulateVotes({ ratings: TRUE, votes: 3000, seed: 1 }), OPTIONS);
    expect(board.entries.map((e) => e.name)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    for (const e of board.entries) {
      const truth = TRUE[e.name as keyof typeof TRUE];
      expect(e.lower).toBeLessThan(e.rating);
      expect(e.upper).toBeGreaterThan(e.rating);
      expect(truth).toBeGreaterThanOrEqual(e.lower);
      expect(truth).toBeLessThanOrEqual(e.upper);
      expect(Math.abs(e.rating - truth)).toBeLessThan(40);
    }
  });

  it('has intervals that cover the truth about 95% of the time', async () => {
    let inside = 0;
    let total = 0;
    for (let seed = 100; seed < 120; seed++) {
      const { board } = await computeLeaderboard(simulateVotes({ ratings: TRUE, votes: 3000, seed }), OPTIONS);
      for (const e of board.entries) {
        const truth = TRUE[e.name as keyof typeof TRUE];
        total++;
        if (truth >= e.lower && truth <= e.upper) inside++;
      }
    }
    // 120 intervals: a correct 95% interval falls below 88% with probability < 0.1%
    expect(inside / total).toBeGreaterThanOrEqual(0.88);
  });

  it('counts a tie and "both bad" as half a win each (hand-computed)', async () => {
    // x scores 2 wins + ½ tie + ½ both-bad = 3 of 4 points against y: P(x beats y) = 3/4, so
    // 10^(β_x − β_y) = 3 and the rating gap is 400·log10(3) ≈ 190.85, split around the mean of 1000
    const list = votes([
      ['x', 'y', 'A'],
      ['y', 'x', 'B'],
      ['x', 'y', 'tie'],
      ['y', 'x', 'bad'],
    ]);
    const { board } = await computeLeaderboard(list, { ...OPTIONS, bootstrapRounds: 0, priorSd: FLAT });
    const gap = 400 * Math.log10(3);
    expect(board.entries[0]!.name).toBe('x');
    expect(board.entries[0]!.rating).toBeCloseTo(1000 + gap / 2, 4);
    expect(board.entries[1]!.rating).toBeCloseTo(1000 - gap / 2, 4);
    expect(board.entries[0]!).toMatchObject({ votes: 4, wins: 2, losses: 0, ties: 1, bothBad: 1, winRate: 0.75 });
    // swapping a tie for "both bad" changes nothing
    const swapped = await computeLeaderboard(
      list.map((v) => ({ ...v, choice: v.choice === 'tie' ? 'bad' : v.choice === 'bad' ? 'tie' : v.choice })),
      { ...OPTIONS, bootstrapRounds: 0, priorSd: FLAT },
    );
    expect(swapped.board.entries.map((e) => e.rating)).toEqual(board.entries.map((e) => e.rating));
  });

  it('matches plain gradient descent on the per-vote log-likelihood', async () => {
    const list = simulateVotes({ ratings: { p: 1100, q: 1000, r: 950, s: 900 }, votes: 300, seed: 5 });
    const priorSd = 300;
    const data = aggregateVotes(list);
    const { beta } = fitBradleyTerry(data, { priorSd });
    // reference: vote by vote, no aggregation, no Newton, many small steps
    const index = new Map(data.adapters.map((name, i) => [name, i]));
    const score: Record<Choice, number> = { A: 1, B: 0, tie: 0.5, bad: 0.5 };
    const lambda = (400 / priorSd) ** 2;
    const ref = new Float64Array(data.n);
    for (let step = 0; step < 20_000; step++) {
      const grad = ref.map((b) => lambda * b);
      for (const v of list) {
        const [a, b] = [index.get(v.a)!, index.get(v.b)!];
        const p = 1 / (1 + 10 ** (ref[b]! - ref[a]!));
        const g = -Math.LN10 * (score[v.choice] - p);
        grad[a]! += g;
        grad[b]! -= g;
      }
      for (let k = 0; k < data.n; k++) ref[k]! -= 0.002 * grad[k]!;
    }
    // the default stopping rule leaves well under 0.001 rating points (2.5e-6 in β)
    for (let k = 0; k < data.n; k++) expect(Math.abs(beta[k]! - ref[k]!)).toBeLessThan(2.5e-6);
  });

  it('keeps an adapter that never lost (or never won) finite, and mean-centred', async () => {
    const list = votes([
      ['champ', 'x', 'A'],
      ['y', 'champ', 'B'],
      ['champ', 'x', 'A'],
      ['x', 'y', 'tie'],
      ['x', 'y', 'A'],
      ['dud', 'y', 'B'],
      ['x', 'dud', 'A'],
    ]);
    const { board } = await computeLeaderboard(list, { ...OPTIONS, bootstrapRounds: 50 });
    const ratings = board.entries.map((e) => e.rating);
    for (const e of board.entries) for (const v of [e.rating, e.lower, e.upper]) expect(Number.isFinite(v)).toBe(true);
    expect(board.entries[0]!.name).toBe('champ');
    expect(board.entries.at(-1)!.name).toBe('dud');
    expect(ratings.reduce((s, r) => s + r, 0) / ratings.length).toBeCloseTo(1000, 6);
  });

  it('solves the normal equations exactly (Cholesky against multiplying back)', async () => {
    const n = 7;
    const uniform = seededUniform(9);
    const m = Array.from({ length: n * n }, () => uniform() - 0.5);
    const h = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let v = i === j ? 0.5 : 0;
        for (let k = 0; k < n; k++) v += m[i * n + k]! * m[j * n + k]!;
        h[i * n + j] = v;
      }
    }
    const g = Float64Array.from({ length: n }, () => uniform());
    const x = choleskySolve(Float64Array.from(h), Float64Array.from(g), n);
    for (let i = 0; i < n; i++) {
      let v = 0;
      for (let j = 0; j < n; j++) v += h[i * n + j]! * x[j]!;
      expect(v).toBeCloseTo(g[i]!, 10);
    }
  });
});

describe('leaderboard', async () => {
  const simulated = simulateVotes({ ratings: TRUE, votes: 3000, seed: 1 });

  it('an anchor fixes the scale: the anchor sits at its rating and every gap stays the same', async () => {
    const free = (await computeLeaderboard(simulated, OPTIONS)).board;
    const anchored = (await computeLeaderboard(simulated, { ...OPTIONS, anchor: { adapter: 'd', rating: 1114 } })).board;
    const d = anchored.entries.find((e) => e.name === 'd')!;
    expect(d.rating).toBeCloseTo(1114, 9);
    // the anchor is fixed in every bootstrap round too
    expect(d.lower).toBeCloseTo(1114, 9);
    expect(d.upper).toBeCloseTo(1114, 9);
    expect(anchored.method.anchor).toEqual({ adapter: 'd', rating: 1114 });
    const shift = 1114 - free.entries.find((e) => e.name === 'd')!.rating;
    for (const e of free.entries) {
      expect(anchored.entries.find((x) => x.name === e.name)!.rating).toBeCloseTo(e.rating + shift, 9);
    }
    // an anchor with no votes on this board falls back to the mean
    const missing = (await computeLeaderboard(simulated, { ...OPTIONS, anchor: { adapter: 'nobody', rating: 1114 } })).board;
    expect(missing.method.anchor.adapter).toBeNull();
    expect(missing.entries.reduce((s, e) => s + e.rating, 0) / missing.entries.length).toBeCloseTo(1114, 6);
  });

  it('bootstraps reproducibly for a seed', async () => {
    const first = (await computeLeaderboard(simulated, OPTIONS)).board;
    const again = (await computeLeaderboard(simulated, OPTIONS)).board;
    const other = (await computeLeaderboard(simulated, { ...OPTIONS, seed: 1 })).board;
    const bounds = (b: typeof first) => b.entries.map((e) => [e.lower, e.upper]);
    expect(bounds(again)).toEqual(bounds(first));
    expect(bounds(other)).not.toEqual(bounds(first));
    // the point estimate does not depend on the seed
    expect(other.entries.map((e) => e.rating)).toEqual(first.entries.map((e) => e.rating));
  });

  it('ranks by interval overlap: 1 + the adapters whose lower bound is above this upper bound', async () => {
    const { board } = await computeLeaderboard(simulated, OPTIONS);
    for (const e of board.entries) {
      expect(e.rank).toBe(1 + board.entries.filter((o) => o.lower > e.upper).length);
    }
    expect(board.entries.map((e) => e.rank)).toEqual([1, 2, 3, 4, 5, 6]);
    // two adapters 10 points apart cannot be told apart by 600 votes: they share rank 1, the third is 3rd
    const close = (await computeLeaderboard(simulateVotes({ ratings: { p: 1010, q: 1000, r: 700 }, votes: 600, seed: 4 }), OPTIONS)).board;
    expect(Object.fromEntries(close.entries.map((e) => [e.name, e.rank]))).toEqual({ p: 1, q: 1, r: 3 });
  });

  it('hides adapters under the vote threshold from the table and the matrix, not from the fit', async () => {
    const few = [...simulated, ...votes([['rare', 'a', 'A'], ['f', 'rare', 'B'], ['rare', 'c', 'tie']])];
    const { board } = await computeLeaderboard(few, { ...OPTIONS, minVotes: 5 });
    expect(board.entries.map((e) => e.name)).not.toContain('rare');
    expect(board.hidden).toEqual([{ name: 'rare', votes: 3 }]);
    expect(board.winMatrix.adapters).toEqual(board.entries.map((e) => e.name));
    // the mean is taken over the table, so a hidden adapter does not shift it
    expect(board.entries.reduce((sum, e) => sum + e.rating, 0) / board.entries.length).toBeCloseTo(1000, 6);
    const without = (await computeLeaderboard(simulated, { ...OPTIONS, minVotes: 5 })).board;
    for (const e of board.entries) expect(Math.abs(e.rating - without.entries.find((x) => x.name === e.name)!.rating)).toBeLessThan(3);
  });

  it('has a pairwise win matrix of points shares and vote counts', async () => {
    const list = votes([
      ['x', 'y', 'A'],
      ['x', 'y', 'A'],
      ['y', 'x', 'tie'],
      ['y', 'x', 'A'],
      ['x', 'z', 'B'],
    ]);
    const { board } = await computeLeaderboard(list, { ...OPTIONS, bootstrapRounds: 0 });
    const at = (r: string, c: string) => {
      const i = board.winMatrix.adapters.indexOf(r);
      const j = board.winMatrix.adapters.indexOf(c);
      return [board.winMatrix.score[i]![j], board.winMatrix.votes[i]![j]];
    };
    expect(at('x', 'y')).toEqual([2.5 / 4, 4]);
    expect(at('y', 'x')).toEqual([1.5 / 4, 4]);
    expect(at('z', 'x')).toEqual([1, 1]);
    expect(at('y', 'z')).toEqual([null, 0]);
  });

  it('gives every category its own board', async () => {
    const mixed = [
      ...simulateVotes({ ratings: { a: 1100, b: 900 }, votes: 200, seed: 2, category: 'code' }),
      ...simulateVotes({ ratings: { a: 900, b: 1100 }, votes: 200, seed: 3, category: 'linux' }),
    ];
    const code = (await computeLeaderboard(mixed, { ...OPTIONS, category: 'code' })).board;
    const linux = (await computeLeaderboard(mixed, { ...OPTIONS, category: 'linux' })).board;
    const all = (await computeLeaderboard(mixed, OPTIONS)).board;
    expect(code.entries[0]!.name).toBe('a');
    expect(linux.entries[0]!.name).toBe('b');
    expect([code.votes, linux.votes, all.votes]).toEqual([200, 200, 400]);
    expect(all.categories).toEqual(['code', 'linux']);
  });

  it('lets other work run while it bootstraps', async () => {
    let ticks = 0;
    let running = true;
    const spin = () => {
      if (!running) return;
      ticks++;
      setImmediate(spin);
    };
    setImmediate(spin);
    const started = performance.now();
    await computeLeaderboard(simulateVotes({ ratings: spreadRatings(50, 600), votes: 20_000, seed: 3 }), OPTIONS);
    const took = performance.now() - started;
    running = false;
    // one turn of the event loop at least every ~10 ms of bootstrap
    expect(ticks).toBeGreaterThanOrEqual(Math.min(5, Math.floor(took / 40)));
    expect(ticks).toBeGreaterThan(0);
  });

  it('is empty, not broken, without votes', async () => {
    const { board } = await computeLeaderboard([], OPTIONS);
    expect(board).toMatchObject({ votes: 0, entries: [], hidden: [], winMatrix: { adapters: [], score: [], votes: [] } });
  });
});

describe('online Elo', async () => {
  it('moves by K·(outcome − expected) with K = 4, base 10, scale 400 (hand-computed)', async () => {
    // first game: equal ratings, expected ½, x wins: +2 / −2; second: y wins at 998 vs 1002
    const [x, y] = onlineElo(2, [
      { a: 0, b: 1, score: 1 },
      { a: 1, b: 0, score: 1 },
    ]);
    const expectedY = 1 / (1 + 10 ** ((1002 - 998) / 400));
    expect(x).toBeCloseTo(1002 - 4 * (1 - expectedY), 12);
    expect(y).toBeCloseTo(998 + 4 * (1 - expectedY), 12);
  });

  it('reads the votes in time order', async () => {
    const list = votes([
      ['x', 'y', 'A'],
      ['x', 'y', 'B'],
    ]);
    const forward = (await computeLeaderboard(list, { ...OPTIONS, bootstrapRounds: 0 })).board;
    const backward = (await computeLeaderboard(list.map((v, i) => ({ ...v, at: 10 - i })), { ...OPTIONS, bootstrapRounds: 0 })).board;
    const eloOf = (b: typeof forward, name: string) => b.entries.find((e) => e.name === name)!.elo;
    // the last vote weighs more: y won last going forward, x going backward
    expect(eloOf(forward, 'y')).toBeGreaterThan(1000);
    expect(eloOf(backward, 'x')).toBeGreaterThan(1000);
  });
});
