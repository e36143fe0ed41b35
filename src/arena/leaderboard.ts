// From the counted votes to the leaderboard: aggregation, the Bradley–Terry fit, bootstrap intervals, ranks by
// interval overlap, per-adapter counts, online Elo and the pairwise win matrix. Pure: storage and caching live in
// the arena service.
import { bootstrapBradleyTerry, quantile } from './bootstrap.js';
import { DEFAULT_PRIOR_SD, fitBradleyTerry, type PairCounts } from './bradley-terry.js';
import { ELO_DEFAULTS, onlineElo, type EloGame } from './elo.js';
import type { Choice, Leaderboard, LeaderboardEntry, RatedVote } from './types.js';

const SCALE = 400;
const BASE = 10;
const INTERVAL = 0.95;

export interface LeaderboardOptions {
  /** only votes of battles in this category; null: every vote */
  category: string | null;
  minVotes: number;
  bootstrapRounds: number;
  seed: number;
  anchor: { adapter?: string | undefined; rating: number };
  priorSd?: number;
  now?: Date;
}

export interface LeaderboardTimings {
  aggregateMs: number;
  fitMs: number;
  bootstrapMs: number;
  eloMs: number;
}

/** Votes aggregated per pair of adapters, with per-adapter tallies. Adapters are indexed in name order. */
export interface AggregatedVotes extends PairCounts {
  adapters: string[];
  wins: Float64Array;
  losses: Float64Array;
  ties: Float64Array;
  bothBad: Float64Array;
  /** per vote, in input order: the indices of the adapters on sides A and B, and A's points */
  sideA: Int32Array;
  sideB: Int32Array;
  scoreA: Float64Array;
}

/** a's points for a choice; `bad` (both bad) is a tie, as in Chatbot Arena. */
const SCORE: Record<Choice, number> = { A: 1, B: 0, tie: 0.5, bad: 0.5 };

export function aggregateVotes(votes: readonly RatedVote[]): AggregatedVotes {
  const names = new Set<string>();
  for (const v of votes) {
    if (v.a === v.b) throw new RangeError(`a vote pairs adapter ${v.a} with itself`);
    names.add(v.a);
    names.add(v.b);
  }
  const adapters = [...names].sort();
  const n = adapters.length;
  const index = new Map(adapters.map((name, i) => [name, i]));
  const pairOf = new Int32Array(n * n).fill(-1);
  const pairI: number[] = [];
  const pairJ: number[] = [];
  const counts: number[] = [];
  const wins = new Float64Array(n);
  const losses = new Float64Array(n);
  const ties = new Float64Array(n);
  const bothBad = new Float64Array(n);
  const sideA = new Int32Array(votes.length);
  const sideB = new Int32Array(votes.length);
  const scoreA = new Float64Array(votes.length);
  for (let x = 0; x < votes.length; x++) {
    const v = votes[x]!;
    const a = index.get(v.a)!;
    const b = index.get(v.b)!;
    const score = SCORE[v.choice];
    sideA[x] = a;
    sideB[x] = b;
    scoreA[x] = score;
    const i = a < b ? a : b;
    const j = a < b ? b : a;
    let p = pairOf[i * n + j]!;
    if (p < 0) {
      p = pairOf[i * n + j] = pairI.length;
      pairI.push(i);
      pairJ.push(j);
      counts.push(0, 0, 0);
    }
    // rows per pair: [j won, tie, i won] at 3p + 2·(i's points)
    counts[3 * p + 2 * (a === i ? score : 1 - score)]! += 1;
    if (score === 0.5) {
      const tally = v.choice === 'tie' ? ties : bothBad;
      tally[a]! += 1;
      tally[b]! += 1;
    } else {
      wins[score === 1 ? a : b]! += 1;
      losses[score === 1 ? b : a]! += 1;
    }
  }
  return {
    n,
    adapters,
    pairI: Int32Array.from(pairI),
    pairJ: Int32Array.from(pairJ),
    counts: Float64Array.from(counts),
    wins,
    losses,
    ties,
    bothBad,
    sideA,
    sideB,
    scoreA,
  };
}

/**
 * The shift that puts the anchor adapter at the anchor rating or, without one, the mean of `meanOf` there (the
 * adapters on the table: a hidden adapter with one lucky vote must not move everybody else).
 */
function anchorOffset(beta: ArrayLike<number>, from: number, anchorIndex: number, meanOf: readonly number[], rating: number): number {
  if (anchorIndex >= 0) return rating - SCALE * beta[from + anchorIndex]!;
  let sum = 0;
  for (const k of meanOf) sum += beta[from + k]!;
  return rating - (SCALE * sum) / meanOf.length;
}

