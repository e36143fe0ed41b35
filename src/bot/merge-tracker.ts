// Follows merge jobs in Discord. Each job gets an ordinary channel message, edited with the bot token (an
// interaction token dies after 15 minutes, a merge may take longer) from "queued" through a progress bar, edited
// at most every `editIntervalMs`, to the result card. The jobs being followed are kept in Redis, so a bot that
// restarts picks them up again and no merge is left showing a stale progress bar.
import type { Client, Message, SendableChannels } from 'discord.js';
import type { Redis } from 'ioredis';
import type { LoraforgeClient, MergeStreamEvent } from '../client/index.js';
import type { Logger } from '../util/log.js';
import type { MergeStatus } from './api-types.js';
import { EditCoalescer } from './coalescer.js';
import { FINAL_STATES, mergeView, type MergeView } from './render/merge.js';

interface FollowRecord {
  jobId: string;
  channelId: string;
  messageId: string;
  startedBy: string;
}

export interface MergeTrackerOptions {
  api: LoraforgeClient;
  redis: Redis;
  /** Redis key prefix of this deployment */
  prefix: string;
  log: Logger;
  editIntervalMs: number;
  /** called when a job reaches a final state (e.g. to refresh the adapter cache) */
  onFinished?: (status: MergeStatus) => void;
}

const RECENT = 25;
const sameView = (a: MergeView, b: MergeView) => JSON.stringify(a) === JSON.stringify(b);

export class MergeTracker {
  readonly #o: MergeTrackerOptions;
  readonly #activeKey: string;
  readonly #recentKey: string;
  readonly #following = new Map<string, AbortController>();
  readonly #done = new Set<Promise<void>>();
  #recent: string[] = [];

  constructor(options: MergeTrackerOptions) {
    this.#o = options;
    this.#activeKey = `${options.prefix}:bot:merges:following`;
    this.#recentKey = `${options.prefix}:bot:merges:recent`;
  }

  /** Job ids started from Discord, newest first (for autocomplete and `/merge status`). */
  get recent(): readonly string[] {
    return this.#recent;
  }

  /** The message that follows `jobId`, if one does. */
  async messageOf(jobId: string): Promise<{ channelId: string; messageId: string } | null> {
    const raw = await this.#o.redis.hget(this.#activeKey, jobId);
    return raw ? (JSON.parse(raw) as FollowRecord) : null;
  }

  /** Posts the job's message in `channel` and keeps it up to date until the job ends. */
  async follow(status: MergeStatus, channel: SendableChannels, startedBy: string): Promise<Message> {
    const message = await channel.send({ ...mergeView(status, startedBy), allowedMentions: { parse: [] } });
    const record: FollowRecord = { jobId: status.id, channelId: message.channelId, messageId: message.id, startedBy };
    await this.#remember(status.id);
    if (!FINAL_STATES.has(status.state)) {
      await this.#o.redis.hset(this.#activeKey, status.id, JSON.stringify(record));
      this.#start(record, message, status);
    }
    return message;
  }

  /** Picks up the jobs that were being followed when the bot stopped. */
  async resume(client: Client): Promise<void> {
    this.#recent = await this.#o.redis.lrange(this.#recentKey, 0, RECENT - 1);
    const records = Object.values(await this.#o.redis.hgetall(this.#activeKey)).map((raw) => JSON.parse(raw) as FollowRecord);
    for (const record of records) {
      if (this.#following.has(record.jobId)) continue;
      try {
        const channel = await client.channels.fetch(record.channelId);
        if (!channel?.isTextBased()) throw new Error(`channel ${record.channelId} is gone`);
        const message = await channel.messages.fetch(record.messageId);
        const status = await this.#o.api.merges.get(record.jobId);
        this.#start(record, message, status);
        this.#o.log.info({ job: record.jobId }, 'resumed following a merge');
      } catch (err) {
        // the message or the job no longer exists: nothing left to show
        this.#o.log.warn({ err, job: record.jobId }, 'cannot resume following a merge; dropping it');
        await this.#o.redis.hdel(this.#activeKey, record.jobId);
      }
    }
  }

  /** Stops following (the records stay, for the next start). */
  async stop(): Promise<void> {
    for (const controller of this.#following.values()) controller.abort();
    await Promise.allSettled([...this.#done]);
  }

  async #remember(jobId: string): Promise<void> {
    this.#recent = [jobId, ...this.#recent.filter((id) => id !== jobId)].slice(0, RECENT);
    await this.#o.redis.multi().lrem(this.#recentKey, 0, jobId).lpush(this.#recentKey, jobId).ltrim(this.#recentKey, 0, RECENT - 1).exec();
  }

  #start(record: FollowRecord, message: Message, initial: MergeStatus): void {
    const controller = new AbortController();
    this.#following.set(record.jobId, controller);
    const run = this.#run(record, message, initial, controller.signal).finally(() => {
      this.#following.delete(record.jobId);
      this.#done.delete(run);
    });
    this.#done.add(run);
  }

  async #run(record: FollowRecord, message: Message, initial: MergeStatus, signal: AbortSignal): Promise<void> {
    const edits = new EditCoalescer<MergeView>((view) => message.edit({ ...view, allowedMentions: { parse: [] } }).then(() => undefined), {
      minIntervalMs: this.#o.editIntervalMs,
      equals: sameView,
    });
    let status = initial;
    const onEvent = (event: MergeStreamEvent) => {
      status = event.event === 'status' ? event.data : { ...status, state: 'running', progress: event.data };
      edits.update(mergeView(status, record.startedBy));
    };
    edits.update(mergeView(status, record.startedBy));
    let final: MergeStatus | null = FINAL_STATES.has(status.state) ? status : null;
    // the API may restart while a merge runs: keep following (wait() reconnects) until the job ends or we stop
    for (let attempt = 0; final === null && !signal.aborted; attempt++) {
      try {
        final = await this.#o.api.merges.wait(record.jobId, onEvent, signal);
      } catch (err) {
        if (signal.aborted) break;
        this.#o.log.warn({ err, job: record.jobId }, 'lost the merge progress stream; retrying');
        await new Promise((r) => setTimeout(r, Math.min(60_000, 2_000 * 2 ** Math.min(attempt, 5))));
      }
    }
    // stopped before the job ended: the record stays in Redis and the next start resumes from it
    if (final === null) return;
    this.#o.onFinished?.(final);
    try {
      await edits.finish(mergeView(final, record.startedBy));
      await this.#o.redis.hdel(this.#activeKey, record.jobId);
    } catch (err) {
      // the message was deleted or the bot lost access to the channel: stop following this job
      this.#o.log.warn({ err, job: record.jobId }, 'cannot edit the merge message; no longer following it');
      await this.#o.redis.hdel(this.#activeKey, record.jobId);
    }
  }
}
