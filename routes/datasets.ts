/**
 * The datasets API (tenant-scoped; another tenant's dataset is a 404):
 * - `POST /api/datasets`: the file as the raw body (`Content-Type: text/csv`, ...) or as the
 *   `file` field of a multipart form; options in the query string (`name`, `format`,
 *   `delimiter`, `quote`, `header`, `encoding`, `errorPolicy`, `nullTokens`) and cleaning rules
 *   as JSON (`options` query parameter or form field, before the file). Streamed to blob storage; `202
 *   {datasetId, jobId}` once the file is durable. A CSV/TSV header over the column or length
 *   limit is a 422 as soon as it crosses it. Gzip (`Content-Encoding: gzip`, a `.csv.gz` or
 *   its magic bytes) is decompressed as it arrives and stored decompressed; a binary file (a
 *   PDF, an image, NUL bytes in its head) is a 415 before anything is stored. An `.xlsx`
 *   (`format=xlsx`, its content type or name, or ZIP bytes of no declared format; `sheet=` a
 *   name or 1-based position, default the first) is stored, then its sheet is stored as NDJSON
 *   and that is the dataset's file (actors/datasets/spreadsheet.ts).
 * - `GET /api/datasets`, `GET /api/datasets/:id`, `DELETE /api/datasets/:id`;
 * - `GET /api/datasets/:id/rows?limit=&cursor=&sort=col:desc&filter=col:op:value`;
 * - `GET /api/datasets/:id/aggregate?groupBy=a,b&metrics=count,sum:x&filter=...`;
 * - `GET /api/datasets/:id/export?format=csv|ndjson|xlsx` (streamed);
 * - `GET /api/datasets/:id/report.pdf`: the profile report, written by a job (`202` with the
 *   job until it is stored; actors/datasets/report_job.ts).
 *
 * An upload may name a `callbackUrl` (query or form field): a signed event is POSTed there
 * when the dataset is ready or failed (the upload's pipeline ends; actors/system/callback.ts).
 */
import type { Context } from "hono";
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import {
  ConflictError,
  InputError,
  isTerminal,
  NotFoundError,
  type OnEnd,
  PayloadTooLargeError,
  type Runtime,
  type SqlDatabase,
  TroupeError,
  uuidv7,
  ValidationError,
} from "@troupe/runtime";
import {
  type DatasetOptions,
  datasetOptions,
  guessFormat,
  MAX_COLUMNS,
  MAX_HEADER_BYTES,
  UPLOAD_FORMATS,
  type UploadFormat,
} from "../actors/datasets/options.ts";
import { storeSheet } from "../actors/datasets/spreadsheet.ts";
import { csvLine } from "./csv.ts";
import {
  buildAggregateQuery,
  buildRowQuery,
  checkGroupBy,
  FILTER_OPS,
  METRICS,
  parseFilters,
  parseMetrics,
  parseSort,
  toRecord,
} from "../actors/datasets/query.ts";
import {
  datasetJobId,
  type DatasetView,
  deleteDataset,
  getDataset,
  insertDatasets,
  listDatasets,
  type NewDataset,
  rowsAfter,
  rowsTable,
} from "../actors/datasets/store.ts";
import { DATASET_REPORT_ACTOR } from "../actors/datasets/report_job.ts";
import { findDocument } from "../actors/documents/stored.ts";
import { checkedHeaderStream } from "../actors/datasets/ingest/header.ts";
import type { IngestError, LimitError } from "../actors/datasets/ingest/errors.ts";
import { BinaryContentError, GzipError, sniffedStream } from "../actors/datasets/ingest/binary.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { holdAllBlobs, noteAllStored } from "../db/blobs/refs.ts";
import { GroupCommit } from "../db/group_commit.ts";
import type { AuditEntry, TenantStore } from "../db/tenants.ts";
import { attachmentHeader } from "./attachment.ts";
import { DocumentJob, jobAnswer, storedFile } from "./stored_file.ts";
import { principalOf } from "./auth.ts";
import { auditContext } from "./jobs.ts";
import {
  fieldText,
  MULTIPART_DEFAULTS,
  multipartBoundary,
  type MultipartLimits,
  readMultipart,
} from "./multipart.ts";
import { declaredSize, receiveUpload, type UploadLimits } from "./upload.ts";
import { type DirectUploadOptions, directUploads } from "./uploads.ts";
import { parseQuery, pathId } from "./validate.ts";
import { apiBase, declare, JsonObject, pageOf } from "./openapi.ts";
import { acceptCallback, CallbackUrl } from "./jobs.ts";
import type { Callbacks } from "../actors/system/callback.ts";
import type { AppEnv } from "./env.ts";