export async function computeLeaderboard(
  allVotes: readonly RatedVote[],
  options: LeaderboardOptions,
): Promise<{ board: Leaderboard; timings: LeaderboardTimings }> {
  const priorSd = options.priorSd ?? DEFAULT_PRIOR_SD;
  let t = performance.now();
  const votes = options.category === null ? allVotes : allVotes.filter((v) => v.category === options.category);
  const data = aggregateVotes(votes);
  const { n, adapters } = data;
  const aggregateMs = performance.now() - t;

  t = performance.now();
  const fitOptions = { scale: SCALE, base: BASE, priorSd };
  const { beta } = fitBradleyTerry(data, fitOptions);
  const anchorIndex = options.anchor.adapter === undefined ? -1 : adapters.indexOf(options.anchor.adapter);
  const votesOf = (k: number) => data.wins[k]! + data.losses[k]! + data.ties[k]! + data.bothBad[k]!;
  const onTable = adapters.map((_, k) => k).filter((k) => votesOf(k) >= options.minVotes);
  const meanOf = onTable.length > 0 ? onTable : adapters.map((_, k) => k);
  const offset = anchorOffset(beta, 0, anchorIndex, meanOf, options.anchor.rating);
  const rating = Array.from(beta, (b) => SCALE * b + offset);
  const fitMs = performance.now() - t;

  t = performance.now();
  const rounds = options.bootstrapRounds;
  const lower = rating.slice();
  const upper = rating.slice();
  if (rounds > 0 && n > 0) {
    const samples = await bootstrapBradleyTerry(data, { ...fitOptions, rounds, seed: options.seed, start: beta });
    const column = new Float64Array(rounds);
    const offsets = Array.from({ length: rounds }, (_, r) => anchorOffset(samples, r * n, anchorIndex, meanOf, options.anchor.rating));
    for (let k = 0; k < n; k++) {
      for (let r = 0; r < rounds; r++) column[r] = SCALE * samples[r * n + k]! + offsets[r]!;
      lower[k] = quantile(column, (1 - INTERVAL) / 2);
      upper[k] = quantile(column, 1 - (1 - INTERVAL) / 2);
    }
  }
  const bootstrapMs = performance.now() - t;

  t = performance.now();
  const order = Uint32Array.from(votes, (_, x) => x).sort((x, y) => votes[x]!.at - votes[y]!.at);
  const games = Array.from(order, (x): EloGame => ({ a: data.sideA[x]!, b: data.sideB[x]!, score: data.scoreA[x]! }));
  const elo = onlineElo(n, games);
  const eloMs = performance.now() - t;

  const shown = onTable.sort((x, y) => rating[y]! - rating[x]! || adapters[x]!.localeCompare(adapters[y]!));
  const entries: LeaderboardEntry[] = shown.map((k) => ({
    rank: 1 + shown.filter((o) => lower[o]! > upper[k]!).length,
    name: adapters[k]!,
    rating: rating[k]!,
    lower: lower[k]!,
    upper: upper[k]!,
    votes: votesOf(k),
    wins: data.wins[k]!,
    losses: data.losses[k]!,
    ties: data.ties[k]!,
    bothBad: data.bothBad[k]!,
    winRate: (data.wins[k]! + 0.5 * (data.ties[k]! + data.bothBad[k]!)) / votesOf(k),
    elo: elo[k]!,
  }));

  const position = new Map(shown.map((k, row) => [k, row]));
  const score = shown.map(() => shown.map((): number | null => null));
  const met = shown.map(() => shown.map(() => 0));
  for (let p = 0; p < data.pairI.length; p++) {
    const ri = position.get(data.pairI[p]!);
    const rj = position.get(data.pairJ[p]!);
    if (ri === undefined || rj === undefined) continue;
    const [jWon, tied, iWon] = [data.counts[3 * p]!, data.counts[3 * p + 1]!, data.counts[3 * p + 2]!];
    const total = jWon + tied + iWon;
    met[ri]![rj] = met[rj]![ri] = total;
    score[ri]![rj] = (iWon + 0.5 * tied) / total;
    score[rj]![ri] = (jWon + 0.5 * tied) / total;
  }

  const board: Leaderboard = {
    category: options.category,
    categories: [...new Set(allVotes.map((v) => v.category).filter((c): c is string => c !== null))].sort(),
    votes: votes.length,
    entries,
    hidden: adapters
      .map((name, k) => ({ name, votes: votesOf(k) }))
      .filter((h) => h.votes < options.minVotes)
      .sort((x, y) => y.votes - x.votes || x.name.localeCompare(y.name)),
    winMatrix: { adapters: shown.map((k) => adapters[k]!), score, votes: met },
    method: {
      model: 'bradley-terry',
      scale: SCALE,
      base: BASE,
      anchor: { adapter: anchorIndex >= 0 ? adapters[anchorIndex]! : null, rating: options.anchor.rating },
      priorSd,
      bootstrapRounds: rounds,
      seed: options.seed,
      interval: INTERVAL,
      minVotes: options.minVotes,
      elo: { k: ELO_DEFAULTS.k, initial: ELO_DEFAULTS.initial },
    },
    computedAt: (options.now ?? new Date()).toISOString(),
  };
  return { board, timings: { aggregateMs, fitMs, bootstrapMs, eloMs } };
}
