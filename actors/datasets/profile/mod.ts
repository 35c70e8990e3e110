/**
 * Mergeable dataset profiles: per-chunk column statistics and sketches that merge exactly
 * (counts, nulls, min/max, type histogram, HLL registers; value counts and numbers while a
 * column is within its bounds, counted over the whole dataset) or within stated error
 * (quantiles, distinct counts and heavy hitters past the bounds), with compact deterministic
 * JSON for storage in `jsonb`.
 *
 * Typical use: per chunk `new TableProfile(header)` → `addRow(values, columnTypes)` for each
 * cleaned row → store `toJSON()`; once all chunks are done, `TableProfile.fromJSON` each and
 * `merge` them → `summary()`.
 * @module
 */
export {
  ColumnProfile,
  type ColumnProfileJSON,
  type ColumnSummary,
  EXACT_CHARS,
  EXACT_DISTINCT,
  EXACT_NUMBERS,
  joinValueTypes,
  type ProfileOptions,
  type QuantileSummary,
  type Value,
  VALUE_TYPES,
  type ValueType,
  valueType,
} from "./column.ts";
export { TableProfile, type TableProfileJSON, type TableSummary } from "./table.ts";
export { hash64, HLL_MAX_PRECISION, HLL_MIN_PRECISION, type HllJSON, HyperLogLog } from "./hll.ts";
export { Moments, type MomentsJSON } from "./moments.ts";
export {
  KLL_DEFAULT_K,
  KLL_DEFAULT_SEED,
  type KllJSON,
  kllRankError,
  KllSketch,
  linearQuantile,
} from "./quantiles.ts";
export { type TopEntry, TopK, TOPK_DEFAULT_CAPACITY, type TopKJSON } from "./topk.ts";
export { parseTime } from "./time.ts";
