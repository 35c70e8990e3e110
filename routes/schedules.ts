/**
 * `GET /api/schedules` (an admin key): the actors' cron schedules, when each fires next, and its
 * latest slot with the job that slot made (null when it made none: the schedule did not fire then,
 * e.g. nothing was running, or it was paused). Scheduled runs are the system's, not a tenant's:
 * another key gets 403.
 *
 * `POST /api/schedules/:actor/pause` and `/resume` (an admin key): a paused schedule's slots make
 * no job until it is resumed (`Runtime.pauseSchedule`, held in the database); the actor's other
 * jobs run as before. Both are audited (`schedule.pause`, `schedule.resume`).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import {
  deterministicId,
  lastSlot,
  NotFoundError,
  parseSchedule,
  type Runtime,
  TroupeError,
} from "@troupe/runtime";
import type { TenantStore } from "../db/tenants.ts";
import { principalOf } from "./auth.ts";
import { auditContext } from "./jobs.ts";
import type { AppEnv } from "./env.ts";
import { declare } from "./openapi.ts";

const Schedule = z.object({
  actor: z.string(),
  cron: z.string(),
  nextRunAt: z.string(),
  lastSlotAt: z.string().nullable(),
  pausedAt: z.string().nullable(),
  lastRun: z.object({
    jobId: z.string(),
    status: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    result: z.unknown(),
    error: z.unknown(),
  }).nullable(),
}).openapi("Schedule");

/** Every scheduled actor: its cron, next run, latest slot and the job that slot made. */
export async function scheduleItems(runtime: Runtime): Promise<z.infer<typeof Schedule>[]> {
  const now = new Date();
  const paused = new Map((await runtime.pausedSchedules()).map((p) => [p.actor, p.pausedAt]));
  const items = [];
  for (const def of runtime.actors.values()) {
    if (!def.schedule) continue;
    const schedule = parseSchedule(def.schedule.cron);
    const slot = lastSlot(schedule, now);
    let lastRun = null;
    if (slot) {
      // The job a slot makes has the id its enqueue derives (`fireSchedule`).
      const id = await deterministicId("enqueue", "", def.name, `schedule:${slot.toISOString()}`);
      try {
        const job = await runtime.getJob(id);
        lastRun = {
          jobId: job.id,
          status: job.status,
          startedAt: job.startedAt ?? null,
          finishedAt: job.finishedAt ?? null,
          result: job.result ?? null,
          error: job.error ?? null,
        };
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    items.push({
      actor: def.name,
      cron: def.schedule.cron,
      nextRunAt: schedule.next(now).toISOString(),
      lastSlotAt: slot?.toISOString() ?? null,
      pausedAt: paused.get(def.name) ?? null,
      lastRun,
    });
  }
  return items;
}

export function scheduleRoutes(runtime: Runtime, tenants: TenantStore): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  declare(app, {
    method: "get",
    path: "/schedules",
    tags: ["operations"],
    summary: "The actors' schedules: next run, latest slot and its job (admin key)",
    responses: {
      200: { description: "Every scheduled actor", schema: z.object({ items: z.array(Schedule) }) },
    },
  }, async function listSchedules(c) {
    if (!principalOf(c).admin) {
      throw new TroupeError("FORBIDDEN", "schedules need an admin key");
    }
    return c.json({ items: await scheduleItems(runtime) });
  });
  for (const action of ["pause", "resume"] as const) {
    declare(app, {
      method: "post",
      path: `/schedules/:actor/${action}`,
      tags: ["operations"],
      summary: action === "pause"
        ? "Pause a schedule: its slots make no job until resumed (admin key)"
        : "Resume a paused schedule (admin key)",
      responses: {
        200: {
          description: "The schedule",
          schema: z.object({ actor: z.string(), pausedAt: z.string().nullable() }),
        },
      },
    }, async function pauseOrResumeSchedule(c) {
      if (!principalOf(c).admin) {
        throw new TroupeError("FORBIDDEN", "schedules need an admin key");
      }
      const actor = c.req.param("actor");
      const def = runtime.actors.get(actor);
      if (!def?.schedule) throw new NotFoundError("schedule", actor);
      const pausedAt = action === "pause"
        ? (await runtime.pauseSchedule(actor, principalOf(c).apiKeyId)).pausedAt
        : (await runtime.resumeSchedule(actor), null);
      await tenants.audit({
        ...auditContext(c),
        action: `schedule.${action}`,
        targetType: "schedule",
        targetId: actor,
        details: {},
      });
      return c.json({ actor, pausedAt });
    });
  }
  return app;
}
