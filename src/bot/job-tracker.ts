// Follows long jobs (merges, evals, sweeps) in Discord. Each job gets an ordinary channel message, edited with the
// bot token (an interaction token dies after 15 minutes, a job may take longer) from "queued" through a progress
// bar, edited at most every `editIntervalMs`, to the result. The jobs being followed are kept in Redis, so a bot
// that restarts picks them up again and no job is left showing a stale progress bar.
import type { AttachmentBuilder, Client, Message, MessageEditOptions, SendableChannels } from 'discord.js';
import type { Redis } from 'ioredis';
import type { Logger } from '../util/log.js';
import { EditCoalescer } from './coalescer.js';
import type { MessageView } from './render/view.js';

export type JobState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['completed', 'failed', 'cancelled']);

export interface JobStatusLike {
  id: string;
  state: JobState;
}

export type JobEvent<S, P> = { event: 'status'; data: S } | { event: 'progress'; data: P };

/** How the tracker reads and shows one kind of job. */
export interface JobKind<S extends JobStatusLike, P> {
  /** "merge", "eval", "sweep": part of the Redis records */
  name: string;
  get(id: string): Promise<S>;
  /** follows the job to its end (reconnecting as the client does), calling `onEvent` on the way */
  wait(id: string, onEvent: (event: JobEvent<S, P>) => void, signal: AbortSignal): Promise<S>;
  /** the status once `progress` arrived */
  withProgress(status: S, progress: P): S;
  /** the message for a state; the final one may fetch more (a chart) */
  view(status: S, startedBy: string): MessageView | Promise<MessageView>;
  onFinished?(status: S): void;
  /** whether the message is final (default: the job's state is); a merge waits for its auto-eval too */
  isFinal?(status: S): boolean;
}

interface FollowRecord {
  kind: string;
  jobId: string;
  channelId: string;
  messageId: string;
  startedBy: string;
}

export interface JobTrackerOptions {
  redis: Redis;
  /** Redis key prefix of this deployment */
  prefix: string;
  log: Logger;
  editIntervalMs: number;
}

const RECENT = 25;
/** two views show the same when their text, embeds, buttons and file names are the same */
const viewKey = (v: MessageView) => JSON.stringify([v.content, v.embeds, v.components, v.files?.map((f) => f.name)]);

function editOptions(view: MessageView): MessageEditOptions {
  // a view without files keeps none: earlier attachments (a chart of a previous state) are dropped
  return { content: view.content, embeds: view.embeds, components: view.components, files: (view.files ?? []) as AttachmentBuilder[], attachments: [], allowedMentions: { parse: [] } };
}

export class JobTracker {
  readonly #o: JobTrackerOptions;
  readonly #kinds = new Map<string, JobKind<JobStatusLike, unknown>>();
  readonly #activeKey: string;
  readonly #following = new Map<string, AbortController>();
  readonly #done = new Set<Promise<void>>();
  readonly #recent = new Map<string, string[]>();

  constructor(options: JobTrackerOptions) {
    this.#o = options;
    this.#activeKey = `${options.prefix}:bot:jobs:following`;
  }

  register<S extends JobStatusLike, P>(kind: JobKind<S, P>): void {
    this.#kinds.set(kind.name, kind as unknown as JobKind<JobStatusLike, unknown>);
  }

