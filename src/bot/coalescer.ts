// Edits a Discord message as fast as Discord allows and no faster. A stream of tokens or progress updates asks
// for an edit many times a second; every edit is a request in the message's rate-limit bucket, and 429 storms
// follow when each update becomes an edit. The coalescer keeps at most one edit in flight, starts the next at
// least `minIntervalMs` after the previous one started (and only once it finished), always sends the latest value
// (intermediate ones are dropped), never sends the same value twice in a row, and always delivers the final value.
// retry_after is honoured through the single flight: discord.js's REST layer waits out a 429 and repeats the
// request, and no other edit starts until it is done.

export interface CoalescerOptions<T> {
  /** Discord's message edit buckets allow about 5 edits per 5 s; 1.2–1.5 s keeps a stream under them */
  minIntervalMs: number;
  /** when two values show the same thing (default: Object.is) */
  equals?: (a: T, b: T) => boolean;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class EditCoalescer<T> {
  readonly #send: (value: T) => Promise<void>;
  readonly #minIntervalMs: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #equals: (a: T, b: T) => boolean;
  #pending: { value: T } | null = null;
  #lastSent: { value: T } | null = null;
  #lastStart = Number.NEGATIVE_INFINITY;
  #running = false;
  #loop: Promise<void> = Promise.resolve();
  #error: unknown = null;
  #sends = 0;

  constructor(send: (value: T) => Promise<void>, options: CoalescerOptions<T>) {
    this.#send = send;
    this.#minIntervalMs = options.minIntervalMs;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#equals = options.equals ?? Object.is;
  }

  /** How many edits were sent. */
  get sends(): number {
    return this.#sends;
  }

  /** Asks for `value` to be shown; returns at once. An earlier edit failure stops further edits (see `finish`). */
  update(value: T): void {
    if (this.#error !== null) return;
    this.#pending = { value };
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Shows `value` as the final state and resolves once it (or an identical earlier edit) is delivered. */
  async finish(value: T): Promise<void> {
    this.update(value);
    while (this.#running) await this.#loop;
    if (this.#error !== null) throw this.#error;
  }

  async #run(): Promise<void> {
    try {
      while (this.#pending) {
        const wait = this.#lastStart + this.#minIntervalMs - this.#now();
        if (wait > 0) await this.#sleep(wait);
        const next = this.#pending;
        this.#pending = null;
        if (this.#lastSent && this.#equals(this.#lastSent.value, next.value)) continue;
        this.#lastStart = this.#now();
        this.#sends += 1;
        await this.#send(next.value);
        this.#lastSent = next;
      }
    } catch (err) {
      this.#error = err;
      this.#pending = null;
    } finally {
      this.#running = false;
    }
  }
}
