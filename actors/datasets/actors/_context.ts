/**
 * The dataset pipeline's shared context: its options, input schemas, the dataset row and the
 * helpers more than one of its actors uses.
 */
import { z } from "zod";
import { InputError, type SqlDatabase, type SqlExecutor } from "@troupe/runtime";
import { type ChunkFailure, ChunkProcessor } from "../chunk_work.ts";
import type { BlobStore } from "../../../db/blobs/port.ts";
import { sqlState } from "../../../db/errors.ts";
import type { Encoding, ParseOptions, SplitFormat } from "../ingest/mod.ts";
import type { CleaningRules } from "../ingest/clean.ts";
import { BinaryContentError, findNul } from "../ingest/binary.ts";
import { type DatasetOptions, MAX_COLUMNS, MAX_HEADER_BYTES } from "../options.ts";
import type { ColumnInfo } from "../store.ts";

export interface DatasetPipelineOptions {
  db: SqlDatabase;
  blobs: BlobStore;
  /** Target chunk size in bytes (main.ts passes DATASET_CHUNK_BYTES, 1 MiB). @default 4 MiB */
  chunkBytes?: number;
  /**
   * Chunk messages running at once in one process (the server: `DATASET_CHUNK_CONCURRENCY`).
   * @default 2
   */
  chunkConcurrency?: number;
  /** Where chunks are parsed, cleaned and profiled: workers, or this thread (main.ts picks it). */
  processor: ChunkProcessor;
  /** Chunks one split step cuts before handing the rest of the file on. @default 32 */
  splitStepChunks?: number;
  /** Chunk profiles the merge reads at a time. @default 4 */
  mergePage?: number;
  /**
   * How long one delivery of `dataset.split` or `dataset.merge` may go on taking work, in ms (a
   * `StepBudget`): past half of it, a step commits its progress and hands the rest of the file
   * (the split) or of the chunks (the merge) to the next message. 0: none. @default 0
   */
  deliveryBudgetMs?: number;
  /** Called when a dataset changes (ready, failed): cache invalidation. */
  onChange?: (datasetId: string) => Promise<void>;
  /**
   * Most columns a dataset may have (a CSV header, the keys of JSON records): a wider file
   * fails with `TOO_MANY_COLUMNS`. PostgreSQL's own limit is 1,600 columns a table.
   * @default 1000
   */
  maxColumns?: number;
  /** Longest CSV header line, in bytes: a longer one fails with `HEADER_TOO_LONG`. @default 1 MiB */
  maxHeaderBytes?: number;
}

export const idInput = z.object({ datasetId: z.string().uuid() });
/** `dataset.merge`'s input: the dataset, and where this step starts (absent: at chunk 0). */
export const mergeInput = idInput.extend({
  step: z.object({
    /**
     * The last chunk the steps before folded (the merge so far is in the actor's state); -1:
     * none (a dataset without chunks whose fold spent the budget).
     */
    after: z.number().int().min(-1),
  }).optional(),
});
export const splitInput = z.object({
  datasetId: z.string().uuid(),
  /** Where the previous step stopped (a chunk boundary). */
  resume: z.object({
    start: z.number().int().min(0),
    index: z.number().int().min(1),
    firstLine: z.number().int().min(1),
    firstRecord: z.number().int().min(1),
  }).optional(),
});
export const chunkInput = z.object({ datasetId: z.string().uuid(), idx: z.number().int().min(0) });
export const chunkDoneInput = z.object({
  datasetId: z.string().uuid(),
  idx: z.number().int().min(0),
  failed: z.object({ code: z.string(), message: z.string() }).optional(),
});

interface DatasetRow {
  id: string;
  status: string;
  format: string;
  options: DatasetOptions;
  blob_sha256: string;
  chunk_count: number | null;
  columns: ColumnInfo[] | null;
  header: string[] | null;
  size: number;
}

export async function loadDataset(db: SqlExecutor, id: string): Promise<DatasetRow | null> {
  const rows = await db.query<DatasetRow>(
    `SELECT id, status, format, options, blob_sha256, chunk_count, columns,
       options->'_header' AS header, size_bytes::float8 AS size
     FROM troupe_datasets WHERE id = $1`,
    [id],
  );
  return rows[0] ?? null;
}

/** The cleaning rules of the upload options, as the ingest library takes them. */
export function rules(o: DatasetOptions): CleaningRules {
  const { nullTokens, ...rest } = o.cleaning;
  return nullTokens ? { ...rest, nullTokens } : rest;
}

export function splitFormat(o: DatasetOptions): SplitFormat {
  if (o.format === "ndjson") return { kind: "ndjson" };
  if (o.format === "json") return { kind: "json-array" };
  return {
    kind: "csv",
    delimiter: o.delimiter ?? (o.format === "tsv" ? "\t" : ","),
    // TSV has no quoting: a `"` in its text is a character.
    quote: o.quote ?? (o.format === "tsv" ? "" : '"'),
  };
}