  #recentKey(kind: string): string {
    return `${this.#o.prefix}:bot:jobs:recent:${kind}`;
  }

  /** Ids of this kind's jobs started from Discord, newest first (for autocomplete and status lists). */
  recent(kind: string): readonly string[] {
    return this.#recent.get(kind) ?? [];
  }

  /** The message that follows a job, if one does. */
  async messageOf(kind: string, jobId: string): Promise<{ channelId: string; messageId: string } | null> {
    const raw = await this.#o.redis.hget(this.#activeKey, `${kind}:${jobId}`);
    return raw ? (JSON.parse(raw) as FollowRecord) : null;
  }

  /** Posts the job's message in `channel` and keeps it up to date until the job ends. */
  async follow<S extends JobStatusLike>(kindName: string, status: S, channel: SendableChannels, startedBy: string): Promise<Message> {
    const kind = this.#kind(kindName);
    const view = await kind.view(status, startedBy);
    const message = await channel.send({ ...view, allowedMentions: { parse: [] } });
    const record: FollowRecord = { kind: kindName, jobId: status.id, channelId: message.channelId, messageId: message.id, startedBy };
    await this.#remember(kindName, status.id);
    if (this.#isFinal(kind, status)) {
      kind.onFinished?.(status);
    } else {
      await this.#o.redis.hset(this.#activeKey, `${kindName}:${status.id}`, JSON.stringify(record));
      this.#start(record, message, status);
    }
    return message;
  }

  /** Picks up the jobs that were being followed when the bot stopped. */
  async resume(client: Client): Promise<void> {
    for (const kind of this.#kinds.keys()) this.#recent.set(kind, await this.#o.redis.lrange(this.#recentKey(kind), 0, RECENT - 1));
    const entries = Object.entries(await this.#o.redis.hgetall(this.#activeKey));
    for (const [field, raw] of entries) {
      const record = JSON.parse(raw) as FollowRecord;
      if (this.#following.has(field)) continue;
      try {
        const channel = await client.channels.fetch(record.channelId);
        if (!channel?.isTextBased()) throw new Error(`channel ${record.channelId} is gone`);
        const message = await channel.messages.fetch(record.messageId);
        const status = await this.#kind(record.kind).get(record.jobId);
        this.#start(record, message, status);
        this.#o.log.info({ kind: record.kind, job: record.jobId }, 'resumed following a job');
      } catch (err) {
        // the message or the job no longer exists: nothing left to show
        this.#o.log.warn({ err, kind: record.kind, job: record.jobId }, 'cannot resume following a job; dropping it');
        await this.#o.redis.hdel(this.#activeKey, field);
      }
    }
  }

  /** Stops following (the records stay, for the next start). */
  async stop(): Promise<void> {
    for (const controller of this.#following.values()) controller.abort();
    await Promise.allSettled([...this.#done]);
  }

  #isFinal(kind: JobKind<JobStatusLike, unknown>, status: JobStatusLike): boolean {
    return kind.isFinal ? kind.isFinal(status) : FINAL_STATES.has(status.state);
  }

  #kind(name: string): JobKind<JobStatusLike, unknown> {
    const kind = this.#kinds.get(name);
    if (!kind) throw new Error(`no job kind ${name}`);
    return kind;
  }

  async #remember(kind: string, jobId: string): Promise<void> {
    this.#recent.set(kind, [jobId, ...this.recent(kind).filter((id) => id !== jobId)].slice(0, RECENT));
    const key = this.#recentKey(kind);
    await this.#o.redis.multi().lrem(key, 0, jobId).lpush(key, jobId).ltrim(key, 0, RECENT - 1).exec();
  }

  #start(record: FollowRecord, message: Message, initial: JobStatusLike): void {
    const field = `${record.kind}:${record.jobId}`;
    const controller = new AbortController();
    this.#following.set(field, controller);
    const run = this.#run(record, message, initial, controller.signal).finally(() => {
      this.#following.delete(field);
      this.#done.delete(run);
    });
    this.#done.add(run);
  }

  async #run(record: FollowRecord, message: Message, initial: JobStatusLike, signal: AbortSignal): Promise<void> {
    const kind = this.#kind(record.kind);
    const field = `${record.kind}:${record.jobId}`;
    const edits = new EditCoalescer<MessageView>((view) => message.edit(editOptions(view)).then(() => undefined), {
      minIntervalMs: this.#o.editIntervalMs,
      equals: (a, b) => viewKey(a) === viewKey(b),
    });
    // each state's view may be async (a final chart): views are made in order, the coalescer shows the latest
    let viewing = Promise.resolve();
    const show = (status: JobStatusLike) => {
      viewing = viewing.then(async () => edits.update(await kind.view(status, record.startedBy))).catch((err: unknown) => this.#o.log.warn({ err, job: record.jobId }, 'could not render a job state'));
    };
    let status = initial;
    const onEvent = (event: JobEvent<JobStatusLike, unknown>) => {
      status = event.event === 'status' ? event.data : { ...kind.withProgress(status, event.data), state: 'running' };
      show(status);
    };
    show(status);
    let final: JobStatusLike | null = this.#isFinal(kind, status) ? status : null;
    // the API may restart while a job runs: keep following (wait() reconnects) until the job ends or we stop
    for (let attempt = 0; final === null && !signal.aborted; attempt++) {
      try {
        final = await kind.wait(record.jobId, onEvent, signal);
      } catch (err) {
        if (signal.aborted) break;
        this.#o.log.warn({ err, job: record.jobId }, 'lost the job progress stream; retrying');
        await new Promise((r) => setTimeout(r, Math.min(60_000, 2_000 * 2 ** Math.min(attempt, 5))));
      }
    }
    // stopped before the job ended: the record stays in Redis and the next start resumes from it
    if (final === null) return;
    kind.onFinished?.(final);
    try {
      await viewing;
      await edits.finish(await kind.view(final, record.startedBy));
      await this.#o.redis.hdel(this.#activeKey, field);
    } catch (err) {
      // the message was deleted or the bot lost access to the channel: stop following this job
      this.#o.log.warn({ err, job: record.jobId }, 'cannot edit the job message; no longer following it');
      await this.#o.redis.hdel(this.#activeKey, field);
    }
  }
}
