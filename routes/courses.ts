/**
 * The courses API (tenant-scoped; another tenant's course is a 404):
 * - `POST /api/courses`: multipart, `files` = 1..20 PDFs (checked by magic bytes while they
 *   stream, each up to the size limit), optional `title`; every file is stored
 *   (content-addressed) before `202 { courseId, jobId }`.
 * - `GET /api/courses` (cursor pages), `GET /api/courses/:id` (sources with their status,
 *   modules, lessons, quizzes), `GET /api/courses/:id/search?q=&k=` (hybrid lexical and vector
 *   search over the course's passages: distinct file, page and section, best first, none when
 *   nothing matches), `POST /api/courses/:id/ask` `{ question }` (an extractive answer from the
 *   course only, with distinct sentences and citations, and `answered: false` when the course
 *   does not answer it), `GET .../export.pdf` (the
 *   handbook), `POST .../cancel` (the pipeline stops at its next step), `DELETE /api/courses/:id`.
 *
 * An upload may name a `callbackUrl` (query or form field): a signed event is POSTed there
 * when the course is built or failed (the upload's pipeline ends; actors/system/callback.ts).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import {
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  type Runtime,
  type SqlDatabase,
  uuidv7,
  ValidationError,
} from "@troupe/runtime";
import { answerQuestion, searchCourse } from "../actors/courses/answer.ts";
import type { TextEmbedder } from "../actors/courses/embeddings/port.ts";
import type { VectorStore } from "../actors/courses/vectors/port.ts";
import { looksLikePdf } from "../actors/courses/pdf.ts";
import type { Module } from "../actors/courses/pipeline.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { holdBlobs, noteStored } from "../db/blobs/refs.ts";
import { deleteCourse } from "../actors/courses/delete.ts";
import {
  cancelProcessingCourse,
  courseJobId,
  courseVersion,
  getCourseRow,
  getCourseView,
  insertCourse,
  insertCourseSources,
  listCoursePage,
} from "../actors/courses/store.ts";
import type { TenantStore } from "../db/tenants.ts";
import { principalOf } from "./auth.ts";
import type { QueryCache } from "./datasets.ts";
import { noCache } from "./datasets.ts";
import { acceptCallback, auditContext, CallbackUrl } from "./jobs.ts";
import type { Callbacks } from "../actors/system/callback.ts";
import {
  fieldText,
  MULTIPART_DEFAULTS,
  multipartBoundary,
  type MultipartLimits,
  readMultipart,
} from "./multipart.ts";
import { declaredSize, receiveUpload, type UploadLimits } from "./upload.ts";
import { jsonBody, parseBody, parseQuery, pathId } from "./validate.ts";
import { apiBase, declare, JsonObject, pageOf } from "./openapi.ts";
import type { AppEnv } from "./env.ts";

const tags = ["courses"];

export interface CourseRoutesOptions {
  runtime: Runtime;
  db: SqlDatabase;
  blobs: BlobStore;
  tenants: TenantStore;
  cache?: QueryCache;
  /** Largest PDF. @default 100 MB */
  maxFileBytes?: number;
  /** Most files per course. @default 20 */
  maxFiles?: number;
  /** How slow an upload's client may be, and its form's limits (see `UploadLimits`). */
  uploads?: UploadLimits;
  /** Completion callbacks (`callbackUrl`); absent: a `callbackUrl` is a 409. */
  callbacks?: Callbacks;
  /** Must be the pipeline's. */
  embedder: TextEmbedder;
  /** Must be the pipeline's. */
  vectors: VectorStore;
}

const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  /** The last course id shown. */
  cursor: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, "not a cursor of this list").optional(),
});
const askBody = z.object({ question: z.string().trim().min(3).max(1000) }).strict();
/** What a course search may ask: its query's length, its number of results. */
export const COURSE_SEARCH = { maxQueryChars: 500, maxResults: 50, defaultResults: 5 } as const;
/** `GET /courses/:id/search`'s query (the console's search form asks the same). */
export const courseSearchQuery = z.object({
  q: z.string().trim().min(1).max(COURSE_SEARCH.maxQueryChars),
  k: z.coerce.number().int().min(1).max(COURSE_SEARCH.maxResults).default(
    COURSE_SEARCH.defaultResults,
  ),
});

