/**
 * `dataset.aborted` (key `dataset:<id>`): the upload's pipeline was ended by the runtime
 * (cancelled, or a step failed with nothing to report it): the dataset follows, cancelled or
 * failed with that error.
 */
import { z } from "zod";
import { defineActor } from "@troupe/runtime";
import type { DatasetContext } from "./_context.ts";

/** The `dataset.aborted` actor over the pipeline's context. */
export function abortedActor(c: DatasetContext) {
  const { changed } = c;
  return defineActor({
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
}
