/**
 * Streaming moments: exact count, nulls, min and max; mean and second central moment by
 * Welford's update, merged by Chan et al.'s parallel formula.
 *
 * Merging is exact for `count`, `nulls`, `min`, `max`; `mean` and `variance` of a merge equal
 * those of a single pass up to floating-point rounding (typically ~1e-15 relative).
 * @module
 */

/** Serialized {@link Moments}. Numbers are finite doubles, so JSON keeps them exactly. */
export interface MomentsJSON {
  count: number;
  nulls: number;
  /** `null` when `count` is 0. */
  min: number | null;
  /** `null` when `count` is 0. */
  max: number | null;
  mean: number;
  /** Sum of squared deviations from the mean. */
  m2: number;
}

/**
 * Count, nulls, min, max, mean and variance of a stream of numbers, mergeable.
 * Non-finite numbers (`NaN`, `±Infinity`) are counted as nulls.
 */
export class Moments {
  /** Number of (finite) values. */
  count = 0;
  /** Number of nulls (including non-finite numbers). */
  nulls = 0;
  /** Smallest value (`Infinity` while empty). `-0` is stored as `0`. */
  min = Infinity;
  /** Largest value (`-Infinity` while empty). `-0` is stored as `0`. */
  max = -Infinity;
  /** Running mean (0 while empty). */
  mean = 0;
  /** Sum of squared deviations from the mean. */
  m2 = 0;

  /** Adds one value (Welford). */
  add(x: number): void {
    if (x - x !== 0) { // NaN or ±Infinity
      this.nulls++;
      return;
    }
    const n = ++this.count;
    const d = x - this.mean;
    this.mean += d / n;
    this.m2 += d * (x - this.mean);
    if (x < this.min) this.min = x + 0; // + 0 turns -0 into 0
    if (x > this.max) this.max = x + 0;
  }

  /** Counts one null. */
  addNull(): void {
    this.nulls++;
  }

  /** Folds `other` into this (Chan's parallel formula); `other` is unchanged. */
  merge(other: Moments): this {
    this.nulls += other.nulls;
    const nb = other.count;
    if (nb === 0) return this;
    const na = this.count;
    if (na === 0) {
      this.count = nb;
      this.mean = other.mean;
      this.m2 = other.m2;
    } else {
      const n = na + nb;
      const d = other.mean - this.mean;
      this.mean += d * (nb / n);
      this.m2 += other.m2 + d * d * (na / n) * nb;
      this.count = n;
    }
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
    return this;
  }

  /** Population variance (divides by n); `null` when empty. */
  get variance(): number | null {
    return this.count === 0 ? null : this.m2 / this.count;
  }

  /** Sample variance (divides by n − 1); `null` when fewer than 2 values. */
  get sampleVariance(): number | null {
    return this.count < 2 ? null : this.m2 / (this.count - 1);
  }

  /** Population standard deviation; `null` when empty. */
  get stddev(): number | null {
    const v = this.variance;
    return v === null ? null : Math.sqrt(v);
  }

  /** Sample standard deviation; `null` when fewer than 2 values. */
  get sampleStddev(): number | null {
    const v = this.sampleVariance;
    return v === null ? null : Math.sqrt(v);
  }

  /** A copy. */
  clone(): Moments {
    return Moments.fromJSON(this.toJSON());
  }

  /** Serialized form (exact: finite doubles survive JSON). */
  toJSON(): MomentsJSON {
    const empty = this.count === 0;
    return {
      count: this.count,
      nulls: this.nulls,
      min: empty ? null : this.min,
      max: empty ? null : this.max,
      mean: this.mean,
      m2: this.m2,
    };
  }

  /** Inverse of {@link Moments.toJSON}; throws `TypeError` on malformed input. */
  static fromJSON(json: MomentsJSON): Moments {
    const m = new Moments();
    m.count = nonNegativeInteger(json.count, "count");
    m.nulls = nonNegativeInteger(json.nulls, "nulls");
    m.mean = finite(json.mean, "mean");
    m.m2 = finite(json.m2, "m2");
    if (m.count > 0) {
      m.min = finite(json.min, "min");
      m.max = finite(json.max, "max");
    }
    return m;
  }
}

function finite(v: unknown, name: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new TypeError(`moments: bad ${name}`);
  return v;
}

function nonNegativeInteger(v: unknown, name: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new TypeError(`moments: bad ${name}`);
  return v as number;
}
