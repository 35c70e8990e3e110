/**
 * `dataset.split` (key `dataset:<id>`): streams the stored file, cuts it into ~1 MiB
 * chunks at record boundaries, reads the header and types from chunk 0, creates the rows
 * table and fans out one `dataset.chunk` message per chunk. It works in steps of at most 32
 * chunks, fewer once the step has spent its share of the delivery budget (`StepBudget`): each
 * step sends its chunks and the next step (resuming at the boundary where it stopped, a JSON
 * array's as a CSV's), so chunks run while the rest is cut; the last step sets the chunk count.
 */
import { defineActor, InputError, StepBudget } from "@troupe/runtime";
import { ingestFailure } from "../chunk_work.ts";
import {
  chunkStream,
  type Encoding,
  parseChunk,
  type ParseOptions,
  SNIFF_BYTES,
  sniffEncoding,
  type SplitWarning,
} from "../ingest/mod.ts";
import { planColumns } from "../ingest/clean.ts";
import { checkCsvHeader } from "../ingest/header.ts";
import type { ColumnType } from "../ingest/infer.ts";
import { sqlType } from "../query.ts";
import { type ColumnInfo, rowsTable } from "../store.ts";
import {
  badColumnName,
  columnKey,
  type DatasetContext,
  loadDataset,
  nulFailure,
  parseOptions,
  rules,
  splitFormat,
  splitInput,
} from "./_context.ts";
import { addWarnings, insertChunkRows, MAX_WARNINGS } from "../chunk_rows.ts";

/** The `dataset.split` actor over the pipeline's context. */
export function splitActor(c: DatasetContext) {
  const {
    o,
    db,
    blobs,
    processor,
    stepChunks,
    maxColumns,
    maxHeaderBytes,
    failInput,
    byCopy,
    budgetMs,
  } = c;
  return defineActor({
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
      const budget = new StepBudget(budgetMs);
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
      // A step cuts up to `stepChunks` chunks (fewer once its budget is spent), sends them out
      // and hands the rest of the file to the next step: the first chunks run while the file
      // is still being cut.
      const format = splitFormat(d.options);
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
          if (
            boundaries.length >= stepChunks || (boundaries.length > 0 && budget.spent())
          ) {
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
              // One parse gives the header and chunk 0's types, where chunks are processed.
              const first = await processor.types(chunk.bytes, {
                idx: 0,
                parse,
                cleaning: rules(d.options),
              });
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
}
