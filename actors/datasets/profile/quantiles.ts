/**
 * KLL quantile sketch (Karnin, Lang, Liberty 2016) for numbers, in the lazy-compaction form of
 * Apache DataSketches' `KllDoublesSketch`: level h holds items of weight 2^h; level capacities
 * shrink geometrically (factor 2/3) below the top level, with a floor of 8; when the sketch
 * holds as many items as the total capacity, one upward sweep compacts every level at or over
 * its capacity: the level is sorted and every other item (random offset) is promoted to the
 * level above. Level 0 (unsorted) absorbs the slack of the upper levels, so it is sorted in
 * batches of typically hundreds of items, which keeps `add` cheap.
 *
 * Error guarantee: for k = 200 the normalized rank error of {@link KllSketch.quantile} is at
 * most ≈1.33 % with 99 % confidence (DataSketches' bound 2.296/k^0.9723; 1.65 % for two-sided
 * PMF/CDF queries, 2.446/k^0.9433), i.e. the returned value x has
 * rank(<x)/n − ε ≤ q ≤ rank(≤x)/n + ε. The bound holds for any stream and through any merge
 * tree (the sketch is fully mergeable). `min` and `max` are exact. Retained items: about 3k
 * plus a few levels of 8, independent of n.
 *
 * Determinism: the random offsets come from a seeded xorshift32 generator whose state is part
 * of the sketch (and of its JSON), so the same inputs in the same order — or the same merges —
 * give the same sketch, and a sketch restored from JSON continues exactly as the original.
 * @module
 */
import { decodeFloat64, encodeFloat64 } from "./base64.ts";

/** Serialized {@link KllSketch}. */
export interface KllJSON {
  /** Format version. */
  v: 1;
  k: number;
  /** Number of values added. */
  n: number;
  /** Exact minimum (`null` when empty). */
  min: number | null;
  /** Exact maximum (`null` when empty). */
  max: number | null;
  /** RNG state (uint32). */
  rng: number;
  /** Item count of each level, level 0 first. */
  levels: number[];
  /** Base64 of the items as little-endian float64, level 0 first. */
  items: string;
}

/** Default k: ≈1.33 % rank error. */
export const KLL_DEFAULT_K = 200;
/** Default seed of the compaction RNG. */
export const KLL_DEFAULT_SEED = 0x2545f491;
const MIN_WIDTH = 8;

/** Normalized rank error of a KLL sketch with parameter `k` (99 % confidence, DataSketches). */
export function kllRankError(k: number, twoSided = false): number {
  return twoSided ? 2.446 / Math.pow(k, 0.9433) : 2.296 / Math.pow(k, 0.9723);
}

/**
 * The exact `q`-quantile of ascending `sorted` (non-empty) by linear interpolation between the
 * closest ranks, computed as NumPy's default method (and so pandas' `Series.quantile`) does:
 * position h = (n − 1)·q, then `a + (b − a)·t` for t = h − ⌊h⌋ < 0.5, `b − (b − a)·(1 − t)`
 * otherwise, which gives the same doubles as they do.
 */
export function linearQuantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  const h = (n - 1) * q;
  if (!(h > 0)) return sorted[0]!;
  if (h >= n - 1) return sorted[n - 1]!;
  const lo = Math.floor(h);
  const a = sorted[lo]!;
  const b = sorted[lo + 1]!;
  const t = h - lo;
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/** Mergeable quantile sketch of numbers. */
export class KllSketch {
  /** Accuracy parameter. */
  readonly k: number;
  #n = 0;
  #min = Infinity;
  #max = -Infinity;
  #rng: number;
  /** Level 0: unsorted items in `#buf[0, #n0)`. */
  #buf: Float64Array;
  #n0 = 0;
  /** Levels 1…: sorted, `#upper[h - 1]` is level h. */
  #upper: Float64Array[] = [];
  /** Items retained, all levels. */
  #size = 0;
  /** Total capacity at the current number of levels. */
  #capacity: number;
  /** Capacity by depth below the top level. */
  readonly #capByDepth: number[] = [];
  #view: SortedView | null = null;

  /** An empty sketch. `k` ≥ 8; `seed` initializes the compaction RNG. */
  constructor(k: number = KLL_DEFAULT_K, seed: number = KLL_DEFAULT_SEED) {
    if (!Number.isInteger(k) || k < MIN_WIDTH || k > 65535) {
      throw new RangeError(`kll: k must be an integer in [8, 65535], got ${k}`);
    }
    this.k = k;
    this.#rng = (seed >>> 0) || 1;
    this.#buf = new Float64Array(k);
    this.#capacity = this.#cap(0, 1);
  }

  /** Number of values added. */
  get n(): number {
    return this.#n;
  }

  /** Exact minimum, `null` when empty. */
  get min(): number | null {
    return this.#n === 0 ? null : this.#min;
  }

  /** Exact maximum, `null` when empty. */
  get max(): number | null {
    return this.#n === 0 ? null : this.#max;
  }

