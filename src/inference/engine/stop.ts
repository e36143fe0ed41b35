// Stop strings that may span token boundaries. Text is released only once it can no longer be the start of a
// stop string, so a client never sees part of a stop sequence; the stop string itself is not returned (OpenAI).

export interface StopResult {
  /** text safe to send now */
  text: string;
  /** a stop string was found; `text` ends right before it */
  stopped: boolean;
}

export class StopMatcher {
  private pending = '';
  private readonly maxLen: number;

  constructor(private readonly stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    this.maxLen = Math.max(0, ...this.stops.map((s) => s.length));
  }

  push(delta: string): StopResult {
    if (this.stops.length === 0) return { text: delta, stopped: false };
    const text = this.pending + delta;
    let first = -1;
    for (const stop of this.stops) {
      const at = text.indexOf(stop);
      if (at !== -1 && (first === -1 || at < first)) first = at;
    }
    if (first !== -1) {
      this.pending = '';
      return { text: text.slice(0, first), stopped: true };
    }
    const keep = this.heldBack(text);
    this.pending = text.slice(text.length - keep);
    return { text: text.slice(0, text.length - keep), stopped: false };
  }

  /** What is still held back, released when generation ends for another reason. */
  flush(): string {
    const rest = this.pending;
    this.pending = '';
    return rest;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private heldBack(text: string): number {
    for (let len = Math.min(this.maxLen - 1, text.length); len > 0; len--) {
      const suffix = text.slice(text.length - len);
      if (this.stops.some((s) => s.startsWith(suffix))) return len;
    }
    return 0;
  }
}
