/**
 * What `course.build` works through, made again the same by each of its steps: the course's
 * files cleaned (`page_clean.ts`), the document's term statistics, every lesson in course
 * order (modules and lessons from the outline or the headings found, `lessons.ts`) and the
 * search passages of each lesson, with their deterministic ids.
 *
 * Invariants:
 * - The plan is a function of the stored pages and the sources' rows: every step of one build
 *   (and every redelivery of one) sees the same lessons in the same order and the same
 *   passages with the same ids, so a cursor (lessons written, passages embedded) means the
 *   same work in every step.
 * - Lesson and passage texts are made on demand: a step pays only for the lessons it writes.
 */
import { deterministicId, type SqlExecutor, StepBudget } from "@troupe/runtime";
import type { OutlineEntry } from "./pdf.ts";
import { type PreparedFile, prepareText } from "./page_clean.ts";
import { DocumentStats } from "./writer/text.ts";
import {
  headingLines,
  pageText,
  passagesBetween,
  type PlannedLesson,
  structure,
} from "./lessons.ts";
import type { SourceRow } from "./actors/_context.ts";

/** One lesson of the plan: where it is, and its text on demand. */
export interface LessonPlan {
  /** Its module's index in {@link BuildPlan.modules}. */
  module: number;
  file: SourceRow;
  /** Its position among its file's lessons (part of its passages' ids). */
  ordinal: number;
  lesson: PlannedLesson;
  /** The lesson's text with its headings' lines (what search reads). */
  passages(): { text: string; page: number }[];
  /** The lesson's sentences without the headings' lines (what the writer reads). */
  prose(): { text: string; page: number }[];
}

/** A passage of a lesson for search (a row of `troupe_course_chunks`). */
export interface ChunkRow {
  id: string;
  source_idx: number;
  file_name: string;
  page_from: number;
  page_to: number;
  section: string;
  text: string;
}

/** The whole build's work, in order. */
export interface BuildPlan {
  /** The files whose pages have no text (`NO_TEXT`). */
  noText: number[];
  /** The whole course's text statistics, for the writer. */
  doc: DocumentStats;
  modules: { title: string }[];
  lessons: LessonPlan[];
}

/**
 * Prepares a file's stored pages (JSON text) for the plan, `null` when none has text:
 * `PageExtractor.prepare` (a worker) where there is one.
 */
export type PrepareFile = (pages: string, outline: OutlineEntry[]) => Promise<PreparedFile | null>;

/**
 * The plan of `files` (the course's sources), read from the page store. Each file is prepared
 * by `prepare` (by default in this thread); the rest gives the event loop back every 10 ms.
 */
export async function buildPlan(
  db: SqlExecutor,
  files: SourceRow[],
  prepare: PrepareFile = (pages, outline) => Promise.resolve(prepareText(pages, outline)),
): Promise<BuildPlan> {
  const loop = new StepBudget(0);
  const doc = new DocumentStats();
  const texts = new Map<number, PreparedFile>();
  const noText: number[] = [];
  for (const f of files.filter((f) => f.status !== "failed")) {
    // The pages as one JSON text, parsed where they are prepared.
    const [row] = await db.query<{ pages: string }>(
      `SELECT coalesce(json_agg(json_build_object('page', page, 'lines', lines) ORDER BY page),
         '[]')::text AS pages
       FROM troupe_pdf_pages WHERE sha256 = $1`,
      [f.sha256],
    );
    // Furniture and back matter out; the outline (or headings found) without back matter.
    const file = await prepare(row?.pages ?? "[]", f.outline ?? []);
    if (!file) {
      noText.push(f.idx);
      continue;
    }
    texts.set(f.idx, file);
    for (const p of file.pages) {
      doc.add(pageText(p));
      await loop.pause();
    }
  }
  const modules: { title: string }[] = [];
  const lessons: LessonPlan[] = [];
  for (const f of files) {
    const file = texts.get(f.idx);
    if (!file) continue;
    const { pages, outline } = file;
    const headings = headingLines(outline.map((e) => e.title));
    let ordinal = 0;
    // Without headings, the one module is named after the document's title.
    for (const m of structure(outline, pages, file.title ?? f.file_name)) {
      const module = modules.push({ title: m.title }) - 1;
      for (const l of m.lessons) {
        lessons.push({
          module,
          file: f,
          ordinal: ordinal++,
          lesson: l,
          // Search keeps the headings' words; the writer gets sentences without them.
          passages: () => passagesBetween(pages, l.start, l.end),
          prose: () => passagesBetween(pages, l.start, l.end, headings),
        });
      }
    }
  }
  return { noText, doc, modules, lessons };
}

/** Passages of each lesson cut at most this many words apart. */
const CHUNK_STEP = 350;
/** Words of a passage (overlapping the next by 50). */
const CHUNK_WORDS = 400;

/**
 * ~400-word passages with a 50-word overlap; each keeps its file, pages and section. Ids are
 * deterministic (a rebuild upserts the same ones) and unique: the lesson's ordinal in its
 * file is part of them, as sections of many chapters may share a title ("Exercises").
 */
export async function chunkLesson(courseId: string, l: LessonPlan): Promise<ChunkRow[]> {
  const { file: f, ordinal, lesson } = l;
  const section = lesson.title;
  const words: { w: string; page: number }[] = l.passages().flatMap((p) =>
    p.text.split(/\s+/).filter(Boolean).map((w) => ({ w, page: p.page }))
  );
  const out: ChunkRow[] = [];
  for (let start = 0; start < words.length; start += CHUNK_STEP) {
    const slice = words.slice(start, start + CHUNK_WORDS);
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
    if (start + CHUNK_WORDS >= words.length) break;
  }
  return out;
}

/** Every passage of the course, lesson by lesson in the plan's order. */
export async function courseChunks(courseId: string, plan: BuildPlan): Promise<ChunkRow[]> {
  const loop = new StepBudget(0);
  const out: ChunkRow[] = [];
  for (const l of plan.lessons) {
    out.push(...await chunkLesson(courseId, l));
    await loop.pause();
  }
  return out;
}
