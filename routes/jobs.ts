/**
 * The jobs API: enqueue, read, list, cancel, live events; dead letters and replay.
 *
 * An enqueue may name a `callbackUrl`: when the job ends, a signed event is POSTed there (see
 * actors/system/callback.ts); the job's view shows that callback's delivery (`callback`).
 */
import type { Context } from "hono";
import { OpenAPIHono } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import {
  type AnyActor,
  isTerminal,
  JOB_STATUSES,
  type JobView,
  NotFoundError,
  type OnEnd,
  type Runtime,
  TroupeError,
} from "@troupe/runtime";
import type { TenantStore } from "../db/tenants.ts";
import { type Callbacks, type CallbackSubject, callbackView } from "../actors/system/callback.ts";
import { principalOf } from "./auth.ts";
import { z } from "@hono/zod-openapi";
import { apiBase, declare, pageOf } from "./openapi.ts";
import { assertStorableJson, jsonBody, parseBody, parseQuery, pathId } from "./validate.ts";
import type { AppEnv } from "./env.ts";

const MAX_DELAY_MS = 7 * 24 * 3600 * 1000;

/** The `callbackUrl` field of the bodies, queries and forms that accept one. */
export const CallbackUrl = z.string().min(1).max(2048).optional().openapi({
  description: "When the job ends, a JSON event signed with the tenant's callback key " +
    '(`GET /callbacks/secret`; `Troupe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`) ' +
    "is POSTed here, retried with backoff until a 2xx; https only in production, never a " +
    "private address (400 CALLBACK_URL_NOT_ALLOWED)",
});

const enqueueBody = z.object({
  input: z.unknown(),
  delayMs: z.number().int().min(0).max(MAX_DELAY_MS).optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
  callbackUrl: CallbackUrl,
});

const pageQuery = {
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(200).optional(),
};

const listJobsQuery = z.object({
  actor: z.string().min(1).max(64).optional(),
  status: z.enum(JOB_STATUSES).optional(),
  /** Only the jobs of this pipeline. */
  pipelineId: z.string().regex(/^[\w-]{1,64}$/).optional(),
  ...pageQuery,
});

const listDeadLettersQuery = z.object({
  actor: z.string().min(1).max(64).optional(),
  ...pageQuery,
});

const Status = z.enum(JOB_STATUSES);

/** A job as `GET /api/jobs/:id` answers it. */
const JobView = z.object({
  id: z.string(),
  actor: z.string(),
  key: z.string(),
  tenantId: z.string().nullable(),
  status: Status,
  progress: z.number(),
  progressMessage: z.string().nullable(),
  attempts: z.number().int(),
  maxAttempts: z.number().int(),
  cancelRequested: z.boolean(),
  input: z.unknown(),
  result: z.unknown(),
  error: z.unknown(),
  parentId: z.string().nullable(),
  kind: z.enum(["job", "pipeline"]),
  pipelineId: z.string().nullable(),
  pipeline: z.object({
    done: z.number().nullable(),
    total: z.number().nullable(),
    unit: z.string().nullable(),
  }).nullable(),
  replayOf: z.string().nullable(),
  runAt: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  onEnd: z.object({ jobId: z.string(), actor: z.string(), input: z.unknown() }).nullable()
    .openapi({ description: "The message sent when the job ends (a callback's delivery)" }),
}).openapi("Job");

/** A job's completion callback: where, and how its delivery went. */
export const CallbackSchema = z.object({
  url: z.string(),
  status: z.enum(["pending", "delivered", "failed"]),
  attempts: z.number().int(),
  lastResponseStatus: z.number().int().nullable(),
  lastError: z.object({ code: z.string(), message: z.string() }).nullable(),
  deliveredAt: z.string().nullable(),
  eventId: z.string().openapi({ description: "`Troupe-Event-Id`: the same on every attempt" }),
}).openapi("Callback");
/** The `Job` schema, for other routes that answer with a job. */
export const JobSchema = JobView;

/** A pipeline's view also counts its jobs by status. */
const JobWithCounts = JobView.extend({
  jobs: z.record(z.string(), z.number().int()).optional().openapi({
    description: "A pipeline's jobs by status, and `total`",
  }),
  callback: CallbackSchema.optional().openapi({
    description: "Present when the job was given a `callbackUrl`",
  }),
});

const DeadLetterView = z.object({
  id: z.string(),
  jobId: z.string(),
  actor: z.string(),
  key: z.string(),
  tenantId: z.string().nullable(),
  input: z.unknown(),
  error: z.unknown(),
  attempts: z.number().int(),
  createdAt: z.string(),
  replayedAt: z.string().nullable(),
  replayJobId: z.string().nullable(),
}).openapi("DeadLetter");

const Enqueued = z.object({ jobId: z.string(), status: Status });

const tags = ["jobs"];

