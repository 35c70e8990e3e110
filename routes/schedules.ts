/**
 * `GET /api/schedules` (an admin key): the actors' cron schedules, when each fires next, and its
 * latest slot with the job that slot made (null when it made none: the schedule did not fire then,
 * e.g. nothing was running). Scheduled runs are the system's, not a tenant's: another key gets 403.
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
import { principalOf } from "./auth.ts";
import type { AppEnv } from "./env.ts";
import { declare } from "./openapi.ts";

const Schedule = z.object({
  actor: z.string(),
  cron: z.string(),
  nextRunAt: z.string(),
  lastSlotAt: z.string().nullable(),
  lastRun: z.object({
    jobId: z.string(),
    status: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    error: z.unknown(),
  }).nullable(),
}).openapi("Schedule");

/** Every scheduled actor: its cron, next run, latest slot and the job that slot made. */
export async function scheduleItems(runtime: Runtime): Promise<z.infer<typeof Schedule>[]> {
  const now = new Date();
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
      lastRun,
    });
  }
  return items;
}

export function scheduleRoutes(runtime: Runtime): OpenAPIHono<AppEnv> {
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
  return app;
}
