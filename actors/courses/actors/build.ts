/**
 * `course.build` (key `course:<id>`): each file's pages cleaned (`page_clean.ts`: page
 * furniture, control characters and line-end hyphens out, back matter set apart), then
 * modules and lessons from the outline without back matter entries (or from headings
 * found in the text; the title page names the file), each lesson's text cut at its
 * position (`lessons.ts`),
 * section-sized chunks for search (deterministic, unique ids) with their embeddings (same
 * ids), summaries, key points and quizzes from the writer, made distinct across the
 * course (`distinct.ts`).
 */
import { defineActor, deterministicId } from "@troupe/runtime";
import type { Line } from "../pdf.ts";
import { type PreparedFile, prepareFile } from "../page_clean.ts";
import { lexemeVector } from "../lexicon.ts";
import type { VectorItem } from "../vectors/port.ts";
import { DocumentStats, sentences } from "../writer/text.ts";
import { headingLines, pageText, passagesBetween, structure } from "../lessons.ts";
import { type DistinctInput, distinctLessons } from "../distinct.ts";
import {
  type CourseContext,
  courseInput,
  type Lesson,
  type Module,
  type SourceRow,
  sources,
} from "./_context.ts";

/** The `course.build` actor over the pipeline's context. */
export function buildActor(c: CourseContext) {
  const { db, writer, embedder, vectors, changed, failCourse } = c;
  return defineActor({
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
