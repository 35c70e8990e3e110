/**
 * `course.extracted` (key `course:<id>`, one at a time): counts the pages its own ranges
 * reported; when every page of every file is in, sends `course.build`. A range that fails
 * for good fails its file (`onDeadLetter`).
 *
 * The count and the failed files are kept in the actor's state as well as in
 * `troupe_course_sources`: messages of one key may run as a chain, each on the state the one
 * before left while that one is still committing, so a read of the table can miss the report
 * just made (two reports counted from the same base, and no build sent).
 */
import { defineActor } from "@troupe/runtime";
import {
  type CourseContext,
  courseStatus,
  extractedInput,
  sources,
  storedPages,
} from "./_context.ts";

/** The `course.extracted` actor over the pipeline's context. */
export function extractedActor(c: CourseContext) {
  const { db } = c;
  return defineActor({
    name: "course.extracted",
    input: extractedInput,
    key: (i) => `course:${i.courseId}`,
    exposed: false,
    retries: 5,
    initialState: (): ExtractedState => ({}),
    handler: async ({ courseId, idx, pages, failed }, ctx) => {
      if (await courseStatus(db, courseId) !== "processing") return { skipped: true };
      const files = await sources(db, courseId);
      // What the messages before reported (the table's count for those sent before the state).
      const counted: Record<number, number> = ctx.state.extracted?.pages ??
        Object.fromEntries(files.map((f) => [f.idx, f.pages_done]));
      const failedFiles = new Set(ctx.state.extracted?.failed ?? []);
      if (failed) {
        failedFiles.add(idx);
        ctx.effect(async (tx) => {
          await tx.query(
            `UPDATE troupe_course_sources SET status = 'failed', error = $3::jsonb
             WHERE course_id = $1 AND idx = $2`,
            [courseId, idx, JSON.stringify(failed)],
          );
        });
      }
      // This course's own count: pages stored for other courses (or tenants) are not its
      // progress, so its progress and its results read the same whatever others uploaded.
      // (Messages sent before `pages` existed fall back to the page store.) Safe to add up:
      // this key runs one message at a time, each on the state the one before left, and a
      // message's state and effects commit once.
      const source = files.find((f) => f.idx === idx);
      if (!failed && source) {
        const pageCount = source.page_count ?? 0;
        const n = pages === undefined
          ? await storedPages(db, source.sha256, pageCount)
          : Math.min((counted[idx] ?? source.pages_done) + pages, pageCount);
        counted[idx] = n;
        ctx.effect(async (tx) => {
          await tx.query(
            "UPDATE troupe_course_sources SET pages_done = $3 WHERE course_id = $1 AND idx = $2",
            [courseId, idx, n],
          );
        });
      }
      let total = 0;
      let done = 0;
      let pending = false;
      for (const f of files) {
        if (f.status === "failed" || failedFiles.has(f.idx)) continue;
        const n = counted[f.idx] ?? f.pages_done;
        total += f.page_count ?? 0;
        done += Math.min(n, f.page_count ?? 0);
        if (n < (f.page_count ?? 0)) pending = true;
      }
      ctx.effect(async (tx) => {
        await tx.query(
          `UPDATE troupe_courses SET structure = jsonb_build_object('progress',
             jsonb_build_object('step', CASE WHEN $2::int >= $3::int THEN 'building' ELSE 'extracting' END,
               'pagesDone', $2::int, 'pagesTotal', $3::int)), updated_at = now()
           WHERE id = $1 AND status = 'processing'`,
          [courseId, done, total],
        );
      });
      ctx.setState({ ...ctx.state, extracted: { pages: counted, failed: [...failedFiles] } });
      ctx.pipeline.progress(done, total, "pages");
      if (!pending) ctx.send("course.build", { courseId }, { idempotencyKey: `build:${courseId}` });
      return { done, total };
    },
  });
}

/** What the reports of one course so far add up to (see the module doc). */
interface ExtractedState {
  extracted?: {
    /** Pages reported, by file. */
    pages: Record<number, number>;
    /** Files a range of which failed for good. */
    failed: number[];
  };
}
