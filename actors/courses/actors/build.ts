/**
 * `course.build` (key `course:<id>`): each file's pages cleaned (`page_clean.ts`: page
 * furniture, control characters and line-end hyphens out, back matter set apart), then
 * modules and lessons from the outline without back matter entries (or from headings
 * found in the text; the title page names the file), each lesson's text cut at its
 * position (`lessons.ts`),
 * section-sized chunks for search (deterministic, unique ids) with their embeddings (same
 * ids), summaries, key points and quizzes from the writer, made distinct across the
 * course (`distinct.ts`).
 *
 * It works in steps bounded by the delivery budget (`StepBudget`): lessons written one at a
 * time, then passages embedded and stored a batch (64) at a time, then the course made. A
 * step that has spent its share of the budget commits its progress with the message for the
 * next step (`step` in the input: lessons written, passages stored), so a crash or a timeout
 * redoes one step.
 *
 * Invariants:
 * - Every step works through the same plan (`build_plan.ts`), so a cursor names the same
 *   lessons and passages in every step.
 * - Lessons written so far live in the actor's state, committed with the next step's message;
 *   a step keeps only the state's first `step.lessons` (a redelivery adds nothing twice).
 * - Passages and their vectors are stored by id (`ON CONFLICT`): a redone batch changes
 *   nothing; in an external vector store (Chroma) they are upserted before the commit.
 * - The course's structure and status are written once, by the last step, which clears the
 *   state. Search reads a course only once it is ready, never a half-stored one.
 */
import { defineActor, StepBudget } from "@troupe/runtime";
import { lexemeVector } from "../lexicon.ts";
import type { VectorItem } from "../vectors/port.ts";
import type { WrittenLesson } from "../writer/port.ts";
import { sentences } from "../writer/text.ts";
import { type DistinctInput, distinctLessons } from "../distinct.ts";
import { type BuildPlan, buildPlan, type ChunkRow, courseChunks } from "../build_plan.ts";
import {
  buildInput,
  type CourseContext,
  type Lesson,
  type Module,
  type SourceRow,
  sources,
} from "./_context.ts";

/** What the steps of one build hand on: the lessons written so far. */
interface BuildState {
  lessons?: WrittenLesson[];
}