const tags = ["datasets"];

/** Content types an upload may declare. */
const UPLOAD_TYPES = [
  "text/csv",
  "text/tab-separated-values",
  "application/json",
  "application/x-ndjson",
  "application/gzip",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  "multipart/form-data",
] as const;

const Uploaded = z.object({
  datasetId: z.string(),
  jobId: z.string(),
  status: z.literal("uploaded"),
});

/** What the routes need of the cache (db/cache's `Cache` fits). */
export interface QueryCache {
  getOrCompute<T>(
    kind: "datasetMeta" | "queryResult" | "aggregation" | "courseOutline",
    key: string,
    compute: () => Promise<T>,
    options?: { tags?: string[] },
  ): Promise<T>;
  invalidate(what: { tag?: string; prefix?: string }): Promise<unknown>;
}

/** No caching: every read computes. */
export const noCache: QueryCache = {
  getOrCompute: (_kind, _key, compute) => compute(),
  invalidate: () => Promise.resolve(0),
};

export interface DatasetRoutesOptions {
  runtime: Runtime;
  db: SqlDatabase;
  blobs: BlobStore;
  tenants: TenantStore;
  cache?: QueryCache;
  /** Largest accepted file. @default 1 GiB */
  maxBytes?: number;
  /**
   * Most columns of a CSV/TSV file (its header): a wider one is refused at upload with 422
   * `TOO_MANY_COLUMNS`. The pipeline's limit, for what the upload cannot see. @default 1000
   */
  maxColumns?: number;
  /** Longest CSV/TSV header line: a longer one is a 422 `HEADER_TOO_LONG`. @default 1 MiB */
  maxHeaderBytes?: number;
  /**
   * How many times its compressed size a gzip upload may inflate once past 1 MiB: more is a
   * 413 (a gzip bomb). `maxBytes` bounds the decompressed file. @default 200
   */
  maxInflateRatio?: number;
  /** How slow an upload's client may be, and its form's limits (see `UploadLimits`). */
  uploads?: UploadLimits;
  /** Direct uploads to object storage, which `POST /datasets {uploadId}` takes. */
  directUploads?: DirectUploadOptions;
  /** Completion callbacks (`callbackUrl`); absent: a `callbackUrl` is a 409. */
  callbacks?: Callbacks;
}

export const uploadQuery = z.object({
  name: z.string().trim().min(1).max(200).optional(),
  format: z.enum(UPLOAD_FORMATS).optional(),
  /** An `.xlsx` upload's sheet: its name or 1-based position. */
  sheet: z.string().min(1).max(200).optional(),
  delimiter: z.string().length(1).optional(),
  quote: z.string().max(1).optional(),
  header: z.enum(["true", "false"]).transform((v) => v === "true").optional(),
  encoding: z.enum(["auto", "utf-8", "utf-16le", "utf-16be", "latin1", "windows-1252"]).optional(),
  errorPolicy: z.enum(["skip", "fail"]).optional(),
  /** Comma-separated null tokens (`cleaning.nullTokens`); empty: none. */
  nullTokens: z.string().max(4096).optional(),
  options: z.string().max(64 * 1024).optional(),
  /** Called back when the dataset is ready or failed (a form field before the file also). */
  callbackUrl: CallbackUrl,
});

const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().min(1).max(2000).optional(),
});

/** The list's cursor is the last dataset id shown. */
const listQuery = pageQuery.extend({
  cursor: z.string().regex(/^[0-9a-f-]{36}$/, "not a cursor of this list").optional(),
});

/** `filter` and `sort` have their own parsers (actors/datasets/query.ts); described here. */
const rowsQuery = pageQuery.extend({
  sort: z.string().max(300).optional().openapi({ description: "`column:asc` or `column:desc`" }),
  filter: z.array(z.string()).optional().openapi({
    description: `Repeatable \`column:op:value\`, op one of ${FILTER_OPS.join(", ")}`,
  }),
});

