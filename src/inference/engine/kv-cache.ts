// The KV cache, owned by JS and fed to the graph as an input (SERVING.md): per layer one key slab and one value
// slab of shape [rows, kv_heads, capacity, head_dim]. Active sequences are kept in rows 0..n-1 so the first b
// rows are one contiguous, zero-copy view. The graph returns only the new (rotated) K/V rows; `scatter` writes
// them in. Capacity is shared by every row and grows in chunks: GQA clears its whole present buffer each run, so
// a capacity far above the longest sequence costs time on every step, and `trim` gives it back.

export interface KvShape {
  layers: number;
  kvHeads: number;
  headDim: number;
}

export interface KvCacheOptions {
  /** most rows (sequences) at once: the engine's max batch */
  maxRows: number;
  /** capacity grows and shrinks in multiples of this many positions */
  chunk: number;
  /** the model's context length: capacity never exceeds it */
  maxPositions: number;
}

export class KvCache {
  private keys: Float32Array[] = [];
  private values: Float32Array[] = [];
  private lengths: number[] = [];
  private rowCapacity = 0;
  private cap = 0;

  constructor(
    readonly shape: KvShape,
    private readonly options: KvCacheOptions,
  ) {
    if (options.chunk < 1) throw new RangeError('kv chunk must be at least 1');
  }

  /** rows in use */
  get rows(): number {
    return this.lengths.length;
  }

  /** positions each row can hold now */
  get capacity(): number {
    return this.cap;
  }

  /** valid positions of a row */
  length(row: number): number {
    return this.lengths[row]!;
  }

  /** bytes held by the slabs */
  get bytes(): number {
    return 2 * this.shape.layers * this.rowCapacity * this.rowStride * 4;
  }

  private get rowStride(): number {
    return this.shape.kvHeads * this.cap * this.shape.headDim;
  }

  /** Appends an empty row and returns its index. */
  addRow(): number {
    if (this.rows >= this.options.maxRows) throw new RangeError(`kv cache is full (${this.options.maxRows} rows)`);
    if (this.rows === this.rowCapacity) {
      this.realloc(Math.min(this.options.maxRows, Math.max(1, this.rowCapacity * 2)), this.cap);
    }
    this.lengths.push(0);
    return this.rows - 1;
  }

  /**
   * Removes a row, keeping rows compact by moving the last row into its place. Returns the former index of the
   * row that moved (the caller re-points it to `row`), or null when nothing moved.
   */
  removeRow(row: number): number | null {
    const last = this.rows - 1;
    if (row < 0 || row > last) throw new RangeError(`no kv row ${row}`);
    let moved: number | null = null;
    if (row !== last) {
      this.copyRow(last, row);
      this.lengths[row] = this.lengths[last]!;
      moved = last;
    }
    this.lengths.pop();
    return moved;
  }

  /** Copies row `from` over row `to` (contents and length); `from` is left as it was, to be removed or overwritten. */
  moveRow(from: number, to: number): void {
    if (from === to) return;
    this.copyRow(from, to);
    this.lengths[to] = this.lengths[from]!;
  }

  /** Exchanges two rows' contents (used to keep decoding rows in front of rows still in prefill). */
  swapRows(a: number, b: number): void {
    if (a === b) return;
    const stride = this.rowStride;
    const tmp = new Float32Array(stride);
    for (const slab of [...this.keys, ...this.values]) {
      tmp.set(slab.subarray(a * stride, (a + 1) * stride));
      slab.copyWithin(a * stride, b * stride, (b + 1) * stride);
      slab.set(tmp, b * stride);
    }
    [this.lengths[a], this.lengths[b]] = [this.lengths[b]!, this.lengths[a]!];
  }

  /** Makes room for `positions` positions in every row (grown to a multiple of the chunk). */
  reserve(positions: number): void {
    if (positions > this.options.maxPositions) {
      throw new RangeError(`kv cache: ${positions} positions exceed the model's ${this.options.maxPositions}`);
    }
    if (positions <= this.cap) return;
    this.realloc(Math.max(this.rowCapacity, 1), this.roundUp(positions));
  }

  /** Gives back capacity more than one chunk above what the longest row needs (after long rows finished). */
  trim(): void {
    const needed = this.roundUp(Math.max(1, ...this.lengths.map((l) => l + 1)));
    if (this.cap > needed + this.options.chunk) this.realloc(this.rowCapacity, needed);
  }

  /** The key or value slab of `layer` for rows [start, start+count): a view of shape [count, kv_heads, capacity, head_dim]. */
  past(layer: number, kind: 'key' | 'value', start: number, count: number): Float32Array {
    const slab = (kind === 'key' ? this.keys : this.values)[layer]!;
    const stride = this.rowStride;
    return slab.subarray(start * stride, (start + count) * stride);
  }

  /**
   * Writes the new K/V of one layer. `newKeys`/`newValues` are the graph's kv_new outputs, [batch, seq, kv_heads·head_dim];
   * batch entry j goes to row `rows[j]` at positions `starts[j]`.., taking its first `counts[j]` sequence positions.
   */
  scatter(
    layer: number,
    newKeys: Float32Array,
    newValues: Float32Array,
    seq: number,
    rows: readonly number[],
    starts: readonly number[],
    counts: readonly number[],
  ): void {
    const { kvHeads, headDim } = this.shape;
    const keys = this.keys[layer]!;
    const values = this.values[layer]!;
    const width = kvHeads * headDim;
    for (let j = 0; j < rows.length; j++) {
      const row = rows[j]!;
      const start = starts[j]!;
      const count = counts[j]!;
      if (start + count > this.cap) throw new RangeError(`kv scatter past capacity (${start + count} > ${this.cap})`);
      for (let t = 0; t < count; t++) {
        const src = (j * seq + t) * width;
        for (let h = 0; h < kvHeads; h++) {
          const dst = ((row * kvHeads + h) * this.cap + start + t) * headDim;
          const from = src + h * headDim;
          keys.set(newKeys.subarray(from, from + headDim), dst);
          values.set(newValues.subarray(from, from + headDim), dst);
        }
      }
    }
  }

  /** Records that `row` now holds `length` valid positions (after the scatters of one run). */
  setLength(row: number, length: number): void {
    this.lengths[row] = length;
  }

  private roundUp(positions: number): number {
    const { chunk, maxPositions } = this.options;
    return Math.min(maxPositions, Math.ceil(positions / chunk) * chunk);
  }

  private copyRow(from: number, to: number): void {
    const stride = this.rowStride;
    for (const slab of [...this.keys, ...this.values]) slab.copyWithin(to * stride, from * stride, (from + 1) * stride);
  }

  /** New slabs of [rowCapacity, kv_heads, cap, head_dim], copying each row's valid positions. */
  private realloc(rowCapacity: number, cap: number): void {
    const { layers, kvHeads, headDim } = this.shape;
    const size = rowCapacity * kvHeads * cap * headDim;
    const move = (old: Float32Array | undefined): Float32Array => {
      const next = new Float32Array(size);
      if (old) {
        for (let r = 0; r < this.rows; r++) {
          const valid = Math.min(this.lengths[r]!, cap) * headDim;
          for (let h = 0; h < kvHeads; h++) {
            const src = (r * kvHeads + h) * this.cap * headDim;
            next.set(old.subarray(src, src + valid), (r * kvHeads + h) * cap * headDim);
          }
        }
      }
      return next;
    };
    this.keys = Array.from({ length: layers }, (_, l) => move(this.keys[l]));
    this.values = Array.from({ length: layers }, (_, l) => move(this.values[l]));
    this.rowCapacity = rowCapacity;
    this.cap = cap;
  }
}
