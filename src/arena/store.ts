// Battles and votes in Redis, so a restart loses none. Keys, under `<prefix>:arena:`:
//   battle:<id>         hash: data (the battle as JSON), closesAt, closedAt (epoch ms)
//   battle:<id>:votes   hash: voter → "<choice>:<epoch ms>", every vote on the battle, counted or not
//   votes               hash: "<battle id>:<voter>" → JSON [a, b, choice, at, category], the counted votes: what
//                       the ratings are computed from
//   votes:log           stream of every change to `votes` (fields k, v), trimmed to about LOG_LENGTH entries:
//                       each process keeps a copy of `votes` and reads only the changes since its last look
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
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*', 'k', ARGV[4], 'v', ARGV[5])
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

export interface CountedVotes {
  /** the id of the last log entry read: equal versions mean equal votes */
  version: string;
  votes: RatedVote[];
}

/** About this many vote changes are kept in the log; a process further behind reads the whole hash again. */
const LOG_LENGTH = 100_000;

/** Orders stream ids "<ms>-<seq>". */
function compareIds(x: string, y: string): number {
  const [xm, xs] = x.split('-').map(Number) as [number, number];
  const [ym, ys] = y.split('-').map(Number) as [number, number];
  return xm - ym || xs - ys;
}

function parseRated(value: string): RatedVote {
  const [a, b, choice, at, category] = JSON.parse(value) as [string, string, Choice, number, string | null];
  return { a, b, choice, at, category };
}

function isChoice(value: string): value is Choice {
  return (CHOICES as readonly string[]).includes(value);
}

export class ArenaStore {
  private readonly key: (suffix: string) => string;
  private mirror: { version: string; votes: Map<string, RatedVote>; list: RatedVote[] } | undefined;
  private syncing: Promise<unknown> = Promise.resolve();

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
      this.key('votes:log'),
      this.key('adapter-votes'),
      voter,
      choice,
      now,
      counted ? `${battle.id}:${voter}` : '',
      rated,
      battle.models.A,
      battle.models.B,
      LOG_LENGTH,
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

  /**
   * Every counted vote, and a version that changes whenever they do. The first call reads the whole `votes` hash;
   * later calls read only the log entries after the last one seen (or the whole hash again when the log was
   * trimmed past it). Calls are serialised.
   */
  countedVotes(): Promise<CountedVotes> {
    const next = this.syncing.then(() => this.sync());
    this.syncing = next.catch(() => undefined);
    return next;
  }

  private async sync(): Promise<CountedVotes> {
    const log = this.key('votes:log');
    const [latest] = (await this.redis.xrevrange(log, '+', '-', 'COUNT', 1)) as [string, string[]][];
    const latestId = latest?.[0] ?? '0-0';
    if (this.mirror && latestId === this.mirror.version) return { version: latestId, votes: this.mirror.list };
    let votes = this.mirror?.votes;
    let version = this.mirror?.version;
    const [oldest] = (await this.redis.xrange(log, '-', '+', 'COUNT', 1)) as [string, string[]][];
    if (!votes || version === undefined || !oldest || compareIds(oldest[0], version) > 0) {
      // nothing read yet, or entries after the last one seen were trimmed: the hash, then the log after it
      version = latestId;
      votes = await this.readVotesHash();
    }
    for (;;) {
      const entries = (await this.redis.xrange(log, `(${version}`, '+', 'COUNT', 5000)) as [string, string[]][];
      for (const [id, fields] of entries) {
        votes.set(fields[1]!, parseRated(fields[3]!));
        version = id;
      }
      if (entries.length < 5000) break;
    }
    this.mirror = { version, votes, list: Array.from(votes.values()) };
    return { version, votes: this.mirror.list };
  }

  /** The `votes` hash in pages, so a large one holds neither Redis nor this process for long. */
  private async readVotesHash(): Promise<Map<string, RatedVote>> {
    // HSCAN may return a field twice (while the hash is rehashed): keyed by field, each vote counts once
    const votes = new Map<string, RatedVote>();
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(this.key('votes'), cursor, 'COUNT', 5000);
      cursor = next;
      for (let k = 0; k + 1 < entries.length; k += 2) votes.set(entries[k]!, parseRated(entries[k + 1]!));
    } while (cursor !== '0');
    return votes;
  }

  async adapterVotes(): Promise<Map<string, number>> {
    const counts = await this.redis.hgetall(this.key('adapter-votes'));
    return new Map(Object.entries(counts).map(([name, n]) => [name, Number(n)]));
  }
}