/** Described for the document; `groupBy`, `metrics` and `filter` have their own parsers. */
const aggregateQuery = z.object({
  groupBy: z.string().optional().openapi({ description: "Comma-separated columns" }),
  metrics: z.string().optional().openapi({
    description: `Comma-separated \`count\` or \`metric:column\`, metric one of ${
      METRICS.join(", ")
    }`,
    example: "count,sum:x",
  }),
  filter: z.array(z.string()).optional(),
});

/** Described for the document; the handler checks `format` (400 naming the formats). */
const exportQuery = z.object({ format: z.enum(["csv", "ndjson", "xlsx"]).optional() });

export function datasetRoutes(o: DatasetRoutesOptions): OpenAPIHono<AppEnv> {
  const maxBytes = o.maxBytes ?? 1 << 30;
  const form = { ...MULTIPART_DEFAULTS, ...o.uploads };
  // The file, and every other part at its largest.
  const maxBody = maxBytes + form.maxParts * (form.maxFieldBytes + form.maxHeaderBytes);
  const cache = o.cache ?? noCache;
  const app = new OpenAPIHono<AppEnv>();
  // Uploads that end together are written together (db/group_commit.ts): their files noted
  // in one statement, their datasets, pipelines and audit rows in one transaction.
  const parallel = o.db.shared ? 2 : 1;
  const notes = new GroupCommit<string, void>({
    write: async (sha256s) => {
      await noteAllStored(o.db, sha256s);
      return sha256s.map(() => undefined);
    },
    parallel,
  });
  const note = (sha256: string) => notes.add(sha256);
  const accepts = new GroupCommit<AcceptedUpload, string>({
    write: (uploads) => acceptUploads(o, uploads),
    parallel,
  });

  app.post("/datasets", directUploads(o.directUploads));
  declare(app, {
    method: "post",
    path: "/datasets",
    tags,
    summary: "Upload a CSV, TSV, JSON array, NDJSON or XLSX file, optionally gzipped",
    description: "The file is the raw body or the `file` field of a multipart form; it streams " +
      "to storage and is not buffered. Cleaning rules are JSON in `options`. Or a JSON body " +
      "`{uploadId, name?, format?, ...}` naming a direct upload (`POST /uploads`).",
    query: uploadQuery,
    rawBody: { description: "The file", types: UPLOAD_TYPES },
    responses: { 202: { description: "Stored; the job profiles it", schema: Uploaded } },
  }, async function uploadDataset(c) {
    // The whole request is foreground work (background work waits): receiving the file,
    // reading a workbook's sheet and accepting the upload.
    const leave = o.runtime.foreground();
    try {
      return await receiveDataset(c);
    } finally {
      leave();
    }
  });

  async function receiveDataset(c: Context<AppEnv>) {
    const principal = principalOf(c);
    const q = parseQuery(c, uploadQuery);
    // A callback URL in the query is checked before the file is received.
    const queried = await acceptCallback(o.callbacks, principal.tenantId, q.callbackUrl);
    const size = declaredSize(c.req.header("content-length"), maxBody);
    if (size > maxBody) throw new PayloadTooLargeError(maxBytes, "the file");
    const raw = c.req.raw.body;
    if (!raw) throw new ValidationError("the request has no body: send the file");
    const limits = {
      maxColumns: o.maxColumns ?? MAX_COLUMNS,
      maxBytes: o.maxHeaderBytes ?? MAX_HEADER_BYTES,
    };
    const gzip = gzipEncoded(c.req.header("content-encoding"));
    if (gzip && multipartBoundary(c.req.header("content-type"))) {
      // A form's parts are read as they arrive; a gzipped file goes in its part (`x.csv.gz`).
      throw new TroupeError(
        "UNSUPPORTED_MEDIA_TYPE",
        "a gzip-encoded form cannot be read: gzip the file in its part, or send it as the body",
        { details: { contentEncoding: "gzip" } },
      );
    }
    let zip = false;
    let upload = await receiveUpload(
      o.runtime,
      raw,
      (body) =>
        receiveFile(
          c,
          body,
          o.blobs,
          note,
          maxBytes,
          form,
          (file, fields, contentType, fileName) => {
            const all = { ...fields, ...definedOnly(q) };
            const format = all.format ?? guessFormat(contentType, fileName);
            const text = sniffedStream(file, {
              encoding: encodingOf(all.encoding),
              gzip,
              maxInflateRatio: o.maxInflateRatio ?? 200,
              // A workbook, or a file of no known format whose bytes may say it is one.
              ...(format === "xlsx" || format === null ? { onZip: () => (zip = true) } : {}),
            }, refuseContent);
            return format === "xlsx"
              ? text
              : checkedHeader(text, all, contentType, fileName, limits);
          },
        ),
      { policy: o.uploads ?? {}, sizeBytes: size },
    );
    const fields = { ...upload.fields, ...definedOnly(q) };
    // A workbook's sheet is stored as NDJSON: its options are checked before it is read.
    const options = parseOptions(
      zip ? { ...fields, format: "ndjson" } : fields,
      upload.contentType,
      upload.fileName,
    );
    delete options.spreadsheet;
    const sheet = zip
      ? await storeSheet(o.blobs, o.db, upload, {
        ...(typeof fields.sheet === "string" ? { sheet: fields.sheet } : {}),
        header: options.header,
        maxColumns: limits.maxColumns,
        maxInflateRatio: o.maxInflateRatio ?? 200,
        maxBytes,
        supported: SUPPORTED_FORMATS,
      })
      : null;
    if (sheet) {
      upload = { ...upload, sha256: sheet.sha256, size: sheet.size };
      options.spreadsheet = sheet.source;
    }
    if (upload.size === 0) {
      throw new ValidationError(sheet ? "the sheet has no rows" : "the file is empty", {
        code: "EMPTY_FILE",
      });
    }
    const callback = queried ?? await acceptCallback(
      o.callbacks,
      principal.tenantId,
      typeof fields.callbackUrl === "string" ? fields.callbackUrl : undefined,
    );
    const datasetId = uuidv7();
    const name = String(fields.name ?? upload.fileName ?? `dataset ${datasetId}`).slice(0, 200);
    // The upload's job is the pipeline's: it runs until the dataset is ready or failed; its
    // end calls the callback back.
    const jobId = await accepts.add({
      dataset: {
        id: datasetId,
        tenantId: principal.tenantId,
        name,
        format: sheet ? "xlsx" : options.format,
        options,
        sha256: upload.sha256,
        size: upload.size,
      },
      onEnd: callback ? callback({ type: "dataset", id: datasetId }) : null,
      audit: {
        ...auditContext(c),
        action: "dataset.upload",
        targetType: "dataset",
        targetId: datasetId,
        details: { name, format: options.format, bytes: upload.size, sha256: upload.sha256 },
      },
    });
    c.header("Location", `${apiBase(c)}/datasets/${datasetId}`);
    return c.json({ datasetId, jobId, status: "uploaded" }, 202);
  }

  declare(app, {
    method: "get",
    path: "/datasets",
    tags,
    summary: "List datasets",
    query: listQuery,
    responses: { 200: { description: "A page of datasets", schema: pageOf(JsonObject) } },
  }, async function listAll(c) {
    const q = parseQuery(c, listQuery);
    return c.json(
      await listDatasets(o.db, principalOf(c).tenantId, {
        limit: Math.min(q.limit, 100),
        ...(q.cursor ? { cursor: q.cursor } : {}),
      }),
    );
  });

  declare(app, {
    method: "get",
    path: "/datasets/:id",
    tags,
    summary: "A dataset: status, progress, row count, columns with types and profiles",
    responses: { 200: { description: "The dataset", schema: JsonObject } },
  }, async function getOne(c) {
    const d = await loadDataset(c, o);
    return c.json(present(d));
  });

  declare(app, {
    method: "delete",
    path: "/datasets/:id",
    tags,
    summary: "Delete a dataset, its rows and its file when unused",
    responses: { 204: { description: "Deleted" } },
  }, async function deleteOne(c) {
    const id = pathId(c, "dataset");
    const { tenantId } = principalOf(c);
    const owned = await datasetJobId(o.db, id, tenantId);
    // Its pipeline stops first (a finished one is left as it ended).
    if (owned?.jobId) {
      await o.runtime.cancel(owned.jobId, tenantId).catch((err) => {
        if (!(err instanceof ConflictError) && !(err instanceof NotFoundError)) throw err;
      });
    }
    await o.db.transaction((tx) => deleteDataset(tx, id, tenantId));
    await cache.invalidate({ tag: `${tenantId}:dataset:${id}` });
    await o.tenants.audit({
      ...auditContext(c),
      action: "dataset.delete",
      targetType: "dataset",
      targetId: id,
    });
    return c.body(null, 204);
  });

  declare(app, {
    method: "get",
    path: "/datasets/:id/rows",
    tags,
    summary: "Rows in keyset pages",
    query: rowsQuery,
    responses: { 200: { description: "A page of rows", schema: JsonObject } },
  }, async function rows(c) {
    const d = ready(await loadDataset(c, o));
    const q = parseQuery(c, pageQuery);
    const built = buildRowQuery(rowsTable(d.id), d.columns, {
      filters: parseFilters(c.req.queries("filter")),
      ...(c.req.query("sort") ? { sort: parseSort(oneSort(c.req.queries("sort")!)) } : {}),
      limit: q.limit,
      ...(q.cursor ? { cursor: q.cursor } : {}),
    });
    const key = `q:${d.id}:v${d.version}:${c.req.url.split("?")[1] ?? ""}`;
    return c.json(
      await cache.getOrCompute(
        "queryResult",
        `${principalOf(c).tenantId}:${key}`,
        async () => built.page(await o.db.query(built.text, built.params)),
        { tags: [`${principalOf(c).tenantId}:dataset:${d.id}`] },
      ),
    );
  });

  declare(app, {
    method: "get",
    path: "/datasets/:id/aggregate",
    tags,
    summary: "Group-by aggregations",
    query: aggregateQuery,
    responses: {
      200: { description: "The groups", schema: z.object({ groups: z.array(JsonObject) }) },
    },
  }, async function aggregate(c) {
    const d = ready(await loadDataset(c, o));
    const groupBy = checkGroupBy(splitList(c.req.query("groupBy")));
    const metrics = parseMetrics(c.req.query("metrics") ?? "count");
    const built = buildAggregateQuery(rowsTable(d.id), d.columns, {
      groupBy,
      metrics,
      filters: parseFilters(c.req.queries("filter")),
      limit: 1000,
    });
    const key = `a:${d.id}:v${d.version}:${c.req.url.split("?")[1] ?? ""}`;
    const result = await cache.getOrCompute(
      "aggregation",
      `${principalOf(c).tenantId}:${key}`,
      async () => ({ groups: built.page(await o.db.query(built.text, built.params)).rows }),
      { tags: [`${principalOf(c).tenantId}:dataset:${d.id}`] },
    );
    return c.json(result);
  });

  declare(app, {
    method: "get",
    path: "/datasets/:id/export",
    tags,
    summary: "Streamed export of every row",
    query: exportQuery,
    responses: {
      200: { description: "CSV (default), NDJSON or XLSX", type: "text/csv" },
    },
  }, async function exportRows(c) {
    const d = ready(await loadDataset(c, o));
    const format = c.req.query("format") ?? "csv";
    if (format !== "csv" && format !== "ndjson" && format !== "xlsx") {
      throw new ValidationError(`unknown export format ${JSON.stringify(format)}`, {
        formats: ["csv", "ndjson", "xlsx"],
      });
    }
    const db = o.db;
    const keys = d.columns.map((col) => col.key);
    if (format === "xlsx") {
      let from = -1;
      const next = async () => {
        const rows = await rowsAfter(db, d.id, keys, from);
        if (rows.length) from = Number(rows.at(-1)!._row);
        return rows;
      };
      const { xlsxStream } = await import("../actors/datasets/export_xlsx.ts");
      return new Response(xlsxStream(d.name, d.columns, next), {
        headers: {
          "content-type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
          "content-disposition": attachmentHeader(d.name, "xlsx"),
        },
      });
    }
    const encoder = new TextEncoder();
    let after = -1;
    let started = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (!started && format === "csv") {
          started = true;
          controller.enqueue(encoder.encode(csvLine(d.columns.map((col) => col.name))));
          return;
        }
        const rows = await rowsAfter(db, d.id, keys, after);
        if (rows.length === 0) {
          controller.close();
          return;
        }
        after = Number(rows.at(-1)!._row);
        const lines = rows.map((r) => {
          const rec = toRecord(d.columns, r);
          return format === "csv"
            ? csvLine(d.columns.map((col) => rec[col.name]))
            : JSON.stringify(rec) + "\n";
        });
        controller.enqueue(encoder.encode(lines.join("")));
      },
    });
    return new Response(body, {
      headers: {
        "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson",
        "content-disposition": attachmentHeader(d.name, format),
      },
    });
  });

  declare(app, {
    method: "get",
    path: "/datasets/:id/report.pdf",
    tags,
    summary: "The profile report: the stored PDF, or 202 with the job that writes it",
    description: "The report is written by a job, once per version of the dataset. While " +
      "it runs the answer is `202` with the job, `Location` (the job) and `Retry-After`; " +
      "the same request then answers with the PDF.",
    responses: {
      200: { description: "The report", type: "application/pdf" },
      202: { description: "The report is being written", schema: DocumentJob },
    },
  }, async function report(c) {
    const d = ready(await loadDataset(c, o));
    const { tenantId } = principalOf(c);
    const serve = async () => {
      const stored = await findDocument(o.db, tenantId, "dataset_report", d.id);
      return stored?.version === String(d.version)
        ? await storedFile(o.blobs, stored, `inline; filename="${stored.fileName}"`)
        : null;
    };
    const file = await serve();
    if (file) return file;
    // One job per version. A job that ended without storing this version's report (it failed
    // for good, or a merge moved the dataset on as it committed) is followed by a new one.
    const input = { datasetId: d.id, tenantId, version: d.version };
    let key = `dataset-report:${d.id}:v${d.version}`;
    for (let tries = 0;; tries++) {
      const { job, created } = await o.runtime.enqueue(DATASET_REPORT_ACTOR, input, {
        tenantId,
        idempotencyKey: key,
      });
      if (!isTerminal(job.status)) return jobAnswer(c, job);
      const done = job.status === "succeeded" ? await serve() : null;
      if (done) return done;
      // Past three such jobs (or one this request started), the version's report is a 409.
      if (created || tries === 2) {
        throw new TroupeError("REPORT_FAILED", "the report could not be written", {
          details: { jobId: job.id, status: job.status, error: job.error },
        });
      }
      key = `dataset-report:${d.id}:v${d.version}:after:${job.id}`;
    }
  });

  return app;
}

