/**
 * The usage workload's part of a tenant's deletion: snapshots, aggregates, report names, sync
 * history and sources (with their sealed tokens and schedules).
 */
import type { Counts, TenantDataPart } from "../tenants/part.ts";

/** Snapshots go a batch at a time: a tenant may have millions. */
const BATCH = 10_000;

/** Tables holding only per-tenant figures, removed whole in one step each. */
const SMALL_TABLES: readonly [string, string][] = [
  ["troupe_usage_daily", "dailyAggregates"],
  ["troupe_usage_report_totals", "reportTotals"],
  ["troupe_usage_reports", "reportNames"],
  ["troupe_usage_syncs", "syncs"],
  // Last: a source's row is its schedule; without it no sync of the tenant starts again.
  ["troupe_usage_sources", "sources"],
];

export const usageTenantData: TenantDataPart = {
  name: "usage",
  async deleteTenantData(ctx) {
    while (!ctx.signal.aborted) {
      const counts: Counts = await ctx.step(async (tx) => {
        const gone = await tx.query(
          `DELETE FROM troupe_usage_snapshots WHERE ctid IN (
             SELECT ctid FROM troupe_usage_snapshots WHERE tenant_id = $1 LIMIT ${BATCH})
           RETURNING 1`,
          [ctx.tenantId],
        );
        return gone.length ? { snapshots: gone.length } : {};
      });
      if (!counts.snapshots) break;
    }
    for (const [table, kind] of SMALL_TABLES) {
      if (ctx.signal.aborted) return;
      await ctx.step(async (tx) => {
        const gone = await tx.query(`DELETE FROM ${table} WHERE tenant_id = $1 RETURNING 1`, [
          ctx.tenantId,
        ]);
        return gone.length ? { [kind]: gone.length } : {};
      });
    }
  },
};
