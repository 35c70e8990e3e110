/**
 * The tick: one scheduled actor (every minute; `Deno.cron` embedded, a QStash schedule in
 * production) starts the syncs of the sources whose `next_run_at` has come. A source's
 * schedule is tenant data, so it cannot be a deploy-time schedule of its own.
 *
 * Invariants:
 * - A slot starts one sync across instances and ticks: the start moves `next_run_at` on in the
 *   transaction that creates the sync, only if it still holds the slot (and the slot's sync
 *   has an id derived from it).
 * - Slots missed while nothing ran are caught up once (trigger `catch-up` in the history, with
 *   the first missed slot as `scheduledFor`), then the schedule goes on from now.
 * - A source whose sync still runs at its slot skips it (the running sync is the catch-up).
 */
import { z } from "zod";
import { type AnyActor, defineActor, parseSchedule } from "@troupe/runtime";
import { SlotTaken, startSync, type UsageDeps } from "./sync.ts";

/** How many due sources one tick starts at most (the next tick takes the rest). */
const BATCH = 200;

/** Starts what is due at `now`; returns the syncs started. */
export async function tick(deps: UsageDeps, now = new Date()): Promise<string[]> {
  const due = await deps.db.query<
    {
      id: string;
      tenant_id: string;
      schedule: string;
      next_run_at: Date | string;
      callback_url: string | null;
    }
  >(
    `SELECT id, tenant_id, schedule, next_run_at, callback_url FROM troupe_usage_sources
      WHERE next_run_at <= $1 ORDER BY next_run_at LIMIT $2`,
    [now.toISOString(), BATCH],
  );
  const started: string[] = [];
  for (const s of due) {
    const slot = new Date(s.next_run_at);
    const schedule = parseSchedule(s.schedule);
    const next = schedule.next(now);
    const missed = schedule.next(slot).getTime() <= now.getTime();
    try {
      const { jobId, created } = await startSync(deps, {
        tenantId: s.tenant_id,
        sourceId: s.id,
        trigger: missed ? "catch-up" : "schedule",
        claim: { slot, next },
        callbackUrl: s.callback_url,
      });
      if (created) started.push(jobId);
      else {
        // Running already: this slot is skipped, the schedule moves on.
        await deps.db.query(
          "UPDATE troupe_usage_sources SET next_run_at = $3 WHERE id = $1 AND next_run_at = $2",
          [s.id, slot.toISOString(), next.toISOString()],
        );
      }
    } catch (err) {
      if (!(err instanceof SlotTaken)) throw err;
    }
  }
  return started;
}

/** The tick actor (see the module doc). */
export function tickActor(deps: UsageDeps): AnyActor {
  return defineActor({
    name: "usage.tick",
    input: z.object({}),
    schedule: "* * * * *",
    scheduleInput: {},
    exposed: false,
    retries: 2,
    handler: async () => ({ started: (await tick(deps)).length }),
  });
}
