/**
 * The course pipeline's shared context: its options, input schemas, the course's types and
 * the helpers more than one of its actors uses.
 */
import { z } from "zod";
import type { SqlDatabase, SqlExecutor } from "@troupe/runtime";
import type { BlobStore } from "../../../db/blobs/port.ts";
import { EXTRACTION_VERSION, type OutlineEntry, PdfError } from "../pdf.ts";
import type { PageExtractor } from "../extract.ts";
import type { TextEmbedder } from "../embeddings/port.ts";
import type { VectorStore } from "../vectors/port.ts";
import type { CourseWriter, QuizQuestion } from "../writer/port.ts";

export const PAGES_PER_MESSAGE = 20;

export interface CoursePipelineOptions {
  db: SqlDatabase;
  blobs: BlobStore;
  /** Writes the lessons (main.ts picks it). */
  writer: CourseWriter;
  /** Embeds the passages for search (main.ts picks it). */
  embedder: TextEmbedder;
  /** Where the embeddings go (main.ts picks it). */
  vectors: VectorStore;
  onChange?: (courseId: string) => Promise<void>;
  /** Where page text is extracted: workers, or this thread (main.ts picks it). */
  extractor: PageExtractor;
  /**
   * How long one delivery of `course.build` may go on taking work, in ms (a
   * `StepBudget`): past half of it, a step commits what it wrote and hands the rest to the
   * next message. 0: none (a build is one delivery). @default 0
   */
  deliveryBudgetMs?: number;
  /** Passages `course.build` embeds (and stores) at a time. @default 64 */
  embedBatch?: number;
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

export const courseInput = z.object({ courseId: z.string().uuid() });
/** `course.build`'s input: the course, and where this step starts (absent: at the beginning). */
export const buildInput = courseInput.extend({
  step: z.object({
    /** Lessons written by the steps before (their texts are in the actor's state). */
    lessons: z.number().int().min(0),
    /** Passages embedded and stored by the steps before. */
    chunks: z.number().int().min(0),
  }).optional(),
});
export const extractInput = z.object({
  courseId: z.string().uuid(),
  /** The course's tenant: it scopes the key (absent in messages sent before it was added). */
  tenantId: z.string().nullable().optional(),
  idx: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  from: z.number().int().min(1),
  to: z.number().int().min(1),
});
export const extractedInput = z.object({
  courseId: z.string().uuid(),
  idx: z.number().int().min(0),
  /** Pages of the range extracted (absent in older messages: the file's pages stored count). */
  pages: z.number().int().min(0).optional(),
  failed: z.object({ code: z.string(), message: z.string() }).optional(),
});

export function errorOf(err: unknown): { code: string; message: string } {
  if (err instanceof PdfError) return { code: err.code, message: err.message };
  return { code: "EXTRACT_FAILED", message: err instanceof Error ? err.message : String(err) };
}

export interface SourceRow {
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

export async function sources(db: SqlExecutor, courseId: string): Promise<SourceRow[]> {
  return await db.query<SourceRow>(
    `SELECT idx, file_name, sha256, page_count, pages_done, status, outline, error
     FROM troupe_course_sources
     WHERE course_id = $1 ORDER BY idx`,
    [courseId],
  );
}

/** Pages of a file in the shared page store (of this extraction version), at most `pageCount`. */
export async function storedPages(
  db: SqlExecutor,
  sha256: string,
  pageCount: number,
): Promise<number> {
  const [n] = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM troupe_pdf_pages WHERE sha256 = $1 AND version >= $2",
    [sha256, EXTRACTION_VERSION],
  );
  return Math.min(n!.n, pageCount);
}

export async function courseStatus(db: SqlExecutor, courseId: string): Promise<string | null> {
  const rows = await db.query<{ status: string }>(
    "SELECT status FROM troupe_courses WHERE id = $1",
    [
      courseId,
    ],
  );
  return rows[0]?.status ?? null;
}

/** What every course actor shares: the adapters and the pipeline's own helpers. */
export interface CourseContext {
  o: CoursePipelineOptions;
  db: SqlDatabase;
  blobs: BlobStore;
  extractor: PageExtractor;
  writer: CourseWriter;
  embedder: TextEmbedder;
  vectors: VectorStore;
  changed: (courseId: string) => Promise<void>;
  /** See {@link CoursePipelineOptions.deliveryBudgetMs}. */
  budgetMs: number;
  /** See {@link CoursePipelineOptions.embedBatch}. */
  embedBatch: number;
  /** The dead-letter target that fails the course with `error`. */
  failCourse: (
    i: { courseId: string },
    error: { code: string; message: string },
  ) => { actor: string; input: { courseId: string; code: string; message: string } };
}

/** The context of `o`. */
export function courseContext(o: CoursePipelineOptions): CourseContext {
  const { db, blobs } = o;
  const { extractor, writer, embedder, vectors } = o;
  const changed = (id: string) => o.onChange?.(id) ?? Promise.resolve();

  const failCourse = (i: { courseId: string }, error: { code: string; message: string }) => ({
    actor: "course.failed",
    input: { courseId: i.courseId, code: error.code, message: error.message },
  });
  const budgetMs = o.deliveryBudgetMs ?? 0;
  const embedBatch = Math.max(1, o.embedBatch ?? 64);
  return {
    o,
    db,
    blobs,
    extractor,
    writer,
    embedder,
    vectors,
    changed,
    budgetMs,
    embedBatch,
    failCourse,
  };
}
