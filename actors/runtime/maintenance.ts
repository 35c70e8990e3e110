/**
 * One pass of what the background loops do, for hosts where no timer outlives a request (a QStash
 * schedule or `Deno.cron` calls it every minute).
 *
 * Invariants: every step runs even if another fails (failures are logged and counted by the
 * background tasks); a schedule fires at most once per actor and minute, across instances and
 * schedulers, because `fireSchedule` keys its job by the slot.
 */
import type { BackgroundTasks } from "./background.ts";
import { lastSlot, parseSchedule } from "./cron.ts";
import type { AnyActor } from "./define.ts";

/** What a pass did. */
export type MaintenanceResult = {
  reaped: number;
  relayed: number;
  fired: string[];
  failures: number;
};

/** The parts of a runtime a pass uses. */
export interface MaintenanceTarget {
  readonly actors: ReadonlyMap<string, AnyActor>;
  reap(): Promise<number>;
  /** Hands over outbox rows left behind; resolves to 0 at once for a transport without. */
  relayOutbox(): Promise<number>;
  fireSchedule(name: string, at: Date): Promise<{ created: boolean }>;
}

/**
 * Reaps lapsed leases, relays the outbox (a no-op for transports that write no outbox rows)
 * and fires the schedules due at `at`.
 */
export async function maintenancePass(
  t: MaintenanceTarget,
  bg: BackgroundTasks,
  at: Date,
): Promise<MaintenanceResult> {
  const result: MaintenanceResult = { reaped: 0, relayed: 0, fired: [], failures: 0 };
  const before = bg.failures;
  await bg.run("reaper", async () => result.reaped = await t.reap());
  await bg.run("outbox relay", async () => result.relayed = await t.relayOutbox());
  const minute = Math.floor(at.getTime() / 60_000) * 60_000;
  for (const def of t.actors.values()) {
    if (!def.schedule) continue;
    await bg.run("schedule", async () => {
      if (lastSlot(parseSchedule(def.schedule!.cron), at)?.getTime() !== minute) return;
      const { created } = await t.fireSchedule(def.name, at);
      if (created) result.fired.push(def.name);
    });
  }
  result.failures = bg.failures - before;
  return result;
}
