// The arena service: makes battles (pair, coin flip, both answers in one batch), takes votes under the rules,
// and serves the leaderboard and its chart from the counted votes, cached until a vote changes them.
import { randomBytes } from 'node:crypto';
import { ConflictError, ForbiddenError, InvalidInputError, NotFoundError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { leaderboardPng } from './chart.js';
import { findIdentityLeaks, identityTerms } from './identity.js';
import { computeLeaderboard, type LeaderboardTimings } from './leaderboard.js';
import { choosePair } from './pairing.js';
import type { Uniform } from './random.js';
import type { ArenaStore, StoredBattle } from './store.js';
import {
  CHOICES,
  type AnswerGenerator,
  type ArenaAdapterSource,
  type BattleRecord,
  type BattleRequest,
  type BattleView,
  type Choice,
  type Leaderboard,
  type LeaderboardQuery,
  type SamplingSettings,
  type VoteResult,
} from './types.js';

/** The `arena` section of the configuration. */
export interface ArenaOptions {
  battleTtlSeconds: number;
  excludeOwnerVotes: boolean;
  minVotes: number;
  bootstrapRounds: number;
  bootstrapSeed: number;
  anchor: { adapter?: string | undefined; rating: number };
  identityCheck: 'flag' | 'off';
  identityAllow: string[];
  sampling: Omit<SamplingSettings, 'seed'>;
}

export interface ArenaDeps {
  store: ArenaStore;
  adapters: ArenaAdapterSource;
  answers: AnswerGenerator;
  options: ArenaOptions;
  log?: Logger;
  /** epoch ms; tests move it to close battles by time */
  now?: () => number;
  /** pairing, the A/B coin flip and battle seeds */
  random?: Uniform;
}

interface CachedBoard {
  version: string;
  board: Leaderboard;
  timings: LeaderboardTimings;
  png?: Promise<Buffer>;
}

const MAX_CACHED_BOARDS = 32;

const isClosed = (record: BattleRecord, now: number) => record.closedAt !== null || now >= record.closesAt;

/** The battle as `voter` may see it: names once it is closed or they have voted, the tally once closed. */
export function battleView(stored: StoredBattle, now: number, voter?: string): BattleView {
  const { record, votes } = stored;
  const closed = isClosed(record, now);
  const yourVote = voter === undefined ? null : (votes.get(voter) ?? null);
  const tally = Object.fromEntries(CHOICES.map((c) => [c, 0])) as Record<Choice, number>;
  for (const choice of votes.values()) tally[choice]++;
  const closedAt = record.closedAt ?? (closed ? record.closesAt : null);
  return {
    id: record.id,
    prompt: record.prompt,
    category: record.category,
    answers: record.answers,
    sampling: record.sampling,
    status: closed ? 'closed' : 'open',
    createdAt: new Date(record.createdAt).toISOString(),
    closesAt: new Date(record.closesAt).toISOString(),
    closedAt: closedAt === null ? null : new Date(closedAt).toISOString(),
    counted: record.flag === null,
    flag: record.flag,
    votes: votes.size,
    tally: closed ? tally : null,
    models: closed || yourVote !== null ? record.models : null,
    yourVote,
  };
}

export class Arena {
  private readonly now: () => number;
  private readonly random: Uniform;
  private readonly boards = new Map<string, CachedBoard>();
  private readonly computing = new Map<string, Promise<CachedBoard>>();

  constructor(private readonly deps: ArenaDeps) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
  }

  async createBattle(request: BattleRequest, signal?: AbortSignal): Promise<BattleView> {
    const { store, options } = this.deps;
    const [adapters, votes] = await Promise.all([this.deps.adapters.list(), store.adapterVotes()]);
    const pair = choosePair(adapters, votes, request, this.random);
    const sampling: SamplingSettings = {
      ...options.sampling,
      ...request.sampling,
      seed: request.sampling?.seed ?? Math.floor(this.random() * 2 ** 31),
    };
    const models = [pair.A.name, pair.B.name] as const;
    const answers = await this.deps.answers.compare(request.prompt, models, sampling, signal ? { signal } : {});
    if (answers.length !== 2) throw new Error(`the answer generator returned ${answers.length} answers for 2 models`);
    const [answerA, answerB] = answers as [(typeof answers)[0], (typeof answers)[0]];
    let flag: BattleRecord['flag'] = null;
    if (options.identityCheck === 'flag') {
      const terms = identityTerms(models, pair.A.baseModel ?? pair.B.baseModel, options.identityAllow);
      const leaks = findIdentityLeaks([answerA.text, answerB.text], request.prompt, terms);
      if (leaks.length > 0) flag = { reason: 'identity', terms: leaks };
    }
    const createdAt = this.now();
    const record: BattleRecord = {
      id: randomBytes(9).toString('base64url'),
      prompt: request.prompt,
      category: request.category ?? null,
      models: { A: pair.A.name, B: pair.B.name },
      owners: { A: pair.A.registeredBy ?? null, B: pair.B.registeredBy ?? null },
      answers: { A: answerA, B: answerB },
      sampling,
      createdAt,
      closesAt: createdAt + options.battleTtlSeconds * 1000,
      closedAt: null,
      flag,
    };
    await store.saveBattle(record);
    this.deps.log?.info({ battle: record.id, category: record.category, flagged: flag !== null }, 'arena battle created');
    return battleView({ record, votes: new Map() }, createdAt);
  }

  private async stored(id: string): Promise<StoredBattle> {
    const stored = await this.deps.store.getBattle(id);
    if (!stored) throw new NotFoundError(`no battle with id "${id}"`);
    return stored;
  }

  async getBattle(id: string, voter?: string): Promise<BattleView> {
    return battleView(await this.stored(id), this.now(), voter);
  }

  async vote(id: string, voter: string, choice: Choice): Promise<VoteResult> {
    const { record } = await this.stored(id);
    const now = this.now();
    if (this.deps.options.excludeOwnerVotes && (record.owners.A === voter || record.owners.B === voter)) {
      throw new ForbiddenError('you registered one of the two adapters in this battle, and owners may not vote on their own adapters');
    }
    const outcome = await this.deps.store.castVote(record, voter, choice, now);
    if (outcome.status === 'missing') throw new NotFoundError(`no battle with id "${id}"`);
    if (outcome.status === 'closed') throw new ConflictError(`battle "${id}" is closed: it takes no more votes`);
    return {
      choice,
      previous: outcome.previous,
      counted: record.flag === null,
      battle: battleView(await this.stored(id), now, voter),
    };
  }

  async closeBattle(id: string): Promise<BattleView> {
    const closedAt = await this.deps.store.closeBattle(id, this.now());
    if (closedAt === null) throw new NotFoundError(`no battle with id "${id}"`);
    return battleView(await this.stored(id), this.now());
  }

  async leaderboard(query: LeaderboardQuery = {}): Promise<Leaderboard> {
    return (await this.cachedBoard(query)).board;
  }

  async leaderboardPng(query: LeaderboardQuery = {}): Promise<Buffer> {
    const cached = await this.cachedBoard(query);
    cached.png ??= leaderboardPng(cached.board).catch((err: unknown) => {
      cached.png = undefined;
      throw err;
    });
    return cached.png;
  }

  private async cachedBoard(query: LeaderboardQuery): Promise<CachedBoard> {
    const { options } = this.deps;
    const category = query.category ?? null;
    const minVotes = query.minVotes ?? options.minVotes;
    if (category !== null && category.length === 0) throw new InvalidInputError('category must not be empty');
    const key = `${minVotes}:${category ?? ''}`;
    const { version, votes } = await this.deps.store.countedVotes();
    const cached = this.boards.get(key);
    if (cached?.version === version) return cached;
    const running = this.computing.get(`${version}:${key}`);
    if (running) return running;
    const work = (async () => {
      const { board, timings } = await computeLeaderboard(votes, {
        category,
        minVotes,
        bootstrapRounds: options.bootstrapRounds,
        seed: options.bootstrapSeed,
        anchor: options.anchor,
        now: new Date(this.now()),
      });
      this.deps.log?.debug({ category, votes: board.votes, ...timings }, 'arena leaderboard computed');
      const entry: CachedBoard = { version, board, timings };
      this.boards.delete(key);
      this.boards.set(key, entry);
      // boards are keyed by what callers ask for: keep the most recently computed few
      for (const old of this.boards.keys()) if (this.boards.size > MAX_CACHED_BOARDS) this.boards.delete(old);
      return entry;
    })();
    this.computing.set(`${version}:${key}`, work);
    try {
      return await work;
    } finally {
      this.computing.delete(`${version}:${key}`);
    }
  }
}
