/**
 * Monthly usage statements (tenant-scoped; another tenant's statement is a 404):
 * - `POST /api/v1/usage/statements {month: "YYYY-MM", format: "pdf"|"xlsx"}`: `202` with the
 *   `usage.statement` job (actors/usage/statement_job.ts). One job per tenant, month, format
 *   and version of the month's usage: asked again with nothing changed, the same job (`200`
 *   once it has succeeded); after new usage of the month, a new one.
 * - `GET /api/v1/usage/statements/:jobId`: the job, and where its file is once made.
 * - `GET /api/v1/usage/statements/:jobId/file`: the file; `202` with the job while it is
 *   made; `409` if it failed; `410` if a newer statement of the same month and format
 *   replaced it and its file was collected (ask for the statement again).
 */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  isTerminal,
  type JobView,
  NotFoundError,
  type Runtime,
  TroupeError,
} from "@troupe/runtime";
import {
  STATEMENT_ACTOR,
  STATEMENT_FORMATS,
  type StatementResult,
} from "../actors/usage/statement_job.ts";
import { MONTH, statementVersion } from "../actors/usage/statement_data.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { attachmentHeader } from "./attachment.ts";
import { principalOf } from "./auth.ts";
import type { AppEnv } from "./env.ts";
import { apiBase, declare } from "./openapi.ts";
import { DocumentJob, jobAnswer, storedFile } from "./stored_file.ts";
import { jsonBody, parseBody, pathId } from "./validate.ts";

const tags = ["usage"];

const statementBody = z.object({
  month: z.string().regex(MONTH, "YYYY-MM").openapi({ example: "2026-05" }),
  format: z.enum(STATEMENT_FORMATS).default("pdf"),
});

const StatementView = DocumentJob.extend({
  file: z.string().nullable().openapi({ description: "The file's URL, once made" }),
});

export interface StatementRoutesOptions {
  runtime: Runtime;
  blobs: BlobStore;
}

/**
 * Jobs of one version a request goes through when the ones before failed for good: past it,
 * the version's statement is a 409 until the usage changes.
 */
const MAX_TRIES = 3;

export function statementRoutes(o: StatementRoutesOptions): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  const base = (c: Context) => `${apiBase(c)}/usage/statements`;

  /** The tenant's statement job, or a 404 (another tenant's, or another actor's job). */
  const statementJob = async (c: Context<AppEnv>): Promise<JobView> => {
    const id = pathId(c, "statement", "jobId");
    const job = await o.runtime.getJob(id, principalOf(c).tenantId);
    if (job.actor !== STATEMENT_ACTOR) throw new NotFoundError("statement", id);
    return job;
  };

  declare(app, {
    method: "post",
    path: "/usage/statements",
    tags,
    summary: "Make the monthly statement (PDF or XLSX) as a job",
    description: "Days follow the tenant's time zone. Asked again while the month's usage is " +
      "unchanged, the same job answers (200 once it has succeeded).",
    body: statementBody,
    responses: {
      202: { description: "The job making it", schema: DocumentJob },
      200: { description: "The job that made it", schema: DocumentJob },
    },
  }, async function createStatement(c) {
    const { tenantId } = principalOf(c);
    const body = parseBody(await jsonBody(c), statementBody);
    const version = await statementVersion(o.runtime.db, tenantId, body.month);
    const input = { tenantId, month: body.month, format: body.format, version };
    let key = `statement:${body.month}:${body.format}:${version}`;
    for (let tries = 1;; tries++) {
      const { job, created } = await o.runtime.enqueue(STATEMENT_ACTOR, input, {
        tenantId,
        idempotencyKey: key,
      });
      const location = `${base(c)}/${job.id}`;
      if (!isTerminal(job.status)) return jobAnswer(c, job, { location });
      if (job.status === "succeeded") return jobAnswer(c, job, { status: 200, location });
      // A job an earlier request started that failed for good is followed by a new one; one
      // this request started (it failed that fast) is the answer.
      if (created || tries === MAX_TRIES) throw failed(job);
      key = `statement:${body.month}:${body.format}:${version}:after:${job.id}`;
    }
  });

  declare(app, {
    method: "get",
    path: "/usage/statements/:jobId",
    tags,
    summary: "A statement's job, and its file's URL once made",
    responses: { 200: { description: "The statement", schema: StatementView } },
  }, async function getStatement(c) {
    const job = await statementJob(c);
    return c.json({
      jobId: job.id,
      status: job.status,
      job,
      file: job.status === "succeeded" ? `${base(c)}/${job.id}/file` : null,
    });
  });

  declare(app, {
    method: "get",
    path: "/usage/statements/:jobId/file",
    tags,
    summary: "Download a statement: the file, or 202 with its job while it is made",
    responses: {
      200: { description: "The statement", type: "application/pdf" },
      202: { description: "Being made: the job, with Retry-After", schema: DocumentJob },
    },
  }, async function statementFile(c) {
    const job = await statementJob(c);
    if (!isTerminal(job.status)) return jobAnswer(c, job, { location: `${base(c)}/${job.id}` });
    if (job.status !== "succeeded") throw failed(job);
    const result = job.result as StatementResult;
    if (!await o.blobs.stat(result.file.sha256)) {
      throw new TroupeError(
        "STATEMENT_REPLACED",
        "a newer statement of this month replaced this one: ask for the statement again",
        { details: { month: result.month, format: result.format } },
      );
    }
    return await storedFile(
      o.blobs,
      result.file,
      attachmentHeader(`usage-statement-${result.month}`, result.format),
    );
  });

  return app;
}

function failed(job: JobView): TroupeError {
  return new TroupeError("STATEMENT_FAILED", "the statement could not be made", {
    details: { jobId: job.id, status: job.status, error: job.error },
  });
}
