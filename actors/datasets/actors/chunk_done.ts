/**
 * `dataset.chunk-done` (key `dataset:<id>`: one at a time per dataset): counts finished
 * chunks; the last one sends `dataset.merge`. A chunk that fails for good reports here
 * too (`onDeadLetter`), and the dataset fails with its error: no fan-in waits forever.
 */
import { defineActor } from "@troupe/runtime";
import { chunkDoneInput, type DatasetContext, markFailed } from "./_context.ts";

/** The `dataset.chunk-done` actor over the pipeline's context. */
export function chunkDoneActor(c: DatasetContext) {
  const { db, changed } = c;
  return defineActor({
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
}
