// The arena service against the real Redis, under a key prefix of its own.
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Arena, type ArenaOptions } from '../../src/arena/arena.js';
import { seededUniform } from '../../src/arena/random.js';
import { ArenaStore } from '../../src/arena/store.js';
import type { AnswerGenerator, ArenaAdapter } from '../../src/arena/types.js';
import { ConflictError, ForbiddenError, NotFoundError } from '../../src/errors.js';
import { deletePrefix, testPrefix, testRedis } from '../helpers/redis.js';
import { ScriptedAnswers } from './scripted-answers.js';

const ADAPTERS: ArenaAdapter[] = [
  { name: 'code', baseModel: 'org/base', registeredBy: 'alice' },
  { name: 'linux-commands', baseModel: 'org/base', registeredBy: 'bob' },
  { name: 'troubleshooting', baseModel: 'org/base', registeredBy: 'alice' },
];

const OPTIONS: ArenaOptions = {
  battleTtlSeconds: 3600,
  excludeOwnerVotes: false,
  minVotes: 0,
  bootstrapRounds: 50,
  bootstrapSeed: 0,
  anchor: { rating: 1000 },
  identityCheck: 'flag',
  identityAllow: [],
  sampling: { temperature: 0.7, topP: 0.95, maxTokens: 64 },
};

