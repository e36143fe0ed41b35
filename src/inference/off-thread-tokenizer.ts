// Prompts encoded in a worker thread. Tokenizing costs 1–5 µs a character and rendering a chat template ~15 µs a
// message: a long prompt encoded on the server's main thread would hold every other request (and every stream's
// next token) for as long. A text router's feature of a long prompt (0.1–0.3 µs a character) is computed there too.
// The thread loads its own copy of the tokenizer; one that dies fails what it held (503, retry) and the next prompt
// starts a new one.
import type { Worker } from 'node:worker_threads';
import { CancelledError, UnavailableError } from '../errors.js';
import { startWorker, siblingModule } from '../util/worker.js';
import { deserializeError } from './engine/protocol.js';
import type { SerializedError } from './engine/types.js';
import type { TextFeature } from './engine/text-features.js';
import type { ChatMessage, ScoreContext } from './tokenizer.js';

export interface EncodeThreadData {
  /** a dir with tokenizer.json (and optionally tokenizer_config.json, chat_template.jinja, generation_config.json) */
  dir: string;
}

type EncodeWork =
  | { kind: 'chat'; messages: ChatMessage[]; limit: number }
  | { kind: 'text'; text: string; addSpecialTokens: boolean; limit: number }
  | { kind: 'score'; context: ScoreContext; continuation: string; limit: number }
  | { kind: 'text-feature'; text: string };
export type EncodeJob = EncodeWork & { id: number };

/** `targetStart`: where a scored row's continuation starts in `ids` (0 for prompts) */
export type EncodeReply =
  | { id: number; ids: Uint32Array; targetStart: number }
  | ({ id: number } & TextFeature)
  | { id: number; error: SerializedError }
  | { ready: true }
  | { failed: SerializedError };

interface Encoded {
  ids: number[];
  targetStart: number;
}
/** What each kind of work gives back. */
interface WorkResult {
  chat: Encoded;
  text: Encoded;
  score: Encoded;
  'text-feature': TextFeature;
}
type Pending = { resolve: (result: Encoded | TextFeature) => void; reject: (err: Error) => void };

export class OffThreadTokenizer {
  private worker: Worker | null = null;
  private starting: Promise<Worker> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;

  private constructor(private readonly dir: string) {}

  /** Starts the thread and waits until its tokenizer is loaded (a tokenizer that cannot load fails here). */
  static async start(dir: string): Promise<OffThreadTokenizer> {
    const tokenizer = new OffThreadTokenizer(dir);
    await tokenizer.thread();
    return tokenizer;
  }

  /** Chat prompt ids, as ModelTokenizer.encodeChat gives them. */
  async encodeChat(messages: ChatMessage[], limit: number): Promise<number[]> {
    return (await this.run({ kind: 'chat', messages, limit })).ids;
  }

  /** Text ids, as ModelTokenizer.encode gives them (with the tokenizer's special tokens). */
  async encode(text: string, limit: number): Promise<number[]> {
    return (await this.run({ kind: 'text', text, addSpecialTokens: true, limit })).ids;
  }

  /** A scored row's ids, as ModelTokenizer.encodeForScoring gives them. */
  encodeForScoring(context: ScoreContext, continuation: string, limit: number): Promise<Encoded> {
    return this.run({ kind: 'score', context, continuation, limit });
  }

  /** The text routing rule's feature of `text`, as text-features.ts's textFeature gives it. */
  textFeature(text: string): Promise<TextFeature> {
    return this.run({ kind: 'text-feature', text });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker ?? (await this.starting?.catch(() => null));
    this.worker = null;
    await worker?.terminate();
    this.failPending(new CancelledError('the engine was closed'));
  }

  private async run<W extends EncodeWork>(job: W): Promise<WorkResult[W['kind']]> {
    const worker = await this.thread();
    const id = this.nextId++;
    return new Promise<WorkResult[W['kind']]>((resolve, reject) => {
      // the thread answers each kind of work with its kind of result (encode-thread.ts)
      this.pending.set(id, { resolve: resolve as Pending['resolve'], reject });
      worker.postMessage({ ...job, id } satisfies EncodeJob);
    });
  }

  private thread(): Promise<Worker> {
    if (this.closed) return Promise.reject(new CancelledError('the engine was closed'));
    if (this.worker) return Promise.resolve(this.worker);
    this.starting ??= new Promise<Worker>((resolve, reject) => {
      const worker = startWorker(siblingModule(import.meta.url, 'encode-thread'), { workerData: { dir: this.dir } satisfies EncodeThreadData });
      let started = false;
      const failStart = (err: Error) => {
        if (started) return;
        started = true;
        this.starting = null;
        reject(err);
      };
      worker.on('message', (reply: EncodeReply) => {
        if ('ready' in reply) {
          started = true;
          this.worker = worker;
          this.starting = null;
          resolve(worker);
        } else if ('failed' in reply) {
          failStart(deserializeError(reply.failed));
          void worker.terminate();
        } else {
          const p = this.pending.get(reply.id);
          this.pending.delete(reply.id);
          if ('ids' in reply) p?.resolve({ ids: Array.from(reply.ids), targetStart: reply.targetStart });
          else if ('buckets' in reply) p?.resolve({ buckets: reply.buckets, weights: reply.weights });
          else p?.reject(deserializeError(reply.error));
        }
      });
      worker.on('error', failStart);
      worker.on('exit', (code) => {
        failStart(new UnavailableError(`the tokenizer thread exited (code ${code}) before it was ready`));
        // only the serving thread holds prompts
        if (this.worker !== worker) return;
        this.worker = null;
        if (!this.closed) this.failPending(new UnavailableError(`the tokenizer thread stopped (exit code ${code}); retry the request`));
      });
    });
    return this.starting;
  }

  private failPending(err: Error): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(err);
    }
  }
}