async function loadDataset(c: Context<AppEnv>, o: DatasetRoutesOptions): Promise<DatasetView> {
  return await getDataset(o.db, pathId(c, "dataset"), principalOf(c).tenantId);
}

function ready(d: DatasetView): DatasetView {
  if (d.status !== "ready") {
    throw new ConflictError(`dataset ${d.id} is ${d.status}, not ready`, { status: d.status });
  }
  return d;
}

/** The public shape of a dataset. */
export function present(d: DatasetView) {
  const total = d.chunks.total;
  return {
    id: d.id,
    name: d.name,
    status: d.status,
    format: d.format,
    sizeBytes: d.sizeBytes,
    sha256: d.sha256,
    rowCount: d.rowCount,
    skippedRows: d.skippedRows,
    progress: {
      chunksDone: d.chunks.done,
      chunksTotal: total,
      percent: d.status === "ready" ? 100 : total ? Math.floor((d.chunks.done / total) * 100) : 0,
    },
    columns: d.columns.map(({ name, type, profile }) => ({ name, type, profile: profile ?? null })),
    rowErrors: d.rowErrors,
    warnings: d.warnings,
    encoding: d.encoding,
    error: d.error,
    jobId: d.jobId,
    options: Object.fromEntries(Object.entries(d.options).filter(([k]) => !k.startsWith("_"))),
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
  };
}

