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
 * Cost: counters are dense typed arrays indexed by an open-addressing table keyed by the
 * values' 64-bit hash ({@link hash64}, shared with the HyperLogLog by {@link TopK.addHashed}),
 * so a hit is a few typed-array reads and a string comparison; purging half the counters at a
 * time makes `add` amortized O(1) (a purge is a quickselect and a pass over the counters, at
 * most once per capacity/2 new values).
 * @module
 */
import { hash64Into } from "./hll.ts";

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

const scratch = new Int32Array(2);

/** Mergeable heavy-hitters summary of strings. */
export class TopK {
  /** Maximum number of counters. */
  readonly capacity: number;
  readonly #mask: number;
  /** Open-addressing index: entry number + 1 per slot, 0 for an empty slot. */
  readonly #table: Int32Array;
  // Entries, dense in [0, size): a merge holds up to 2 × capacity before it purges.
  readonly #keys: string[];
  readonly #h1: Int32Array;
  readonly #h2: Int32Array;
  readonly #counts: Float64Array;
  #size = 0;
  #n = 0;
  #error = 0;
  /** The counts during a purge. */
  readonly #scratch: Float64Array;

  /** An empty summary with up to `capacity` (2 … 2^20) counters. */
  constructor(capacity: number = TOPK_DEFAULT_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > 1 << 20) {
      throw new RangeError(`topk: capacity must be an integer in [2, 2^20], got ${capacity}`);
    }
    this.capacity = capacity;
    const slots = 1 << Math.ceil(Math.log2(capacity * 4)); // load factor ≤ 1/2 in a merge
    this.#mask = slots - 1;
    this.#table = new Int32Array(slots);
    const entries = 2 * capacity;
    this.#keys = new Array<string>(entries).fill("");
    this.#h1 = new Int32Array(entries);
    this.#h2 = new Int32Array(entries);
    this.#counts = new Float64Array(entries);
    this.#scratch = new Float64Array(entries);
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
    return this.#size;
  }

  /** Counts one occurrence of `value`. */
  add(value: string): void {
    hash64Into(value, scratch);
    this.addHashed(value, scratch[0]!, scratch[1]!);
  }

  /**
   * {@link TopK.add} with the value's {@link hash64} already computed; `count` occurrences at
   * once (a counter merged in, so the guarantee holds as for a merge).
   */
  addHashed(value: string, h1: number, h2: number, count = 1): void {
    this.#n += count;
    this.#increment(value, h1 | 0, h2 | 0, count);
    if (this.#size > this.capacity) this.#purge();
  }

  /**
   * Loads exact counts of distinct values (`size` of them, by index) into an empty summary:
   * all of them while they fit, else one purge of them, as {@link TopK.add} would have purged
   * along the way. Only the values that survive are read, so a caller whose values are not
   * strings yet makes at most ⌊capacity/2⌋ of them.
   */
  loadCounts(counts: {
    size: number;
    count(i: number): number;
    key(i: number): string;
    h1(i: number): number;
    h2(i: number): number;
  }): void {
    if (this.#n !== 0) throw new Error("topk: loadCounts needs an empty summary");
    const size = counts.size;
    let c = 0;
    if (size > this.capacity) {
      const all = this.#scratch.length >= size ? this.#scratch : new Float64Array(size);
      for (let i = 0; i < size; i++) all[i] = counts.count(i);
      c = selectNth(all, size, size - 1 - (this.capacity >>> 1));
    }
    for (let i = 0; i < size; i++) {
      const n = counts.count(i);
      this.#n += n;
      if (n > c) this.#increment(counts.key(i), counts.h1(i) | 0, counts.h2(i) | 0, n - c);
    }
    this.#error = c;
  }

  /** Lower bound of the count of `value` (0 when not kept); the true count is ≤ this + error. */
  count(value: string): number {
    hash64Into(value, scratch);
    const entry = this.#table[this.#find(value, scratch[0]! | 0, scratch[1]! | 0)]!;
    return entry === 0 ? 0 : this.#counts[entry - 1]!;
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
    for (let i = 0; i < other.#size; i++) {
      this.#increment(other.#keys[i]!, other.#h1[i]!, other.#h2[i]!, other.#counts[i]!);
    }
    this.#n += other.#n;
    this.#error += other.#error;
    if (this.#size > this.capacity) this.#purge();
    return this;
  }

  /** A copy. */
  clone(): TopK {
    return TopK.fromJSON(this.toJSON());
  }

  /** Canonical serialized form (independent of insertion order). */
  toJSON(): TopKJSON {
    return { v: 1, capacity: this.capacity, n: this.#n, error: this.#error, items: this.#sorted() };
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
      hash64Into(v, scratch);
      t.#increment(v, scratch[0]! | 0, scratch[1]! | 0, c);
    }
    if (t.#size !== json.items.length) throw new TypeError("topk: duplicate item");
    t.#n = json.n;
    t.#error = json.error;
    return t;
  }

  /** Slot holding `value`'s entry, or the empty slot where it would go (linear probing). */
  #find(value: string, h1: number, h2: number): number {
    const table = this.#table;
    let slot = h1 & this.#mask;
    for (;;) {
      const entry = table[slot]!;
      if (entry === 0) return slot;
      const i = entry - 1;
      if (this.#h1[i] === h1 && this.#h2[i] === h2 && this.#keys[i] === value) return slot;
      slot = (slot + 1) & this.#mask;
    }
  }

  #increment(value: string, h1: number, h2: number, by: number): void {
    const slot = this.#find(value, h1, h2);
    const entry = this.#table[slot]!;
    if (entry === 0) {
      const i = this.#size++;
      this.#keys[i] = value;
      this.#h1[i] = h1;
      this.#h2[i] = h2;
      this.#counts[i] = by;
      this.#table[slot] = i + 1;
    } else {
      this.#counts[entry - 1]! += by;
    }
  }

  #sorted(): [string, number][] {
    const out: [string, number][] = [];
    for (let i = 0; i < this.#size; i++) out.push([this.#keys[i]!, this.#counts[i]!]);
    return out.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  }

  /** Subtracts the (⌊capacity/2⌋ + 1)-th largest count from all counters; drops those ≤ 0. */
  #purge(): void {
    const size = this.#size;
    const counts = this.#counts;
    const values = this.#scratch;
    values.set(counts.subarray(0, size));
    // The (⌊capacity/2⌋ + 1)-th largest is the (size − 1 − ⌊capacity/2⌋)-th smallest.
    const c = selectNth(values, size, size - 1 - (this.capacity >>> 1));
    const keys = this.#keys;
    const h1 = this.#h1;
    const h2 = this.#h2;
    let kept = 0;
    for (let i = 0; i < size; i++) {
      if (counts[i]! <= c) continue;
      keys[kept] = keys[i]!;
      h1[kept] = h1[i]!;
      h2[kept] = h2[i]!;
      counts[kept] = counts[i]! - c;
      kept++;
    }
    for (let i = kept; i < size; i++) keys[i] = ""; // let the dropped strings go
    this.#size = kept;
    const table = this.#table;
    table.fill(0);
    for (let i = 0; i < kept; i++) {
      let slot = h1[i]! & this.#mask;
      while (table[slot] !== 0) slot = (slot + 1) & this.#mask;
      table[slot] = i + 1;
    }
    this.#error += c;
  }
}

/**
 * The `k`-th smallest (0-based) of `a[0 … n)`, by quickselect (Hoare partition, median of three);
 * reorders `a`. Linear on average, where sorting the counters at every purge would be
 * O(n log n).
 */
export function selectNth(a: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // Median of a[lo], a[mid], a[hi] as the pivot.
    const x = a[lo]!;
    const y = a[mid]!;
    const z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    // Now a[lo … j] ≤ pivot, a[j+1 … i−1] = pivot, a[i … hi] ≥ pivot.
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}
