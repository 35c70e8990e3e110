/**
 * Mergeable per-column profiles ({@link ColumnProfile}) and per-table profiles
 * ({@link TableProfile}): one per chunk, merged once all chunks are done, stored as JSON.
 *
 * What a column profile tracks, per value:
 * - every value: its type in the type histogram (nulls included);
 * - every non-null value, by its string form (`String(value)`): distinct count (HyperLogLog),
 *   top values (Misra–Gries) and the lexicographic min/max (UTF-16 code-unit order, JS `<`);
 * - finite numbers: moments (count, min, max, mean, variance) and quantiles (KLL);
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
 * Exactness under merge: count, nulls, type histogram, min/max, boolean counts and HLL
 * registers are identical however the data is chunked and merged; mean/variance agree up to
 * rounding; quantiles and (beyond the top-k capacity) top values are within their sketches'
 * stated error. `distinct` is exact while the number of distinct values fits the top-k
 * capacity (the top-k then holds every value), the HLL estimate otherwise.
 * @module
 */
import { hash64Into, type HllJSON, HyperLogLog } from "./hll.ts";
import { Moments, type MomentsJSON } from "./moments.ts";
import { KLL_DEFAULT_K, KLL_DEFAULT_SEED, type KllJSON, KllSketch } from "./quantiles.ts";
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
}

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
  /** Distinct non-null values (exact when `distinctExact`, else HLL estimate). */
  distinct: number;
  distinctExact: boolean;
  topValues: TopEntry[];
  quantiles: QuantileSummary | null;
  types: Record<ValueType, number>;
}

/** Serialized {@link ColumnProfile}. */
export interface ColumnProfileJSON {
  /** Format version. */
  v: 1;
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
}

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
 * object looked up by a different name each value went through V8's megamorphic cache, four
 * times slower, once per value added.
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
  }

  /**
   * Adds a value. `type` is recorded in the type histogram as given (default:
   * {@link valueType} of the value); what the value feeds depends on its JS type (module doc).
   * `null`, `type` `"null"` and non-finite numbers count as nulls. `text`, for a number, is
   * `String(value)` when the caller has it already (it feeds the distinct count and top values).
   */
  add(value: Value, type?: ValueType, text?: string): void {
    if (value === null || type === "null") return this.#addNull();
    if (typeof value === "number") {
      if (value - value !== 0) return this.#addNull();
      this.#types[typeCode(type ?? valueType(value))]!++;
      this.#moments.add(value);
      this.#kll.add(value);
      this.#addText(text ?? String(value));
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

  /** Distinct-count sketch of the string forms (read-only use). */
  get hll(): HyperLogLog {
    return this.#hll;
  }

  /** Heavy hitters of the string forms (read-only use). */
  get top(): TopK {
    return this.#top;
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

  /** Folds `other` into this (same options required); `other` is unchanged. */
  merge(other: ColumnProfile): this {
    this.#checkCompatible(other);
    for (let i = 0; i < 8; i++) this.#types[i]! += other.#types[i]!;
    this.#moments.merge(other.#moments);
    this.#kll.merge(other.#kll);
    this.#hll.merge(other.#hll);
    this.#top.merge(other.#top);
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
   * one's ({@link HyperLogLog.mergeJSON}). Built, each column of each chunk made ~45 KB of
   * short-lived buffers (two register arrays and the decoded bytes), and the process of a 1 GB
   * file's merge (~1,000 chunks) grew by tens of MB before they were collected. Malformed input
   * throws as `fromJSON` does, and then nothing is changed.
   */
  mergeJSON(json: ColumnProfileJSON): this {
    if (json.v !== 1) throw new TypeError(`column profile: unknown version ${String(json.v)}`);
    if (json.quantiles.k !== this.#kll.k || json.top.capacity !== this.#top.capacity) {
      throw new RangeError("column profile: cannot merge profiles with different options");
    }
    const types = typeCounts(json.types);
    const moments = Moments.fromJSON(json.moments);
    const kll = KllSketch.fromJSON(json.quantiles);
    const top = TopK.fromJSON(json.top);
    this.#hll.mergeJSON(json.hll); // checks all of its input before it changes anything
    for (let i = 0; i < 8; i++) this.#types[i]! += types[i]!;
    this.#moments.merge(moments);
    this.#kll.merge(kll);
    this.#top.merge(top);
    if (json.text !== null) this.#addText2(json.text[0], json.text[1]);
    if (json.time !== null) {
      this.#addTime(json.time[0]);
      this.#addTime(json.time[1]);
    }
    this.#falses += json.booleans[0];
    this.#trues += json.booleans[1];
    return this;
  }

  /** Statistics; `topN` top values are reported (default 10). */
  summary(topN = 10): ColumnSummary {
    const type = this.type;
    const numeric = type === "integer" || type === "float";
    const m = this.#moments;
    const [min, max] = this.#minMax(type);
    const exact = this.#top.error === 0;
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
      distinct: exact ? this.#top.size : this.#hll.estimate(),
      distinctExact: exact,
      topValues: this.#top.top(topN),
      quantiles: numeric ? this.#quantileSummary() : null,
      types: this.types,
    };
  }

  /** A copy. */
  clone(): ColumnProfile {
    return ColumnProfile.fromJSON(this.toJSON());
  }

  /** Serialized form: deterministic, and exact (fromJSON gives an equal profile). */
  toJSON(): ColumnProfileJSON {
    const types: Partial<Record<ValueType, number>> = {};
    VALUE_TYPES.forEach((t, i) => {
      if (this.#types[i]! > 0) types[t] = this.#types[i]!;
    });
    return {
      v: 1,
      types,
      moments: this.#moments.toJSON(),
      text: this.#textMin === null ? null : [this.#textMin, this.#textMax!],
      time: this.#timeMin === null ? null : [this.#timeMin, this.#timeMax!],
      booleans: [this.#falses, this.#trues],
      quantiles: this.#kll.toJSON(),
      hll: this.#hll.toJSON(),
      top: this.#top.toJSON(),
    };
  }

  /** Inverse of {@link ColumnProfile.toJSON}; throws on malformed input. */
  static fromJSON(json: ColumnProfileJSON): ColumnProfile {
    if (json.v !== 1) throw new TypeError(`column profile: unknown version ${String(json.v)}`);
    const p = new ColumnProfile({
      hllPrecision: json.hll.p,
      quantileK: json.quantiles.k,
      topCapacity: json.top.capacity,
    });
    p.#types.set(typeCounts(json.types));
    p.#moments = Moments.fromJSON(json.moments);
    p.#kll = KllSketch.fromJSON(json.quantiles);
    p.#hll = HyperLogLog.fromJSON(json.hll);
    p.#top = TopK.fromJSON(json.top);
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

  #addText(s: string): void {
    hash64Into(s, hash);
    const h1 = hash[0]!;
    const h2 = hash[1]!;
    this.#hll.addHash(h1, h2);
    this.#top.addHashed(s, h1, h2);
    if (this.#textMin === null) {
      this.#textMin = s;
      this.#textMax = s;
    } else if (s < this.#textMin) this.#textMin = s;
    else if (s > this.#textMax!) this.#textMax = s;
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
    const k = this.#kll;
    if (k.n === 0) return null;
    const q = (p: number): number => k.quantile(p)!;
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
      other.#top.capacity !== this.#top.capacity
    ) {
      throw new RangeError("column profile: cannot merge profiles with different options");
    }
  }
}
