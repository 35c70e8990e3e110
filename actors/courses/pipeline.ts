/**
 * PDF → course, as short actor messages (each idempotent):
 *
 * 1. `course.start` (key `course:<id>`): opens each file once to read its page count and
 *    outline; a non-PDF, encrypted or corrupt file fails alone, with its code. Fans out one
 *    `course.extract` per range of pages (20 a message).
 * 2. `course.extract` (key `pdf:<tenant>:<sha256>:<from>`): extracts the range's lines into
 *    `troupe_pdf_pages`, keyed by the file's SHA-256, so the same PDF is extracted once
 *    whatever course it is in; skips pages already there, unless an older extraction
 *    (`EXTRACTION_VERSION`) stored them: those are extracted again and replaced. Reports to the course. The key is
 *    the tenant's own: a tenant's extraction never waits on another's. Pages extracted for
 *    another tenant are used, but nothing a tenant sees (results, progress) tells it so.
 * 3. `course.extracted` (key `course:<id>`, one at a time): counts the pages its own ranges
 *    reported; when every page of every file is in, sends `course.build`. A range that fails
 *    for good fails its file (`onDeadLetter`).
 * 4. `course.build` (key `course:<id>`): each file's pages cleaned (`page_clean.ts`: page
 *    furniture, control characters and line-end hyphens out, back matter set apart), then
 *    modules and lessons from the outline without back matter entries (or from headings
 *    found in the text; the title page names the file), each lesson's text cut at its
 *    position (`lessons.ts`),
 *    section-sized chunks for search (deterministic, unique ids) with their embeddings (same
 *    ids), summaries, key points and quizzes from the writer, made distinct across the
 *    course (`distinct.ts`).
 *
 * Progress is reported on the course (pages extracted / total) and on each message's job.
 */
import { z } from "zod";
import { defineActor } from "../runtime/define.ts";
import { deterministicId } from "../runtime/ids.ts";
import type { SqlDatabase, SqlExecutor } from "../runtime/ports.ts";
import type { BlobStore } from "../../db/blobs/port.ts";
import { EXTRACTION_VERSION, type Line, type OutlineEntry, PdfError } from "./pdf.ts";
import { type PreparedFile, prepareFile } from "./page_clean.ts";
import { InlineExtractor, type PageExtractor } from "./extract.ts";
import { HashingEmbedder } from "./embeddings/hashing.ts";
import type { TextEmbedder } from "./embeddings/port.ts";
import { PgVectorStore } from "./vectors/pg.ts";
import { lexemeVector } from "./lexicon.ts";
import type { VectorItem, VectorStore } from "./vectors/port.ts";
import type { CourseWriter, QuizQuestion } from "./writer/port.ts";
import { LocalWriter } from "./writer/local.ts";
import { DocumentStats, sentences } from "./writer/text.ts";
import { headingLines, pageText, passagesBetween, structure } from "./lessons.ts";
import { type DistinctInput, distinctLessons } from "./distinct.ts";

export { structure };

export const PAGES_PER_MESSAGE = 20;

export interface CoursePipelineOptions {
  db: SqlDatabase;
  blobs: BlobStore;
  writer?: CourseWriter;
  /** Embeds the passages for search. @default HashingEmbedder (256 dimensions) */
  embedder?: TextEmbedder;
  /** Where the embeddings go. @default the same database */
  vectors?: VectorStore;
  onChange?: (courseId: string) => Promise<void>;
  /** Where page text is extracted. @default this thread ({@link InlineExtractor}) */
  extractor?: PageExtractor;
}

export interface Lesson {
  title: string;
  summary: string;
  keyPoints: string[];
  pages: [number, number];
  fileName: string;
  quiz: QuizQuestion[];
}

export interface Module {
  title: string;
  summary: string;
  lessons: Lesson[];
}

const courseInput = z.object({ courseId: z.string().uuid() });
const extractInput = z.object({
  courseId: z.string().uuid(),
  /** The course's tenant: it scopes the key (absent in messages sent before it was added). */
  tenantId: z.string().nullable().optional(),
  idx: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  from: z.number().int().min(1),
  to: z.number().int().min(1),
});
const extractedInput = z.object({
  courseId: z.string().uuid(),
  idx: z.number().int().min(0),
  /** Pages of the range extracted (absent in older messages: the file's pages stored count). */
  pages: z.number().int().min(0).optional(),
  failed: z.object({ code: z.string(), message: z.string() }).optional(),
});

