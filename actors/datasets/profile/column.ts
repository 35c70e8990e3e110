/**
 * Mergeable per-column profiles ({@link ColumnProfile}) and per-table profiles
 * ({@link TableProfile}): one per chunk, merged once all chunks are done, stored as JSON.
 *
 * What a column profile tracks, per value:
 * - every value: its type in the type histogram (nulls included);
 * - every non-null value, by its string form (`String(value)`): its exact count while the
 *   column has at most `exactDistinct` distinct values (default 10,000) of at most
 *   `exactChars` code units in all, past that a distinct count (HyperLogLog) and top values
 *   (Misra–Gries); and the lexicographic min/max (UTF-16 code-unit order, JS `<`);
 * - finite numbers: moments (count, min, max, mean, variance), a quantile sketch (KLL), and
 *   the numbers themselves while there are at most `exactNumbers` of them (default 100,000);
 * - `date` / `datetime` strings: min/max by time ({@link parseTime}; ties broken by the text);
 * - booleans: counts of `false` and `true`.
 *
 * `summary()` reports min/max according to the column's type, the join of the non-null value
 * types (`integer ⊔ float = float`, `date ⊔ datetime = datetime`, any other mix = `string`,
 * as in the ingest type lattice): numbers for numeric columns, texts ordered by time for
 * temporal columns, `false`/`true` for boolean columns, and the lexicographic min/max of the
 * string forms otherwise. Mean, variance, standard deviation and quantiles are `null` unless
 * the column is numeric.
 *
 * Exactness under merge: the bounds count everything merged, so whether a figure is exact
 * does not depend on the chunking. Count, nulls, type histogram, min/max, boolean counts, the
 * exact counts and numbers, and HLL registers are identical however the data is chunked and
 * merged; mean/variance agree up to rounding. Within the bounds, `distinct`, top values and
 * quantiles are exact (`distinctExact`, `quantilesExact`, each top value's `error` 0); past
 * them, quantiles and top values are within their sketches' stated error and `distinct` is
 * the HLL estimate, at most the number of non-null values.
 * @module
 */
import { ExactCounts } from "./counts.ts";
import { hash64Into, type HllJSON, HyperLogLog } from "./hll.ts";
import { Moments, type MomentsJSON } from "./moments.ts";
import {
  KLL_DEFAULT_K,
  KLL_DEFAULT_SEED,
  type KllJSON,
  KllSketch,
  linearQuantile,
} from "./quantiles.ts";
import { decodeSorted, encodeSorted, sortAndEncode } from "./sorted_numbers.ts";
import { parseTime } from "./time.ts";
import { type TopEntry, TopK, TOPK_DEFAULT_CAPACITY, type TopKJSON } from "./topk.ts";

/** A value type (same names as the ingest `ColumnType`). */
export type ValueType =
  | "null"
  | "boolean"
  | "integer"
  | "float"
  | "date"
  | "datetime"
  | "json"
  | "string";

/** A cleaned cell value. */
export type Value = number | string | boolean | null;

/** Sketch parameters; profiles can only be merged with profiles of the same parameters. */
export interface ProfileOptions {
  /** HyperLogLog precision p (default 14: 0.81 % standard error). */
  hllPrecision?: number;
  /** KLL k (default 200: ≈1.33 % rank error). */
  quantileK?: number;
  /** Top-k counters (default 64). */
  topCapacity?: number;
  /** Seed of the KLL compaction RNG. */
  seed?: number;
  /** Distinct values counted exactly, over all that is merged. @default 10_000 */
  exactDistinct?: number;
  /**
   * Total length (UTF-16 code units) of the distinct values counted exactly: long texts stop
   * the exact counts before they hold megabytes. @default 1_000_000
   */
  exactChars?: number;
  /** Numbers kept for exact quantiles, over all that is merged. @default 100_000 */
  exactNumbers?: number;
}

/** Default {@link ProfileOptions.exactDistinct}. */
export const EXACT_DISTINCT = 10_000;
/** Default {@link ProfileOptions.exactChars}. */
export const EXACT_CHARS = 1_000_000;
/** Default {@link ProfileOptions.exactNumbers}. */
export const EXACT_NUMBERS = 100_000;