export function parseOptions(
  o: DatasetOptions,
  encoding: Encoding,
  maxColumns: number,
): ParseOptions {
  const f = splitFormat(o);
  return {
    format: f.kind,
    ...(f.kind === "csv" ? { delimiter: f.delimiter ?? ",", quote: f.quote ?? '"' } : {}),
    encoding,
    hasHeader: o.header,
    errorPolicy: o.errorPolicy,
    maxColumns,
    // Bytes invalid in the file's encoding fail the dataset, never a silent U+FFFD.
    fatalEncoding: true,
  };
}

/**
 * A column name PostgreSQL cannot keep in `jsonb` (a NUL, half a surrogate pair): the names go
 * into the dataset's and the chunks' JSON, in the message's transaction, where a refusal would
 * be retried.
 */
export function badColumnName(names: readonly string[]): ChunkFailure | null {
  const bad = names.find((n) => n.includes("\u0000") || !n.isWellFormed());
  if (bad === undefined) return null;
  return {
    code: "BAD_COLUMN_NAME",
    message: `a column name holds a NUL character or an unpaired surrogate: ${
      JSON.stringify(bad.replaceAll("\u0000", "").toWellFormed().slice(0, 100))
    }`,
  };
}

/**
 * A database error that the file's content caused and that a retry would meet again: a value
 * out of the column type's range (SQLSTATE class 22) or too many columns (54011).
 */
export function inputFailure(err: unknown): ChunkFailure | null {
  const state = sqlState(err);
  if (state === "54011") {
    return { code: "TOO_MANY_COLUMNS", message: "the file has more columns than a table can hold" };
  }
  if (state?.startsWith("22")) {
    const message = err instanceof Error ? err.message : String(err);
    return { code: "BAD_VALUE", message: `a value cannot be stored: ${message}` };
  }
  return null;
}

/**
 * A NUL in a chunk (the upload sniffed only the file's head): the file is binary, and
 * PostgreSQL text cannot hold the character, so the dataset fails here with its line rather
 * than at the COPY.
 */
export function nulFailure(
  bytes: Uint8Array,
  encoding: Encoding,
  firstLine: number,
): ChunkFailure | null {
  const line = findNul(bytes, encoding, firstLine);
  if (line < 0) return null;
  return { code: "BINARY_CONTENT", message: new BinaryContentError("binary", line).message, line };
}

/** The SQL column of a column name: stable across chunks, never user text. */
export async function columnKey(name: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(name));
  return "c_" + [...new Uint8Array(digest).slice(0, 8)]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function markFailed(
  tx: SqlExecutor,
  datasetId: string,
  error: { code: string; message: string; line?: number },
): Promise<void> {
  await tx.query(
    `UPDATE troupe_datasets SET status = 'failed', error = $2::jsonb, version = version + 1,
       updated_at = now()
     WHERE id = $1 AND status <> 'failed'`,
    [datasetId, JSON.stringify(error)],
  );
}

/** What every dataset actor shares: the adapters, the limits and the pipeline's own helpers. */
export interface DatasetContext {
  o: DatasetPipelineOptions;
  db: SqlDatabase;
  blobs: BlobStore;
  changed: (datasetId: string) => Promise<void>;
  processor: ChunkProcessor;
  stepChunks: number;
  maxColumns: number;
  maxHeaderBytes: number;
  failInput: (datasetId: string, failure: ChunkFailure) => Promise<never>;
  mergePage: number;
  /** See {@link DatasetPipelineOptions.deliveryBudgetMs}. */
  budgetMs: number;
  byCopy: (d: DatasetRow) => boolean;
}

/** The context of `o`, with the defaults applied. */
export function datasetContext(o: DatasetPipelineOptions): DatasetContext {
  const { db, blobs } = o;
  const changed = (id: string) => o.onChange?.(id) ?? Promise.resolve();
  const { processor } = o;
  const stepChunks = Math.max(1, o.splitStepChunks ?? 32);
  const maxColumns = o.maxColumns ?? MAX_COLUMNS;
  const maxHeaderBytes = o.maxHeaderBytes ?? MAX_HEADER_BYTES;
  /**
   * Ends a dataset for bad input: marked failed with the failure's code (and line) now, and an
   * `InputError` thrown so that the job ends `failed` without a retry (a retry of the same
   * bytes fails the same way). Marking is idempotent: the dead-letter hook's report of the same
   * failure changes nothing.
   */
  const failInput = async (datasetId: string, failure: ChunkFailure): Promise<never> => {
    await markFailed(db, datasetId, failure);
    await changed(datasetId);
    throw new InputError(failure.code, failure.message, {
      ...(failure.line !== undefined ? { details: { line: failure.line } } : {}),
    });
  };
  const mergePage = Math.max(1, o.mergePage ?? 4);
  /**
   * Whether a dataset's rows go in by COPY, in a table typed from chunk 0 (chunks processed by
   * the processor); else by INSERT with duplicate rows dropped (or a driver without COPY).
   */
  const byCopy = (d: DatasetRow) =>
    !d.options.cleaning.dropDuplicateRows && db.copyIn !== undefined;
  return {
    o,
    db,
    blobs,
    changed,
    processor,
    stepChunks,
    maxColumns,
    maxHeaderBytes,
    failInput,
    mergePage,
    budgetMs: o.deliveryBudgetMs ?? 0,
    byCopy,
  };
}