function errorOf(err: unknown): { code: string; message: string } {
  if (err instanceof PdfError) return { code: err.code, message: err.message };
  return { code: "EXTRACT_FAILED", message: err instanceof Error ? err.message : String(err) };
}

interface SourceRow {
  idx: number;
  file_name: string;
  sha256: string;
  page_count: number | null;
  /** Pages of the file this course's extract messages reported. */
  pages_done: number;
  status: string;
  outline: OutlineEntry[] | null;
  error: { code: string; message: string } | null;
}

async function sources(db: SqlExecutor, courseId: string): Promise<SourceRow[]> {
  return await db.query<SourceRow>(
    `SELECT idx, file_name, sha256, page_count, pages_done, status, outline, error
     FROM troupe_course_sources
     WHERE course_id = $1 ORDER BY idx`,
    [courseId],
  );
}

/** Pages of a file in the shared page store (of this extraction version), at most `pageCount`. */
async function storedPages(db: SqlExecutor, sha256: string, pageCount: number): Promise<number> {
  const [n] = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM troupe_pdf_pages WHERE sha256 = $1 AND version >= $2",
    [sha256, EXTRACTION_VERSION],
  );
  return Math.min(n!.n, pageCount);
}

async function courseStatus(db: SqlExecutor, courseId: string): Promise<string | null> {
  const rows = await db.query<{ status: string }>(
    "SELECT status FROM troupe_courses WHERE id = $1",
    [
      courseId,
    ],
  );
  return rows[0]?.status ?? null;
}

