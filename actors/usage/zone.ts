/**
 * A tenant's time zone, and the days its usage falls on. Changing the zone re-days every
 * snapshot and rebuilds the tenant's daily aggregates from them, in one transaction, so the
 * aggregates always equal a recount of the snapshots in the zone the tenant has.
 *
 * The tenant row is locked for the change: a sync reads the zone with {@link zoneForWrite} in
 * its page's transaction (a shared lock on the same row), so no page is written with the old
 * zone after the rebuild.
 */
import {
  NotFoundError,
  type SqlDatabase,
  type SqlExecutor,
  ValidationError,
} from "@troupe/runtime";
import { checkTimeZone } from "./days.ts";

/** The tenant's zone, locked against a change until `tx` ends (for writers of snapshots). */
export async function zoneForWrite(tx: SqlExecutor, tenantId: string): Promise<string> {
  const rows = await tx.query<{ time_zone: string }>(
    "SELECT time_zone FROM troupe_tenants WHERE id = $1 FOR SHARE",
    [tenantId],
  );
  if (!rows[0]) throw new NotFoundError("tenant", tenantId);
  return rows[0].time_zone;
}

/**
 * Sets the tenant's zone (an IANA name) and, when it differs, re-days its snapshots and
 * rebuilds its daily aggregates. Returns whether anything changed.
 */
export async function setTimeZone(
  db: SqlDatabase,
  tenantId: string,
  timeZone: string,
): Promise<{ changed: boolean; snapshots: number }> {
  checkTimeZone(timeZone);
  return await db.transaction(async (tx) => {
    const rows = await tx.query<{ time_zone: string }>(
      "SELECT time_zone FROM troupe_tenants WHERE id = $1 FOR UPDATE",
      [tenantId],
    );
    if (!rows[0]) throw new NotFoundError("tenant", tenantId);
    if (rows[0].time_zone === timeZone) return { changed: false, snapshots: 0 };
    const known = await tx.query("SELECT 1 FROM pg_timezone_names WHERE name = $1", [timeZone]);
    if (known.length === 0) {
      throw new ValidationError("time zone is not known to the database", { timeZone });
    }
    await tx.query("UPDATE troupe_tenants SET time_zone = $2 WHERE id = $1", [tenantId, timeZone]);
    const moved = await tx.query<{ n: string }>(
      `WITH moved AS (
         UPDATE troupe_usage_snapshots SET day = (ts AT TIME ZONE $2)::date
          WHERE tenant_id = $1 AND day <> (ts AT TIME ZONE $2)::date
          RETURNING 1)
       SELECT count(*)::text AS n FROM moved`,
      [tenantId, timeZone],
    );
    await tx.query("DELETE FROM troupe_usage_daily WHERE tenant_id = $1", [tenantId]);
    await tx.query(
      `INSERT INTO troupe_usage_daily (tenant_id, source_id, day, credits_cents, messages)
       SELECT tenant_id, source_id, day, sum(credits_cents), count(*)
         FROM troupe_usage_snapshots WHERE tenant_id = $1
        GROUP BY tenant_id, source_id, day`,
      [tenantId],
    );
    return { changed: true, snapshots: Number(moved[0]!.n) };
  });
}
