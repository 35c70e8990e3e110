/**
 * `course.extract` (key `pdf:<tenant>:<sha256>:<from>`): extracts the range's lines into
 * `troupe_pdf_pages`, keyed by the file's SHA-256, so the same PDF is extracted once
 * whatever course it is in; skips pages already there, unless an older extraction
 * (`EXTRACTION_VERSION`) stored them: those are extracted again and replaced. Reports to the course. The key is
 * the tenant's own: a tenant's extraction never waits on another's. Pages extracted for
 * another tenant are used, but nothing a tenant sees (results, progress) tells it so.
 */
import { defineActor } from "@troupe/runtime";
import { EXTRACTION_VERSION } from "../pdf.ts";
import { type CourseContext, extractInput } from "./_context.ts";

/** The `course.extract` actor over the pipeline's context. */
export function extractActor(c: CourseContext) {
  const { db, blobs, extractor } = c;
  return defineActor({
    name: "course.extract",
    input: extractInput,
    key: (i) => `pdf:${i.tenantId ?? "-"}:${i.sha256}:${i.from}`,
    exposed: false,
    retries: 3,
    timeoutMs: 5 * 60_000,
    concurrency: 2,
    onDeadLetter: (i, error) => ({
      actor: "course.extracted",
      input: {
        courseId: i.courseId,
        idx: i.idx,
        failed: { code: error.code, message: error.message },
      },
    }),
    handler: async ({ courseId, idx, sha256, from, to }, ctx) => {
      // Pages stored by an older extraction (lines without positions, say) count as missing.
      const have = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM troupe_pdf_pages
         WHERE sha256 = $1 AND page BETWEEN $2 AND $3 AND version >= $4`,
        [sha256, from, to, EXTRACTION_VERSION],
      );
      const extracting = have[0]!.n < to - from + 1;
      if (extracting) {
        // The file is read only when the extractor does not hold it open already.
        const pages = await extractor.pages(
          () => blobs.bytes(sha256),
          from,
          to,
          sha256,
        );
        // Pages are content-addressed: extracting them twice writes nothing new; a page of an
        // older version is replaced, never one of a newer (a process not yet upgraded).
        await db.query(
          `INSERT INTO troupe_pdf_pages (sha256, page, lines, version)
           SELECT $1, x.page, x.lines, $3 FROM jsonb_to_recordset($2::jsonb) AS x(page int, lines jsonb)
           ON CONFLICT (sha256, page) DO UPDATE SET lines = excluded.lines, version = excluded.version
           WHERE troupe_pdf_pages.version < excluded.version`,
          [sha256, JSON.stringify(pages), EXTRACTION_VERSION],
        );
      }
      ctx.progress(100, `pages ${from}-${to}`);
      ctx.send("course.extracted", { courseId, idx, pages: to - from + 1 });
      // Whether the pages were there already is not said: they may be another tenant's work.
      return { pages: to - from + 1 };
    },
  });
}
