/**
 * `deno task schedules:sync`: makes QStash's schedules match the actors' cron schedules.
 *
 * Troupe owns the schedules whose id starts with `troupe-`: missing ones are created, ones
 * whose cron or destination changed are updated (upsert by id), ones no actor declares any
 * more are deleted. Other schedules are never touched. A second run changes nothing. A paused
 * schedule stays paused (an operator's decision).
 *
 * Needs QSTASH_TOKEN (QSTASH_URL optional) and PUBLIC_URL; the signing keys and
 * DATABASE_URL are not used here.
 */
import { Client } from "@upstash/qstash";
import type { AnyActor, SqlExecutor } from "@troupe/runtime";

export const SCHEDULE_PREFIX = "troupe-";

export interface ScheduleSpec {
  scheduleId: string;
  cron: string;
  destination: string;
}

export interface SyncReport {
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
}

/** The QStash schedule id of a scheduled actor. */
export function scheduleId(actor: string): string {
  return SCHEDULE_PREFIX + actor.replace(/[^A-Za-z0-9_-]/g, "-");
}

/** The QStash schedule of the maintenance pass (reap, relay, due schedules), every minute. */
export const MAINTENANCE_SCHEDULE_ID = SCHEDULE_PREFIX + "system-maintain";

/** What QStash should hold for `actors`, delivering to `publicUrl`. */
export function desiredSchedules(actors: readonly AnyActor[], publicUrl: string): ScheduleSpec[] {
  const base = publicUrl.replace(/\/+$/, "");
  return [
    ...actors.filter((a) => a.schedule).map((a) => ({
      scheduleId: scheduleId(a.name),
      cron: a.schedule!.cron,
      destination: `${base}/schedules/${encodeURIComponent(a.name)}`,
    })),
    {
      scheduleId: MAINTENANCE_SCHEDULE_ID,
      cron: "* * * * *",
      destination: `${base}/schedules/system.maintain`,
    },
  ];
}

export async function syncSchedules(
  client: Client,
  desired: readonly ScheduleSpec[],
): Promise<SyncReport> {
  const report: SyncReport = { created: [], updated: [], deleted: [], unchanged: [] };
  const existing = new Map(
    (await client.schedules.list())
      .filter((s) => s.scheduleId.startsWith(SCHEDULE_PREFIX))
      .map((s) => [s.scheduleId, s]),
  );
  for (const want of desired) {
    const have = existing.get(want.scheduleId);
    existing.delete(want.scheduleId);
    if (have && have.cron === want.cron && have.destination === want.destination) {
      report.unchanged.push(want.scheduleId);
      continue;
    }
    await client.schedules.create({
      scheduleId: want.scheduleId,
      destination: want.destination,
      cron: want.cron,
      method: "POST",
      retries: 3,
    });
    (have ? report.updated : report.created).push(want.scheduleId);
  }
  for (const stale of existing.keys()) {
    await client.schedules.delete(stale);
    report.deleted.push(stale);
  }
  return report;
}

/** A database that is never used: the sync only reads the actors' schedules. */
const noDatabase: SqlExecutor = {
  query: () => Promise.reject(new Error("schedules:sync does not use the database")),
};

if (import.meta.main) {
  const { ConfigError, loadConfig } = await import("./config.ts");
  const { deployedActors } = await import("../main.ts");
  try {
    const config = loadConfig(Deno.env.toObject());
    if (!config.QSTASH_TOKEN || !config.PUBLIC_URL) {
      console.error(
        "schedules:sync needs QSTASH_TOKEN and PUBLIC_URL (and QSTASH_URL if not the default)",
      );
      Deno.exit(2);
    }
    const client = new Client({ baseUrl: config.QSTASH_URL, token: config.QSTASH_TOKEN });
    const report = await syncSchedules(
      client,
      desiredSchedules(deployedActors(config, noDatabase), config.PUBLIC_URL),
    );
    console.log(JSON.stringify(report));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    Deno.exit(1);
  }
}