interface ReceivedFile {
  sha256: string;
  size: number;
  fileName: string | null;
  contentType: string | null;
  fields: Record<string, string>;
}

/** What a file's bytes go through on their way to storage (its options known so far). */
type FileCheck = (
  file: ReadableStream<Uint8Array>,
  fields: Record<string, string>,
  contentType: string | null,
  fileName: string | null,
) => ReadableStream<Uint8Array>;

/** What the datasets API reads, as a 415's details say. */
const SUPPORTED_FORMATS = [
  "csv",
  "tsv",
  "json (an array)",
  "ndjson",
  "any of them gzipped",
  "xlsx (one sheet)",
];

/** Whether `Content-Encoding` says gzip; an encoding this API cannot read is a 415. */
function gzipEncoded(header: string | undefined): boolean {
  const codings = (header ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean)
    .filter((s) => s !== "identity");
  if (codings.length === 0) return false;
  if (codings.length === 1 && (codings[0] === "gzip" || codings[0] === "x-gzip")) return true;
  throw new TroupeError(
    "UNSUPPORTED_MEDIA_TYPE",
    `Content-Encoding ${JSON.stringify(header)} cannot be read: send the file as it is or gzip`,
    { details: { contentEncoding: header, supported: ["gzip", "identity"] } },
  );
}

