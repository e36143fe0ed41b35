// Battles and votes in Redis, so a restart loses none. Keys, under `<prefix>:arena:`:
//   battle:<id>         hash: data (the battle as JSON), closesAt, closedAt (epoch ms)
//   battle:<id>:votes   hash: voter → "<choice>:<epoch ms>", every vote on the battle, counted or not
//   votes               hash: "<battle id>:<voter>" → JSON [a, b, choice, at, category], the counted votes: what
//                       the ratings are computed from
//   votes:version       counter bumped by every change to `votes`: the leaderboard cache key
//   adapter-votes       hash: adapter → counted votes it played in, for pairing weights
// A vote is one Lua script, so the open/closed check and the writes are atomic.
import type { Redis } from 'ioredis';
import { CHOICES, type BattleRecord, type Choice, type RatedVote } from './types.js';

const VOTE_SCRIPT = `
local closesAt = redis.call('HGET', KEYS[1], 'closesAt')
if not closesAt then return {'missing'} end
if redis.call('HEXISTS', KEYS[1], 'closedAt') == 1 or tonumber(ARGV[3]) >= tonumber(closesAt) then
  return {'closed'}
end
local previous = redis.call('HGET', KEYS[2], ARGV[1])
if previous and string.match(previous, '^[^:]+') == ARGV[2] then return {'ok', previous} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
  redis.call('INCR', KEYS[4])
  if not previous then
    redis.call('HINCRBY', KEYS[5], ARGV[6], 1)
    redis.call('HINCRBY', KEYS[5], ARGV[7], 1)
  end
end
if previous then return {'ok', previous} end
return {'ok'}
`;

type VoteReply = ['missing'] | ['closed'] | ['ok'] | ['ok', string];

interface WithVoteCommand {
  arenaVote(...args: (string | number)[]): Promise<VoteReply>;
}

export type CastOutcome = { status: 'missing' } | { status: 'closed' } | { status: 'ok'; previous: Choice | null };

export interface StoredBattle {
  record: BattleRecord;
  /** voter → choice */
  votes: Map<string, Choice>;
}

function isChoice(value: string): value is Choice {
  return (CHOICES as readonly string[]).includes(value);
}

export class ArenaStore {
  private readonly key: (suffix: string) => string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = (suffix) => `${prefix}:arena:${suffix}`;
    if (!('arenaVote' in redis)) redis.defineCommand('arenaVote', { numberOfKeys: 5, lua: VOTE_SCRIPT });
  }

  async saveBattle(record: BattleRecord): Promise<void> {
    const { closesAt, closedAt: _closedAt, ...data } = record;
    await this.redis.hset(this.key(`battle:${record.id}`), { data: JSON.stringify(data), closesAt: String(closesAt) });
  }

  async getBattle(id: string): Promise<StoredBattle | null> {
    const [[, fields], [, votes]] = (await this.redis
      .multi()
      .hgetall(this.key(`battle:${id}`))
      .hgetall(this.key(`battle:${id}:votes`))
      .exec()) as [[unknown, Record<string, string>], [unknown, Record<string, string>]];
    if (!fields.data || !fields.closesAt) return null;
    const record: BattleRecord = {
      ...(JSON.parse(fields.data) as Omit<BattleRecord, 'closesAt' | 'closedAt'>),
      closesAt: Number(fields.closesAt),
      closedAt: fields.closedAt ? Number(fields.closedAt) : null,
    };
    const byVoter = new Map<string, Choice>();
    for (const [voter, value] of Object.entries(votes)) {
      const choice = value.slice(0, value.indexOf(':'));
      if (isChoice(choice)) byVoter.set(voter, choice);
    }
    return { record, votes: byVoter };
  }

  /**
   * Records `voter`'s choice on an open battle, replacing an earlier one. Votes on a flagged battle are kept with
   * the battle but not counted. `now` decides whether the battle has closed by time.
   */
  async castVote(battle: BattleRecord, voter: string, choice: Choice, now: number): Promise<CastOutcome> {
    const counted = battle.flag === null;
    const rated = JSON.stringify([battle.models.A, battle.models.B, choice, now, battle.category]);
    const reply = await (this.redis as unknown as WithVoteCommand).arenaVote(
      this.key(`battle:${battle.id}`),
      this.key(`battle:${battle.id}:votes`),
      this.key('votes'),
      this.key('votes:version'),
      this.key('adapter-votes'),
      voter,
      choice,
      now,
      counted ? `${battle.id}:${voter}` : '',
      rated,
      battle.models.A,
      battle.models.B,
    );
    if (reply[0] !== 'ok') return { status: reply[0] };
    const previous = reply[1] === undefined ? null : reply[1].slice(0, reply[1].indexOf(':'));
    return { status: 'ok', previous: previous !== null && isChoice(previous) ? previous : null };
  }

  /** Closes a battle now unless it closed before; returns when it closed, or null when there is no such battle. */
  async closeBattle(id: string, now: number): Promise<number | null> {
    const key = this.key(`battle:${id}`);
    const [[, closesAt], [, closedAt]] = (await this.redis.multi().hget(key, 'closesAt').hget(key, 'closedAt').exec()) as [
      [unknown, string | null],
      [unknown, string | null],
    ];
    if (closesAt === null) return null;
    if (closedAt !== null) return Number(closedAt);
    const at = Math.min(now, Number(closesAt));
    await this.redis.hsetnx(key, 'closedAt', String(at));
    return Number(await this.redis.hget(key, 'closedAt'));
  }

  /** Every counted vote, read in pages so a large log holds neither Redis nor this process for long. */
  async ratedVotes(): Promise<RatedVote[]> {
    // HSCAN may return a field twice (while the hash is rehashed): keyed by field, each vote counts once
    const raw = new Map<string, string>();
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(this.key('votes'), cursor, 'COUNT', 5000);
      cursor = next;
      for (let k = 0; k + 1 < entries.length; k += 2) raw.set(entries[k]!, entries[k + 1]!);
    } while (cursor !== '0');
    return Array.from(raw.values(), (value) => {
      const [a, b, choice, at, category] = JSON.parse(value) as [string, string, Choice, number, string | null];
      return { a, b, choice, at, category };
    });
  }

  /** Changes whenever a counted vote is cast or changed. */
  async version(): Promise<number> {
    return Number((await this.redis.get(this.key('votes:version'))) ?? 0);
  }

  async adapterVotes(): Promise<Map<string, number>> {
    const counts = await this.redis.hgetall(this.key('adapter-votes'));
    return new Map(Object.entries(counts).map(([name, n]) => [name, Number(n)]));
  }
}
