/**
 * `course.aborted` (key `course:<id>`): the upload's pipeline was ended by the runtime
 * (cancelled, or a step failed with nothing to report it): the course follows, cancelled or
 * failed with that error.
 */
import { z } from "zod";
import { defineActor } from "@troupe/runtime";
import type { CourseContext } from "./_context.ts";

/** The `course.aborted` actor over the pipeline's context. */
export function abortedActor(c: CourseContext) {
  const { changed } = c;
  return defineActor({
    name: "course.aborted",
    input: z.object({
      courseId: z.string().uuid(),
      pipeline: z.object({
        status: z.enum(["failed", "cancelled"]),
        error: z.object({ code: z.string(), message: z.string() }),
      }),
    }),
    key: (i) => `course:${i.courseId}`,
    exposed: false,
    handler: ({ courseId, pipeline }, ctx) => {
      // A build's lessons written so far (its steps' state) are of no more use.
      ctx.setState({});
      ctx.effect(async (tx) => {
        await tx.query(
          `UPDATE troupe_courses SET status = $2, version = version + 1, updated_at = now(),
             error = CASE WHEN $2 = 'failed' THEN $3::jsonb ELSE error END
           WHERE id = $1 AND status = 'processing'`,
          [courseId, pipeline.status, JSON.stringify(pipeline.error)],
        );
      });
      return changed(courseId);
    },
  });
}