function encodingOf(value: unknown): DatasetOptions["encoding"] {
  const parsed = datasetOptions.shape.encoding.safeParse(value);
  return parsed.success ? parsed.data : "auto";
}

/** A file that is not text data, or a gzip that does not decompress or inflates too far. */
function refuseContent(err: IngestError): TroupeError | IngestError {
  if (err instanceof BinaryContentError) {
    return new TroupeError(
      "UNSUPPORTED_MEDIA_TYPE",
      `${err.message}: send CSV, TSV, a JSON array or NDJSON (optionally gzipped), or an .xlsx ` +
        "workbook (format=xlsx)",
      { details: { detected: err.detected, supported: SUPPORTED_FORMATS } },
    );
  }
  if (err instanceof GzipError && err.code === "inflate_ratio") {
    return new TroupeError("PAYLOAD_TOO_LARGE", err.message, {
      details: { maxInflateRatio: err.limit },
    });
  }
  if (err instanceof GzipError) return new TroupeError("BAD_GZIP", err.message);
  return err;
}

/**
 * `file` with its header checked on the way when its options say CSV or TSV: the upload fails
 * with 422 `TOO_MANY_COLUMNS` or `HEADER_TOO_LONG` as soon as the header crosses a limit,
 * before the rest of the file is received. Options that do not parse are left to the check
 * after the upload (which names what is wrong).
 */
