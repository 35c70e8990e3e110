/**
 * `dataset.merge` (key `dataset:<id>`): merges the chunk profiles, converts the text
 * columns to their merged types, and marks the dataset ready.
 */
import { defineActor } from "@troupe/runtime";
import type { ColumnType } from "../ingest/infer.ts";
import { sqlType } from "../query.ts";
import { type ColumnInfo, rowsTable } from "../store.ts";
import { ChunkProfileMerge } from "../profiles.ts";
import { type DatasetContext, idInput, loadDataset } from "./_context.ts";
import { alterTypes, storedTypes } from "../chunk_rows.ts";

/** The `dataset.merge` actor over the pipeline's context. */
export function mergeActor(c: DatasetContext) {
  const { db, changed, mergePage } = c;
  return defineActor({
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
}
