/**
 * Operations: instances and what runs on them, and pausing an actor's queue.
 *
 * - `GET /workers` (any key): the instances seen within `sinceSeconds` (their heartbeats; on
 *   QStash, the instances that took deliveries), the jobs running under each one's leases, the
 *   delayed jobs and the paused actors. An admin key sees every tenant's jobs and the hosts; any
 *   other key sees the instances, without host or pid, and only its own tenant's jobs.
 * - `POST /actors/:name/pause`, `/resume` (admin key): persisted across restarts and instances;
 *   enqueues are still accepted, nothing of the actor starts until it is resumed, and a pushed
 *   delivery of a paused actor comes back later without using an attempt.
 * - `GET /actors/stats` (any key): per actor, the last hour's successes, failures, cancellations
 *   and p50/p99 handler durations (a tenant key: its own jobs).
 * - `GET /actors/:name/keys` (admin key): the keys the actor leased last, with their state and
 *   the instance holding each one's lease now.
 */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import { type Runtime, TroupeError } from "@troupe/runtime";
import type { Context } from "hono";
import type { TenantStore } from "../db/tenants.ts";
import { principalOf } from "./auth.ts";
import type { AppEnv } from "./env.ts";
import { declare } from "./openapi.ts";
import { auditContext } from "./jobs.ts";
import { parseQuery } from "./validate.ts";

const tags = ["operations"];

const JobBrief = z.object({
  id: z.string(),
  actor: z.string(),
  key: z.string(),
  tenantId: z.string().nullable(),
  attempts: z.number().int(),
  maxAttempts: z.number().int(),
  startedAt: z.string().nullable(),
  runAt: z.string(),
}).openapi("JobBrief");

const Pause = z.object({
  actor: z.string(),
  pausedBy: z.string().nullable(),
  pausedAt: z.string(),
}).openapi("ActorPause");

const Instance = z.object({
  id: z.string(),
  host: z.string().nullable(),
  pid: z.number().int().nullable(),
  transport: z.string(),
  mode: z.string(),
  actors: z.array(z.string()),
  concurrency: z.number().int(),
  inFlight: z.number().int(),
  startedAt: z.string(),
  heartbeatAt: z.string(),
  idleSeconds: z.number(),
  stoppedAt: z.string().nullable(),
  active: z.array(JobBrief),
}).openapi("Instance");

const Workers = z.object({
  instances: z.array(Instance),
  unowned: z.array(JobBrief),
  scheduled: z.array(JobBrief),
  paused: z.array(Pause),
  capped: z.boolean(),
}).openapi("Workers");

const workersQuery = z.object({
  /** Instances seen within this many seconds. */
  sinceSeconds: z.coerce.number().int().min(10).max(86_400).default(3600),
  /** Most running and most delayed jobs listed. */
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

const keysQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  /** The last key of the previous page. */
  after: z.string().min(1).max(500).optional(),
});

const ActorKey = z.object({
  key: z.string(),
  state: z.unknown(),
  version: z.number().int(),
  fence: z.number().int(),
  leaseOwner: z.string().nullable(),
  leaseUntil: z.string().nullable(),
  updatedAt: z.string(),
}).openapi("ActorKey");

const ActorStats = z.object({
  actor: z.string(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  cancelled: z.number().int(),
  successRate: z.number().nullable(),
  p50Ms: z.number().nullable(),
  p99Ms: z.number().nullable(),
}).openapi("ActorStats");

const PauseState = z.object({
  actor: z.string(),
  paused: z.boolean(),
  pausedAt: z.string().nullable(),
}).openapi("ActorPauseState");

function adminOnly(c: Context<AppEnv>, what: string): void {
  if (!principalOf(c).admin) throw new TroupeError("FORBIDDEN", `${what} needs an admin key`);
}

export function operationRoutes(runtime: Runtime, tenants: TenantStore): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();

  declare(app, {
    method: "get",
    path: "/workers",
    tags,
    summary: "Instances, their heartbeats and running jobs; delayed jobs; paused actors",
    description: "An admin key sees every tenant's jobs and the hosts; another key sees the " +
      "instances without host or pid, and only its tenant's jobs. Delayed jobs belong to no " +
      "instance until they are due, so they are listed once (`scheduled`). On QStash an " +
      "instance is listed when it took a delivery within the window.",
    query: workersQuery,
    responses: { 200: { description: "The instances", schema: Workers } },
  }, async function listWorkers(c) {
    const q = parseQuery(c, workersQuery);
    const p = principalOf(c);
    return c.json(
      await runtime.workers({
        ...(p.admin ? {} : { tenantId: p.tenantId }),
        sinceSeconds: q.sinceSeconds,
        limit: q.limit,
      }),
    );
  });

  declare(app, {
    method: "get",
    path: "/actors/stats",
    tags,
    summary: "Per actor: the last hour's outcomes and p50/p99 handler durations",
    description: "From the most recent 20,000 jobs finished within the hour (`sampled` when " +
      "there were more). A tenant key counts its own jobs; an admin key every tenant's.",
    responses: {
      200: {
        description: "The figures",
        schema: z.object({ actors: z.array(ActorStats), sampled: z.boolean() }),
      },
    },
  }, async function actorStats(c) {
    const p = principalOf(c);
    return c.json(await runtime.actorStats(p.admin ? {} : { tenantId: p.tenantId }));
  });

  declare(app, {
    method: "post",
    path: "/actors/:name/pause",
    tags,
    summary: "Pause an actor's queue (admin key): its jobs wait, enqueues are accepted",
    responses: { 200: { description: "The actor is paused", schema: PauseState } },
  }, async function pauseActor(c) {
    adminOnly(c, "pausing an actor");
    const p = principalOf(c);
    const pause = await runtime.pause(c.req.param("name"), p.apiKeyId);
    await tenants.audit({
      ...auditContext(c),
      action: "actor.pause",
      targetType: "actor",
      targetId: pause.actor,
      details: {},
    });
    return c.json({ actor: pause.actor, paused: true, pausedAt: pause.pausedAt });
  });

  declare(app, {
    method: "post",
    path: "/actors/:name/resume",
    tags,
    summary: "Resume a paused actor (admin key): its waiting jobs run",
    responses: { 200: { description: "The actor runs", schema: PauseState } },
  }, async function resumeActor(c) {
    adminOnly(c, "resuming an actor");
    const name = c.req.param("name");
    const was = await runtime.resume(name);
    await tenants.audit({
      ...auditContext(c),
      action: "actor.resume",
      targetType: "actor",
      targetId: name,
      details: { wasPaused: was },
    });
    return c.json({ actor: name, paused: false, pausedAt: null });
  });

  declare(app, {
    method: "get",
    path: "/actors/:name/keys",
    tags,
    summary: "The keys an actor leased last: state and live lease holder (admin key)",
    query: keysQuery,
    responses: {
      200: { description: "A page of keys", schema: z.object({ items: z.array(ActorKey) }) },
    },
  }, async function listActorKeys(c) {
    adminOnly(c, "an actor's keys");
    const q = parseQuery(c, keysQuery);
    const items = await runtime.actorKeys(c.req.param("name"), {
      limit: q.limit,
      ...(q.after !== undefined ? { after: q.after } : {}),
    });
    return c.json({ items });
  });

  return app;
}