function checkedHeader(
  file: ReadableStream<Uint8Array>,
  fields: Record<string, string | boolean>,
  contentType: string | null,
  fileName: string | null,
  limits: { maxColumns: number; maxBytes: number },
): ReadableStream<Uint8Array> {
  let options: DatasetOptions;
  try {
    options = parseOptions(fields, contentType, fileName);
  } catch {
    return file;
  }
  if (options.format !== "csv" && options.format !== "tsv") return file;
  return checkedHeaderStream(file, {
    ...limits,
    delimiter: options.delimiter ?? (options.format === "tsv" ? "\t" : ","),
    encoding: options.encoding,
  }, refuseHeader);
}

/** A header over a limit, as the upload's answer (the pipeline fails with the same codes). */
function refuseHeader(err: LimitError): InputError {
  return new InputError(err.code.toUpperCase(), err.message, {
    details: err.code === "too_many_columns"
      ? { maxColumns: err.limit }
      : { maxHeaderBytes: err.limit },
  });
}

/** An upload whose file is stored and checked: what its acceptance writes. */
interface AcceptedUpload {
  dataset: Omit<NewDataset, "jobId">;
  onEnd: OnEnd | null;
  audit: AuditEntry;
}

/**
 * Accepts `uploads` in one transaction: each one's pipeline (its job is the dataset's), its
 * file held, its dataset row and its audit row. Returns each one's pipeline id, in order.
 */
async function acceptUploads(
  o: DatasetRoutesOptions,
  uploads: readonly AcceptedUpload[],
): Promise<string[]> {
  const started = await o.runtime.startPipelines(
    uploads.map(({ dataset, onEnd }) => ({
      name: "dataset.ingest",
      first: { actor: "dataset.split", input: { datasetId: dataset.id } },
      tenantId: dataset.tenantId,
      ...(onEnd ? { onEnd } : {}),
      onAbort: { actor: "dataset.aborted", input: { datasetId: dataset.id } },
    })),
    async (tx, ids) => {
      await holdAllBlobs(
        tx,
        o.blobs,
        uploads.map(({ dataset }) => ({
          owner: { kind: "dataset", id: dataset.id, tenantId: dataset.tenantId },
          sha256s: [dataset.sha256],
        })),
      );
      await insertDatasets(
        tx,
        uploads.map(({ dataset }, i) => ({ ...dataset, jobId: ids[i]!.pipelineId })),
      );
      await o.tenants.auditIn(tx, uploads.map((u) => u.audit));
    },
  );
  return started.map((s) => s.pipelineId);
}