/** Passes bytes through, failing unless the first ones hold the PDF magic `%PDF-`. */
function pdfGate(): TransformStream<Uint8Array, Uint8Array> {
  let head = new Uint8Array(0);
  let checked = false;
  return new TransformStream({
    transform(chunk, controller) {
      if (!checked) {
        const next = new Uint8Array(head.length + chunk.length);
        next.set(head);
        next.set(chunk, head.length);
        head = next;
        if (head.length >= 1024 || looksLikePdf(head)) {
          checked = true;
          if (!looksLikePdf(head)) throw new ValidationError("not a PDF", { code: "NOT_PDF" });
        }
      }
      controller.enqueue(chunk);
    },
    flush() {
      if (!checked && !looksLikePdf(head)) {
        throw new ValidationError("not a PDF", { code: head.length ? "NOT_PDF" : "EMPTY_FILE" });
      }
    },
  });
}

interface Received {
  fileName: string;
  sha256: string;
  size: number;
}

/**
 * Reads a course upload's parts: its title, and each PDF into the blob store (checked by its
 * magic bytes as it streams; bad or oversize files are 4xx errors naming the file).
 */
async function receiveCourse(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  blobs: BlobStore,
  db: SqlDatabase,
  { maxFiles, maxFileBytes, form }: {
    maxFiles: number;
    maxFileBytes: number;
    form: MultipartLimits;
  },
): Promise<{ title: string | null; callbackUrl: string | null; files: Received[] }> {
  let title: string | null = null;
  let callbackUrl: string | null = null;
  const files: Received[] = [];
  for await (const part of readMultipart(body, boundary, form)) {
    if (part.name === "title" && part.filename === null) {
      title = (await fieldText(part)).trim().slice(0, 300) || null;
    } else if (part.name === "callbackUrl" && part.filename === null) {
      callbackUrl = (await fieldText(part)).trim() || null;
    } else if (part.name === "files" && part.filename !== null) {
      if (files.length >= maxFiles) throw new ValidationError(`at most ${maxFiles} files`);
      const fileName = part.filename.slice(0, 255) || `file-${files.length + 1}.pdf`;
      try {
        const put = await blobs.put(part.body.pipeThrough(pdfGate()), { maxBytes: maxFileBytes });
        await noteStored(db, put.sha256);
        files.push({ fileName, sha256: put.sha256, size: put.size });
      } catch (err) {
        if (err instanceof ValidationError) {
          throw new ValidationError(`${fileName} is not a PDF`, {
            file: fileName,
            ...(err.details as object),
          });
        }
        if (err instanceof PayloadTooLargeError) {
          throw new PayloadTooLargeError(maxFileBytes, fileName);
        }
        throw err;
      }
    } else {
      await part.body.cancel();
    }
  }
  return { title, callbackUrl, files };
}

const uploadQuery = z.object({ callbackUrl: CallbackUrl });

