/**
 * The dataset pipeline, as actors (one short message per step, each idempotent):
 *
 * 1. `dataset.split` (key `dataset:<id>`): streams the stored file, cuts it into ~1 MiB
 *    chunks at record boundaries, reads the header and types from chunk 0, creates the rows
 *    table and fans out one `dataset.chunk` message per chunk. It works in steps of 32 chunks:
 *    each step sends its chunks and the next step (resuming at the boundary where it stopped),
 *    so chunks run while the rest is cut; the last step sets the chunk count.
 * 2. `dataset.chunk` (key `dataset:<id>:<n>`, chunks run in parallel): reads its byte range,
 *    parses, cleans, infers types, inserts its rows with deterministic ids (`_row` = chunk
 *    and position: a redelivered chunk adds nothing) and stores its mergeable profile, all
 *    in the message's transaction; then tells the dataset.
 * 3. `dataset.chunk-done` (key `dataset:<id>`: one at a time per dataset): counts finished
 *    chunks; the last one sends `dataset.merge`. A chunk that fails for good reports here
 *    too (`onDeadLetter`), and the dataset fails with its error: no fan-in waits forever.
 * 4. `dataset.merge` (key `dataset:<id>`): merges the chunk profiles, converts the text
 *    columns to their merged types, and marks the dataset ready.
 *
 * Bad input (a header over the column or length limit, JSON keys past the column limit, a
 * bad row under the `fail` policy, a value PostgreSQL refuses...) ends the dataset `failed`
 * with its own code at once: the handler that meets it marks the dataset and throws
 * `InputError`, which the runtime does not retry (the same bytes would fail the same way).
 *
 * Memory: one chunk (plus its parsed rows) per running chunk message; the file is never held.
 */
import { z } from "zod";
import { defineActor } from "../runtime/define.ts";
import { InputError, NonRetryableError } from "../runtime/errors.ts";
import type { CopyData, SqlDatabase, SqlExecutor } from "../runtime/ports.ts";
import {
  cellText,
  type ChunkFailure,
  type ChunkJob,
  ChunkProcessor,
  cleanChunk,
  ingestFailure,
  ROW_ID_BASE,
} from "./chunk_work.ts";
import type { TableProfileJSON } from "./profile/mod.ts";
import type { BlobStore } from "../../db/blobs/port.ts";
import { datasetReportActor } from "./report_job.ts";
import { sqlState } from "../../db/errors.ts";
import {
  chunkStream,
  type Encoding,
  parseChunk,
  type ParseOptions,
  SNIFF_BYTES,
  sniffEncoding,
  type SplitFormat,
  type SplitWarning,
} from "./ingest/mod.ts";
import { type CleaningRules, planColumns } from "./ingest/clean.ts";
import { checkCsvHeader } from "./ingest/header.ts";
import { BinaryContentError, findNul } from "./ingest/binary.ts";
import { type ColumnType, joinTypes } from "./ingest/infer.ts";
import { type DatasetOptions, MAX_COLUMNS, MAX_HEADER_BYTES } from "./options.ts";
import { sqlType } from "./query.ts";
import { type ColumnInfo, rowsTable } from "./store.ts";
import { ChunkProfileMerge, profileRows } from "./profiles.ts";