describe('arena service', () => {
  const redis: Redis = testRedis();
  let prefix: string;
  let clock: number;
  let answers: ScriptedAnswers;

  const makeArena = (options: Partial<ArenaOptions> = {}, generator: AnswerGenerator = answers) =>
    new Arena({
      store: new ArenaStore(redis, prefix),
      adapters: { list: async () => ADAPTERS },
      answers: generator,
      options: { ...OPTIONS, ...options },
      now: () => clock,
      random: seededUniform(7),
    });

  beforeEach(() => {
    prefix = testPrefix('arena');
    clock = Date.UTC(2025, 0, 1);
    answers = new ScriptedAnswers();
  });
  afterEach(async () => {
    await deletePrefix(redis, prefix);
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('makes a battle with both answers from one batch, names hidden', async () => {
    const arena = makeArena();
    const battle = await arena.createBattle({ prompt: 'How do I list open ports?', a: 'code', b: 'linux-commands', category: 'linux' });
    expect(answers.calls).toHaveLength(1);
    const call = answers.calls[0]!;
    expect([...call.models].sort()).toEqual(['code', 'linux-commands']);
    expect(battle).toMatchObject({ status: 'open', category: 'linux', counted: true, flag: null, votes: 0, models: null, tally: null });
    expect(battle.sampling).toEqual(call.sampling);
    expect(battle.sampling).toMatchObject({ temperature: 0.7, topP: 0.95, maxTokens: 64 });
    expect(Number.isInteger(battle.sampling.seed)).toBe(true);
    // side A shows the first model's answer
    expect(battle.answers.A.text).toBe(ScriptedAnswers.textFor(call.models[0]!));
    expect(battle.answers.B.text).toBe(ScriptedAnswers.textFor(call.models[1]!));
    expect(JSON.stringify(await arena.getBattle(battle.id))).not.toMatch(/linux-commands|"code"/);
  });

  it('takes one vote per voter, changeable while open, and reveals the names to that voter', async () => {
    const arena = makeArena();
    const battle = await arena.createBattle({ prompt: 'hello', a: 'code', b: 'linux-commands' });
    const first = await arena.vote(battle.id, 'carol', 'A');
    expect(first).toMatchObject({ choice: 'A', previous: null, counted: true });
    expect(first.battle.models).not.toBeNull();
    expect(first.battle.yourVote).toBe('A');
    expect((await arena.getBattle(battle.id)).models).toBeNull();
    expect((await arena.getBattle(battle.id, 'dave')).models).toBeNull();
    expect((await arena.getBattle(battle.id, 'carol')).models).toEqual(first.battle.models);

    const winnerFirst = first.battle.models!.A;
    const board1 = await arena.leaderboard();
    expect(board1.votes).toBe(1);
    expect(board1.entries[0]!.name).toBe(winnerFirst);

    const changed = await arena.vote(battle.id, 'carol', 'B');
    expect(changed).toMatchObject({ choice: 'B', previous: 'A' });
    expect(changed.battle.votes).toBe(1);
    const board2 = await arena.leaderboard();
    expect(board2.votes).toBe(1);
    expect(board2.entries[0]!.name).toBe(first.battle.models!.B);

    await arena.vote(battle.id, 'dave', 'tie');
    const board3 = await arena.leaderboard();
    expect(board3.votes).toBe(2);
  });

  it('closes by time or on request, then takes no votes and shows names and tally to all', async () => {
    const arena = makeArena({ battleTtlSeconds: 60 });
    const timed = await arena.createBattle({ prompt: 'hello' });
    await arena.vote(timed.id, 'carol', 'bad');
    clock += 60_000;
    const closed = await arena.getBattle(timed.id);
    expect(closed).toMatchObject({ status: 'closed', tally: { A: 0, B: 0, tie: 0, bad: 1 } });
    expect(closed.models).not.toBeNull();
    expect(closed.closedAt).toBe(closed.closesAt);
    await expect(arena.vote(timed.id, 'dave', 'A')).rejects.toThrow(ConflictError);

    const explicit = await arena.createBattle({ prompt: 'hello again' });
    clock += 1000;
    const view = await arena.closeBattle(explicit.id);
    expect(view.status).toBe('closed');
    expect(view.closedAt).toBe(new Date(clock).toISOString());
    await expect(arena.vote(explicit.id, 'carol', 'A')).rejects.toThrow(/closed/);
    // closing twice keeps the first time
    clock += 1000;
    expect((await arena.closeBattle(explicit.id)).closedAt).toBe(view.closedAt);
    await expect(arena.closeBattle('no-such-battle')).rejects.toThrow(NotFoundError);
    await expect(arena.vote('no-such-battle', 'carol', 'A')).rejects.toThrow(NotFoundError);
  });

  it('refuses votes by an adapter owner when configured, without saying which adapter is theirs', async () => {
    const strict = makeArena({ excludeOwnerVotes: true });
    const battle = await strict.createBattle({ prompt: 'hello', a: 'code', b: 'linux-commands' });
    const refusal = strict.vote(battle.id, 'bob', 'A');
    await expect(refusal).rejects.toThrow(ForbiddenError);
    await expect(refusal).rejects.not.toThrow(/linux-commands/);
    await expect(strict.vote(battle.id, 'alice', 'A')).rejects.toThrow(ForbiddenError);
    await expect(strict.vote(battle.id, 'carol', 'A')).resolves.toMatchObject({ choice: 'A' });
    // off by default
    const lenient = makeArena();
    await expect(lenient.vote(battle.id, 'bob', 'B')).resolves.toMatchObject({ choice: 'B' });
  });

  it('flags a battle whose answer names an adapter: votes are taken but not counted', async () => {
    answers.override('code', 'As the code adapter, I would write a loop.');
    const arena = makeArena();
    const battle = await arena.createBattle({ prompt: 'hello', a: 'code', b: 'linux-commands' });
    expect(battle.counted).toBe(false);
    expect(battle.flag).toEqual({ reason: 'identity', terms: ['code'] });
    const vote = await arena.vote(battle.id, 'carol', 'A');
    expect(vote.counted).toBe(false);
    expect((await arena.leaderboard()).votes).toBe(0);
    // with the check off the same battle counts
    const unchecked = makeArena({ identityCheck: 'off' });
    const counted = await unchecked.createBattle({ prompt: 'hello', a: 'code', b: 'linux-commands' });
    expect(counted.counted).toBe(true);
  });

  it('loses nothing across a restart: a new process sees the battles, votes and the same leaderboard', async () => {
    const arena = makeArena();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const battle = await arena.createBattle({ prompt: `question ${i}`, category: i % 2 ? 'code' : 'linux' });
      ids.push(battle.id);
      await arena.vote(battle.id, 'carol', (['A', 'B', 'tie'] as const)[i % 3]);
      await arena.vote(battle.id, 'dave', 'A');
    }
    const before = await arena.leaderboard();
    const beforeCode = await arena.leaderboard({ category: 'code' });

    const other = testRedis();
    try {
      const restarted = new Arena({
        store: new ArenaStore(other, prefix),
        adapters: { list: async () => ADAPTERS },
        answers,
        options: OPTIONS,
        now: () => clock,
      });
      expect((await restarted.getBattle(ids[0]!, 'carol')).yourVote).toBe('A');
      const after = await restarted.leaderboard();
      expect(after.votes).toBe(12);
      expect({ ...after, computedAt: '' }).toEqual({ ...before, computedAt: '' });
      expect((await restarted.leaderboard({ category: 'code' })).entries).toEqual(beforeCode.entries);
      expect(after.categories).toEqual(['code', 'linux']);
    } finally {
      await other.quit();
    }
  });

  it('keeps a running process current from the vote log, and from the hash when the log was trimmed', async () => {
    const readerRedis = testRedis();
    try {
      const reader = new Arena({
        store: new ArenaStore(readerRedis, prefix),
        adapters: { list: async () => ADAPTERS },
        answers,
        options: OPTIONS,
      });
      const hashReads = vi.spyOn(readerRedis, 'hscan');
      const writer = makeArena();
      const first = await writer.createBattle({ prompt: 'one', a: 'code', b: 'linux-commands' });
      await writer.vote(first.id, 'carol', 'A');
      expect((await reader.leaderboard()).votes).toBe(1);
      expect(hashReads).toHaveBeenCalledTimes(1);
      // changes after the reader's first look come from the log
      await writer.vote(first.id, 'dave', 'B');
      await writer.vote(first.id, 'carol', 'tie');
      const board = await reader.leaderboard();
      expect(board.votes).toBe(2);
      expect(board.entries.map((e) => e.ties + e.bothBad)).toEqual([1, 1]);
      expect(hashReads).toHaveBeenCalledTimes(1);
      // the log trimmed past what the reader saw: it reads the whole hash again
      const second = await writer.createBattle({ prompt: 'two', a: 'code', b: 'troubleshooting' });
      await writer.vote(second.id, 'erin', 'A');
      await redis.xtrim(`${prefix}:arena:votes:log`, 'MAXLEN', 0);
      expect((await reader.leaderboard()).votes).toBe(3);
      expect(hashReads).toHaveBeenCalledTimes(2);
      await writer.vote(second.id, 'frank', 'A');
      expect((await reader.leaderboard()).votes).toBe(4);
    } finally {
      await readerRedis.quit();
    }
  });

  it('draws a chart of the leaderboard as PNG', async () => {
    const arena = makeArena();
    for (let i = 0; i < 4; i++) {
      const battle = await arena.createBattle({ prompt: `q${i}` });
      await arena.vote(battle.id, 'carol', 'A');
    }
    const png = await arena.leaderboardPng();
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.readUInt32BE(16)).toBe(960);
    expect(png.readUInt32BE(20)).toBeGreaterThan(150);
    // cached until a vote changes the board
    expect(await arena.leaderboardPng()).toBe(png);
  });
});