/** The `course.build` actor over the pipeline's context. */
export function buildActor(c: CourseContext) {
  const { db, writer, embedder, vectors, changed, failCourse, budgetMs, embedBatch, extractor } = c;
  const prepare = extractor.prepare?.bind(extractor);
  return defineActor({
    name: "course.build",
    input: buildInput,
    key: (i) => `course:${i.courseId}`,
    exposed: false,
    retries: 3,
    onDeadLetter: failCourse,
    timeoutMs: 10 * 60_000,
    initialState: (): BuildState => ({}),
    handler: async ({ courseId, step }, ctx) => {
      const budget = new StepBudget(budgetMs);
      const [course] = await db.query<{ status: string; tenant_id: string; title: string }>(
        "SELECT status, tenant_id, title FROM troupe_courses WHERE id = $1",
        [courseId],
      );
      if (!course || course.status !== "processing") {
        if (ctx.state.lessons) ctx.setState({});
        return { skipped: true };
      }
      const tenantId = course.tenant_id;
      const files = await sources(db, courseId);
      const plan = await buildPlan(db, files, prepare);
      await budget.pause();
      const written = (ctx.state.lessons ?? []).slice(0, step?.lessons ?? 0);
      if (written.length < (step?.lessons ?? 0)) {
        throw new Error(
          `course.build: ${written.length} lessons in the state, the step starts at ${step?.lessons}`,
        );
      }
      /** Whether this step may take one more item: its first always, then within the budget. */
      let took = false;
      const more = () => !took || !budget.spent();
      while (written.length < plan.lessons.length && more()) {
        ctx.signal.throwIfAborted();
        const l = plan.lessons[written.length]!;
        const w = await writer.lesson({ title: l.lesson.title, passages: l.prose() }, plan.doc);
        written.push({ summary: w.summary, keyPoints: w.keyPoints, quiz: w.quiz });
        took = true;
        // The local writer is synchronous work: the event loop runs between lessons.
        await budget.pause();
      }
      let stored = step?.chunks ?? 0;
      let chunks: ChunkRow[] = [];
      if (written.length === plan.lessons.length) {
        chunks = await courseChunks(courseId, plan);
        while (stored < chunks.length && more()) {
          ctx.signal.throwIfAborted();
          const batch = chunks.slice(stored, stored + embedBatch);
          await storeChunks(batch);
          stored += batch.length;
          took = true;
          await budget.pause();
        }
      }
      if (stored < chunks.length || written.length < plan.lessons.length || !more()) {
        // Not done, or done with the budget spent: the course is made by the next step.
        const next = { lessons: written.length, chunks: stored };
        ctx.setState({ lessons: written });
        ctx.send("course.build", { courseId, step: next });
        const total = plan.lessons.length + chunks.length;
        ctx.progress(
          Math.floor((90 * (next.lessons + next.chunks)) / Math.max(1, total)),
          `${next.lessons} of ${plan.lessons.length} lessons written, ${next.chunks} passages stored`,
        );
        return { step: next };
      }
      ctx.setState({});
      return await finish(files, plan, written, chunks.length);

      /** Embeds and stores `batch` (committed with this step; Chroma: upserted now). */
      async function storeChunks(batch: ChunkRow[]): Promise<void> {
        const vecs = await embedder.embed(batch.map((ch) => `${ch.section}. ${ch.text}`));
        // Ids are the passages' (deterministic): a redone batch upserts the same rows.
        const items: VectorItem[] = batch.map((ch, j) => ({
          id: ch.id,
          tenantId,
          courseId,
          vector: vecs[j]!,
        }));
        // An external store (Chroma) cannot join the transaction: upsert now (idempotent by id).
        if (!vectors.transactional) await vectors.upsert(items);
        // The rows' lexemes made now, a passage at a time, not in the commit all at once.
        const rows = [];
        for (const ch of batch) {
          rows.push({ ...ch, lexemes: lexemeVector(`${ch.section}. ${ch.text}`) });
          await budget.pause();
        }
        const json = JSON.stringify(rows);
        ctx.effect(async (tx) => {
          await tx.query(
            `INSERT INTO troupe_course_chunks
               (id, course_id, tenant_id, source_idx, file_name, page_from, page_to, section, text,
                lexemes)
             SELECT x.id, $1, $2, x.source_idx, x.file_name, x.page_from, x.page_to, x.section,
               x.text, x.lexemes::tsvector
             FROM jsonb_to_recordset($3::jsonb) AS x(id text, source_idx int, file_name text,
               page_from int, page_to int, section text, text text, lexemes text)
             ON CONFLICT (id) DO NOTHING`,
            [courseId, tenantId, json],
          );
          if (vectors.transactional) await vectors.upsert(items, tx);
        });
      }

      /** The last step: the lessons made distinct, the course's structure and status. */
      async function finish(
        files: SourceRow[],
        plan: BuildPlan,
        written: WrittenLesson[],
        chunkCount: number,
      ) {
        const modules: Module[] = plan.modules.map((m) => ({
          title: m.title,
          summary: "",
          lessons: [],
        }));
        /** Each lesson with its own text, for {@link distinctLessons}. */
        const checks: { lesson: Lesson; check: DistinctInput }[] = plan.lessons.map((l, i) => {
          const w = written[i]!;
          const lesson: Lesson = {
            title: l.lesson.title,
            ...w,
            pages: [l.lesson.from, l.lesson.to],
            fileName: l.file.file_name,
          };
          modules[l.module]!.lessons.push(lesson);
          return {
            lesson,
            check: {
              title: l.lesson.title,
              module: modules[l.module]!.title,
              summary: w.summary,
              quiz: w.quiz,
              passages: l.prose(),
            },
          };
        });
        // No two lessons share a summary or a question, whatever the writer wrote.
        distinctLessons(checks.map((w) => w.check));
        for (const { lesson, check } of checks) {
          lesson.summary = check.summary;
          lesson.quiz = check.quiz;
        }
        for (const m of modules) m.summary = moduleSummary(m.lessons.map((l) => l.summary));
        const { noText } = plan;
        const failedFiles = files.filter((f) => f.status === "failed").length + noText.length;
        const status = modules.length === 0 ? "failed" : failedFiles > 0 ? "partial" : "ready";
        // A course whose files all failed the same way fails that way (PDF_TOO_COMPLEX, say).
        const errors = [
          ...files.filter((f) => f.status === "failed").map((f) => f.error),
          ...noText.map(() => ({ code: "NO_TEXT", message: NO_TEXT })),
        ];
        const courseError = errors.length > 0 && errors.every((e) =>
            e && e.code === errors[0]?.code
          )
          ? errors[0]!
          : { code: "NO_USABLE_FILES", message: "no file gave text" };
        ctx.effect(async (tx) => {
          for (const idx of noText) {
            await tx.query(
              `UPDATE troupe_course_sources SET status = 'failed', error = $3::jsonb
               WHERE course_id = $1 AND idx = $2`,
              [courseId, idx, JSON.stringify({ code: "NO_TEXT", message: NO_TEXT })],
            );
          }
          await tx.query(
            `UPDATE troupe_course_sources SET status = 'done'
             WHERE course_id = $1 AND status = 'extracting' AND NOT (idx = ANY($2::int[]))`,
            [courseId, noText],
          );
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
        return { status, modules: modules.length, chunks: chunkCount };
      }
    },
  });
}

const NO_TEXT = "the PDF has no text layer (scanned?)";

/** A module's summary: the first sentence of each of its first two lessons' summaries. */
export function moduleSummary(summaries: string[]): string {
  return summaries.map((s) => sentences(s)[0]).filter(Boolean).slice(0, 2).join(" ");
}
