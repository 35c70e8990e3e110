/**
 * Answers for generated documents (actors/documents/stored.ts): the stored file, streamed from
 * the blob store; or, while its job runs, `202` with the job, where to look, and when to ask
 * again.
 */
import type { Context } from "hono";
import { z } from "@hono/zod-openapi";
import type { JobView as Job } from "@troupe/runtime";
import type { DocumentFile } from "../actors/documents/stored.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { JobSchema } from "./jobs.ts";
import { apiBase } from "./openapi.ts";

/** Seconds a client waits before asking again for a document being made. */
export const RETRY_AFTER_SECONDS = 1;

/** The body of a `202` for a document being made: the job as `GET /jobs/:id` shows it. */
export const DocumentJob = z.object({
  jobId: z.string(),
  status: z.string(),
  job: JobSchema,
});

/** The stored file, streamed, with `disposition` as its `Content-Disposition`. */
export async function storedFile(
  blobs: BlobStore,
  file: DocumentFile,
  disposition: string,
): Promise<Response> {
  return new Response(await blobs.read(file.sha256), {
    headers: {
      "content-type": file.contentType,
      "content-length": String(file.size),
      "content-disposition": disposition,
    },
  });
}

/**
 * The job as an answer: `202` (with `Retry-After`) while it runs, or `status`; `Location` is
 * `location` (default: the job).
 */
export function jobAnswer(
  c: Context,
  job: Job,
  { status = 202, location }: { status?: 200 | 202; location?: string } = {},
): Response {
  c.header("Location", location ?? `${apiBase(c)}/jobs/${job.id}`);
  if (status === 202) c.header("Retry-After", String(RETRY_AFTER_SECONDS));
  return c.json({ jobId: job.id, status: job.status, job }, status);
}
