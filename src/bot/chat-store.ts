// Chat sessions (one per thread) in Redis, so a bot restart loses no conversation. A session expires after
// `ttlSeconds` without activity.
import type { Redis } from 'ioredis';

export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
  /** the model that wrote an assistant turn */
  model?: string;
}

export interface ChatSession {
  threadId: string;
  ownerId: string;
  /** the model answering now: the base model or an adapter */
  model: string;
  turns: ChatTurn[];
  createdAt: string;
  ended: boolean;
  /** set once the bot told the thread it cannot read messages (missing Message Content intent) */
  warnedNoContent?: boolean;
}

export class ChatStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttlSeconds: number;

  constructor(redis: Redis, prefix: string, ttlSeconds = 30 * 24 * 3600) {
    this.#redis = redis;
    this.#prefix = `${prefix}:bot:chat:`;
    this.#ttlSeconds = ttlSeconds;
  }

  async get(threadId: string): Promise<ChatSession | null> {
    const raw = await this.#redis.get(this.#prefix + threadId);
    return raw ? (JSON.parse(raw) as ChatSession) : null;
  }

  async save(session: ChatSession): Promise<void> {
    await this.#redis.set(this.#prefix + session.threadId, JSON.stringify(session), 'EX', this.#ttlSeconds);
  }
}

/**
 * The turns sent to the model: the latest ones that fit `maxChars` (at most `maxTurns`), starting with a user
 * turn, consecutive user turns joined (some chat templates insist that roles alternate).
 */
export function contextTurns(turns: readonly ChatTurn[], maxChars: number, maxTurns: number): { role: 'user' | 'assistant'; content: string }[] {
  const picked: ChatTurn[] = [];
  let chars = 0;
  for (let k = turns.length - 1; k >= 0 && picked.length < maxTurns; k--) {
    const turn = turns[k]!;
    if (picked.length > 0 && chars + turn.content.length > maxChars) break;
    picked.unshift(turn);
    chars += turn.content.length;
  }
  while (picked.length > 1 && picked[0]!.role !== 'user') picked.shift();
  const merged: { role: 'user' | 'assistant'; content: string }[] = [];
  for (const turn of picked) {
    const last = merged.at(-1);
    if (last && last.role === turn.role) last.content += `\n\n${turn.content}`;
    else merged.push({ role: turn.role, content: turn.content });
  }
  return merged;
}
