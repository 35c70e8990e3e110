/**
 * Heavy hitters by the Misra–Gries summary, in its batched, mergeable form (Agarwal et al.,
 * "Mergeable summaries", 2012).
 *
 * Up to `capacity` counters are kept. When a new value would make `capacity + 1` counters, or a
 * merge leaves more than `capacity`, the summary is purged: with c the (⌊capacity/2⌋ + 1)-th
 * largest count, c is subtracted from every counter and counters ≤ 0 are dropped (at most
 * ⌊capacity/2⌋ survive), and c is added to the tracked error Δ.
 *
 * Guarantee, for every value x (N = values added, Ŝ = sum of kept counts):
 *   count(x) ≤ true(x) ≤ count(x) + Δ,   Δ ≤ (N − Ŝ)/(⌊capacity/2⌋ + 1) ≤ N/(⌊capacity/2⌋ + 1),
 * where count(x) = 0 for values not kept. Each purge removes at least (⌊capacity/2⌋ + 1)·c
 * from the total, which gives the bound on Δ; merging adds the Δs and keeps the guarantee.
 * Counts are exact (Δ = 0) while the number of distinct values seen, in total across merges,
 * is at most `capacity` — then no purge ever happens, in any chunking or merge order.
 *
 * Purging half the counters at a time makes `add` amortized O(1) (a purge costs
 * O(capacity log capacity) and happens at most once per capacity/2 new values).
 * @module
 */

/** A reported heavy hitter: `count ≤ true count ≤ count + error`. */
export interface TopEntry {
  value: string;
  /** Lower bound of the true count (exact when `error` is 0). */
  count: number;
  /** Maximal undercount (the sketch's Δ; 0 when exact). */
  error: number;
}

/** Serialized {@link TopK}. */
export interface TopKJSON {
  /** Format version. */
  v: 1;
  capacity: number;
  /** Values added. */
  n: number;
  /** Δ. */
  error: number;
  /** Counters, by count descending then value ascending. */
  items: [string, number][];
}

/** Default number of counters. */
export const TOPK_DEFAULT_CAPACITY = 64;

/** Mergeable heavy-hitters summary of strings. */
export class TopK {
  /** Maximum number of counters. */
  readonly capacity: number;
  #counts = new Map<string, number>();
  #n = 0;
  #error = 0;

  /** An empty summary with up to `capacity` (≥ 2) counters. */
  constructor(capacity: number = TOPK_DEFAULT_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 2) {
      throw new RangeError(`topk: capacity must be an integer ≥ 2, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  /** Values added. */
  get n(): number {
    return this.#n;
  }

  /** Δ: the maximal undercount of any value (0 while counts are exact). */
  get error(): number {
    return this.#error;
  }

  /** Number of counters kept. */
  get size(): number {
    return this.#counts.size;
  }

  /** Counts one occurrence of `value`. */
  add(value: string): void {
    this.#n++;
    const counts = this.#counts;
    const c = counts.get(value);
    if (c !== undefined) {
      counts.set(value, c + 1);
      return;
    }
    counts.set(value, 1);
    if (counts.size > this.capacity) this.#purge();
  }

  /** Lower bound of the count of `value` (0 when not kept); the true count is ≤ this + error. */
  count(value: string): number {
    return this.#counts.get(value) ?? 0;
  }

  /** The `n` largest counters, by count descending then value ascending (UTF-16 order). */
  top(n = 10): TopEntry[] {
    return this.#sorted().slice(0, n).map(([value, count]) => ({
      value,
      count,
      error: this.#error,
    }));
  }

  /** Folds `other` into this; `other` is unchanged. Capacities must match. */
  merge(other: TopK): this {
    if (other.capacity !== this.capacity) {
      throw new RangeError(`topk: cannot merge capacity ${other.capacity} into ${this.capacity}`);
    }
    const counts = this.#counts;
    for (const [v, c] of other.#counts) counts.set(v, (counts.get(v) ?? 0) + c);
    this.#n += other.#n;
    this.#error += other.#error;
    if (counts.size > this.capacity) this.#purge();
    return this;
  }

  /** A copy. */
  clone(): TopK {
    return TopK.fromJSON(this.toJSON());
  }

  /** Canonical serialized form (independent of insertion order). */
  toJSON(): TopKJSON {
    return {
      v: 1,
      capacity: this.capacity,
      n: this.#n,
      error: this.#error,
      items: this.#sorted(),
    };
  }

  /** Inverse of {@link TopK.toJSON}; throws on malformed input. */
  static fromJSON(json: TopKJSON): TopK {
    if (json.v !== 1) throw new TypeError(`topk: unknown version ${String(json.v)}`);
    const t = new TopK(json.capacity);
    if (json.items.length > json.capacity) throw new TypeError("topk: too many items");
    for (const [v, c] of json.items) {
      if (typeof v !== "string" || !Number.isSafeInteger(c) || c <= 0) {
        throw new TypeError("topk: bad item");
      }
      t.#counts.set(v, c);
    }
    t.#n = json.n;
    t.#error = json.error;
    return t;
  }

  #sorted(): [string, number][] {
    return [...this.#counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  }

  /** Subtracts the (⌊capacity/2⌋ + 1)-th largest count from all counters; drops those ≤ 0. */
  #purge(): void {
    const keep = this.capacity >>> 1;
    const counts = this.#counts;
    const values = Float64Array.from(counts.values()).sort().reverse();
    const c = values[keep]!;
    for (const [v, n] of counts) {
      if (n <= c) counts.delete(v);
      else counts.set(v, n - c);
    }
    this.#error += c;
  }
}