/** Poll interval of the SSE stream, on top of in-process change notifications. */
const EVENTS_POLL_MS = 250;
const KEEPALIVE_MS = 15_000;

/** The audit fields of the request: who (key), from where, which request. */
export function auditContext(c: Context<AppEnv>) {
  const p = principalOf(c);
  return {
    tenantId: p.tenantId,
    apiKeyId: p.apiKeyId,
    requestId: c.get("requestId") ?? null,
    ip: c.get("clientIp") ?? null,
  };
}

/**
 * The input an API caller's message gets: an actor whose input declares `tenantId` gets the
 * caller's tenant there, whatever the caller sent, so its key can be scoped by tenant (a key
 * function sees only the input) and no caller can name another tenant's instance.
 */
export function tenantScoped(def: AnyActor, input: unknown, tenantId: string): unknown {
  const declares = def.input instanceof z.ZodObject && "tenantId" in def.input.shape;
  if (!declares || typeof input !== "object" || input === null || Array.isArray(input)) {
    return input;
  }
  return { ...input, tenantId };
}

/** A pipeline's view adds how many of its jobs are in each status (`jobs`). */
async function withJobs(runtime: Runtime, job: JobView) {
  if (job.kind !== "pipeline") return job;
  return { ...job, jobs: await runtime.pipelineJobs(job.id) };
}

/** The view with its completion callback's delivery (`callback`), when it has one. */
export async function withCallback<J extends JobView>(runtime: Runtime, job: J) {
  const callback = await callbackView(job, (id) => runtime.getJob(id, job.tenantId));
  return callback ? { ...job, callback } : job;
}

/**
 * A `callbackUrl` accepted for `tenantId` (see `Callbacks.accept`), normalised; undefined when
 * none was given. 409 `CALLBACKS_UNAVAILABLE` when this deployment does not send callbacks.
 */
export async function acceptCallbackUrl(
  callbacks: Callbacks | undefined,
  tenantId: string,
  url: string | undefined,
): Promise<string | undefined> {
  if (url === undefined) return undefined;
  if (!callbacks) {
    throw new TroupeError("CALLBACKS_UNAVAILABLE", "this deployment does not send callbacks");
  }
  return await callbacks.accept(tenantId, url);
}

/**
 * {@link acceptCallbackUrl}, as the end message to give the job, about `subject`; undefined
 * when no URL was given.
 */
export async function acceptCallback(
  callbacks: Callbacks | undefined,
  tenantId: string,
  url: string | undefined,
): Promise<((subject?: CallbackSubject) => OnEnd) | undefined> {
  const accepted = await acceptCallbackUrl(callbacks, tenantId, url);
  if (accepted === undefined) return undefined;
  return (subject) => callbacks!.onEnd(tenantId, accepted, subject ?? null);
}

