// The arena leaderboard at scale: 50 adapters, 100,000 counted votes, 200 bootstrap rounds. Prints the median of
// several runs of each phase (aggregation, fit, bootstrap, Elo, chart, reading the votes from Redis), the
// end-to-end time of Arena.leaderboard() + leaderboardPng() in a fresh process and after one more vote, and the
// baselines the choices were measured against in the same run: the MM iteration instead of Newton, and one
// categorical draw per vote instead of conditional binomials for the bootstrap's multinomial.
//
//   npm run bench:arena [-- --runs 5 --adapters 50 --votes 100000 --rounds 200]
import { parseArgs } from 'node:util';
import { Arena } from '../src/arena/arena.js';
import { fitBradleyTerry, type PairCounts } from '../src/arena/bradley-terry.js';
import { leaderboardPng } from '../src/arena/chart.js';
import { aggregateVotes, computeLeaderboard } from '../src/arena/leaderboard.js';
import { sampleMultinomial, seededUniform, type Uniform } from '../src/arena/random.js';
import { ArenaStore } from '../src/arena/store.js';
import type { RatedVote } from '../src/arena/types.js';
import { deletePrefix, testPrefix, testRedis } from '../test/helpers/redis.js';
import { simulateVotes, spreadRatings } from '../test/helpers/arena.js';
import { median } from './stats.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    adapters: { type: 'string', default: '50' },
    votes: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '200' },
  },
});
const RUNS = Number(args.runs);
const ROUNDS = Number(args.rounds);

const ms = (x: number) => `${x.toFixed(1)} ms`;