/** Streams the upload (raw body or the multipart `file` field) into blob storage. */
async function receiveFile(
  c: Context<AppEnv>,
  body: ReadableStream<Uint8Array>,
  blobs: BlobStore,
  note: (sha256: string) => Promise<void>,
  maxBytes: number,
  limits: MultipartLimits,
  check: FileCheck,
): Promise<ReceivedFile> {
  const store = async (bytes: ReadableStream<Uint8Array>) => {
    const put = await blobs.put(bytes, { maxBytes });
    await note(put.sha256);
    return put;
  };
  const boundary = multipartBoundary(c.req.header("content-type"));
  if (!boundary) {
    const contentType = c.req.header("content-type") ?? null;
    const put = await store(check(body, {}, contentType, null));
    return {
      ...put,
      fileName: null,
      contentType: c.req.header("content-type") ?? null,
      fields: {},
    };
  }
  const fields: Record<string, string> = {};
  let file: ReceivedFile | null = null;
  for await (const part of readMultipart(body, boundary, limits)) {
    if (part.filename === null) {
      fields[part.name] = await fieldText(part);
    } else if (part.name === "file" && !file) {
      const put = await store(check(part.body, fields, part.contentType, part.filename));
      file = { ...put, fileName: part.filename, contentType: part.contentType, fields };
    } else {
      await part.body.cancel();
    }
  }
  if (!file) throw new ValidationError('no file: send it as the multipart field "file"');
  return file;
}

function parseOptions(
  fields: Record<string, string | boolean | undefined>,
  contentType: string | null,
  fileName: string | null,
): DatasetOptions {
  let extra: unknown = {};
  if (typeof fields.options === "string") {
    try {
      extra = JSON.parse(fields.options);
    } catch {
      throw new ValidationError("options is not valid JSON");
    }
  }
  const format = (fields.format as UploadFormat | undefined) ??
    guessFormat(contentType, fileName);
  if (!format) {
    throw new ValidationError(
      "cannot tell the format: pass format=csv|tsv|json|ndjson|xlsx or a Content-Type such as text/csv",
    );
  }
  if (format === "xlsx") {
    throw new TroupeError(
      "UNSUPPORTED_MEDIA_TYPE",
      "the file is not an .xlsx workbook (a ZIP archive): send the workbook, or say its format",
      { details: { supported: SUPPORTED_FORMATS } },
    );
  }
  const base = typeof extra === "object" && extra !== null ? extra as Record<string, unknown> : {};
  const parsed = datasetOptions.safeParse({
    ...base,
    ...(typeof fields.nullTokens === "string"
      ? { cleaning: { ...asObject(base.cleaning), nullTokens: tokenList(fields.nullTokens) } }
      : {}),
    format,
    ...pick(fields, ["delimiter", "quote", "encoding", "errorPolicy"]),
    ...(fields.header !== undefined
      ? { header: fields.header === true || fields.header === "true" }
      : {}),
  });
  if (!parsed.success) {
    throw new ValidationError(
      "invalid dataset options",
      parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
    );
  }
  return parsed.data;
}

/** `NA, N/A,-` as a token list: entries trimmed (tokens are compared trimmed), empty ones dropped. */
function tokenList(text: string): string[] {
  return text.split(",").map((t) => t.trim()).filter((t) => t.length > 0);
}

function asObject(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? v as Record<string, unknown>
    : {};
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

function definedOnly(o: Record<string, unknown>): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === "string" || typeof v === "boolean") out[k] = v;
  }
  return out;
}

/** The one sort key a page takes: a second `sort` is a 400, not silently ignored. */
function oneSort(values: string[]): string {
  if (values.length > 1) {
    throw new ValidationError("one sort key at most", {
      parameter: "sort",
      max: 1,
      count: values.length,
    });
  }
  return values[0]!;
}

function splitList(text: string | undefined): string[] {
  return (text ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}
