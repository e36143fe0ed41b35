// Which adapter sits in which slot of the LoRA pool, and which slot to give up when a new one is needed.
// Slot 0 is "no adapter" and never assigned. A slot used by an active row is pinned and never evicted; among the
// rest, an empty slot is taken first, then the least recently used one.

export class SlotTable {
  private readonly keys: (string | null)[];
  private readonly pins: number[];
  private readonly lastUse: number[];
  private clock = 0;

  constructor(readonly slots: number) {
    if (slots < 2) throw new RangeError('the adapter pool needs at least 2 slots (slot 0 is "no adapter")');
    this.keys = new Array<string | null>(slots).fill(null);
    this.pins = new Array<number>(slots).fill(0);
    this.lastUse = new Array<number>(slots).fill(0);
  }

  /** The slot holding `key`, marked as just used; null when it is not loaded. */
  lookup(key: string): number | null {
    const slot = this.keys.indexOf(key, 1);
    if (slot === -1) return null;
    this.lastUse[slot] = ++this.clock;
    return slot;
  }

  /** The slot a new adapter should go to, or null when every slot is pinned. */
  victim(): number | null {
    let best: number | null = null;
    for (let s = 1; s < this.slots; s++) {
      if (this.pins[s]! > 0) continue;
      if (this.keys[s] === null) return s;
      if (best === null || this.lastUse[s]! < this.lastUse[best]!) best = s;
    }
    return best;
  }

  /** Records that `slot` now holds `key` (the previous occupant, if any, is gone). */
  assign(slot: number, key: string): void {
    if (slot < 1 || slot >= this.slots) throw new RangeError(`no adapter slot ${slot}`);
    if (this.pins[slot]! > 0) throw new Error(`adapter slot ${slot} is in use and cannot be replaced`);
    this.keys[slot] = key;
    this.lastUse[slot] = ++this.clock;
  }

  /** Forgets whatever `slot` held. */
  clear(slot: number): void {
    if (this.pins[slot]! > 0) throw new Error(`adapter slot ${slot} is in use and cannot be cleared`);
    this.keys[slot] = null;
  }

  pin(slot: number): void {
    if (slot > 0) this.pins[slot]!++;
  }

  unpin(slot: number): void {
    if (slot > 0) {
      if (this.pins[slot]! <= 0) throw new Error(`adapter slot ${slot} is not pinned`);
      this.pins[slot]!--;
    }
  }

  keyOf(slot: number): string | null {
    return this.keys[slot] ?? null;
  }

  pinned(slot: number): number {
    return this.pins[slot]!;
  }

  /** keys currently loaded */
  loaded(): string[] {
    return this.keys.filter((k): k is string => k !== null);
  }
}
