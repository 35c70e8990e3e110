/**
 * `course.start` (key `course:<id>`): opens each file once to read its page count and
 * outline; a non-PDF, encrypted or corrupt file fails alone, with its code. Fans out one
 * `course.extract` per range of pages (20 a message).
 */
import { defineActor } from "@troupe/runtime";
import type { OutlineEntry } from "../pdf.ts";
import {
  type CourseContext,
  courseInput,
  courseStatus,
  errorOf,
  PAGES_PER_MESSAGE,
  sources,
} from "./_context.ts";

/** The `course.start` actor over the pipeline's context. */
export function startActor(c: CourseContext) {
  const { db, blobs, extractor, failCourse } = c;
  return defineActor({
    name: "course.start",
    input: courseInput,
    key: (i) => `course:${i.courseId}`,
    exposed: false,
    retries: 3,
    // Each reads its files whole: two at a time, not every upload that starts at once.
    concurrency: 2,
    onDeadLetter: failCourse,
    timeoutMs: 10 * 60_000,
    handler: async ({ courseId }, ctx) => {
      if (await courseStatus(db, courseId) !== "processing") return { skipped: true };
      const files = await sources(db, courseId);
      const plans: {
        idx: number;
        pages: number;
        outline: OutlineEntry[];
        error?: ReturnType<typeof errorOf>;
      }[] = [];
      for (const f of files) {
        ctx.signal.throwIfAborted();
        try {
          const { pages, outline } = await extractor.structure(
            () => blobs.bytes(f.sha256),
            f.sha256,
          );
          plans.push({ idx: f.idx, pages, outline });
        } catch (err) {
          plans.push({ idx: f.idx, pages: 0, outline: [], error: errorOf(err) });
        }
      }
      ctx.effect(async (tx) => {
        for (const p of plans) {
          await tx.query(
            `UPDATE troupe_course_sources SET page_count = $3, outline = $4::jsonb,
               status = $5, error = $6::jsonb
             WHERE course_id = $1 AND idx = $2`,
            [
              courseId,
              p.idx,
              p.pages,
              JSON.stringify(p.outline),
              p.error ? "failed" : "extracting",
              p.error ? JSON.stringify(p.error) : null,
            ],
          );
        }
      });
      let messages = 0;
      for (const p of plans) {
        if (p.error) continue;
        const sha256 = files.find((f) => f.idx === p.idx)!.sha256;
        for (let from = 1; from <= p.pages; from += PAGES_PER_MESSAGE) {
          const to = Math.min(p.pages, from + PAGES_PER_MESSAGE - 1);
          ctx.send("course.extract", {
            courseId,
            tenantId: ctx.tenantId,
            idx: p.idx,
            sha256,
            from,
            to,
          });
          messages++;
        }
      }
      ctx.pipeline.progress(0, plans.reduce((n, p) => n + (p.error ? 0 : p.pages), 0), "pages");
      // Nothing to extract (every file failed, or no pages): straight to the build.
      if (messages === 0) {
        ctx.send("course.build", { courseId }, { idempotencyKey: `build:${courseId}` });
      }
      return { files: plans.length, messages };
    },
  });
}