/** Quantiles reported by {@link ColumnProfile.summary}. */
export interface QuantileSummary {
  p01: number;
  p05: number;
  p25: number;
  p50: number;
  p75: number;
  p95: number;
  p99: number;
}

/** Human-facing statistics of a column. */
export interface ColumnSummary {
  /** Join of the non-null value types (`null` when there are none). */
  type: ValueType;
  /** Non-null values. */
  count: number;
  nulls: number;
  /** See the module doc for the ordering used. */
  min: number | string | boolean | null;
  max: number | string | boolean | null;
  mean: number | null;
  /** Sample variance (n − 1), as pandas and SQL `var_samp`. */
  variance: number | null;
  /** Sample standard deviation (n − 1). */
  stddev: number | null;
  /** Population variance (n). */
  populationVariance: number | null;
  /**
   * Distinct non-null values: exact when `distinctExact`, else the HLL estimate (at most
   * `count`).
   */
  distinct: number;
  distinctExact: boolean;
  /** Most frequent values, by count descending then value; exact counts when `distinctExact`. */
  topValues: TopEntry[];
  /** Linear interpolation between closest ranks (as pandas) when `quantilesExact`, else KLL. */
  quantiles: QuantileSummary | null;
  /** Whether `quantiles` are exact (`false` when there are none). */
  quantilesExact: boolean;
  types: Record<ValueType, number>;
}

/**
 * Serialized {@link ColumnProfile}. Version 1 (no exact forms: `exact`, `counts` and `numbers`
 * absent) is still read, as a profile past its bounds.
 */
export interface ColumnProfileJSON {
  /** Format version. */
  v: 2 | 1;
  /** Non-zero entries of the type histogram, in {@link VALUE_TYPES} order. */
  types: Partial<Record<ValueType, number>>;
  moments: MomentsJSON;
  /** Lexicographic [min, max] of the string forms, `null` when no non-null value. */
  text: [string, string] | null;
  /** [min, max] of the date/datetime texts by time, `null` when none. */
  time: [string, string] | null;
  /** Counts of `false` and `true`. */
  booleans: [number, number];
  quantiles: KllJSON;
  hll: HllJSON;
  top: TopKJSON;
  /** Bounds of the exact forms: [`exactDistinct`, `exactChars`, `exactNumbers`]. */
  exact?: [number, number, number];
  /**
   * The distinct string forms, in first-seen order, and their counts (two arrays: fewer
   * objects to parse and copy than a pair each), while within the bounds; `null` past them
   * (then `hll` and `top` hold the values, empty before).
   */
  counts?: [string[], number[]] | null;
  /**
   * The numbers ({@link encodeSorted}) while within the bound, `null` past it; `"counts"` when
   * they are the keys of `counts` (every non-null value a number): not stored twice.
   */
  numbers?: string | null;
}

/** Bounds of a profile's exact forms. */
interface Bounds {
  distinct: number;
  chars: number;
  numbers: number;
}

/**
 * Number buffers of released profiles ({@link ColumnProfile.release}), for the profiles made
 * later in this thread: a chunk's numeric columns each fill one (~130 KB for a 1 MiB chunk)
 * and drop it when the chunk is serialized.
 */
const spareNumbers: Float64Array[] = [];
const SPARE_NUMBERS = 8;
/** Largest buffer kept for later (64 Ki numbers, 512 KiB). */
const SPARE_NUMBERS_LENGTH = 64 * 1024;

/** Scratch for the 64-bit hash shared by the HLL and the top-k. */
const hash = new Int32Array(2);

/** All value types, in histogram order. */
export const VALUE_TYPES: readonly ValueType[] = [
  "null",
  "boolean",
  "integer",
  "float",
  "date",
  "datetime",
  "json",
  "string",
];

/**
 * A type's position in {@link VALUE_TYPES}, or -1. A switch over the (interned) names: an
 * object looked up by a different name each value would go through V8's megamorphic cache,
 * once per value added.
 */
function typeCode(type: string): number {
  switch (type) {
    case "string":
      return 7;
    case "integer":
      return 2;
    case "float":
      return 3;
    case "boolean":
      return 1;
    case "date":
      return 4;
    case "datetime":
      return 5;
    case "json":
      return 6;
    case "null":
      return 0;
    default:
      return -1;
  }
}