export interface DatasetPipelineOptions {
  db: SqlDatabase;
  blobs: BlobStore;
  /** Target chunk size in bytes (main.ts passes DATASET_CHUNK_BYTES, 1 MiB). @default 4 MiB */
  chunkBytes?: number;
  /** Chunk messages running at once in one process. @default 3 */
  chunkConcurrency?: number;
  /**
   * Where chunks are parsed, cleaned and profiled (workers, or this thread).
   * @default this thread
   */
  processor?: ChunkProcessor;
  /** Chunks one split step cuts before handing the rest of the file on. @default 32 */
  splitStepChunks?: number;
  /** Chunk profiles the merge reads at a time. @default 4 */
  mergePage?: number;
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

const idInput = z.object({ datasetId: z.string().uuid() });
const splitInput = z.object({
  datasetId: z.string().uuid(),
  /** Where the previous step stopped (a chunk boundary). */
  resume: z.object({
    start: z.number().int().min(0),
    index: z.number().int().min(1),
    firstLine: z.number().int().min(1),
    firstRecord: z.number().int().min(1),
  }).optional(),
});
const chunkInput = z.object({ datasetId: z.string().uuid(), idx: z.number().int().min(0) });
const chunkDoneInput = z.object({
  datasetId: z.string().uuid(),
  idx: z.number().int().min(0),
  failed: z.object({ code: z.string(), message: z.string() }).optional(),
});

/** Rows inserted per statement. */
const INSERT_BATCH = 2000;

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

async function loadDataset(db: SqlExecutor, id: string): Promise<DatasetRow | null> {
  const rows = await db.query<DatasetRow>(
    `SELECT id, status, format, options, blob_sha256, chunk_count, columns,
       options->'_header' AS header, size_bytes::float8 AS size
     FROM troupe_datasets WHERE id = $1`,
    [id],
  );
  return rows[0] ?? null;
}

/** The cleaning rules of the upload options, as the ingest library takes them. */
function rules(o: DatasetOptions): CleaningRules {
  const { nullTokens, ...rest } = o.cleaning;
  return nullTokens ? { ...rest, nullTokens } : rest;
}

function splitFormat(o: DatasetOptions): SplitFormat {
  if (o.format === "ndjson") return { kind: "ndjson" };
  if (o.format === "json") return { kind: "json-array" };
  return {
    kind: "csv",
    delimiter: o.delimiter ?? (o.format === "tsv" ? "\t" : ","),
    // TSV has no quoting: a `"` in its text is a character.
    quote: o.quote ?? (o.format === "tsv" ? "" : '"'),
  };
}

function parseOptions(o: DatasetOptions, encoding: Encoding, maxColumns: number): ParseOptions {
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
function badColumnName(names: readonly string[]): ChunkFailure | null {
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
function inputFailure(err: unknown): ChunkFailure | null {
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
function nulFailure(bytes: Uint8Array, encoding: Encoding, firstLine: number): ChunkFailure | null {
  const line = findNul(bytes, encoding, firstLine);
  if (line < 0) return null;
  return { code: "BINARY_CONTENT", message: new BinaryContentError("binary", line).message, line };
}

/** The SQL column of a column name: stable across chunks, never user text. */
async function columnKey(name: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(name));
  return "c_" + [...new Uint8Array(digest).slice(0, 8)]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function markFailed(
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

export function datasetActors(o: DatasetPipelineOptions) {
  const { db, blobs } = o;
  const changed = (id: string) => o.onChange?.(id) ?? Promise.resolve();
  const processor = o.processor ?? new ChunkProcessor(0);
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

  const split = defineActor({
    name: "dataset.split",
    input: splitInput,
    key: (i) => `dataset:${i.datasetId}`,
    exposed: false,
    retries: 3,
    timeoutMs: 30 * 60_000,
    concurrency: 2,
    onDeadLetter: (i, error) => ({
      actor: "dataset.chunk-done",
      input: {
        datasetId: i.datasetId,
        idx: 0,
        failed: { code: error.code, message: error.message },
      },
    }),
    handler: async ({ datasetId, resume }, ctx) => {
      const d = await loadDataset(db, datasetId);
      if (!d || d.status !== (resume ? "processing" : "uploaded")) {
        return { skipped: d?.status ?? "deleted" };
      }
      const stored = (d.options as Record<string, unknown>)._encoding as Encoding | undefined;
      const encoding = resume && stored ? stored : d.options.encoding === "auto"
        ? sniffEncoding(
          await blobs.bytes(d.blob_sha256, { start: 0, end: Math.min(d.size, SNIFF_BYTES) }),
          d.size <= SNIFF_BYTES,
        )
        : d.options.encoding;
      // A step cuts up to `stepChunks` chunks, sends them out and hands the rest of the file
      // to the next step (CSV, NDJSON): the first chunks run while the file is still being
      // cut. A JSON array is cut in one step (its scanner cannot resume mid-array).
      const format = splitFormat(d.options);
      const resumable = format.kind !== "json-array";
      const boundaries: { idx: number; start: number; end: number; firstLine: number }[] = [];
      let next: { start: number; index: number; firstLine: number; firstRecord: number } | null =
        null;
      let header: string[] = [];
      // Typed from the start (COPY path): the rows table takes chunk 0's column types, so the
      // values are converted as they are copied in, in parallel, not in a table rewrite at
      // the merge. Later chunks widen a column when they need to.
      const typed = byCopy(d);
      let firstTypes = new Map<string, ColumnType>();
      const warnings: SplitWarning[] = [];
      const stream = await blobs.read(d.blob_sha256, { start: resume?.start ?? 0 });
      try {
        for await (
          const chunk of chunkStream(stream, {
            format,
            encoding,
            ...(o.chunkBytes ? { targetChunkBytes: o.chunkBytes } : {}),
            ...(resume ? { resume } : {}),
            onWarning: (w) => warnings.push(w),
          }, {
            // Only chunk 0's bytes are read here (its header and types): no other chunk is
            // copied out into a fresh buffer only to be thrown away.
            keep: (index) => index === 0 && format.kind === "csv",
          })
        ) {
          ctx.signal.throwIfAborted();
          const b = chunk.boundary;
          if (resumable && boundaries.length >= stepChunks) {
            next = {
              start: b.start,
              index: b.index,
              firstLine: b.firstLine,
              firstRecord: b.firstRecord,
            };
            break;
          }
          if (b.index === 0 && format.kind === "csv") {
            const nul = nulFailure(chunk.bytes, encoding, b.firstLine);
            if (nul) return await failInput(datasetId, nul);
            // Before any parse: a header of a million columns is refused in one pass over its
            // bytes, not after a parse that makes a million strings.
            checkCsvHeader(chunk.bytes, {
              maxColumns,
              maxBytes: maxHeaderBytes,
              delimiter: format.delimiter ?? ",",
              encoding,
            });
            const parse: ParseOptions = {
              ...parseOptions(d.options, encoding, maxColumns),
              errorPolicy: "skip",
            };
            if (!typed) {
              header = parseChunk(chunk.bytes, parse).header;
            } else {
              // One parse gives the header and chunk 0's types.
              const first = cleanChunk(chunk.bytes, { idx: 0, parse, cleaning: rules(d.options) });
              if (first.kind === "failed") return await failInput(datasetId, first.failure);
              header = first.sourceHeader;
              firstTypes = new Map(first.header.map((name, i) => [name, first.types[i]!]));
            }
          }
          boundaries.push({ idx: b.index, start: b.start, end: b.end, firstLine: b.firstLine });
          ctx.progress(Math.floor((b.end / Math.max(1, d.size)) * 90), `${b.index + 1} chunks`);
        }
      } catch (err) {
        const failure = err instanceof InputError ? null : ingestFailure(err);
        if (!failure) throw err;
        await failInput(datasetId, failure);
      } finally {
        if (next) await stream.cancel().catch(() => {});
      }
      const badName = badColumnName(header);
      if (badName) return await failInput(datasetId, badName);
      const total = next ? null : (boundaries.at(-1)?.idx ?? (resume ? resume.index - 1 : -1)) + 1;
      // This step's warnings (the next step scans its first chunk again), up to MAX_WARNINGS.
      const known = ((d.options as { _warnings?: unknown[] })._warnings ?? []).length;
      const found = warnings.filter((w) => !next || w.line < next.firstLine)
        .slice(0, Math.max(0, MAX_WARNINGS - known));
      const rows = boundaries.map((b) => ({ ...b, first_line: b.firstLine }));
      if (!resume) {
        let plan: { header: string[]; keep: number[] } = { header: [], keep: [] };
        try {
          if (header.length) plan = planColumns(header, rules(d.options));
        } catch (err) {
          const failure = ingestFailure(err);
          if (!failure) throw err;
          return await failInput(datasetId, failure);
        }
        const columns: ColumnInfo[] = [];
        for (const name of plan.header) {
          columns.push({ name, key: await columnKey(name), type: "null" });
        }
        ctx.effect(async (tx) => {
          await tx.query(
            `CREATE TABLE IF NOT EXISTS ${rowsTable(datasetId)} (
               _row bigint PRIMARY KEY
               ${d.options.cleaning.dropDuplicateRows ? ", _hash text UNIQUE" : ""}
               ${
              columns.map((c) => `, "${c.key}" ${sqlType(firstTypes.get(c.name) ?? "string")}`)
                .join("")
            })`,
          );
          await insertChunkRows(tx, datasetId, rows);
          await addWarnings(tx, datasetId, found);
          await tx.query(
            `UPDATE troupe_datasets SET status = 'processing', chunk_count = $2,
               columns = $3::jsonb,
               options = options || jsonb_build_object('_header', $4::jsonb, '_encoding', $5::text),
               updated_at = now()
             WHERE id = $1`,
            [datasetId, total, JSON.stringify(columns), JSON.stringify(header), encoding],
          );
        });
      } else {
        ctx.effect(async (tx) => {
          await insertChunkRows(tx, datasetId, rows);
          await addWarnings(tx, datasetId, found);
          if (total !== null) {
            await tx.query(
              "UPDATE troupe_datasets SET chunk_count = $2, updated_at = now() WHERE id = $1",
              [datasetId, total],
            );
          }
        });
      }
      for (const b of boundaries) ctx.send("dataset.chunk", { datasetId, idx: b.idx });
      // The step that sets the total also sends chunks (a resumed step always has one), and
      // their chunk-done messages come after this commit: the last of them sends the merge.
      if (next) ctx.send("dataset.split", { datasetId, resume: next });
      return {
        chunks: boundaries.length,
        total,
        encoding,
        next: next?.index ?? null,
        ...(found.length ? { warnings: found } : {}),
      };
    },
  });

  const chunk = defineActor({
    name: "dataset.chunk",
    input: chunkInput,
    key: (i) => `dataset:${i.datasetId}:${i.idx}`,
    exposed: false,
    retries: 4,
    timeoutMs: 10 * 60_000,
    concurrency: o.chunkConcurrency ?? 3,
    onDeadLetter: (i, error) => ({
      actor: "dataset.chunk-done",
      input: { ...i, failed: { code: error.code, message: error.message } },
    }),
    handler: async ({ datasetId, idx }, ctx) => {
      const d = await loadDataset(db, datasetId);
      if (!d || d.status !== "processing") return { skipped: d?.status ?? "deleted" };
      const [c] = await db.query<
        { byte_start: number; byte_end: number; first_line: number; status: string }
      >(
        `SELECT byte_start::float8 AS byte_start, byte_end::float8 AS byte_end, first_line, status
         FROM troupe_dataset_chunks WHERE dataset_id = $1 AND idx = $2`,
        [datasetId, idx],
      );
      if (!c) throw new NonRetryableError(`chunk ${idx} of dataset ${datasetId} is unknown`);
      if (c.status === "done") return { skipped: "done" };
      const encoding = ((d.options as Record<string, unknown>)._encoding as Encoding) ?? "utf-8";
      const copyPath = byCopy(d);
      const bytes = await blobs.bytes(
        d.blob_sha256,
        { start: c.byte_start, end: c.byte_end },
        // The processor's buffer: one an earlier chunk filled, not fresh memory each chunk.
        copyPath ? processor.input(c.byte_end - c.byte_start) : undefined,
      );
      const job: ChunkJob = {
        idx,
        parse: {
          ...parseOptions(d.options, encoding, maxColumns),
          // Chunk 0 reads the header row itself; later chunks get it.
          ...(idx > 0 && d.header && d.header.length ? { header: d.header } : {}),
          chunk: { index: idx, firstLine: c.first_line, start: c.byte_start },
        },
        cleaning: rules(d.options),
      };
      const nul = nulFailure(bytes, encoding, c.first_line);
      if (nul) return await failInput(datasetId, nul);
      // COPY, with the CPU part in a worker when there is one; duplicate-row removal (or a
      // driver without COPY) inserts with ON CONFLICT instead.
      const out = copyPath ? await processor.process(bytes, job) : cleanChunk(bytes, job);
      if (out.kind === "failed") return await failInput(datasetId, out.failure);
      const badName = badColumnName(out.header);
      if (badName) return await failInput(datasetId, badName);
      const known = new Map((d.columns ?? []).map((col) => [col.name, col.key]));
      const keys: string[] = [];
      for (const name of out.header) keys.push(known.get(name) ?? await columnKey(name));
      const missing = out.header.filter((name) => !known.has(name));
      ctx.progress(40, `chunk ${idx}: ${out.rowCount} rows parsed`);
      // Rows are written here, outside the message's transaction, with deterministic ids
      // (chunk, position): COPY replaces the chunk's id range in one transaction; the insert
      // path skips existing ids. Either way a retry after a crash adds nothing twice, and
      // the message's commit stays small.
      const table = rowsTable(datasetId);
      let rowCount = out.rowCount;
      let skipped = out.skipped;
      let profile: TableProfileJSON;
      try {
        if (missing.length) {
          // JSON files: columns appear chunk by chunk. Keys come from names, so chunks agree.
          await addColumns(
            db,
            table,
            missing.map((name) => keys[out.header.indexOf(name)]!),
            maxColumns,
          );
        }
        if (out.kind === "done") {
          profile = out.profile;
          await widenColumns(db, table, keys, out.types);
          await replaceChunkRows(db, table, idx, keys, out.copy);
          // Stored: the segments go back to be written again (see ChunkProcessor.recycle).
          processor.recycle(out.copy);
        } else {
          const inserted = await insertRows(
            db,
            table,
            idx,
            keys,
            out.rows,
            out.hashes,
            ctx.signal,
          );
          rowCount = inserted.rows.length;
          skipped += inserted.duplicates;
          profile = profileRows(out.header, out.types, inserted.rows);
        }
      } catch (err) {
        const failure = err instanceof InputError
          ? { code: err.code, message: err.message }
          : inputFailure(err);
        if (!failure) throw err;
        return await failInput(datasetId, failure);
      }
      ctx.progress(80, `chunk ${idx}: ${rowCount} rows stored`);
      const outTypes = out.types;
      const rowErrors = JSON.stringify(out.errors);
      const summary = JSON.stringify({ header: out.header, keys, types: outTypes, profile });
      ctx.effect(async (tx) => {
        await tx.query(
          `UPDATE troupe_dataset_chunks SET status = 'done', row_count = $3, skipped_rows = $4,
             profile = $5::jsonb, row_errors = $6::jsonb, updated_at = now()
           WHERE dataset_id = $1 AND idx = $2`,
          [datasetId, idx, rowCount, skipped, summary, rowErrors],
        );
      });
      ctx.send("dataset.chunk-done", { datasetId, idx });
      return { rows: rowCount, skipped };
    },
  });

  const chunkDone = defineActor({
    name: "dataset.chunk-done",
    input: chunkDoneInput,
    key: (i) => `dataset:${i.datasetId}`,
    exposed: false,
    retries: 5,
    handler: async ({ datasetId, idx, failed }, ctx) => {
      if (failed) {
        const error = { ...failed, message: `chunk ${idx}: ${failed.message}` };
        ctx.effect((tx) => markFailed(tx, datasetId, error));
        ctx.pipeline.fail(error);
        await changed(datasetId);
        return { failed };
      }
      const [s] = await db.query<{ done: number; total: number | null; status: string }>(
        `SELECT (SELECT count(*)::int FROM troupe_dataset_chunks
                 WHERE dataset_id = $1 AND status = 'done') AS done,
                chunk_count AS total, status
         FROM troupe_datasets WHERE id = $1`,
        [datasetId],
      );
      if (!s || s.status !== "processing") return { skipped: s?.status ?? "deleted" };
      ctx.effect(async (tx) => {
        await tx.query(
          "UPDATE troupe_datasets SET chunks_done = greatest(chunks_done, $2), updated_at = now() WHERE id = $1",
          [datasetId, s.done],
        );
      });
      ctx.pipeline.progress(s.done, s.total, "chunks");
      if (s.total !== null && s.done >= s.total) {
        ctx.send("dataset.merge", { datasetId }, { idempotencyKey: `merge:${datasetId}` });
      }
      return { done: s.done, total: s.total };
    },
  });

  const merge = defineActor({
    name: "dataset.merge",
    input: idInput,
    key: (i) => `dataset:${i.datasetId}`,
    exposed: false,
    retries: 3,
    timeoutMs: 30 * 60_000,
    onDeadLetter: (i, error) => ({
      actor: "dataset.chunk-done",
      input: {
        datasetId: i.datasetId,
        idx: 0,
        failed: { code: error.code, message: `merge: ${error.message}` },
      },
    }),
    handler: async ({ datasetId }, ctx) => {
      const d = await loadDataset(db, datasetId);
      if (!d || d.status !== "processing") return { skipped: d?.status ?? "deleted" };
      // Chunk by chunk, a page at a time: the running profile is all the merge holds.
      const keyOf = new Map<string, string>();
      const profiles = new ChunkProfileMerge();
      let rowCount = 0;
      let skipped = 0;
      const rowErrors: { line: number; message: string }[] = [];
      for (let after = -1;;) {
        const chunks = await db.query<{
          idx: number;
          row_count: number;
          skipped_rows: number;
          profile: { header: string[]; keys: string[]; types: ColumnType[]; profile: unknown };
          row_errors: { line: number; message: string }[];
        }>(
          `SELECT idx, row_count, skipped_rows, profile, row_errors FROM troupe_dataset_chunks
           WHERE dataset_id = $1 AND idx > $2 ORDER BY idx LIMIT $3`,
          [datasetId, after, mergePage],
        );
        for (const ch of chunks) {
          ch.profile.header.forEach((name, i) => {
            if (!keyOf.has(name)) keyOf.set(name, ch.profile.keys[i]!);
          });
          profiles.add(ch.profile);
          rowCount += ch.row_count ?? 0;
          skipped += ch.skipped_rows ?? 0;
          for (const e of ch.row_errors ?? []) if (rowErrors.length < 100) rowErrors.push(e);
          after = ch.idx;
        }
        if (chunks.length < mergePage) break;
      }
      // Columns in first-seen order, then those of the split no chunk had.
      const order = [...profiles.types.keys()];
      for (const col of d.columns ?? []) {
        if (!keyOf.has(col.name)) {
          order.push(col.name);
          keyOf.set(col.name, col.key);
        }
      }
      const summaries = profiles.reports(order);
      const columns: ColumnInfo[] = order.map((name) => {
        const type = profiles.types.get(name) ?? "null";
        return {
          name,
          key: keyOf.get(name)!,
          type: type === "null" ? "string" : type,
          profile: summaries.get(name) ?? null,
        };
      });
      ctx.progress(50, "converting columns");
      ctx.effect(async (tx) => {
        // Naive date-times are read as UTC, whatever the server's zone.
        await tx.query("SET LOCAL timezone = 'UTC'");
        // Columns already of their type (typed at creation, widened by chunks) stay as they
        // are; the others (all of them on the insert path) are converted in one rewrite.
        const stored = await storedTypes(tx, rowsTable(datasetId));
        await alterTypes(
          tx,
          rowsTable(datasetId),
          columns.filter((col) => sqlType(col.type) !== sqlType(stored.get(col.key) ?? "string"))
            .map((col) => ({ key: col.key, to: sqlType(col.type) })),
        );
        await tx.query(
          `UPDATE troupe_datasets SET status = 'ready', row_count = $2, skipped_rows = $3,
             columns = $4::jsonb, row_errors = $5::jsonb, chunks_done = chunk_count,
             version = version + 1, updated_at = now()
           WHERE id = $1`,
          [datasetId, rowCount, skipped, JSON.stringify(columns), JSON.stringify(rowErrors)],
        );
      });
      await changed(datasetId);
      ctx.pipeline.complete({ datasetId, rows: rowCount, columns: columns.length });
      return { rows: rowCount, columns: columns.length };
    },
  });

  /**
   * The upload's pipeline was ended by the runtime (cancelled, or a step failed with nothing
   * to report it): the dataset follows, cancelled or failed with that error.
   */
  const aborted = defineActor({
    name: "dataset.aborted",
    input: z.object({
      datasetId: z.string().uuid(),
      pipeline: z.object({
        status: z.enum(["failed", "cancelled"]),
        error: z.object({ code: z.string(), message: z.string() }),
      }),
    }),
    key: (i) => `dataset:${i.datasetId}`,
    exposed: false,
    handler: async ({ datasetId, pipeline }, ctx) => {
      ctx.effect(async (tx) => {
        await tx.query(
          `UPDATE troupe_datasets SET status = $2, error = $3::jsonb, version = version + 1,
             updated_at = now()
           WHERE id = $1 AND status NOT IN ('ready', 'failed', 'cancelled')`,
          [datasetId, pipeline.status, JSON.stringify(pipeline.error)],
        );
      });
      await changed(datasetId);
      return { status: pipeline.status };
    },
  });

  return [split, chunk, chunkDone, merge, aborted, datasetReportActor({ db, blobs })];
}

/** Warnings kept on a dataset. */
const MAX_WARNINGS = 100;

/** Appends a split step's warnings to the dataset's (kept in its options, as `_warnings`). */
async function addWarnings(
  tx: SqlExecutor,
  datasetId: string,
  warnings: readonly SplitWarning[],
): Promise<void> {
  if (!warnings.length) return;
  await tx.query(
    `UPDATE troupe_datasets SET options = jsonb_set(options, '{_warnings}',
       coalesce(options->'_warnings', '[]'::jsonb) || $2::jsonb)
     WHERE id = $1`,
    [datasetId, JSON.stringify(warnings)],
  );
}

async function insertChunkRows(
  tx: SqlExecutor,
  datasetId: string,
  rows: { idx: number; start: number; end: number; first_line: number }[],
): Promise<void> {
  if (!rows.length) return;
  await tx.query(
    `INSERT INTO troupe_dataset_chunks (dataset_id, idx, byte_start, byte_end, first_line)
     SELECT $1, x.idx, x.start, x."end", x.first_line
     FROM jsonb_to_recordset($2::jsonb) AS x(idx int, start bigint, "end" bigint, first_line int)
     ON CONFLICT DO NOTHING`,
    [datasetId, JSON.stringify(rows)],
  );
}

/**
 * Adds text columns `keys` (those it lacks) to a rows table, refusing with `TOO_MANY_COLUMNS`
 * when the table would then hold more than `max` columns of data. Under an exclusive lock, so
 * chunks adding columns at once count each other's.
 */
async function addColumns(
  db: SqlDatabase,
  table: string,
  keys: readonly string[],
  max: number,
): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    const stored = await storedTypes(tx, table);
    const added = [...new Set(keys)].filter((key) => !stored.has(key));
    if (!added.length) return;
    const data = [...stored.keys()].filter((name) => name.startsWith("c_")).length;
    if (data + added.length > max) {
      throw new InputError(
        "TOO_MANY_COLUMNS",
        `the file has more than ${max} columns (its records' keys)`,
        { details: { maxColumns: max } },
      );
    }
    await tx.query(
      `ALTER TABLE ${table} ${added.map((key) => `ADD COLUMN "${key}" text`).join(", ")}`,
    );
  });
}

/** The column types of a stored rows table, as dataset types (`text` reads as `string`). */
const STORED_TYPES: Record<string, ColumnType> = {
  "bigint": "integer",
  "double precision": "float",
  "boolean": "boolean",
  "date": "date",
  "timestamp with time zone": "datetime",
};

async function storedTypes(db: SqlExecutor, table: string): Promise<Map<string, ColumnType>> {
  const rows = await db.query<{ name: string; type: string }>(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
     WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
    [table],
  );
  return new Map(rows.map((r) => [r.name, STORED_TYPES[r.type] ?? "string"]));
}

/**
 * Makes each column take a chunk's values before they are copied in: a column whose stored
 * type is narrower than the chunk's (integer then float; anything then text) is altered to
 * the join of the two. Under an exclusive lock, re-read, so concurrent chunks only ever
 * widen. Rare: most files keep their types from the first chunk on.
 */
async function widenColumns(
  db: SqlDatabase,
  table: string,
  keys: readonly string[],
  types: readonly ColumnType[],
): Promise<void> {
  const needed = (stored: Map<string, ColumnType>) =>
    keys.flatMap((key, i) => {
      const cur = stored.get(key) ?? "string";
      const to = joinTypes(cur, types[i] ?? "string");
      return sqlType(to) === sqlType(cur) ? [] : [{ key, to: sqlType(to) }];
    });
  if (!needed(await storedTypes(db, table)).length) return;
  await db.transaction(async (tx) => {
    await tx.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    const changes = needed(await storedTypes(tx, table));
    if (!changes.length) return;
    await tx.query("SET LOCAL timezone = 'UTC'");
    await alterTypes(tx, table, changes);
  });
}

/** Converts columns to SQL types in one table rewrite (nothing to do: no statement). */
async function alterTypes(
  tx: SqlExecutor,
  table: string,
  changes: readonly { key: string; to: string }[],
): Promise<void> {
  if (!changes.length) return;
  await tx.query(
    `ALTER TABLE ${table} ${
      changes.map((c) => `ALTER COLUMN "${c.key}" TYPE ${c.to} USING "${c.key}"::${c.to}`)
        .join(", ")
    }`,
  );
}

/**
 * Stores a chunk's rows with COPY: in one transaction, the rows of an earlier attempt of this
 * chunk (its id range) are deleted and the chunk's rows copied in, so a redelivered chunk
 * leaves exactly one copy. `text` is COPY text, as `processChunk` writes it (no segment or an
 * empty text: nothing to copy).
 */
export async function replaceChunkRows(
  db: SqlDatabase,
  table: string,
  idx: number,
  keys: readonly string[],
  text: CopyData,
): Promise<void> {
  const base = idx * ROW_ID_BASE;
  await db.transaction(async (tx) => {
    // Naive date-times are read as UTC, whatever the server's zone (as at the merge).
    await tx.query("SET LOCAL timezone = 'UTC'");
    await tx.query(`DELETE FROM ${table} WHERE _row >= $1 AND _row < $2`, [
      base,
      base + ROW_ID_BASE,
    ]);
    if (!text.length) return;
    if (!tx.copyIn) throw new Error("the database offers COPY outside transactions only");
    await tx.copyIn(table, ["_row", ...keys.map((k) => `"${k}"`)], text);
  });
}

/**
 * Inserts a chunk's rows; ids are deterministic (`idx × 2^32 + position`) so a second insert
 * of the same chunk adds nothing. With duplicate-row removal, a row whose hash exists (from
 * another chunk) is skipped. Returns the rows of this chunk that are in the table (inserted
 * now, or by an earlier attempt of the same chunk), for the profile.
 */
async function insertRows(
  db: SqlExecutor,
  table: string,
  idx: number,
  keys: readonly string[],
  rows: readonly (readonly unknown[])[],
  hashes: readonly string[] | undefined,
  signal: AbortSignal,
): Promise<{ rows: (readonly unknown[])[]; duplicates: number }> {
  const kept: (readonly unknown[])[] = [];
  let duplicates = 0;
  const cols = ["_row", ...(hashes ? ["_hash"] : []), ...keys.map((k) => `"${k}"`)];
  const casts = cols.map((_, i) => `$${i + 1}::${i === 0 ? "bigint" : "text"}[]`);
  for (let start = 0; start < rows.length; start += INSERT_BATCH) {
    signal.throwIfAborted();
    const batch = rows.slice(start, start + INSERT_BATCH);
    const ids = batch.map((_, i) => idx * ROW_ID_BASE + start + i);
    const params: unknown[] = [ids];
    if (hashes) params.push(hashes.slice(start, start + INSERT_BATCH));
    for (let k = 0; k < keys.length; k++) params.push(batch.map((r) => cellText(r[k])));
    const inserted = await db.query<{ _row: string | number }>(
      `INSERT INTO ${table} (${cols.join(", ")}) SELECT * FROM unnest(${casts.join(", ")})
       ON CONFLICT DO NOTHING RETURNING _row`,
      params,
    );
    if (inserted.length === batch.length) {
      kept.push(...batch);
      continue;
    }
    const mine = new Set(inserted.map((r) => Number(r._row)));
    const missing = ids.filter((id) => !mine.has(id));
    // Rows an earlier attempt of this chunk stored are this chunk's too.
    const earlier = await db.query<{ _row: string | number }>(
      `SELECT _row FROM ${table} WHERE _row = ANY($1::bigint[])`,
      [missing],
    );
    for (const r of earlier) mine.add(Number(r._row));
    batch.forEach((row, i) => mine.has(ids[i]!) ? kept.push(row) : duplicates++);
  }
  return { rows: kept, duplicates };
}
