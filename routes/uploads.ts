/**
 * Direct uploads to object storage, for files that should not stream through the app (an edge
 * function's time and memory):
 * - `POST /api/uploads {filename, contentType, size}` → `201 {uploadId, url, method: "PUT",
 *   headers, expiresAt}`: a presigned `PUT` of exactly `size` bytes (the length and the type
 *   are signed), valid until `expiresAt`, scoped to the caller's tenant;
 * - the client `PUT`s the file to `url` with `headers`;
 * - `POST /api/datasets {uploadId, name?, format?, ...}` (JSON) makes a dataset of it: the
 *   object must be there with the stated size; it is then read once into blob storage through
 *   the same checks as a file sent to that route (format sniffing, gzip, header limits), and
 *   the same pipeline starts. An upload makes one dataset.
 *
 * Refusals: without a bucket configured, both answer 409 `DIRECT_UPLOADS_UNAVAILABLE` (the
 * deployment's configuration refuses it; 5xx answers are kept for failures);
 * another tenant's or an unknown id is a 404; an expired one 410 `UPLOAD_EXPIRED`; one never
 * `PUT` 409 `UPLOAD_NOT_RECEIVED`; one of another size 422 `UPLOAD_SIZE_MISMATCH`; one
 * already made into a dataset 409 `UPLOAD_USED`.
 */
import type { Context, MiddlewareHandler } from "hono";
import { OpenAPIHono, z } from "@hono/zod-openapi";
import {
  NotFoundError,
  PayloadTooLargeError,
  type SqlDatabase,
  TroupeError,
  uuidv7,
} from "@troupe/runtime";
import { UPLOAD_FORMATS } from "../actors/datasets/options.ts";
import type { S3BlobStore } from "../db/blobs/s3.ts";
import { claimUpload, createUpload, findUpload, releaseUpload } from "../db/blobs/uploads.ts";
import { principalOf } from "./auth.ts";
import { declare } from "./openapi.ts";
import { jsonBody, parseBody } from "./validate.ts";
import type { AppEnv } from "./env.ts";

export interface DirectUploadOptions {
  db: SqlDatabase;
  /** The bucket; null when none is configured (the routes then answer 409). */
  bucket: S3BlobStore | null;
  /** Largest upload accepted. @default 1 GiB */
  maxBytes?: number;
  /** How long a presigned URL stays valid. @default 3600 */
  expiresInSeconds?: number;
}

const newUpload = z.object({
  filename: z.string().trim().min(1).max(255),
  contentType: z.string().trim().regex(/^[\w.+-]+\/[\w.+-]+$/, "a type/subtype").max(200),
  size: z.number().int().min(1),
});

const Presigned = z.object({
  uploadId: z.string(),
  url: z.string(),
  method: z.literal("PUT"),
  headers: z.record(z.string(), z.string()),
  expiresAt: z.string(),
});

/** `POST /datasets` with a direct upload instead of the file: the dataset's options. */
export const uploadReference = z.object({
  uploadId: z.string().min(1).max(64),
  name: z.string().trim().min(1).max(200).optional(),
  format: z.enum(UPLOAD_FORMATS).optional(),
  sheet: z.string().min(1).max(200).optional(),
  delimiter: z.string().length(1).optional(),
  quote: z.string().max(1).optional(),
  header: z.boolean().optional(),
  encoding: z.enum(["auto", "utf-8", "utf-16le", "utf-16be", "latin1", "windows-1252"])
    .optional(),
  errorPolicy: z.enum(["skip", "fail"]).optional(),
  nullTokens: z.array(z.string().max(200)).max(100).optional(),
  /** Cleaning rules, as the upload's `options` JSON. */
  options: z.record(z.string(), z.unknown()).optional(),
  /** Called back when the dataset is ready or failed (see `POST /datasets`). */
  callbackUrl: z.string().min(1).max(2048).optional(),
});

function unavailable(): TroupeError {
  return new TroupeError(
    "DIRECT_UPLOADS_UNAVAILABLE",
    "direct uploads need object storage (S3_BUCKET and its settings): send the file to " +
      "POST /api/v1/datasets instead",
  );
}

export function uploadRoutes(o: DirectUploadOptions): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  const maxBytes = o.maxBytes ?? 1 << 30;
  declare(app, {
    method: "post",
    path: "/uploads",
    tags: ["datasets"],
    summary: "A presigned URL to upload a dataset's file straight to object storage",
    description: "`PUT` exactly `size` bytes to `url` with `headers` before `expiresAt`, then " +
      "`POST /datasets {uploadId}`. 409 `DIRECT_UPLOADS_UNAVAILABLE` without object storage.",
    body: newUpload,
    responses: { 201: { description: "Where to PUT the file", schema: Presigned } },
  }, async function presignUpload(c) {
    const body = parseBody(await jsonBody(c), newUpload);
    if (!o.bucket) throw unavailable();
    if (body.size > maxBytes) throw new PayloadTooLargeError(maxBytes, "the file");
    const tenantId = principalOf(c).tenantId;
    const id = uuidv7();
    const key = o.bucket.uploadKey(tenantId ?? "_", id);
    const expiresInSeconds = o.expiresInSeconds ?? 3600;
    const expiresAt = new Date(Date.now() + expiresInSeconds * 1000);
    const put = await o.bucket.presignPut(key, {
      size: body.size,
      contentType: body.contentType,
      expiresInSeconds,
    });
    await createUpload(o.db, {
      id,
      tenantId,
      key,
      filename: body.filename,
      contentType: body.contentType,
      size: body.size,
      expiresAt,
    });
    return c.json({ uploadId: id, ...put, expiresAt: expiresAt.toISOString() }, 201);
  });
  return app;
}

