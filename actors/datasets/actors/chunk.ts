/**
 * `dataset.chunk` (key `dataset:<id>:<n>`, chunks run in parallel): reads its byte range,
 * parses, cleans, infers types, inserts its rows with deterministic ids (`_row` = chunk
 * and position: a redelivered chunk adds nothing) and stores its mergeable profile, all
 * in the message's transaction; then tells the dataset.
 */
import { defineActor, InputError, NonRetryableError } from "@troupe/runtime";
import { type ChunkJob, cleanChunk } from "../chunk_work.ts";
import type { Encoding } from "../ingest/mod.ts";
import { rowsTable } from "../store.ts";
import { profileRows } from "../profiles.ts";
import {
  badColumnName,
  chunkInput,
  columnKey,
  type DatasetContext,
  inputFailure,
  loadDataset,
  nulFailure,
  parseOptions,
  rules,
} from "./_context.ts";
import { addColumns, insertRows, replaceChunkRows, widenColumns } from "../chunk_rows.ts";

/** The `dataset.chunk` actor over the pipeline's context. */
export function chunkActor(c: DatasetContext) {
  const { o, db, blobs, processor, maxColumns, failInput, byCopy } = c;
  return defineActor({
    name: "dataset.chunk",
    input: chunkInput,
    key: (i) => `dataset:${i.datasetId}:${i.idx}`,
    exposed: false,
    retries: 4,
    timeoutMs: 10 * 60_000,
    concurrency: o.chunkConcurrency ?? 2,
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
      // Where a chunk's time goes (its result: the ingest benchmark's stage breakdown).
      const t0 = performance.now();
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
      const t1 = performance.now();
      const out = copyPath ? await processor.process(bytes, job) : cleanChunk(bytes, job);
      const t2 = performance.now();
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
      /** The chunk's profile as JSON text. */
      let profileJson: string;
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
          profileJson = out.profileJson;
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
          profileJson = JSON.stringify(profileRows(out.header, out.types, inserted.rows));
        }
      } catch (err) {
        const failure = err instanceof InputError
          ? { code: err.code, message: err.message }
          : inputFailure(err);
        if (!failure) throw err;
        return await failInput(datasetId, failure);
      }
      const t3 = performance.now();
      ctx.progress(80, `chunk ${idx}: ${rowCount} rows stored`);
      const outTypes = out.types;
      const rowErrors = JSON.stringify(out.errors);
      // The profile's text as it came (from a worker): not parsed to be written again.
      const summary = `{"header":${JSON.stringify(out.header)},"keys":${
        JSON.stringify(keys)
      },"types":${JSON.stringify(outTypes)},"profile":${profileJson}}`;
      ctx.effect(async (tx) => {
        await tx.query(
          `UPDATE troupe_dataset_chunks SET status = 'done', row_count = $3, skipped_rows = $4,
             profile = $5::jsonb, row_errors = $6::jsonb, updated_at = now()
           WHERE dataset_id = $1 AND idx = $2`,
          [datasetId, idx, rowCount, skipped, summary, rowErrors],
        );
      });
      ctx.send("dataset.chunk-done", { datasetId, idx });
      const ms = (a: number, b: number) => Math.round(b - a);
      return {
        rows: rowCount,
        skipped,
        ms: { read: ms(t0, t1), parse: ms(t1, t2), store: ms(t2, t3) },
      };
    },
  });
}