/** CPU time of this process (all its threads: the main one, GC, libuv's pool) since `from`, in ms. */
function cpuSince(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

/** CPU time of `fn`, in ms. */
function cpuTime(fn: () => void): number {
  const from = process.cpuUsage();
  fn();
  return cpuSince(from);
}

/** Hunter's MM iteration for Bradley–Terry with ties as half points (no prior): the baseline for Newton. */
function fitMM(data: PairCounts, start?: Float64Array, tolerance = 1e-6): { beta: Float64Array; iterations: number } {
  const { n, pairI, pairJ, counts } = data;
  const points = new Float64Array(n);
  const games = new Float64Array(pairI.length);
  for (let p = 0; p < pairI.length; p++) {
    games[p] = counts[3 * p]! + counts[3 * p + 1]! + counts[3 * p + 2]!;
    points[pairI[p]!]! += counts[3 * p + 2]! + 0.5 * counts[3 * p + 1]!;
    points[pairJ[p]!]! += counts[3 * p]! + 0.5 * counts[3 * p + 1]!;
  }
  let pi = start ? Float64Array.from(start, (b) => 10 ** b) : new Float64Array(n).fill(1);
  let iterations = 0;
  while (iterations++ < 100_000) {
    const denom = new Float64Array(n);
    for (let p = 0; p < pairI.length; p++) {
      const [i, j] = [pairI[p]!, pairJ[p]!];
      const d = games[p]! / (pi[i]! + pi[j]!);
      denom[i]! += d;
      denom[j]! += d;
    }
    const next = Float64Array.from(points, (w, k) => w / denom[k]!);
    let logMean = 0;
    for (const v of next) logMean += Math.log10(v) / n;
    let moved = 0;
    for (let k = 0; k < n; k++) {
      next[k] = next[k]! / 10 ** logMean;
      moved = Math.max(moved, Math.abs(Math.log10(next[k]!) - Math.log10(pi[k]!)));
    }
    pi = next;
    if (moved < tolerance) break;
  }
  return { beta: Float64Array.from(pi, (v) => Math.log10(v)), iterations };
}

/** One categorical draw per vote (binary search on the cumulative weights): the baseline multinomial. */
function multinomialByDraws(n: number, weights: ArrayLike<number>, uniform: Uniform, out: Float64Array): void {
  const cumulative = new Float64Array(weights.length);
  let total = 0;
  for (let k = 0; k < weights.length; k++) cumulative[k] = total += weights[k]!;
  out.fill(0);
  for (let d = 0; d < n; d++) {
    const u = uniform() * total;
    let lo = 0;
    let hi = weights.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    out[lo]! += 1;
  }
}

async function main(): Promise<void> {
  const ratings = spreadRatings(Number(args.adapters), 800);
  const votes: RatedVote[] = simulateVotes({ ratings, votes: Number(args.votes), seed: 1 });
  const options = { category: null, minVotes: 10, bootstrapRounds: ROUNDS, seed: 0, anchor: { rating: 1000 } };
  console.log(`arena leaderboard: ${args.adapters} adapters, ${votes.length} votes, ${ROUNDS} bootstrap rounds, ${RUNS} runs (medians)`);
  console.log('(the machine has 2 cores shared with other work: read ratios and medians, not single figures)\n');

  // the pure pipeline, phase by phase
  const phases: Record<string, number[]> = { aggregate: [], fit: [], bootstrap: [], elo: [], render: [], total: [] };
  const totalCpu: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    const cpu = process.cpuUsage();
    const { board, timings } = await computeLeaderboard(votes, options);
    const t0 = performance.now();
    await leaderboardPng(board);
    const render = performance.now() - t0;
    phases.total!.push(performance.now() - t);
    totalCpu.push(cpuSince(cpu));
    phases.aggregate!.push(timings.aggregateMs);
    phases.fit!.push(timings.fitMs);
    phases.bootstrap!.push(timings.bootstrapMs);
    phases.elo!.push(timings.eloMs);
    phases.render!.push(render);
  }

  // from Redis, end to end through the arena service: a fresh process (reads every vote), and a running one
  // after one more vote (reads only the change from the vote log)
  const redis = testRedis();
  const prefix = testPrefix('bench-arena');
  const cold: number[] = [];
  const warm: number[] = [];
  const coldCpu: number[] = [];
  const warmCpu: number[] = [];
  const load: number[] = [];
  const arenaOptions = {
    ...options,
    battleTtlSeconds: 3600,
    excludeOwnerVotes: false,
    bootstrapSeed: 0,
    identityCheck: 'off' as const,
    identityAllow: [],
    sampling: { temperature: 0, topP: 1, maxTokens: 1 },
  };
  try {
    for (let start = 0; start < votes.length; start += 5000) {
      const pipeline = redis.pipeline();
      for (let k = start; k < Math.min(votes.length, start + 5000); k++) {
        const v = votes[k]!;
        pipeline.hset(`${prefix}:arena:votes`, `b${k}:voter`, JSON.stringify([v.a, v.b, v.choice, v.at, v.category]));
      }
      await pipeline.exec();
    }
    const names = Object.keys(ratings);
    for (let r = 0; r < RUNS; r++) {
      const store = new ArenaStore(redis, prefix);
      const arena = new Arena({ store, adapters: { list: async () => [] }, answers: { compare: async () => [] }, options: arenaOptions });
      let t = performance.now();
      const { votes: loaded } = await store.countedVotes();
      load.push(performance.now() - t);
      if (loaded.length < votes.length) throw new Error(`loaded ${loaded.length} votes, expected ${votes.length}`);
      const fresh = new Arena({ store: new ArenaStore(redis, prefix), adapters: { list: async () => [] }, answers: { compare: async () => [] }, options: arenaOptions });
      t = performance.now();
      let cpu = process.cpuUsage();
      await fresh.leaderboard();
      await fresh.leaderboardPng();
      cold.push(performance.now() - t);
      coldCpu.push(cpuSince(cpu));

      await arena.leaderboard();
      const now = Date.now();
      const battle = {
        id: `bench${String(r).padStart(7, '0')}`,
        prompt: 'p',
        category: null,
        models: { A: names[0]!, B: names[1]! },
        owners: { A: null, B: null },
        answers: { A: { text: 'a', finishReason: 'stop' }, B: { text: 'b', finishReason: 'stop' } },
        sampling: { temperature: 0, topP: 1, maxTokens: 1, seed: 0 },
        createdAt: now,
        closesAt: now + 60_000,
        closedAt: null,
        flag: null,
      };
      await store.saveBattle(battle);
      await store.castVote(battle, 'bench-voter', 'A', now);
      t = performance.now();
      cpu = process.cpuUsage();
      await arena.leaderboard();
      await arena.leaderboardPng();
      warm.push(performance.now() - t);
      warmCpu.push(cpuSince(cpu));
    }
  } finally {
    await deletePrefix(redis, prefix);
    await redis.quit();
  }

  console.log('phase                          wall (median)');
  for (const [name, xs] of Object.entries(phases)) console.log(`  ${name.padEnd(28)} ${ms(median(xs))}`);
  console.log(`  ${'total, CPU time'.padEnd(28)} ${ms(median(totalCpu))}`);
  console.log(`  ${'read all votes from Redis'.padEnd(28)} ${ms(median(load))}`);
  console.log('\nend to end: Arena.leaderboard() + leaderboardPng(), votes in Redis (budget 2000 ms)');
  console.log(`  ${'fresh process'.padEnd(28)} wall ${ms(median(cold))}, CPU ${ms(median(coldCpu))}`);
  console.log(`  ${'after one more vote'.padEnd(28)} wall ${ms(median(warm))}, CPU ${ms(median(warmCpu))}`);
  console.log('  (CPU time is this process\'s own work, all threads: what a quiet machine would take, less Redis\'s share)');

  // baselines for the two choices, same data, same run: the fits of a bootstrap (resamples, started from the full
  // fit, to the same precision) by Newton and by MM; CPU time, as the machine is shared
  const data = aggregateVotes(votes);
  const full = fitBradleyTerry(data);
  const resample = seededUniform(1);
  const resamples = Array.from({ length: 50 }, () => Float64Array.from(sampleMultinomial(votes.length, data.counts, resample, new Float64Array(data.counts.length))));
  const solve = (fit: (counts: Float64Array) => { beta: Float64Array; iterations: number }) => {
    const cpu = process.cpuUsage();
    let steps = 0;
    const betas = resamples.map((counts) => {
      const result = fit(counts);
      steps += result.iterations;
      return result.beta;
    });
    return { cpu: cpuSince(cpu), steps: steps / resamples.length, betas };
  };
  const newton = solve((counts) => fitBradleyTerry({ ...data, counts }, { start: full.beta, tolerance: 1e-6 }));
  const mm = solve((counts) => fitMM({ ...data, counts }, full.beta, 1e-6));
  let gap = 0;
  newton.betas.forEach((b, r) => b.forEach((v, k) => (gap = Math.max(gap, 400 * Math.abs(v - mm.betas[r]![k]!)))));
  console.log(`
50 bootstrap refits (from the full fit, to 1e-6): Newton (used) vs MM iteration (baseline), CPU time`);
  console.log(
    `  Newton ${ms(newton.cpu)} (${newton.steps.toFixed(1)} steps each), MM ${ms(mm.cpu)} (${mm.steps.toFixed(1)} steps each): ` +
      `MM/Newton = ${(mm.cpu / newton.cpu).toFixed(1)}×; ratings agree within ${gap.toFixed(3)} points (the prior's pull)`,
  );

  const uniform = seededUniform(0);
  const out = new Float64Array(data.counts.length);
  const total = votes.length;
  const binomial = cpuTime(() => {
    for (let r = 0; r < ROUNDS; r++) sampleMultinomial(total, data.counts, uniform, out);
  });
  const draws = cpuTime(() => {
    for (let r = 0; r < ROUNDS; r++) multinomialByDraws(total, data.counts, uniform, out);
  });
  console.log(`\nbootstrap resampling, ${ROUNDS} rounds of ${total} votes over ${data.counts.length} rows, CPU time`);
  console.log(`  conditional binomials (used) ${ms(binomial)}, one draw per vote (baseline) ${ms(draws)}: ${(draws / binomial).toFixed(1)}×`);
}

await main();