/** Largest JSON body read to see whether it names a direct upload. */
const REFERENCE_BYTES = 64 * 1024;

/**
 * Middleware of `POST /datasets`, ahead of its handler, for a direct upload: a JSON object
 * naming `uploadId`. The request is replaced by one that carries the object's bytes, its type
 * and its options as query parameters, and the handler takes it as a file sent to it. Any other
 * request goes on as it came (a small JSON array file is peeked at and passed on whole).
 */
export function directUploads(o: DirectUploadOptions | undefined): MiddlewareHandler<AppEnv> {
  return async function directUpload(c, next) {
    const peeked = await peekReference(c);
    if (!peeked) return await next();
    if (!o?.bucket) throw unavailable();
    const ref = parseBody(peeked, uploadReference);
    const tenantId = principalOf(c).tenantId;
    const claimed = await claimUpload(o.db, ref.uploadId, tenantId);
    if (!claimed) throw await whyUnclaimed(o.db, ref.uploadId, tenantId);
    try {
      const head = await o.bucket.head(claimed.key);
      if (!head) {
        throw new TroupeError(
          "UPLOAD_NOT_RECEIVED",
          "nothing was uploaded to this upload's URL: PUT the file first",
          { details: { uploadId: claimed.id } },
        );
      }
      if (head.size !== claimed.size) {
        throw new TroupeError(
          "UPLOAD_SIZE_MISMATCH",
          `the uploaded file holds ${head.size} bytes, not the ${claimed.size} stated`,
          { details: { expected: claimed.size, received: head.size } },
        );
      }
      c.req.raw = new Request(referenceUrl(c.req.url, ref, claimed.filename), {
        method: "POST",
        headers: {
          "content-type": claimed.contentType,
          "content-length": String(claimed.size),
        },
        body: await o.bucket.readKey(claimed.key),
      });
    } catch (err) {
      await releaseUpload(o.db, claimed.id);
      throw err;
    }
    try {
      await next();
    } catch (err) {
      await releaseUpload(o.db, claimed.id);
      throw err;
    }
    if (c.res.status === 202) {
      // Its bytes are in blob storage now, held by the dataset.
      await o.bucket.remove(claimed.key).catch(() => {});
    } else {
      await releaseUpload(o.db, claimed.id);
    }
  };
}

/** The route's URL with the reference's options as its query parameters. */
function referenceUrl(
  at: string,
  ref: z.infer<typeof uploadReference>,
  filename: string,
): URL {
  const url = new URL(at);
  for (const [k, v] of Object.entries(ref)) {
    if (k === "uploadId" || v === undefined) continue;
    const text = k === "options" ? JSON.stringify(v) : Array.isArray(v) ? v.join(",") : String(v);
    url.searchParams.set(k, text);
  }
  if (!ref.name) url.searchParams.set("name", filename.slice(0, 200));
  if (!ref.format && /\.xlsx$/i.test(filename)) url.searchParams.set("format", "xlsx");
  return url;
}

/** Why an upload could not be claimed, as the answer. */
async function whyUnclaimed(
  db: SqlDatabase,
  id: string,
  tenantId: string | null,
): Promise<TroupeError> {
  const found = await findUpload(db, id, tenantId);
  if (!found) return new NotFoundError("upload", id);
  if (found.usedAt) {
    return new TroupeError("UPLOAD_USED", "a dataset was made of this upload already", {
      details: { uploadId: id },
    });
  }
  return new TroupeError("UPLOAD_EXPIRED", "the upload expired: ask for a new one", {
    details: { uploadId: id, expiresAt: found.expiresAt.toISOString() },
  });
}

/**
 * The body, when the request is a small JSON object naming `uploadId`; else null, and the
 * request keeps its body (what was read of it first, then the rest).
 */
async function peekReference(c: Context<AppEnv>): Promise<Record<string, unknown> | null> {
  const type = c.req.header("content-type") ?? "";
  const length = Number(c.req.header("content-length") ?? 0);
  const body = c.req.raw.body;
  if (!/^application\/json\b/i.test(type) || length > REFERENCE_BYTES || !body) return null;
  const reader = body.getReader();
  const head: Uint8Array[] = [];
  let size = 0;
  let ended = false;
  while (size <= REFERENCE_BYTES) {
    const r = await reader.read();
    if (r.done) {
      ended = true;
      break;
    }
    head.push(r.value);
    size += r.value.byteLength;
  }
  if (ended) {
    let value: unknown = null;
    try {
      value = JSON.parse(
        new TextDecoder().decode(await new Blob(head as Uint8Array<ArrayBuffer>[]).bytes()),
      );
    } catch { /* a file, for the route to judge */ }
    if (
      typeof value === "object" && value !== null && !Array.isArray(value) && "uploadId" in value
    ) {
      return value as Record<string, unknown>;
    }
  }
  const rest = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = head.shift();
      if (chunk) return controller.enqueue(chunk);
      const r = await reader.read();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  c.req.raw = new Request(c.req.url, {
    method: c.req.method,
    headers: c.req.raw.headers,
    body: rest,
    signal: c.req.raw.signal,
  });
  return null;
}