export function jobRoutes(
  runtime: Runtime,
  tenants: TenantStore,
  callbacks?: Callbacks,
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();

  declare(app, {
    method: "post",
    path: "/actors/:name/jobs",
    tags,
    summary: "Enqueue a job",
    description: "A repeated idempotency key (in the body or the Idempotency-Key header) " +
      "returns the first job with 200; the same key with another actor or input is 409 " +
      "IDEMPOTENCY_KEY_REUSED.",
    headers: z.object({ "idempotency-key": z.string().min(1).max(200).optional() }),
    body: enqueueBody,
    responses: {
      202: { description: "Queued", schema: Enqueued },
      200: { description: "The job first enqueued with this idempotency key", schema: Enqueued },
    },
  }, async function enqueueJob(c) {
    const name = c.req.param("name");
    const def = runtime.actors.get(name);
    if (!def?.exposed) throw new NotFoundError("actor", name); // before reading the body
    const { tenantId } = principalOf(c);
    const body = parseBody(await jsonBody(c), enqueueBody);
    assertStorableJson(body.input, "input");
    const idempotencyKey = body.idempotencyKey ?? c.req.header("idempotency-key");
    if (
      idempotencyKey !== undefined && (idempotencyKey.length < 1 || idempotencyKey.length > 200)
    ) {
      return c.json({
        error: { code: "VALIDATION_FAILED", message: "Idempotency-Key must be 1-200 characters" },
      }, 400);
    }
    const onEnd = (await acceptCallback(callbacks, tenantId, body.callbackUrl))?.();
    const { job, created } = await runtime.enqueue(name, tenantScoped(def, body.input, tenantId), {
      ...(onEnd ? { onEnd } : {}),
      ...(body.delayMs !== undefined ? { delayMs: body.delayMs } : {}),
      ...(body.priority !== undefined ? { priority: body.priority } : {}),
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      tenantId,
    });
    c.header("Location", `${apiBase(c)}/jobs/${job.id}`);
    return c.json({ jobId: job.id, status: job.status }, created ? 202 : 200);
  });

  declare(app, {
    method: "get",
    path: "/jobs",
    tags,
    summary: "List jobs (`pipelineId`: the jobs of a pipeline)",
    query: listJobsQuery,
    responses: { 200: { description: "A page of jobs", schema: pageOf(JobView) } },
  }, async function listJobs(c) {
    const q = parseQuery(c, listJobsQuery);
    const page = await runtime.listJobs({
      tenantId: principalOf(c).tenantId,
      limit: q.limit,
      ...(q.actor !== undefined ? { actor: q.actor } : {}),
      ...(q.status !== undefined ? { status: q.status } : {}),
      ...(q.pipelineId !== undefined ? { pipelineId: q.pipelineId } : {}),
      ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
    });
    return c.json(page);
  });

  declare(app, {
    method: "get",
    path: "/jobs/:id",
    tags,
    summary: "A job: status, progress, attempts, result or error",
    description: "A pipeline (an upload's job) also has its jobs' counts by status; a job " +
      "given a `callbackUrl` has its callback's delivery (`callback`).",
    responses: { 200: { description: "The job", schema: JobWithCounts } },
  }, async function getJob(c) {
    const job = await runtime.getJob(pathId(c, "job"), principalOf(c).tenantId);
    return c.json(await withCallback(runtime, await withJobs(runtime, job)));
  });

  declare(app, {
    method: "post",
    path: "/jobs/:id/cancel",
    tags,
    summary: "Cancel a queued or running job, or a pipeline with its jobs",
    responses: { 200: { description: "The job", schema: JobView } },
  }, async function cancelJob(c) {
    const job = await runtime.cancel(pathId(c, "job"), principalOf(c).tenantId);
    await tenants.audit({
      ...auditContext(c),
      action: "job.cancel",
      targetType: "job",
      targetId: job.id,
      details: { actor: job.actor, status: job.status },
    });
    return c.json(job);
  });

  declare(app, {
    method: "get",
    path: "/jobs/:id/events",
    tags,
    summary: "Server-sent events: `job`, then `progress` until `done` (data: the job as JSON)",
    responses: { 200: { description: "An event stream", type: "text/event-stream" } },
  }, async function jobEvents(c) {
    const id = pathId(c, "job");
    const { tenantId } = principalOf(c);
    const first = await runtime.getJob(id, tenantId); // 404 as JSON before the stream starts
    return streamSSE(c, async function sendEvents(stream) {
      let last = "";
      let wake: (() => void) | null = null;
      let closed = false;
      stream.onAbort(() => {
        closed = true;
        wake?.();
      });
      const unsubscribe = runtime.subscribe((changed) => {
        if (changed === id) wake?.();
      });
      let lastWrite = Date.now();
      try {
        let job = first;
        let eventId = 0;
        while (!closed) {
          // A pipeline's event carries its jobs' counts, and a change in them is an event.
          const view = await withJobs(runtime, job);
          const snapshot = JSON.stringify([
            job.status,
            job.progress,
            job.progressMessage,
            "jobs" in view ? view.jobs : null,
          ]);
          if (snapshot !== last) {
            last = snapshot;
            await stream.writeSSE({
              event: eventId === 0 ? "job" : isTerminal(job.status) ? "done" : "progress",
              data: JSON.stringify(view),
              id: String(eventId++),
            });
            lastWrite = Date.now();
          }
          if (isTerminal(job.status)) break;
          if (Date.now() - lastWrite > KEEPALIVE_MS) {
            await stream.write(": keepalive\n\n");
            lastWrite = Date.now();
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, EVENTS_POLL_MS);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = null;
          if (closed) break;
          job = await runtime.getJob(id, tenantId);
        }
      } finally {
        unsubscribe();
      }
    });
  });

  declare(app, {
    method: "get",
    path: "/dead-letters",
    tags,
    summary: "Dead letters",
    query: listDeadLettersQuery,
    responses: { 200: { description: "A page of dead letters", schema: pageOf(DeadLetterView) } },
  }, async function listDeadLetters(c) {
    const q = parseQuery(c, listDeadLettersQuery);
    const page = await runtime.listDeadLetters({
      tenantId: principalOf(c).tenantId,
      limit: q.limit,
      ...(q.actor !== undefined ? { actor: q.actor } : {}),
      ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
    });
    return c.json(page);
  });

  declare(app, {
    method: "post",
    path: "/dead-letters/:id/replay",
    tags,
    summary: "Replay a dead letter once",
    responses: { 202: { description: "The new job", schema: Enqueued } },
  }, async function replayDeadLetter(c) {
    const deadLetterId = pathId(c, "dead letter");
    const job = await runtime.replay(deadLetterId, principalOf(c).tenantId);
    await tenants.audit({
      ...auditContext(c),
      action: "dead_letter.replay",
      targetType: "dead_letter",
      targetId: deadLetterId,
      details: { jobId: job.id, actor: job.actor },
    });
    return c.json({ jobId: job.id, status: job.status }, 202);
  });

  return app;
}
