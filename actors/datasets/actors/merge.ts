/**
 * `dataset.merge` (key `dataset:<id>`): merges the chunk profiles, converts the text
 * columns to their merged types, and marks the dataset ready.
 *
 * It folds the chunks' profiles a page at a time, in steps bounded by the delivery budget
 * (`StepBudget`): a step that has spent its share commits the merge so far in the actor's state
 * with the message for the next step (`step.after`: the last chunk folded). The step that folds
 * the last chunk within its share converts the columns and marks the dataset ready; one past its
 * share leaves that to a step of its own.
 *
 * Invariants:
 * - The merge so far is serialized exactly (`ChunkProfileMerge.toJSON`): a merge in many steps
 *   ends with the profiles, counts and errors of a merge in one.
 * - The state and the next step's message commit together; a step whose cursor is not the
 *   state's has committed already (a redelivery) and does nothing.
 */
import { defineActor, StepBudget } from "@troupe/runtime";
import type { ColumnType } from "../ingest/infer.ts";
import { sqlType } from "../query.ts";
import { type ColumnInfo, rowsTable } from "../store.ts";
import { ChunkProfileMerge, type ChunkProfileMergeJSON } from "../profiles.ts";
import { type DatasetContext, loadDataset, mergeInput } from "./_context.ts";
import { alterTypes, storedTypes } from "../chunk_rows.ts";

/** Row errors a dataset keeps. */
const MAX_ROW_ERRORS = 100;

/** What the steps of one merge hand on. */
interface MergeState {
  merge?: {
    /** The last chunk folded. */
    after: number;
    profiles: ChunkProfileMergeJSON;
    /** Each column's SQL key, in first-seen order. */
    keyOf: [string, string][];
    rowCount: number;
    skipped: number;
    rowErrors: { line: number; message: string }[];
  };
}

/** The `dataset.merge` actor over the pipeline's context. */
export function mergeActor(c: DatasetContext) {
  const { db, changed, mergePage, budgetMs } = c;
  return defineActor({
    name: "dataset.merge",
    input: mergeInput,
    key: (i) => `dataset:${i.datasetId}`,
    exposed: false,
    retries: 3,
    timeoutMs: 30 * 60_000,
    initialState: (): MergeState => ({}),
    onDeadLetter: (i, error) => ({
      actor: "dataset.chunk-done",
      input: {
        datasetId: i.datasetId,
        idx: 0,
        failed: { code: error.code, message: `merge: ${error.message}` },
      },
    }),
    handler: async ({ datasetId, step }, ctx) => {
      const budget = new StepBudget(budgetMs);
      const d = await loadDataset(db, datasetId);
      if (!d || d.status !== "processing") {
        if (ctx.state.merge) ctx.setState({});
        return { skipped: d?.status ?? "deleted" };
      }
      const saved = step ? ctx.state.merge : undefined;
      // The state is a later step's: this message committed already.
      if (step && saved?.after !== step.after) return { committed: step.after };
      // Chunk by chunk, a page at a time: the running profile is all the merge holds.
      const keyOf = new Map<string, string>(saved?.keyOf ?? []);
      const profiles = new ChunkProfileMerge(saved?.profiles);
      let rowCount = saved?.rowCount ?? 0;
      let skipped = saved?.skipped ?? 0;
      const rowErrors = [...saved?.rowErrors ?? []];
      let after = saved?.after ?? -1;
      let folded = 0;
      let end = false;
      while (folded === 0 || !budget.spent()) {
        ctx.signal.throwIfAborted();
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
          for (const e of ch.row_errors ?? []) {
            if (rowErrors.length < MAX_ROW_ERRORS) rowErrors.push(e);
          }
          after = ch.idx;
          folded++;
          // A chunk's profile takes milliseconds to fold: the loop runs between them.
          await budget.pause();
        }
        if (chunks.length < mergePage) {
          end = true;
          break;
        }
        await budget.pause();
      }
      if (!end || budget.spent() && folded > 0) {
        // The rest (or, after a step that folded the last chunks, the conversion) is the next
        // step's.
        ctx.setState({
          merge: {
            after,
            profiles: profiles.toJSON(),
            keyOf: [...keyOf],
            rowCount,
            skipped,
            rowErrors,
          },
        });
        ctx.send("dataset.merge", { datasetId, step: { after } });
        ctx.progress(
          Math.floor((50 * (after + 1)) / Math.max(1, d.chunk_count ?? 1)),
          `${after + 1} chunks merged`,
        );
        return { step: { after } };
      }
      if (saved) ctx.setState({});
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
