// The arena's vocabulary, shared by its pure math, its Redis store, the API routes and the typed client.
// This module holds types and constants only, so the client can import it without pulling in arena code.

/** A voter's verdict: answer A is better, answer B is better, a tie, or both are bad (counts as a tie). */
export const CHOICES = ['A', 'B', 'tie', 'bad'] as const;
export type Choice = (typeof CHOICES)[number];
export type Side = 'A' | 'B';

/** What the arena needs to know about an adapter: a subset of the registry's record. */
export interface ArenaAdapter {
  name: string;
  baseModel: string | null;
  /** who registered it; with `arena.excludeOwnerVotes` they may not vote on battles where it plays */
  registeredBy?: string | null;
}

export interface ArenaAdapterSource {
  list(): Promise<ArenaAdapter[]>;
}

/** Sampling settings shared by both answers of a battle: same settings, same seed. */
export interface SamplingSettings {
  temperature: number;
  topP: number;
  maxTokens: number;
  seed: number;
}

export interface GeneratedAnswer {
  text: string;
  /** 'stop', 'length', ... as the engine reports it */
  finishReason: string;
}

/**
 * Generates the answers of every model to one prompt in one batch with the same sampling settings and seed, in
 * the order of `models`. The inference engine provides it (`compare`, also served as `POST /v1/compare`).
 */
export interface AnswerGenerator {
  compare(
    prompt: string,
    models: readonly string[],
    sampling: SamplingSettings,
    options?: { signal?: AbortSignal },
  ): Promise<GeneratedAnswer[]>;
}

/** What a caller asks for: adapters not named are drawn; sampling settings not given come from the config. */
export interface BattleRequest {
  prompt: string;
  a?: string | undefined;
  b?: string | undefined;
  category?: string | undefined;
  sampling?: Partial<SamplingSettings> | undefined;
}

export interface LeaderboardQuery {
  /** one category's board; every vote when absent */
  category?: string | null | undefined;
  /** hide adapters with fewer counted votes than this (default: the config's `arena.minVotes`) */
  minVotes?: number | undefined;
}

/** Why a battle's votes do not count towards the leaderboard. */
export interface BattleFlag {
  reason: 'identity';
  /** the words in an answer that could reveal which adapter wrote it */
  terms: string[];
}

/** A battle as stored. Times are epoch milliseconds. */
export interface BattleRecord {
  id: string;
  prompt: string;
  category: string | null;
  models: Record<Side, string>;
  /** the adapters' `registeredBy` when the battle was made */
  owners: Record<Side, string | null>;
  answers: Record<Side, GeneratedAnswer>;
  sampling: SamplingSettings;
  createdAt: number;
  closesAt: number;
  closedAt: number | null;
  flag: BattleFlag | null;
}

export type BattleStatus = 'open' | 'closed';

/** A battle as the API shows it: the adapters' names only once it is closed or the asking voter has voted. */
export interface BattleView {
  id: string;
  prompt: string;
  category: string | null;
  answers: Record<Side, GeneratedAnswer>;
  sampling: SamplingSettings;
  status: BattleStatus;
  createdAt: string;
  closesAt: string;
  closedAt: string | null;
  /** false when the battle is flagged: votes are taken but do not count towards the leaderboard */
  counted: boolean;
  flag: BattleFlag | null;
  /** number of votes so far */
  votes: number;
  /** votes per choice, once the battle is closed (hidden while open so nobody follows the crowd) */
  tally: Record<Choice, number> | null;
  /** which adapter answered on which side: null while hidden from the asker */
  models: Record<Side, string> | null;
  /** the asking voter's current vote, when a voter was named */
  yourVote: Choice | null;
}

export interface VoteResult {
  choice: Choice;
  /** the voter's vote before this one (a changed vote), or null */
  previous: Choice | null;
  /** whether the vote counts towards the leaderboard (false for flagged battles) */
  counted: boolean;
  /** the battle revealed to this voter */
  battle: BattleView;
}

/** One counted vote, as the ratings see it: `a` answered on side A, `b` on side B. */
export interface RatedVote {
  a: string;
  b: string;
  choice: Choice;
  /** when the vote was cast or last changed, epoch ms: the order online Elo reads votes in */
  at: number;
  category: string | null;
}

export interface LeaderboardEntry {
  /** 1 + the number of adapters whose interval lies wholly above this one's */
  rank: number;
  name: string;
  /** Bradley–Terry rating: 400·β + offset, anchored */
  rating: number;
  /** 95% bootstrap interval of the rating (equal to `rating` when bootstrapping is off) */
  lower: number;
  upper: number;
  votes: number;
  wins: number;
  losses: number;
  ties: number;
  bothBad: number;
  /** (wins + ½·(ties + bothBad)) / votes */
  winRate: number;
  /** online Elo (K = 4, init 1000) over the votes in time order: a secondary column */
  elo: number;
}

export interface WinMatrix {
  /** row/column order: the table's order */
  adapters: string[];
  /** score[i][j]: share of i's points against j, wins + ½ ties over battles; null when they never met */
  score: (number | null)[][];
  /** votes[i][j]: counted votes between i and j */
  votes: number[][];
}

export interface LeaderboardMethod {
  model: 'bradley-terry';
  /** rating = scale·β + offset, P(a beats b) = 1 / (1 + base^((R_b − R_a) / scale)) */
  scale: number;
  base: number;
  anchor: { adapter: string | null; rating: number };
  /** sd of the Gaussian prior on each rating, in rating points (keeps undefeated adapters finite) */
  priorSd: number;
  bootstrapRounds: number;
  seed: number;
  interval: number;
  minVotes: number;
  elo: { k: number; initial: number };
}

export interface Leaderboard {
  category: string | null;
  /** every category that has counted votes, for choosing another board */
  categories: string[];
  /** counted votes on this board */
  votes: number;
  entries: LeaderboardEntry[];
  /** adapters left off the table for having fewer than `method.minVotes` votes */
  hidden: { name: string; votes: number }[];
  winMatrix: WinMatrix;
  method: LeaderboardMethod;
  computedAt: string;
}