export function courseRoutes(o: CourseRoutesOptions): OpenAPIHono<AppEnv> {
  const maxFileBytes = o.maxFileBytes ?? 100 * 1024 * 1024;
  const maxFiles = o.maxFiles ?? 20;
  const form = { ...MULTIPART_DEFAULTS, ...o.uploads };
  // Every file and every other part at their largest.
  const maxBody = maxFiles * maxFileBytes +
    form.maxParts * (form.maxFieldBytes + form.maxHeaderBytes);
  const cache = o.cache ?? noCache;
  const { embedder, vectors } = o;
  const app = new OpenAPIHono<AppEnv>();

  declare(app, {
    method: "post",
    path: "/courses",
    tags,
    summary: "Upload 1..20 PDFs (multipart `files`, optional `title` and `callbackUrl`)",
    description: "The files stream to storage and are not buffered. `callbackUrl` (query or " +
      "form field) is called back when the course is built or failed.",
    query: uploadQuery,
    rawBody: { description: "A form with `files` and `title`", types: ["multipart/form-data"] },
    responses: {
      202: {
        description: "Stored; the pipeline builds the course",
        schema: z.object({ courseId: z.string(), jobId: z.string(), status: z.string() }),
      },
    },
  }, async function uploadCourse(c) {
    const principal = principalOf(c);
    // A callback URL in the query is checked before the files are received.
    const queried = await acceptCallback(
      o.callbacks,
      principal.tenantId,
      parseQuery(c, uploadQuery).callbackUrl,
    );
    const boundary = multipartBoundary(c.req.header("content-type"));
    const body = c.req.raw.body;
    if (!boundary || !body) {
      throw new ValidationError('send multipart/form-data with PDFs in the "files" field');
    }
    const size = declaredSize(c.req.header("content-length"), maxBody);
    if (size > maxBody) throw new PayloadTooLargeError(maxFiles * maxFileBytes, "the upload");
    const { title, callbackUrl, files } = await receiveUpload(
      o.runtime,
      body,
      (guarded) =>
        receiveCourse(guarded, boundary, o.blobs, o.db, { maxFiles, maxFileBytes, form }),
      { policy: o.uploads ?? {}, sizeBytes: size },
    );
    if (files.length === 0) throw new ValidationError('no PDF: send them in the "files" field');
    const callback = queried ??
      await acceptCallback(o.callbacks, principal.tenantId, callbackUrl ?? undefined);
    const courseId = uuidv7();
    const name = title ?? files[0]!.fileName.replace(/\.pdf$/i, "");
    // The upload's job is the pipeline's: it runs until the course is built or failed.
    const { job } = await o.runtime.startPipeline("course.ingest", {
      actor: "course.start",
      input: { courseId },
    }, {
      tenantId: principal.tenantId,
      onAbort: { actor: "course.aborted", input: { courseId } },
      ...(callback ? { onEnd: callback({ type: "course", id: courseId }) } : {}),
      effect: async (tx, { pipelineId: jobId }) => {
        await insertCourse(tx, { id: courseId, tenantId: principal.tenantId, title: name, jobId });
        await holdBlobs(
          tx,
          o.blobs,
          { kind: "course", id: courseId, tenantId: principal.tenantId },
          files.map((f) => f.sha256),
        );
        await insertCourseSources(tx, courseId, files);
      },
    });
    await o.tenants.audit({
      ...auditContext(c),
      action: "course.upload",
      targetType: "course",
      targetId: courseId,
      details: {
        title: name,
        files: files.map((f) => ({ name: f.fileName, sha256: f.sha256, bytes: f.size })),
      },
    });
    c.header("Location", `${apiBase(c)}/courses/${courseId}`);
    return c.json({ courseId, jobId: job.id, status: "processing" }, 202);
  });

  declare(app, {
    method: "get",
    path: "/courses",
    tags,
    summary: "List courses",
    query: pageQuery,
    responses: { 200: { description: "A page of courses", schema: pageOf(JsonObject) } },
  }, async function listCourses(c) {
    const q = parseQuery(c, pageQuery);
    return c.json(
      await listCoursePage(o.db, principalOf(c).tenantId, { limit: q.limit, cursor: q.cursor }),
    );
  });

  declare(app, {
    method: "get",
    path: "/courses/:id",
    tags,
    summary: "A course: sources, modules, lessons, quizzes",
    responses: { 200: { description: "The course", schema: JsonObject } },
  }, async function getCourse(c) {
    const { tenantId } = principalOf(c);
    const id = pathId(c, "course");
    const version = await courseVersion(o.db, id, tenantId);
    if (version === null) throw new NotFoundError("course", id);
    return c.json(
      await cache.getOrCompute(
        "courseOutline",
        `${tenantId}:course:${id}:v${version}`,
        () => getCourseView(o.db, id, tenantId),
        { tags: [`${tenantId}:course:${id}`] },
      ),
    );
  });

  declare(app, {
    method: "get",
    path: "/courses/:id/search",
    tags,
    summary: "Hybrid search: distinct file, page, section, best first",
    query: courseSearchQuery,
    responses: {
      200: { description: "The passages", schema: z.object({ results: z.array(JsonObject) }) },
    },
  }, async function search(c) {
    const { tenantId } = principalOf(c);
    const id = pathId(c, "course");
    const q = parseQuery(c, courseSearchQuery);
    await getCourseRow(o.db, id, tenantId);
    const results = await searchCourse(o.db, vectors, embedder, id, tenantId, q.q, q.k);
    return c.json({ results });
  });

  declare(app, {
    method: "post",
    path: "/courses/:id/ask",
    tags,
    summary: "Answer from the course only, with citations",
    body: askBody,
    responses: {
      200: {
        description: "The answer, or `answered: false`",
        schema: z.object({
          answered: z.boolean(),
          answer: z.string().nullable(),
          citations: z.array(JsonObject),
        }),
      },
    },
  }, async function ask(c) {
    const { tenantId } = principalOf(c);
    const id = pathId(c, "course");
    const body = parseBody(await jsonBody(c), askBody);
    await getCourseRow(o.db, id, tenantId);
    const { answered, answer, citations } = await answerQuestion(
      o.db,
      vectors,
      embedder,
      id,
      tenantId,
      body.question,
    );
    return c.json({ answered, answer, citations });
  });

  declare(app, {
    method: "get",
    path: "/courses/:id/export.pdf",
    tags,
    summary: "The course handbook",
    responses: { 200: { description: "The handbook", type: "application/pdf" } },
  }, async function exportHandbook(c) {
    const { tenantId } = principalOf(c);
    const course = await getCourseView(o.db, pathId(c, "course"), tenantId);
    if (course.status !== "ready" && course.status !== "partial") {
      throw new ConflictError(`course ${course.id} is ${course.status}`, { status: course.status });
    }
    // Loaded on first use: the PDF libraries are a large part of a cold start's imports.
    const { courseHandbook } = await import("../actors/courses/handbook.ts");
    const pdf = await courseHandbook({
      title: course.title,
      sources: course.sources.filter((s) => s.status === "done"),
      modules: course.modules as Module[],
    });
    const file = `${course.title.replace(/[^\w.-]+/g, "_").slice(0, 80) || "course"}.pdf`;
    return new Response(pdf, {
      headers: {
        "content-type": "application/pdf",
        "content-disposition": `inline; filename="${file}"`,
      },
    });
  });

  declare(app, {
    method: "post",
    path: "/courses/:id/cancel",
    tags,
    summary: "Stop the course's pipeline",
    responses: {
      200: {
        description: "Cancelled",
        schema: z.object({ id: z.string(), status: z.literal("cancelled") }),
      },
    },
  }, async function cancelCourse(c) {
    const { tenantId } = principalOf(c);
    const id = pathId(c, "course");
    const cancelled = await cancelProcessingCourse(o.db, id, tenantId);
    if (!cancelled) {
      const course = await getCourseRow(o.db, id, tenantId); // 404 for others' ids
      throw new ConflictError(`course ${id} is ${course.status}, not processing`);
    }
    if (cancelled.jobId) await cancelPipeline(o.runtime, cancelled.jobId, tenantId);
    await o.tenants.audit({
      ...auditContext(c),
      action: "course.cancel",
      targetType: "course",
      targetId: id,
    });
    return c.json({ id, status: "cancelled" });
  });

  declare(app, {
    method: "delete",
    path: "/courses/:id",
    tags,
    summary: "Delete a course, its passages, vectors and unshared files",
    responses: { 204: { description: "Deleted" } },
  }, async function deleteOneCourse(c) {
    const { tenantId } = principalOf(c);
    const id = pathId(c, "course");
    // Its pipeline stops first (a finished one is left as it ended).
    const owned = await courseJobId(o.db, id, tenantId);
    if (owned?.jobId) await cancelPipeline(o.runtime, owned.jobId, tenantId);
    await o.db.transaction((tx) => deleteCourse(tx, vectors, id, tenantId));
    if (!vectors.transactional) await vectors.deleteWhere({ courseId: id });
    await cache.invalidate({ tag: `${tenantId}:course:${id}` });
    await o.tenants.audit({
      ...auditContext(c),
      action: "course.delete",
      targetType: "course",
      targetId: id,
    });
    return c.body(null, 204);
  });

  return app;
}

/** Cancels a course's pipeline; one that has ended (or is gone) is left as it is. */
async function cancelPipeline(runtime: Runtime, jobId: string, tenantId: string): Promise<void> {
  await runtime.cancel(jobId, tenantId).catch((err) => {
    if (!(err instanceof ConflictError) && !(err instanceof NotFoundError)) throw err;
  });
}
