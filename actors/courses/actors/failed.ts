/**
 * `course.failed` (key `course:<id>`): a step failed for good; the course fails with its error
 * instead of staying in progress.
 */
import { z } from "zod";
import { defineActor } from "@troupe/runtime";
import type { CourseContext } from "./_context.ts";

/** The `course.failed` actor over the pipeline's context. */
export function failedActor(c: CourseContext) {
  const { changed } = c;
  return defineActor({
    name: "course.failed",
    input: z.object({ courseId: z.string().uuid(), code: z.string(), message: z.string() }),
    key: (i) => `course:${i.courseId}`,
    exposed: false,
    handler: ({ courseId, code, message }, ctx) => {
      ctx.pipeline.fail({ code, message });
      // A build's lessons written so far (its steps' state) are of no more use.
      ctx.setState({});
      ctx.effect(async (tx) => {
        await tx.query(
          `UPDATE troupe_courses SET status = 'failed', error = $2::jsonb, version = version + 1,
             updated_at = now()
           WHERE id = $1 AND status = 'processing'`,
          [courseId, JSON.stringify({ code, message })],
        );
      });
      return changed(courseId);
    },
  });
}
