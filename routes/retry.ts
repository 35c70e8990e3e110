/**
 * `POST /api/jobs/retry`: retries the failed jobs matching the jobs list's filters (`actor`,
 * `pipelineId`, `status` which may only be `failed`), each by replaying its dead letter.
 *
 * Invariants:
 * - `dryRun: true` changes nothing: it answers the count and the jobs a retry would replay.
 * - Each failed job is retried once: a dead letter replays once (`Runtime.replay`), so a second
 *   retry of the same filter, or a retry racing another, replays none of them again.
 * - `jobIds` narrows the retry to jobs a dry run listed: what runs is what was shown.
 * - A tenant's key retries its tenant's jobs; an admin key may ask for every tenant's
 *   (`scope: "all"`). The console's form (`/console/jobs/retry`) calls `retryFailed` too.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import {
  ConflictError,
  JOB_STATUSES,
  type RetryCandidate,
  type Runtime,
  TroupeError,
  ValidationError,
} from "@troupe/runtime";
import type { AuditEntry, Principal, TenantStore } from "../db/tenants.ts";
import { principalOf } from "./auth.ts";
import { auditContext } from "./jobs.ts";
import { declare } from "./openapi.ts";
import { jsonBody, parseBody } from "./validate.ts";
import type { AppEnv } from "./env.ts";

/** At most this many jobs in one retry. */
export const MAX_RETRY = 1000;

export const retryBody = z.object({
  actor: z.string().min(1).max(64).optional(),
  status: z.enum(JOB_STATUSES).optional().openapi({ description: "Only `failed` is accepted" }),
  pipelineId: z.string().regex(/^[\w-]{1,64}$/).optional(),
  jobIds: z.array(z.string().min(1).max(64)).min(1).max(MAX_RETRY).optional().openapi({
    description: "Retry only these of the matching jobs (the ids a dry run answered)",
  }),
  dryRun: z.boolean().default(false),
  limit: z.number().int().min(1).max(MAX_RETRY).default(100),
  scope: z.enum(["tenant", "all"]).default("tenant"),
}).strict().refine((b) => b.status === undefined || b.status === "failed", {
  message: "only failed jobs are retried",
  path: ["status"],
});

export type RetryRequest = z.infer<typeof retryBody>;

const RetriedJob = z.object({
  jobId: z.string(),
  deadLetterId: z.string(),
  actor: z.string(),
  retryJobId: z.string().nullable(),
});

const RetryResult = z.object({
  dryRun: z.boolean(),
  count: z.number().int(),
  jobs: z.array(RetriedJob),
}).openapi("RetryResult");

export type RetryOutcome = z.infer<typeof RetryResult>;

/**
 * Lists (dry run) or retries the failed jobs of `req` that principal `p` sees. A job a concurrent
 * retry replayed first is left out of the answer.
 */
export async function retryFailed(
  runtime: Runtime,
  p: Principal,
  req: RetryRequest,
): Promise<RetryOutcome> {
  if (req.scope === "all" && !p.admin) {
    throw new TroupeError("FORBIDDEN", 'scope "all" needs an admin key');
  }
  if (req.actor !== undefined && !runtime.actors.has(req.actor)) {
    throw new ValidationError(`no actor named ${req.actor}`, { field: "actor" });
  }
  const tenantId = req.scope === "all" ? undefined : p.tenantId;
  let found: RetryCandidate[] = await runtime.retryableFailures({
    ...(tenantId !== undefined ? { tenantId } : {}),
    ...(req.actor !== undefined ? { actor: req.actor } : {}),
    ...(req.pipelineId !== undefined ? { pipelineId: req.pipelineId } : {}),
    limit: req.jobIds ? MAX_RETRY : req.limit,
  });
  if (req.jobIds) {
    const wanted = new Set(req.jobIds);
    found = found.filter((f) => wanted.has(f.jobId));
  }
  if (req.dryRun) {
    return {
      dryRun: true,
      count: found.length,
      jobs: found.map((f) => ({ ...f, retryJobId: null })),
    };
  }
  const jobs: RetryOutcome["jobs"] = [];
  for (const f of found) {
    try {
      const job = await runtime.replay(f.deadLetterId, tenantId);
      jobs.push({ ...f, retryJobId: job.id });
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err; // replayed meanwhile: once is enough
    }
  }
  return { dryRun: false, count: jobs.length, jobs };
}

/** Audits a retry that replayed something (a dry run is not audited). */
export async function auditRetry(
  tenants: TenantStore,
  context: Omit<AuditEntry, "action" | "targetType" | "targetId" | "details">,
  req: RetryRequest,
  out: RetryOutcome,
  via?: string,
): Promise<void> {
  if (out.dryRun || out.count === 0) return;
  const { jobIds: _, dryRun: __, ...filter } = req;
  await tenants.audit({
    ...context,
    action: "jobs.retry",
    targetType: "job",
    details: {
      filter,
      count: out.count,
      jobIds: out.jobs.slice(0, 100).map((j) => j.jobId),
      ...(via ? { via } : {}),
    },
  });
}

export function retryRoutes(runtime: Runtime, tenants: TenantStore): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  declare(app, {
    method: "post",
    path: "/jobs/retry",
    tags: ["jobs"],
    summary: "Retry the failed jobs matching a filter, each once (`dryRun`: count and list only)",
    description: "Filters as `GET /jobs` (`status` may only be `failed`). Each failed job is " +
      "retried by replaying its dead letter, once: the same request again retries none. " +
      '`jobIds` narrows to the ids a dry run answered; `scope: "all"` (an admin key): every ' +
      "tenant's.",
    body: retryBody,
    responses: { 200: { description: "What was (or would be) retried", schema: RetryResult } },
  }, async function retryJobs(c) {
    const req = parseBody(await jsonBody(c), retryBody);
    const out = await retryFailed(runtime, principalOf(c), req);
    await auditRetry(tenants, auditContext(c), req, out);
    return c.json(out);
  });
  return app;
}