  /** Number of items retained. */
  get retained(): number {
    return this.#size;
  }

  /** Normalized rank error of {@link KllSketch.quantile} (99 % confidence). */
  get rankError(): number {
    return kllRankError(this.k);
  }

  /** Adds a value; non-finite values are ignored. */
  add(x: number): void {
    if (x - x !== 0) return;
    if (this.#n0 === this.#buf.length) this.#grow();
    this.#buf[this.#n0++] = x;
    this.#n++;
    if (x < this.#min) this.#min = x + 0; // + 0 turns -0 into 0 (JSON has no -0)
    if (x > this.#max) this.#max = x + 0;
    this.#view = null;
    if (++this.#size >= this.#capacity) this.#compress();
  }

  /**
   * The value whose normalized rank is ≈ `q` ∈ [0, 1] (within {@link KllSketch.rankError});
   * `q` = 0 and 1 give the exact min and max. `null` when empty.
   */
  quantile(q: number): number | null {
    if (this.#n === 0) return null;
    if (!(q > 0)) return this.#min;
    if (q >= 1) return this.#max;
    return this.#sortedView().quantile(q * this.#n);
  }

  /** Estimated fraction of values ≤ `x`. `null` when empty. */
  rank(x: number): number | null {
    if (this.#n === 0) return null;
    return this.#sortedView().weightAtMost(x) / this.#n;
  }

  /** Folds `other` into this; `other` is unchanged. Both must have the same `k`. */
  merge(other: KllSketch): this {
    if (other.k !== this.k) throw new RangeError(`kll: cannot merge k=${other.k} into k=${this.k}`);
    if (other.#n === 0) return this;
    for (let i = 0; i < other.#n0; i++) {
      if (this.#n0 === this.#buf.length) this.#grow();
      this.#buf[this.#n0++] = other.#buf[i]!;
    }
    other.#upper.forEach((level, i) => {
      if (i >= this.#upper.length) this.#upper.push(new Float64Array(0));
      this.#upper[i] = mergeSorted(this.#upper[i]!, level);
    });
    this.#n += other.#n;
    this.#size += other.#size;
    if (other.#min < this.#min) this.#min = other.#min;
    if (other.#max > this.#max) this.#max = other.#max;
    this.#view = null;
    this.#capacity = this.#totalCapacity();
    while (this.#size >= this.#capacity) this.#compress();
    return this;
  }

  /** A copy (same state, including the RNG). */
  clone(): KllSketch {
    return KllSketch.fromJSON(this.toJSON());
  }

  /** Serialized form: exact and deterministic. */
  toJSON(): KllJSON {
    const levels = [this.#n0, ...this.#upper.map((l) => l.length)];
    const all = new Float64Array(this.#size);
    all.set(this.#buf.subarray(0, this.#n0));
    let at = this.#n0;
    for (const level of this.#upper) {
      all.set(level, at);
      at += level.length;
    }
    return {
      v: 1,
      k: this.k,
      n: this.#n,
      min: this.min,
      max: this.max,
      rng: this.#rng,
      levels,
      items: encodeFloat64(all),
    };
  }

  /** Inverse of {@link KllSketch.toJSON}; throws on malformed input. */
  static fromJSON(json: KllJSON): KllSketch {
    if (json.v !== 1) throw new TypeError(`kll: unknown version ${String(json.v)}`);
    const s = new KllSketch(json.k, json.rng);
    const items = decodeFloat64(json.items);
    const total = json.levels.reduce((a, b) => a + b, 0);
    if (total !== items.length || json.levels.length < 1) throw new TypeError("kll: bad levels");
    const [n0, ...upper] = json.levels;
    s.#buf = new Float64Array(Math.max(json.k, n0!));
    s.#buf.set(items.subarray(0, n0));
    s.#n0 = n0!;
    let at = n0!;
    s.#upper = upper.map((len) => items.slice(at, at += len));
    s.#size = total;
    s.#n = json.n;
    if (json.n > 0) {
      if (json.min === null || json.max === null) throw new TypeError("kll: missing min/max");
      s.#min = json.min;
      s.#max = json.max;
    }
    s.#capacity = s.#totalCapacity();
    return s;
  }

  /** Capacity of level `h` when there are `levels` levels. */
  #cap(h: number, levels: number): number {
    const depth = levels - h - 1;
    const caps = this.#capByDepth;
    while (caps.length <= depth) {
      caps.push(Math.max(MIN_WIDTH, Math.round(this.k * Math.pow(2 / 3, caps.length))));
    }
    return caps[depth]!;
  }

  #totalCapacity(): number {
    const levels = this.#upper.length + 1;
    let total = 0;
    for (let h = 0; h < levels; h++) total += this.#cap(h, levels);
    return total;
  }

  #levelSize(h: number): number {
    return h === 0 ? this.#n0 : this.#upper[h - 1]!.length;
  }

  /**
   * One upward sweep compacting every level at or over its capacity (adding a level on top
   * when the top one is full), as in the KLL paper's compress step.
   */
  #compress(): void {
    for (let h = 0; h <= this.#upper.length; h++) {
      const levels = this.#upper.length + 1;
      if (this.#levelSize(h) < this.#cap(h, levels)) continue;
      if (h === levels - 1) this.#upper.push(new Float64Array(0));
      this.#compact(h);
    }
    this.#capacity = this.#totalCapacity();
  }

  /** Halves level `h` into level h + 1 (an odd item out stays at level h). */
  #compact(h: number): void {
    // Level 0 is sorted in place and its promoted half merged straight into level 1: no
    // copies (a compaction comes every few dozen values added).
    let items: Float64Array;
    let from = 0;
    let to: number;
    if (h === 0) {
      items = this.#buf;
      to = this.#n0;
      if (to % 2 === 1) from = 1;
      sortFloat64(items, from, to - 1);
    } else {
      items = this.#upper[h - 1]!;
      to = items.length;
      if (to % 2 === 1) from = 1;
    }
    const promoted = (to - from) >>> 1;
    this.#upper[h] = mergeSorted(this.#upper[h]!, items, from + this.#nextBit(), 2, promoted);
    if (h === 0) {
      if (from === 1) this.#n0 = 1; // the odd item out is #buf[0] already
      else this.#n0 = 0;
    } else {
      this.#upper[h - 1] = from === 1 ? Float64Array.of(items[0]!) : new Float64Array(0);
    }
    this.#size -= promoted;
  }

  #grow(): void {
    const bigger = new Float64Array(this.#buf.length * 2);
    bigger.set(this.#buf);
    this.#buf = bigger;
  }

  /** One random bit (xorshift32). */
  #nextBit(): number {
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rng = x >>> 0;
    return this.#rng >>> 31;
  }

  #sortedView(): SortedView {
    if (this.#view !== null) return this.#view;
    const values = new Float64Array(this.#size);
    const weights = new Float64Array(this.#size);
    const order: { v: number; w: number }[] = [];
    for (let i = 0; i < this.#n0; i++) order.push({ v: this.#buf[i]!, w: 1 });
    this.#upper.forEach((level, i) => {
      const w = 2 ** (i + 1);
      for (const v of level) order.push({ v, w });
    });
    order.sort((a, b) => a.v - b.v || a.w - b.w);
    let cum = 0;
    order.forEach((e, i) => {
      values[i] = e.v;
      cum += e.w;
      weights[i] = cum;
    });
    this.#view = new SortedView(values, weights);
    return this.#view;
  }
}

/** Retained items sorted by value, with cumulative weights. */
class SortedView {
  constructor(readonly values: Float64Array, readonly cumulative: Float64Array) {}

  /** Smallest value whose cumulative weight reaches `target`. */
  quantile(target: number): number {
    const c = this.cumulative;
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (c[mid]! >= target) hi = mid;
      else lo = mid + 1;
    }
    return this.values[lo]!;
  }

  /** Total weight of the values ≤ `x`. */
  weightAtMost(x: number): number {
    const v = this.values;
    let lo = 0;
    let hi = v.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (v[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : this.cumulative[lo - 1]!;
  }
}

/**
 * Merge of sorted `a` with `count` items of sorted `b` taken every `step` from `start`
 * (`b[start]`, `b[start + step]`, …; by default all of `b`). `a` itself when nothing is added.
 */
function mergeSorted(
  a: Float64Array,
  b: Float64Array,
  start = 0,
  step = 1,
  count = b.length,
): Float64Array {
  if (count === 0) return a;
  const out = new Float64Array(a.length + count);
  let i = 0;
  let j = start;
  const end = start + step * count;
  let o = 0;
  while (i < a.length && j < end) {
    if (a[i]! <= b[j]!) out[o++] = a[i++]!;
    else {
      out[o++] = b[j]!;
      j += step;
    }
  }
  while (i < a.length) out[o++] = a[i++]!;
  for (; j < end; j += step) out[o++] = b[j]!;
  return out;
}

/**
 * In-place ascending sort of `a[lo..hi]` (quicksort, median of three, insertion sort below 16
 * items): no call into the runtime's sort, which costs more than the sorting on small arrays.
 * No NaNs.
 */
function sortFloat64(a: Float64Array, lo: number, hi: number): void {
  while (hi - lo >= 16) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < a[lo]!) swap(a, mid, lo);
    if (a[hi]! < a[lo]!) swap(a, hi, lo);
    if (a[hi]! < a[mid]!) swap(a, hi, mid);
    const pivot = a[mid]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) swap(a, i++, j--);
    }
    if (j - lo < hi - i) { // recurse into the smaller part, loop on the larger
      sortFloat64(a, lo, j);
      lo = i;
    } else {
      sortFloat64(a, i, hi);
      hi = j;
    }
  }
  for (let i = lo + 1; i <= hi; i++) {
    const x = a[i]!;
    let j = i - 1;
    while (j >= lo && a[j]! > x) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = x;
  }
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i]!;
  a[i] = a[j]!;
  a[j] = t;
}
