/**
 * Courses made from PDFs.
 *
 * - `pdfPages`: the text of a PDF's pages, keyed by the file's SHA-256: the same PDF uploaded
 *   twice (by any course) is extracted once.
 * - `courses`: one per upload; `structure` holds the modules and lessons once built.
 * - `courseSources`: the files of a course, with their status (a corrupt or encrypted file
 *   fails alone; the others still make the course).
 * - `courseChunks`: section-sized passages with file, pages and section, for search
 *   (full-text here; vectors by deterministic id elsewhere).
 */
import {
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamp,
} from "drizzle-orm/pg-core";

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });
const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });

export const pdfPages = pgTable("troupe_pdf_pages", {
  sha256: text("sha256").notNull(),
  page: integer("page").notNull(),
  /** [{ text, size, y }] lines in reading order. */
  lines: jsonb("lines").notNull(),
  /** The extraction that wrote them (`EXTRACTION_VERSION`): older ones are extracted again. */
  version: integer("version").notNull().default(1),
}, (t) => [primaryKey({ columns: [t.sha256, t.page] })]);

export const courses = pgTable("troupe_courses", {
  id: text("id").primaryKey(),
  tenantId: text("tenant_id").notNull(),
  title: text("title").notNull(),
  /** processing | ready | partial | failed | cancelled */
  status: text("status").notNull(),
  structure: jsonb("structure"),
  error: jsonb("error"),
  jobId: text("job_id"),
  version: integer("version").notNull().default(1),
  createdAt: tz("created_at").notNull().defaultNow(),
  updatedAt: tz("updated_at").notNull().defaultNow(),
}, (t) => [index("troupe_courses_tenant_idx").on(t.tenantId, t.id)]);

export const courseSources = pgTable("troupe_course_sources", {
  courseId: text("course_id").notNull(),
  idx: integer("idx").notNull(),
  fileName: text("file_name").notNull(),
  sha256: text("sha256").notNull(),
  sizeBytes: integer("size_bytes").notNull(),
  pageCount: integer("page_count"),
  /** Pages this course's own extract messages reported (its progress, not the shared store's). */
  pagesDone: integer("pages_done").notNull().default(0),
  /** pending | extracting | done | failed */
  status: text("status").notNull().default("pending"),
  outline: jsonb("outline"),
  error: jsonb("error"),
}, (t) => [primaryKey({ columns: [t.courseId, t.idx] })]);

/** One embedding per passage (same id), for the vector half of hybrid search. */
export const courseVectors = pgTable("troupe_course_vectors", {
  id: text("id").primaryKey(),
  tenantId: text("tenant_id").notNull(),
  courseId: text("course_id").notNull(),
  vector: real("vector").array().notNull(),
}, (t) => [index("troupe_course_vectors_course_idx").on(t.tenantId, t.courseId, t.id)]);

export const courseChunks = pgTable("troupe_course_chunks", {
  id: text("id").primaryKey(),
  courseId: text("course_id").notNull(),
  tenantId: text("tenant_id").notNull(),
  sourceIdx: integer("source_idx").notNull(),
  fileName: text("file_name").notNull(),
  pageFrom: integer("page_from").notNull(),
  pageTo: integer("page_to").notNull(),
  section: text("section").notNull(),
  text: text("text").notNull(),
  /** The lexical index: `actors/courses/lexicon.ts`'s tokens of the section and the text. */
  lexemes: tsvector("lexemes"),
}, (t) => [
  index("troupe_course_chunks_course_idx").on(t.courseId),
]);
