/** Test helpers: seeded PRNG and exact reference statistics. */

/** Mulberry32: small deterministic PRNG returning floats in [0, 1). */
export { seeded as prng } from "../../../tests/fixtures/seeded.ts";

/** A standard normal deviate (Box–Muller) from a uniform source. */
export function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Number of values < x and ≤ x in an ascending array. */
export function ranks(sorted: Float64Array, x: number): { below: number; atMost: number } {
  return { below: bound(sorted, x, false), atMost: bound(sorted, x, true) };
}

function bound(sorted: Float64Array, x: number, inclusive: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (inclusive ? sorted[mid]! <= x : sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Normalized rank error of answering `q` with `x`: 0 when some position of x in the sorted data
 * has rank q, else the distance from q to the nearest such rank.
 */
export function rankError(sorted: Float64Array, q: number, x: number): number {
  const { below, atMost } = ranks(sorted, x);
  const n = sorted.length;
  if (q * n < below) return below / n - q;
  if (q * n > atMost) return q - atMost / n;
  return 0;
}

/** Relative difference |a − b| / max(|a|, |b|) (0 when both are 0). */
export function relDiff(a: number, b: number): number {
  const scale = Math.max(Math.abs(a), Math.abs(b));
  return scale === 0 ? 0 : Math.abs(a - b) / scale;
}
