/**
 * The courses' rows (`troupe_courses`, `troupe_course_sources`) as the API reads and writes
 * them; every read is scoped to a tenant, and another tenant's course is not found.
 */
import { NotFoundError, type SqlExecutor } from "@troupe/runtime";

type Row = Record<string, unknown>;

/** A course file as uploaded (its bytes are a stored blob). */
export interface CourseSource {
  fileName: string;
  sha256: string;
  size: number;
}

/** Inserts course `id` as `processing`, run by the pipeline `jobId`. */
export async function insertCourse(
  tx: SqlExecutor,
  c: { id: string; tenantId: string; title: string; jobId: string },
): Promise<void> {
  await tx.query(
    `INSERT INTO troupe_courses (id, tenant_id, title, status, job_id)
     VALUES ($1, $2, $3, 'processing', $4)`,
    [c.id, c.tenantId, c.title, c.jobId],
  );
}

/** Inserts the course's sources, in upload order. */
export async function insertCourseSources(
  tx: SqlExecutor,
  courseId: string,
  files: CourseSource[],
): Promise<void> {
  await tx.query(
    `INSERT INTO troupe_course_sources (course_id, idx, file_name, sha256, size_bytes)
     SELECT $1, x.idx, x.file_name, x.sha256, x.size
     FROM jsonb_to_recordset($2::jsonb) AS x(idx int, file_name text, sha256 text, size int)`,
    [
      courseId,
      JSON.stringify(
        files.map((f, idx) => ({ idx, file_name: f.fileName, sha256: f.sha256, size: f.size })),
      ),
    ],
  );
}

/** One item of a course list. */
export interface CourseListItem {
  id: string;
  title: string;
  status: string;
  createdAt: string;
  updatedAt: string;
}

/** A page of the tenant's courses, newest first, after `cursor` (an id). */
export async function listCoursePage(
  db: SqlExecutor,
  tenantId: string,
  { limit, cursor }: { limit: number; cursor?: string | undefined },
): Promise<{ items: CourseListItem[]; nextCursor: string | null }> {
  const rows = await db.query<Row>(
    `SELECT id, title, status, created_at, updated_at FROM troupe_courses
     WHERE tenant_id = $1 AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`,
    [tenantId, cursor ?? null, limit + 1],
  );
  const items = rows.slice(0, limit).map((r) => ({
    id: String(r.id),
    title: String(r.title),
    status: String(r.status),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  }));
  return { items, nextCursor: rows.length > limit ? items.at(-1)!.id : null };
}

/** The course's version (it changes with every write), or `null` when there is no such course. */
export async function courseVersion(
  db: SqlExecutor,
  id: string,
  tenantId: string,
): Promise<number | null> {
  const [meta] = await db.query<{ version: number }>(
    "SELECT version FROM troupe_courses WHERE id = $1 AND tenant_id = $2",
    [id, tenantId],
  );
  return meta ? meta.version : null;
}

/** The course's pipeline job, `undefined` when there is no such course. */
export async function courseJobId(
  db: SqlExecutor,
  id: string,
  tenantId: string,
): Promise<{ jobId: string | null } | undefined> {
  const [owned] = await db.query<{ job_id: string | null }>(
    "SELECT job_id FROM troupe_courses WHERE id = $1 AND tenant_id = $2",
    [id, tenantId],
  );
  return owned ? { jobId: owned.job_id } : undefined;
}

/**
 * Marks a `processing` course `cancelled`; returns its pipeline job, or `undefined` when the
 * tenant has no such course in `processing`.
 */
export async function cancelProcessingCourse(
  db: SqlExecutor,
  id: string,
  tenantId: string,
): Promise<{ jobId: string | null } | undefined> {
  const rows = await db.query<{ job_id: string | null }>(
    `UPDATE troupe_courses SET status = 'cancelled', version = version + 1, updated_at = now()
     WHERE id = $1 AND tenant_id = $2 AND status = 'processing' RETURNING status, job_id`,
    [id, tenantId],
  );
  return rows[0] ? { jobId: rows[0].job_id } : undefined;
}

/** The course's row; `NotFoundError` when the tenant has no such course. */
export async function getCourseRow(db: SqlExecutor, id: string, tenantId: string): Promise<Row> {
  const rows = await db.query<Row>(
    "SELECT * FROM troupe_courses WHERE id = $1 AND tenant_id = $2",
    [id, tenantId],
  );
  if (!rows[0]) throw new NotFoundError("course", id);
  return rows[0];
}

/** The course as the API shows it. */
export interface CourseView {
  id: string;
  title: string;
  status: string;
  progress: unknown;
  sources: {
    fileName: string;
    sha256: string;
    pageCount: number | null;
    status: string;
    error?: unknown;
  }[];
  modules: unknown[];
  error: unknown;
  createdAt: string;
  updatedAt: string;
}

/** The course with its sources (and their status), modules, progress and error. */
export async function getCourseView(
  db: SqlExecutor,
  id: string,
  tenantId: string,
): Promise<CourseView> {
  const r = await getCourseRow(db, id, tenantId);
  const sources = await db.query<Row>(
    `SELECT file_name, sha256, page_count, status, error FROM troupe_course_sources
     WHERE course_id = $1 ORDER BY idx`,
    [id],
  );
  const structure = (r.structure ?? {}) as { modules?: unknown[]; progress?: unknown };
  return {
    id: String(r.id),
    title: String(r.title),
    status: String(r.status),
    progress: structure.progress ?? null,
    sources: sources.map((s) => ({
      fileName: String(s.file_name),
      sha256: String(s.sha256),
      pageCount: s.page_count === null ? null : Number(s.page_count),
      status: String(s.status),
      ...(s.error ? { error: s.error } : {}),
    })),
    modules: structure.modules ?? [],
    error: r.error ?? null,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

const iso = (v: unknown) => (v instanceof Date ? v : new Date(String(v))).toISOString();