export function courseActors(o: CoursePipelineOptions) {
  const { db, blobs } = o;
  const extractor = o.extractor ?? new InlineExtractor();
  const writer = o.writer ?? new LocalWriter();
  const embedder = o.embedder ?? new HashingEmbedder();
  const vectors = o.vectors ?? new PgVectorStore(db);
  const changed = (id: string) => o.onChange?.(id) ?? Promise.resolve();

  const failCourse = (i: { courseId: string }, error: { code: string; message: string }) => ({
    actor: "course.failed",
    input: { courseId: i.courseId, code: error.code, message: error.message },
  });

  const start = defineActor({
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

  const extract = defineActor({
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

  const extracted = defineActor({
    name: "course.extracted",
    input: extractedInput,
    key: (i) => `course:${i.courseId}`,
    exposed: false,
    retries: 5,
    handler: async ({ courseId, idx, pages, failed }, ctx) => {
      if (await courseStatus(db, courseId) !== "processing") return { skipped: true };
      if (failed) {
        ctx.effect(async (tx) => {
          await tx.query(
            `UPDATE troupe_course_sources SET status = 'failed', error = $3::jsonb
             WHERE course_id = $1 AND idx = $2`,
            [courseId, idx, JSON.stringify(failed)],
          );
        });
      }
      const files = await sources(db, courseId);
      // This course's own count: pages stored for other courses (or tenants) are not its
      // progress, so its progress and its results read the same whatever others uploaded.
      // (Messages sent before `pages` existed fall back to the page store.) Safe to add up:
      // this key runs one message at a time, and a message's effects commit once.
      const source = files.find((f) => f.idx === idx);
      let reported: number | null = null;
      if (!failed && source) {
        const pageCount = source.page_count ?? 0;
        const n = pages === undefined
          ? await storedPages(db, source.sha256, pageCount)
          : Math.min(source.pages_done + pages, pageCount);
        reported = n;
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
        if (f.status === "failed" || (failed && f.idx === idx)) continue;
        const n = f.idx === idx && reported !== null ? reported : f.pages_done;
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
      ctx.pipeline.progress(done, total, "pages");
      if (!pending) ctx.send("course.build", { courseId }, { idempotencyKey: `build:${courseId}` });
      return { done, total };
    },
  });

  const build = defineActor({
    name: "course.build",
    input: courseInput,
    key: (i) => `course:${i.courseId}`,
    exposed: false,
    retries: 3,
    onDeadLetter: failCourse,
    timeoutMs: 10 * 60_000,
    handler: async ({ courseId }, ctx) => {
      const [course] = await db.query<{ status: string; tenant_id: string; title: string }>(
        "SELECT status, tenant_id, title FROM troupe_courses WHERE id = $1",
        [courseId],
      );
      if (!course || course.status !== "processing") return { skipped: true };
      const files = await sources(db, courseId);
      const doc = new DocumentStats();
      const texts = new Map<number, PreparedFile>();
      const noText: number[] = [];
      for (const f of files.filter((f) => f.status !== "failed")) {
        const rows = await db.query<{ page: number; lines: Line[] }>(
          "SELECT page, lines FROM troupe_pdf_pages WHERE sha256 = $1 ORDER BY page",
          [f.sha256],
        );
        const pages = rows.map((r) => ({ page: r.page, lines: r.lines }));
        if (pages.every((p) => p.lines.length === 0)) {
          noText.push(f.idx);
          continue;
        }
        // Furniture and back matter out; the outline (or headings found) without back matter.
        const file = prepareFile(pages, f.outline ?? []);
        texts.set(f.idx, file);
        for (const p of file.pages) doc.add(pageText(p));
      }
      const modules: Module[] = [];
      const chunks: ChunkRow[] = [];
      /** Each lesson with its own text, for {@link distinctLessons}. */
      const written: { lesson: Lesson; check: DistinctInput }[] = [];
      for (const f of files) {
        const file = texts.get(f.idx);
        if (!file) continue;
        const { pages, outline } = file;
        const headings = headingLines(outline.map((e) => e.title));
        let ordinal = 0;
        // Without headings, the one module is named after the document's title.
        for (const m of structure(outline, pages, file.title ?? f.file_name)) {
          const lessons: Lesson[] = [];
          for (const l of m.lessons) {
            ctx.signal.throwIfAborted();
            // Search keeps the headings' words; the writer gets sentences without them.
            const passages = passagesBetween(pages, l.start, l.end);
            const prose = passagesBetween(pages, l.start, l.end, headings);
            const w = await writer.lesson({ title: l.title, passages: prose }, doc);
            const lesson: Lesson = {
              title: l.title,
              ...w,
              pages: [l.from, l.to],
              fileName: f.file_name,
            };
            lessons.push(lesson);
            written.push({
              lesson,
              check: {
                title: l.title,
                module: m.title,
                summary: w.summary,
                quiz: w.quiz,
                passages: prose,
              },
            });
            chunks.push(
              ...await chunkLesson(courseId, course.tenant_id, f, ordinal++, l.title, passages),
            );
          }
          modules.push({ title: m.title, summary: "", lessons });
        }
      }
      // No two lessons share a summary or a question, whatever the writer wrote.
      distinctLessons(written.map((w) => w.check));
      for (const { lesson, check } of written) {
        lesson.summary = check.summary;
        lesson.quiz = check.quiz;
      }
      for (const m of modules) m.summary = moduleSummary(m.lessons.map((l) => l.summary));
      // Embeddings of the passages; ids are the passages' (deterministic): a rebuild upserts.
      const embedded: VectorItem[] = [];
      for (let i = 0; i < chunks.length; i += 64) {
        const batch = chunks.slice(i, i + 64);
        const vecs = await embedder.embed(batch.map((ch) => `${ch.section}. ${ch.text}`));
        batch.forEach((ch, j) =>
          embedded.push({ id: ch.id, tenantId: course.tenant_id, courseId, vector: vecs[j]! })
        );
      }
      // An external store (Chroma) cannot join the transaction: upsert now (idempotent by id).
      if (!vectors.transactional) await vectors.upsert(embedded);
      const failedFiles = files.filter((f) => f.status === "failed").length + noText.length;
      const status = modules.length === 0 ? "failed" : failedFiles > 0 ? "partial" : "ready";
      // A course whose files all failed the same way fails that way (PDF_TOO_COMPLEX, say).
      const errors = [
        ...files.filter((f) => f.status === "failed").map((f) => f.error),
        ...noText.map(() => ({ code: "NO_TEXT", message: "the PDF has no text layer (scanned?)" })),
      ];
      const courseError = errors.length > 0 && errors.every((e) => e && e.code === errors[0]?.code)
        ? errors[0]!
        : { code: "NO_USABLE_FILES", message: "no file gave text" };
      ctx.effect(async (tx) => {
        for (const idx of noText) {
          await tx.query(
            `UPDATE troupe_course_sources SET status = 'failed', error = $3::jsonb
             WHERE course_id = $1 AND idx = $2`,
            [
              courseId,
              idx,
              JSON.stringify({ code: "NO_TEXT", message: "the PDF has no text layer (scanned?)" }),
            ],
          );
        }
        await tx.query(
          `UPDATE troupe_course_sources SET status = 'done'
           WHERE course_id = $1 AND status = 'extracting' AND NOT (idx = ANY($2::int[]))`,
          [courseId, noText],
        );
        await tx.query(
          `INSERT INTO troupe_course_chunks
             (id, course_id, tenant_id, source_idx, file_name, page_from, page_to, section, text,
              lexemes)
           SELECT x.id, $1, $2, x.source_idx, x.file_name, x.page_from, x.page_to, x.section, x.text,
             x.lexemes::tsvector
           FROM jsonb_to_recordset($3::jsonb) AS x(id text, source_idx int, file_name text,
             page_from int, page_to int, section text, text text, lexemes text)
           ON CONFLICT (id) DO NOTHING`,
          [
            courseId,
            course.tenant_id,
            JSON.stringify(
              chunks.map((ch) => ({ ...ch, lexemes: lexemeVector(`${ch.section}. ${ch.text}`) })),
            ),
          ],
        );
        if (vectors.transactional) await vectors.upsert(embedded, tx);
        await tx.query(
          `UPDATE troupe_courses SET status = $2, structure = $3::jsonb, version = version + 1,
             error = $4::jsonb, updated_at = now()
           WHERE id = $1 AND status = 'processing'`,
          [
            courseId,
            status,
            JSON.stringify({ modules }),
            status === "failed" ? JSON.stringify(courseError) : null,
          ],
        );
      });
      await changed(courseId);
      // The upload's pipeline ends with the course: failed with its error, or done.
      if (status === "failed") ctx.pipeline.fail(courseError);
      else ctx.pipeline.complete({ courseId, status, modules: modules.length });
      return { status, modules: modules.length, chunks: chunks.length };
    },
  });

  /** A step failed for good: the course fails with its error instead of staying in progress. */
  const failed = defineActor({
    name: "course.failed",
    input: z.object({ courseId: z.string().uuid(), code: z.string(), message: z.string() }),
    key: (i) => `course:${i.courseId}`,
    exposed: false,
    handler: ({ courseId, code, message }, ctx) => {
      ctx.pipeline.fail({ code, message });
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

  /**
   * The upload's pipeline was ended by the runtime (cancelled, or a step failed with nothing
   * to report it): the course follows, cancelled or failed with that error.
   */
  const aborted = defineActor({
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

  return [start, extract, extracted, build, failed, aborted];
}

/** A module's summary: the first sentence of each of its first two lessons' summaries. */
export function moduleSummary(summaries: string[]): string {
  return summaries.map((s) => sentences(s)[0]).filter(Boolean).slice(0, 2).join(" ");
}

interface ChunkRow {
  id: string;
  source_idx: number;
  file_name: string;
  page_from: number;
  page_to: number;
  section: string;
  text: string;
}

/**
 * ~400-word chunks with a 50-word overlap; each keeps its file, pages and section. Ids are
 * deterministic (a rebuild upserts the same ones) and unique: the lesson's ordinal in its
 * file is part of them, as sections of many chapters may share a title ("Exercises").
 */
async function chunkLesson(
  courseId: string,
  _tenantId: string,
  f: SourceRow,
  ordinal: number,
  section: string,
  passages: { text: string; page: number }[],
): Promise<ChunkRow[]> {
  const words: { w: string; page: number }[] = passages.flatMap((p) =>
    p.text.split(/\s+/).filter(Boolean).map((w) => ({ w, page: p.page }))
  );
  const out: ChunkRow[] = [];
  for (let start = 0; start < words.length; start += 350) {
    const slice = words.slice(start, start + 400);
    if (slice.length === 0) break;
    out.push({
      id: await deterministicId(
        "course-chunk",
        courseId,
        String(f.idx),
        String(ordinal),
        section,
        String(start),
      ),
      source_idx: f.idx,
      file_name: f.file_name,
      page_from: slice[0]!.page,
      page_to: slice.at(-1)!.page,
      section,
      text: slice.map((x) => x.w).join(" "),
    });
    if (start + 400 >= words.length) break;
  }
  return out;
}
