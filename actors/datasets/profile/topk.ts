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
 * Cost: counters live in an open-addressing table keyed by the values' 64-bit hash
 * ({@link hash64}, shared with the HyperLogLog by {@link TopK.addHashed}), so a hit is a few
 * typed-array reads and a string comparison; purging half the counters at a time makes `add`
 * amortized O(1) (a purge costs O(capacity log capacity), at most once per capacity/2 new
 * values).
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
  readonly #h1: Int32Array;
  readonly #h2: Int32Array;
  readonly #counts: Float64Array;
  readonly #keys: (string | undefined)[];
  #size = 0;
  #n = 0;
  #error = 0;
  /** The counts during a purge. */
  #scratch = new Float64Array(0);

  /** An empty summary with up to `capacity` (2 … 2^20) counters. */
  constructor(capacity: number = TOPK_DEFAULT_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > 1 << 20) {
      throw new RangeError(`topk: capacity must be an integer in [2, 2^20], got ${capacity}`);
    }
    this.capacity = capacity;
    const slots = 1 << Math.ceil(Math.log2(capacity * 4)); // load factor ≤ 1/4
    this.#mask = slots - 1;
    this.#h1 = new Int32Array(slots);
    this.#h2 = new Int32Array(slots);
    this.#counts = new Float64Array(slots);
    this.#keys = new Array<string | undefined>(slots).fill(undefined);
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

  /** {@link TopK.add} with the value's {@link hash64} already computed. */
  addHashed(value: string, h1: number, h2: number): void {
    this.#n++;
    this.#increment(value, h1 | 0, h2 | 0, 1);
    if (this.#size > this.capacity) this.#purge();
  }

  /** Lower bound of the count of `value` (0 when not kept); the true count is ≤ this + error. */
  count(value: string): number {
    hash64Into(value, scratch);
    const slot = this.#find(value, scratch[0]! | 0, scratch[1]! | 0);
    return this.#keys[slot] === undefined ? 0 : this.#counts[slot]!;
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
    other.#keys.forEach((key, slot) => {
      if (key !== undefined) {
        this.#increment(key, other.#h1[slot]!, other.#h2[slot]!, other.#counts[slot]!);
      }
    });
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

  /** Slot holding `value`, or the empty slot where it would go (linear probing). */
  #find(value: string, h1: number, h2: number): number {
    const keys = this.#keys;
    let slot = h1 & this.#mask;
    for (;;) {
      const key = keys[slot];
      if (key === undefined) return slot;
      if (this.#h1[slot] === h1 && this.#h2[slot] === h2 && key === value) return slot;
      slot = (slot + 1) & this.#mask;
    }
  }

  #increment(value: string, h1: number, h2: number, by: number): void {
    const slot = this.#find(value, h1, h2);
    if (this.#keys[slot] === undefined) {
      this.#keys[slot] = value;
      this.#h1[slot] = h1;
      this.#h2[slot] = h2;
      this.#counts[slot] = by;
      this.#size++;
    } else {
      this.#counts[slot]! += by;
    }
  }

  #entries(): [string, number][] {
    const out: [string, number][] = [];
    this.#keys.forEach((key, slot) => {
      if (key !== undefined) out.push([key, this.#counts[slot]!]);
    });
    return out;
  }

  #sorted(): [string, number][] {
    return this.#entries().sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  }

  /** Subtracts the (⌊capacity/2⌋ + 1)-th largest count from all counters; drops those ≤ 0. */
  #purge(): void {
    const keys = this.#keys;
    const counts = this.#counts;
    const size = this.#size;
    if (this.#scratch.length < size) this.#scratch = new Float64Array(size);
    const values = this.#scratch;
    let i = 0;
    for (let slot = 0; slot < keys.length; slot++) {
      if (keys[slot] !== undefined) values[i++] = counts[slot]!;
    }
    // The (⌊capacity/2⌋ + 1)-th largest is the (size − 1 − ⌊capacity/2⌋)-th smallest.
    const c = selectNth(values, size, size - 1 - (this.capacity >>> 1));
    const survivors: [string, number, number, number][] = [];
    for (let slot = 0; slot < keys.length; slot++) {
      const key = keys[slot];
      if (key === undefined) continue;
      if (counts[slot]! > c) survivors.push([key, this.#h1[slot]!, this.#h2[slot]!, counts[slot]!]);
      keys[slot] = undefined;
    }
    this.#size = 0;
    for (const [key, h1, h2, n] of survivors) this.#increment(key, h1, h2, n - c);
    this.#error += c;
  }
}

/**
 * The `k`-th smallest (0-based) of `a[0 … n)`, by quickselect (Hoare partition, median of three);
 * reorders `a`. Linear on average, where sorting the counters at every purge was O(n log n).
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
