/**
 * Dataset ingest library (pure: no database, no HTTP): encoding detection and decoding,
 * streaming record-boundary splitting, chunk parsing, type inference and cleaning.
 *
 * Typical pipeline: `detectEncoding` on the first bytes → `splitStream` over the upload →
 * one message per {@link ChunkBoundary} → per chunk `parseChunk` (chunk 0 first, for the
 * header) → `TypeInference` / `mergeStats` → `cleanRows` with the merged types → store,
 * deduplicating across chunks with `rowHash`.
 * @module
 */
export * from "./errors.ts";
export {
  bomLength,
  type DecodeOptions,
  decodeStream,
  decodeText,
  type DetectedEncoding,
  detectEncoding,
  type Encoding,
  findInvalidUtf16,
  findInvalidUtf8,
  SNIFF_BYTES,
  sniffEncoding,
} from "./encoding.ts";
export {
  type Chunk,
  type ChunkBoundary,
  chunkStream,
  DEFAULT_CHUNK_BYTES,
  LONG_QUOTED_BYTES,
  LONG_QUOTED_LINES,
  type SplitFormat,
  type SplitOptions,
  splitStream,
  type SplitWarning,
} from "./split.ts";
export {
  checkCsvHeader,
  checkedHeaderStream,
  type HeaderLimits,
  HeaderScanner,
  type HeaderScanOptions,
} from "./header.ts";
export {
  type ChunkPosition,
  type ErrorPolicy,
  MAX_ERRORS,
  parseChunk,
  type ParseOptions,
  type ParseResult,
  type RowIssue,
  uniqueNames,
} from "./parse.ts";
export {
  type ColumnStats,
  type ColumnType,
  inferColumns,
  inferValue,
  joinTypes,
  mergeStats,
  NULL_TOKENS,
  TypeInference,
  type ValueOptions,
} from "./infer.ts";
export {
  type CleaningRules,
  type CleanResult,
  cleanRows,
  cleanValue,
  type ColumnPlan,
  normalizeDatetime,
  normalizeValue,
  planColumns,
  rowHash,
} from "./clean.ts";
