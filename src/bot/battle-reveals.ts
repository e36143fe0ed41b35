// Reveals the names on a battle's message when its voting closes. The battles waiting for their reveal are a Redis
// sorted set scored by closing time, so a reveal due while the bot was down happens as soon as it is back.
import type { Client } from 'discord.js';
import type { Redis } from 'ioredis';
import type { LoraforgeClient } from '../client/index.js';
import { NotFoundError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { revealedBattleMessage } from './render/arena.js';

interface PendingReveal {
  battleId: string;
  channelId: string;
  messageId: string;
}

const MAX_SLEEP_MS = 60_000;
const RETRY_MS = 30_000;

export class BattleReveals {
  readonly #api: LoraforgeClient;
  readonly #redis: Redis;
  readonly #key: string;
  readonly #log: Logger;
  #client: Client | null = null;
  #loop: Promise<void> | null = null;
  /** cuts the current sleep short (a new battle may close sooner, or the bot stops) */
  #wake: () => void = () => undefined;

  constructor(api: LoraforgeClient, redis: Redis, prefix: string, log: Logger) {
    this.#api = api;
    this.#redis = redis;
    this.#key = `${prefix}:bot:battles:reveal`;
    this.#log = log;
  }

  async schedule(reveal: PendingReveal, closesAt: string): Promise<void> {
    await this.#redis.zadd(this.#key, Date.parse(closesAt), JSON.stringify(reveal));
    this.#wake();
  }

  start(client: Client): void {
    this.#client = client;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#client = null;
    this.#wake();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (this.#client) {
      let sleepMs = MAX_SLEEP_MS;
      try {
        await this.#revealDue();
        const next = await this.#redis.zrange(this.#key, '0', '0', 'WITHSCORES');
        if (next.length === 2) sleepMs = Math.min(MAX_SLEEP_MS, Math.max(0, Number(next[1]) - Date.now()));
      } catch (err) {
        this.#log.warn({ err }, 'battle reveal pass failed');
      }
      if (!this.#client) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, sleepMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async #revealDue(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    const due = await this.#redis.zrangebyscore(this.#key, '-inf', Date.now());
    for (const raw of due) {
      const reveal = JSON.parse(raw) as PendingReveal;
      try {
        const battle = await this.#api.arena.battle(reveal.battleId);
        if (battle.status !== 'closed') {
          await this.#redis.zadd(this.#key, Date.parse(battle.closesAt), raw);
          continue;
        }
        const channel = await client.channels.fetch(reveal.channelId);
        if (!channel?.isTextBased()) throw new NotFoundError(`channel ${reveal.channelId} is gone`);
        const message = await channel.messages.fetch(reveal.messageId);
        await message.edit(revealedBattleMessage(battle));
        await this.#redis.zrem(this.#key, raw);
      } catch (err) {
        if (err instanceof NotFoundError || (err as { code?: number }).code === 10008 || (err as { code?: number }).code === 10003) {
          // the battle, the channel or the message is gone: nothing left to reveal
          await this.#redis.zrem(this.#key, raw);
        } else {
          this.#log.warn({ err, battle: reveal.battleId }, 'could not reveal a battle yet; retrying');
          await this.#redis.zadd(this.#key, Date.now() + RETRY_MS, raw);
        }
      }
    }
  }
}
