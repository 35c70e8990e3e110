/** The usage part of a tenant's deletion removes the tenant's figures and no one else's. */
import assert from "node:assert/strict";
import { targets } from "../../tests/harness.ts";
import type { Counts, TenantDeletionContext } from "../tenants/part.ts";
import { toCents } from "./money.ts";
import { recordUsage } from "./store.ts";
import { usageTenantData } from "./tenant_data.ts";

for (const target of targets.filter((t) => t.name !== "neon")) {
  Deno.test(`usage tenant data is deleted per tenant (${target.name})`, async () => {
    const { db, cleanup } = await target.open();
    try {
      for (const tenantId of ["t1", "t2"]) {
        await db.transaction((tx) =>
          recordUsage(tx, {
            tenantId,
            sourceId: "s1",
            timeZone: "UTC",
            messages: Array.from({ length: 25 }, (_, i) => ({
              id: String(i),
              timestamp: new Date(Date.UTC(2026, 11, 1 + (i % 3))),
              creditsCents: toCents(1.25),
              reportId: i % 2 ? "r1" : null,
            })),
            reportNames: new Map([["r1", "Weekly"]]),
          })
        );
        await db.query(
          `INSERT INTO troupe_usage_sources (id, tenant_id, name, base_url, token_sealed,
             page_size, concurrency, requests_per_minute, schedule)
           VALUES ($1 || '-s1', $1, 'api', 'https://api.example', 'sealed', 100, 4, 60, '30')`,
          [tenantId],
        );
        await db.query(
          `INSERT INTO troupe_usage_reports (tenant_id, source_id, report_id, name, found, expires_at)
           VALUES ($1, 's1', 'r1', 'Weekly', true, now())`,
          [tenantId],
        );
      }
      const tally: Counts = {};
      const ctx: TenantDeletionContext = {
        tenantId: "t1",
        db,
        signal: new AbortController().signal,
        step: (fn) =>
          db.transaction(async (tx) => {
            const counts = await fn(tx);
            for (const [k, v] of Object.entries(counts)) tally[k] = (tally[k] ?? 0) + v;
            return counts;
          }),
      };
      await usageTenantData.deleteTenantData(ctx);
      assert.deepEqual(tally, {
        snapshots: 25,
        dailyAggregates: 3,
        reportTotals: 2,
        reportNames: 1,
        sources: 1,
      });
      for (const table of ["snapshots", "daily", "report_totals", "reports", "sources"]) {
        const rows = await db.query<{ tenant_id: string; n: number }>(
          `SELECT tenant_id, count(*)::int AS n FROM troupe_usage_${table} GROUP BY 1 ORDER BY 1`,
        );
        assert.deepEqual(rows.map((r) => r.tenant_id), ["t2"], table);
      }
      await usageTenantData.deleteTenantData(ctx);
      assert.equal(tally.snapshots, 25, "a second run removes nothing more");
    } finally {
      await cleanup();
    }
  });
}