/** The type of `value` in a column of type `columnType` (a text in a numeric column is a string). */
export function valueType(value: Value, columnType?: ValueType): ValueType {
  switch (typeof value) {
    case "number":
      if (value - value !== 0) return "null";
      if (columnType === "integer" || columnType === "float") return columnType;
      return Number.isInteger(value) ? "integer" : "float";
    case "boolean":
      return "boolean";
    case "string":
      return columnType === "date" || columnType === "datetime" || columnType === "json"
        ? columnType
        : "string";
    default:
      return "null";
  }
}

/** Join of two types in the ingest lattice (null is the bottom, string the top). */
export function joinValueTypes(a: ValueType, b: ValueType): ValueType {
  if (a === b || b === "null") return a;
  if (a === "null") return b;
  if ((a === "integer" || a === "float") && (b === "integer" || b === "float")) return "float";
  if ((a === "date" || a === "datetime") && (b === "date" || b === "datetime")) return "datetime";
  return "string";
}

/** The type histogram of a serialized profile, in {@link VALUE_TYPES} order; checked. */
function typeCounts(types: ColumnProfileJSON["types"]): Float64Array {
  const out = new Float64Array(8);
  for (const [t, n] of Object.entries(types)) {
    const code = typeCode(t);
    if (code < 0 || !Number.isSafeInteger(n) || n < 0) {
      throw new TypeError(`column profile: bad type count ${t}`);
    }
    out[code] = n;
  }
  return out;
}

/** Mergeable profile of one column. */
export class ColumnProfile {
  readonly #types = new Float64Array(8);
  #moments = new Moments();
  #kll: KllSketch;
  #hll: HyperLogLog;
  #top: TopK;
  readonly #bounds: Bounds;
  /**
   * Exact counts of the string forms; `null` once past the bounds (then `#hll` and `#top` hold
   * the values, empty until then).
   */
  #counts: ExactCounts | null = new ExactCounts();
  /**
   * The numbers, `#numbers[0, #length)`, for exact quantiles; `null` once past the bound (the
   * sketch has them all along).
   */
  #numbers: Float64Array | null;
  #length = 0;
  /** Whether `#numbers` is sorted (until the next number comes). */
  #sorted = true;
  #textMin: string | null = null;
  #textMax: string | null = null;
  #timeMin: string | null = null;
  #timeMax: string | null = null;
  #timeMinKey = Infinity;
  #timeMaxKey = -Infinity;
  #falses = 0;
  #trues = 0;

  /** An empty profile. */
  constructor(options: ProfileOptions = {}) {
    this.#kll = new KllSketch(options.quantileK ?? KLL_DEFAULT_K, options.seed ?? KLL_DEFAULT_SEED);
    this.#hll = new HyperLogLog(options.hllPrecision ?? 14);
    this.#top = new TopK(options.topCapacity ?? TOPK_DEFAULT_CAPACITY);
    this.#bounds = {
      distinct: bound(options.exactDistinct ?? EXACT_DISTINCT, "exactDistinct"),
      chars: bound(options.exactChars ?? EXACT_CHARS, "exactChars"),
      numbers: bound(options.exactNumbers ?? EXACT_NUMBERS, "exactNumbers"),
    };
    this.#numbers = new Float64Array(Math.min(8, this.#bounds.numbers));
  }

  /**
   * Adds a value. `type` is recorded in the type histogram as given (default:
   * {@link valueType} of the value); what the value feeds depends on its JS type (module doc).
   * `null`, `type` `"null"` and non-finite numbers count as nulls. `text`, for a number, is
   * `String(value)` when the caller has it already (it feeds the distinct count and top values,
   * and must read back as the number: the stored profile keeps the numbers of an all-numbers
   * column only as the keys of its exact counts).
   */
  add(value: Value, type?: ValueType, text?: string): void {
    if (value === null || type === "null") return this.#addNull();
    if (typeof value === "number") {
      if (value - value !== 0) return this.#addNull();
      this.#types[typeCode(type ?? valueType(value))]!++;
      this.#moments.add(value);
      this.#kll.add(value);
      this.#keepNumber(value);
      const s = text ?? String(value);
      hash64Into(s, hash);
      this.#countHashed(s, hash[0]!, hash[1]!, 1, value);
      this.#textMinMax(s);
    } else if (typeof value === "string") {
      this.#types[typeCode(type ?? "string")]!++;
      if (type === "date" || type === "datetime") this.#addTime(value);
      this.#addText(value);
    } else {
      this.#types[typeCode(type ?? "boolean")]!++;
      if (value) this.#trues++;
      else this.#falses++;
      this.#addText(value ? "true" : "false");
    }
  }

  /** Number of non-null values. */
  get count(): number {
    let total = 0;
    for (let i = 1; i < 8; i++) total += this.#types[i]!;
    return total;
  }

  /** Number of nulls. */
  get nulls(): number {
    return this.#types[0]!;
  }

  /** Numeric moments (read-only use). */
  get moments(): Moments {
    return this.#moments;
  }

  /** Quantile sketch of the numbers (read-only use). */
  get quantiles(): KllSketch {
    return this.#kll;
  }

  /**
   * Distinct-count sketch of the string forms once past the exact bounds, empty before
   * (read-only use).
   */
  get hll(): HyperLogLog {
    return this.#hll;
  }

  /** Heavy hitters of the string forms once past the exact bounds, empty before (read-only use). */
  get top(): TopK {
    return this.#top;
  }

  /** Whether the distinct values are counted exactly (within the bounds). */
  get distinctExact(): boolean {
    return this.#counts !== null;
  }

  /** Whether the numbers are all kept (within the bound). */
  get quantilesExact(): boolean {
    return this.#numbers !== null;
  }

  /** Type histogram (all types, nulls included). */
  get types(): Record<ValueType, number> {
    const out = {} as Record<ValueType, number>;
    VALUE_TYPES.forEach((t, i) => (out[t] = this.#types[i]!));
    return out;
  }

  /** Join of the non-null value types seen. */
  get type(): ValueType {
    let t: ValueType = "null";
    for (let i = 1; i < 8; i++) if (this.#types[i]! > 0) t = joinValueTypes(t, VALUE_TYPES[i]!);
    return t;
  }

  /**
   * Fraction of the numbers ≤ `x`: exact within the bound, else the sketch's estimate. `null`
   * when there are none.
   */
  rank(x: number): number | null {
    if (this.#numbers === null) return this.#kll.rank(x);
    if (this.#length === 0) return null;
    const sorted = this.#sortNumbers();
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo / sorted.length;
  }

  /** Folds `other` into this (same options required); `other` is unchanged. */
  merge(other: ColumnProfile): this {
    this.#checkCompatible(other);
    for (let i = 0; i < 8; i++) this.#types[i]! += other.#types[i]!;
    this.#moments.merge(other.#moments);
    this.#kll.merge(other.#kll);
    if (other.#numbers !== null) this.#mergeNumbers(other.#numbers.subarray(0, other.#length));
    else this.#numbers = null;
    const counts = other.#counts;
    if (counts !== null) {
      for (let i = 0; i < counts.size; i++) {
        const h1 = counts.h1(i);
        const h2 = counts.h2(i);
        this.#countHashed(counts.key(i), h1, h2, counts.count(i), counts.number(i));
      }
    } else {
      if (this.#counts !== null) this.#spillCounts();
      this.#hll.merge(other.#hll);
      this.#top.merge(other.#top);
    }
    if (other.#textMin !== null) this.#addText2(other.#textMin, other.#textMax!);
    if (other.#timeMin !== null) {
      this.#addTimeKey(other.#timeMin, other.#timeMinKey);
      this.#addTimeKey(other.#timeMax!, other.#timeMaxKey);
    }
    this.#falses += other.#falses;
    this.#trues += other.#trues;
    return this;
  }

  /**
   * Folds a serialized profile into this, as `merge(ColumnProfile.fromJSON(json))` does,
   * without building a profile of it: its distinct-count sketch is read straight into this
   * one's ({@link HyperLogLog.mergeJSON}): a built profile would make ~45 KB of short-lived
   * buffers for each column of each chunk (two register arrays and the decoded bytes), tens of
   * MB over a 1 GB file's ~1,000 chunks before they were collected. Its numbers
   * are not read once this profile is past the bound (their text is not checked then).
   * Malformed input throws as `fromJSON` does, and then nothing is changed.
   */
  mergeJSON(json: ColumnProfileJSON): this {
    if (json.v !== 1 && json.v !== 2) {
      throw new TypeError(`column profile: unknown version ${String(json.v)}`);
    }
    if (
      json.quantiles.k !== this.#kll.k || json.top.capacity !== this.#top.capacity ||
      !sameBounds(boundsOf(json), this.#bounds)
    ) {
      throw new RangeError("column profile: cannot merge profiles with different options");
    }
    const types = typeCounts(json.types);
    const moments = Moments.fromJSON(json.moments);
    const kll = KllSketch.fromJSON(json.quantiles);
    const top = TopK.fromJSON(json.top);
    // Numbers this profile no longer keeps are not read.
    const { counts, numbers } = exactForms(json, types, moments, this.#numbers !== null);
    this.#hll.mergeJSON(json.hll); // checks all of its input before it changes anything
    for (let i = 0; i < 8; i++) this.#types[i]! += types[i]!;
    this.#moments.merge(moments);
    this.#kll.merge(kll);
    if (numbers !== null) this.#mergeNumbers(numbers);
    else this.#numbers = null;
    if (counts !== null) {
      const [keys, n] = counts;
      for (let i = 0; i < keys.length; i++) this.#count(keys[i]!, n[i]!);
    } else {
      if (this.#counts !== null) this.#spillCounts();
      this.#top.merge(top);
    }
    if (json.text !== null) this.#addText2(json.text[0], json.text[1]);
    if (json.time !== null) {
      this.#addTime(json.time[0]);
      this.#addTime(json.time[1]);
    }
    this.#falses += json.booleans[0];
    this.#trues += json.booleans[1];
    return this;
  }

  /**
   * Gives the buffers of the exact forms to profiles made later in this thread (after
   * `toJSON`, when a chunk is done). This profile must not be used again.
   */
  release(): void {
    this.#counts?.release();
    this.#counts = null;
    const numbers = this.#numbers;
    if (
      numbers !== null && numbers.length > 8 && numbers.length <= SPARE_NUMBERS_LENGTH &&
      spareNumbers.length < SPARE_NUMBERS
    ) spareNumbers.push(numbers);
    this.#numbers = null;
    this.#length = 0;
  }

  /** Statistics; `topN` top values are reported (default 10). */
  summary(topN = 10): ColumnSummary {
    const type = this.type;
    const numeric = type === "integer" || type === "float";
    const m = this.#moments;
    const [min, max] = this.#minMax(type);
    const counts = this.#counts;
    const quantiles = numeric ? this.#quantileSummary() : null;
    return {
      type,
      count: this.count,
      nulls: this.nulls,
      min,
      max,
      mean: numeric && m.count > 0 ? m.mean : null,
      variance: numeric ? m.sampleVariance : null,
      stddev: numeric ? m.sampleStddev : null,
      populationVariance: numeric ? m.variance : null,
      distinct: counts !== null ? counts.size : Math.min(this.#hll.estimate(), this.count),
      distinctExact: counts !== null,
      topValues: counts !== null ? this.#exactTop(topN) : this.#top.top(topN),
      quantiles,
      quantilesExact: quantiles !== null && this.#numbers !== null,
      types: this.types,
    };
  }

  /** A copy. */
  clone(): ColumnProfile {
    return ColumnProfile.fromJSON(this.toJSON());
  }

  /**
   * Serialized form: deterministic, and exact (fromJSON gives an equal profile). The numbers
   * kept are sorted in place first: their order carries nothing, and sorted they serialize the
   * same however they came.
   */
  toJSON(): ColumnProfileJSON {
    const types: Partial<Record<ValueType, number>> = {};
    VALUE_TYPES.forEach((t, i) => {
      if (this.#types[i]! > 0) types[t] = this.#types[i]!;
    });
    let counts: [string[], number[]] | null = null;
    if (this.#counts !== null) {
      const c = this.#counts;
      const keys = new Array<string>(c.size);
      const n = new Array<number>(c.size);
      for (let i = 0; i < c.size; i++) {
        keys[i] = c.key(i);
        n[i] = c.count(i);
      }
      counts = [keys, n];
    }
    let numbers: string | null = null;
    if (this.#numbers !== null) {
      numbers = counts !== null && this.#moments.count === this.count
        ? "counts"
        : this.#encodeNumbers();
    }
    const b = this.#bounds;
    return {
      v: 2,
      types,
      moments: this.#moments.toJSON(),
      text: this.#textMin === null ? null : [this.#textMin, this.#textMax!],
      time: this.#timeMin === null ? null : [this.#timeMin, this.#timeMax!],
      booleans: [this.#falses, this.#trues],
      quantiles: this.#kll.toJSON(),
      hll: this.#hll.toJSON(),
      top: this.#top.toJSON(),
      exact: [b.distinct, b.chars, b.numbers],
      counts,
      numbers,
    };
  }

  /** Inverse of {@link ColumnProfile.toJSON}; throws on malformed input. */
  static fromJSON(json: ColumnProfileJSON): ColumnProfile {
    if (json.v !== 1 && json.v !== 2) {
      throw new TypeError(`column profile: unknown version ${String(json.v)}`);
    }
    const bounds = boundsOf(json);
    const p = new ColumnProfile({
      hllPrecision: json.hll.p,
      quantileK: json.quantiles.k,
      topCapacity: json.top.capacity,
      exactDistinct: bounds.distinct,
      exactChars: bounds.chars,
      exactNumbers: bounds.numbers,
    });
    p.#types.set(typeCounts(json.types));
    p.#moments = Moments.fromJSON(json.moments);
    p.#kll = KllSketch.fromJSON(json.quantiles);
    p.#hll = HyperLogLog.fromJSON(json.hll);
    p.#top = TopK.fromJSON(json.top);
    const { counts, numbers } = exactForms(json, p.#types, p.#moments, true);
    if (numbers === null) p.#numbers = null;
    else p.#mergeNumbers(numbers);
    if (counts === null) p.#counts = null;
    else {
      const [keys, n] = counts;
      for (let i = 0; i < keys.length; i++) p.#count(keys[i]!, n[i]!);
      if (p.#counts?.size !== keys.length) throw new TypeError("column profile: bad counts");
    }
    if (json.text !== null) [p.#textMin, p.#textMax] = json.text;
    if (json.time !== null) {
      p.#addTime(json.time[0]);
      p.#addTime(json.time[1]);
    }
    [p.#falses, p.#trues] = json.booleans;
    return p;
  }

  #addNull(): void {
    this.#types[0]!++;
    this.#moments.addNull();
  }

  /** Keeps a number for exact quantiles while within the bound. */
  #keepNumber(x: number): void {
    const numbers = this.#numbers;
    if (numbers === null) return;
    if (this.#length === numbers.length) {
      if (this.#length >= this.#bounds.numbers) return this.#dropNumbers();
      this.#growNumbers(this.#length + 1);
    }
    this.#numbers![this.#length++] = x + 0; // + 0 turns -0 into 0, as the sketch does
    this.#sorted = false;
  }

  #growNumbers(min: number): void {
    const size = Math.min(this.#bounds.numbers, Math.max(min, this.#numbers!.length * 2));
    const bigger = takeSpareNumbers(size, this.#bounds.numbers) ?? new Float64Array(size);
    bigger.set(this.#numbers!.subarray(0, this.#length));
    this.#numbers = bigger;
  }

  /** Folds the numbers kept by another profile: kept as well while the total is within the bound. */
  #mergeNumbers(numbers: Float64Array): void {
    if (this.#numbers === null || numbers.length === 0) return;
    if (this.#length + numbers.length > this.#bounds.numbers) return this.#dropNumbers();
    if (this.#length + numbers.length > this.#numbers.length) {
      this.#growNumbers(this.#length + numbers.length);
    }
    this.#numbers!.set(numbers, this.#length);
    this.#length += numbers.length;
    this.#sorted = false;
  }

  /** Past the bound: the sketch, which has every number, answers alone. */
  #dropNumbers(): void {
    this.#numbers = null;
    this.#length = 0;
    this.#sorted = true;
  }

  /** {@link encodeSorted} of the numbers kept, which it sorts in place. */
  #encodeNumbers(): string {
    const view = this.#numbers!.subarray(0, this.#length);
    const text = this.#sorted ? encodeSorted(view) : sortAndEncode(view);
    this.#sorted = true;
    return text;
  }

  /** The numbers kept, sorted in place (their order carries nothing). */
  #sortNumbers(): Float64Array {
    const view = this.#numbers!.subarray(0, this.#length);
    if (!this.#sorted) view.sort();
    this.#sorted = true;
    return view;
  }

  #addText(s: string): void {
    this.#count(s, 1);
    this.#textMinMax(s);
  }

  #textMinMax(s: string): void {
    if (this.#textMin === null) {
      this.#textMin = s;
      this.#textMax = s;
    } else if (s < this.#textMin) this.#textMin = s;
    else if (s > this.#textMax!) this.#textMax = s;
  }

  /** Counts `c` occurrences of the string form `s`: exactly within the bounds, else sketched. */
  #count(s: string, c: number): void {
    hash64Into(s, hash);
    this.#countHashed(s, hash[0]!, hash[1]!, c);
  }

  /** {@link ColumnProfile.#count} of a hashed string form; `num`: the number it is of. */
  #countHashed(s: string, h1: number, h2: number, c: number, num?: number): void {
    const counts = this.#counts;
    if (counts !== null) {
      const b = this.#bounds;
      if (counts.add(s, h1, h2, c, b.distinct, b.chars, num)) return;
      this.#spillCounts();
    }
    this.#hll.addHash(h1, h2);
    this.#top.addHashed(s, h1, h2, c);
  }

  /** Past the bounds: the exact counts go to the sketches (empty until now). */
  #spillCounts(): void {
    const counts = this.#counts!;
    this.#counts = null;
    for (let i = 0; i < counts.size; i++) this.#hll.addHash(counts.h1(i), counts.h2(i));
    this.#top.loadCounts(counts);
    counts.release();
  }

  /** The `n` most frequent of the exact counts, by count descending then value ascending. */
  #exactTop(n: number): TopEntry[] {
    const c = this.#counts!;
    const order = Array.from({ length: c.size }, (_, i) => i);
    order.sort((a, b) => c.count(b) - c.count(a) || (c.key(a) < c.key(b) ? -1 : 1));
    return order.slice(0, n).map((i) => ({ value: c.key(i), count: c.count(i), error: 0 }));
  }

  #addText2(min: string, max: string): void {
    if (this.#textMin === null || min < this.#textMin) this.#textMin = min;
    if (this.#textMax === null || max > this.#textMax) this.#textMax = max;
  }

  #addTime(s: string): void {
    const key = parseTime(s);
    if (key === key) this.#addTimeKey(s, key);
  }

  /** Min/max by (time, text). */
  #addTimeKey(s: string, key: number): void {
    if (key < this.#timeMinKey || (key === this.#timeMinKey && s < this.#timeMin!)) {
      this.#timeMinKey = key;
      this.#timeMin = s;
    }
    if (key > this.#timeMaxKey || (key === this.#timeMaxKey && s > this.#timeMax!)) {
      this.#timeMaxKey = key;
      this.#timeMax = s;
    }
  }

  #minMax(type: ValueType): [ColumnSummary["min"], ColumnSummary["max"]] {
    switch (type) {
      case "integer":
      case "float":
        return this.#moments.count === 0 ? [null, null] : [this.#moments.min, this.#moments.max];
      case "date":
      case "datetime":
        return [this.#timeMin, this.#timeMax];
      case "boolean":
        return [this.#falses === 0, this.#trues > 0];
      case "null":
        return [null, null];
      default:
        return [this.#textMin, this.#textMax];
    }
  }

  #quantileSummary(): QuantileSummary | null {
    let q: (p: number) => number;
    if (this.#numbers !== null) {
      if (this.#length === 0) return null;
      const sorted = this.#sortNumbers();
      q = (p) => linearQuantile(sorted, p);
    } else {
      const k = this.#kll;
      if (k.n === 0) return null;
      q = (p) => k.quantile(p)!;
    }
    return {
      p01: q(0.01),
      p05: q(0.05),
      p25: q(0.25),
      p50: q(0.5),
      p75: q(0.75),
      p95: q(0.95),
      p99: q(0.99),
    };
  }

  #checkCompatible(other: ColumnProfile): void {
    if (
      other.#hll.precision !== this.#hll.precision || other.#kll.k !== this.#kll.k ||
      other.#top.capacity !== this.#top.capacity || !sameBounds(other.#bounds, this.#bounds)
    ) {
      throw new RangeError("column profile: cannot merge profiles with different options");
    }
  }
}

/** The largest spare number buffer of at least `min` numbers and at most `max`, if any. */
function takeSpareNumbers(min: number, max: number): Float64Array | undefined {
  let best = -1;
  for (let i = 0; i < spareNumbers.length; i++) {
    const n = spareNumbers[i]!.length;
    if (n >= min && n <= max && (best < 0 || n > spareNumbers[best]!.length)) best = i;
  }
  return best < 0 ? undefined : spareNumbers.splice(best, 1)[0];
}

function bound(n: number, name: string): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`column profile: ${name} must be a non-negative integer, got ${n}`);
  }
  return n;
}

function sameBounds(a: Bounds, b: Bounds): boolean {
  return a.distinct === b.distinct && a.chars === b.chars && a.numbers === b.numbers;
}

/** The bounds a serialized profile was made with (a version 1 profile: the defaults). */
function boundsOf(json: ColumnProfileJSON): Bounds {
  if (json.v === 1 || json.exact === undefined) {
    return { distinct: EXACT_DISTINCT, chars: EXACT_CHARS, numbers: EXACT_NUMBERS };
  }
  const [distinct, chars, numbers] = json.exact;
  return {
    distinct: bound(distinct, "exactDistinct"),
    chars: bound(chars, "exactChars"),
    numbers: bound(numbers, "exactNumbers"),
  };
}

/**
 * The exact forms of a serialized profile, checked against its counts: `counts` `null` past
 * the bounds; `numbers` `null` past the bound or when not `wanted`, else the numbers, sorted.
 */
function exactForms(
  json: ColumnProfileJSON,
  types: Float64Array,
  moments: Moments,
  wanted: boolean,
): { counts: [string[], number[]] | null; numbers: Float64Array | null } {
  if (json.v === 1) return { counts: null, numbers: null };
  let nonNull = 0;
  for (let i = 1; i < 8; i++) nonNull += types[i]!;
  const counts = json.counts ?? null;
  if (counts !== null) {
    const [keys, n] = Array.isArray(counts) ? counts : [];
    if (!Array.isArray(keys) || !Array.isArray(n) || keys.length !== n.length) {
      throw new TypeError("column profile: bad counts");
    }
    let total = 0;
    for (let i = 0; i < keys.length; i++) {
      const c = n[i];
      if (typeof keys[i] !== "string" || !Number.isSafeInteger(c) || c! <= 0) {
        throw new TypeError("column profile: bad counts");
      }
      total += c!;
    }
    if (total !== nonNull) throw new TypeError("column profile: counts do not add up");
  }
  const text = json.numbers ?? null;
  if (text !== null && typeof text !== "string") throw new TypeError("column profile: bad numbers");
  if (text === null || !wanted) return { counts, numbers: null };
  let numbers: Float64Array;
  if (text === "counts") {
    if (counts === null || moments.count !== nonNull) {
      throw new TypeError("column profile: numbers are not the counts' values");
    }
    numbers = new Float64Array(moments.count);
    let at = 0;
    const [keys, n] = counts;
    for (let i = 0; i < keys.length; i++) numbers.fill(Number(keys[i]), at, at += n[i]!);
    numbers.sort();
  } else numbers = decodeSorted(text);
  if (numbers.length !== moments.count) {
    throw new TypeError("column profile: numbers do not add up");
  }
  for (let i = 0; i < numbers.length; i++) {
    if (numbers[i]! - numbers[i]! !== 0) throw new TypeError("column profile: bad numbers");
  }
  return { counts, numbers };
}
