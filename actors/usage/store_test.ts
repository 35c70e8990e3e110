/**
 * The usage write side on PGlite and PostgreSQL: redelivered pages change nothing, a changed
 * message moves its figures, and the aggregates always equal a recount of the snapshots.
 */
import assert from "node:assert/strict";
import type { SqlExecutor } from "@troupe/runtime";
import { targets } from "../../tests/harness.ts";
import { localDay } from "./days.ts";
import { toCents } from "./money.ts";
import { recordUsage, type UsageMessage } from "./store.ts";

const msg = (id: string, iso: string, credits: number, reportId: string | null): UsageMessage => ({
  id,
  timestamp: new Date(iso),
  creditsCents: toCents(credits),
  reportId,
});

async function aggregates(db: SqlExecutor, tenant: string) {
  const daily = await db.query<{ day: string; credits: string; messages: string }>(
    `SELECT day::text AS day, sum(credits_cents)::text AS credits, sum(messages)::text AS messages
       FROM troupe_usage_daily WHERE tenant_id = $1 AND messages <> 0
      GROUP BY day ORDER BY day`,
    [tenant],
  );
  const recount = await db.query<{ day: string; credits: string; messages: string }>(
    `SELECT day::text AS day, sum(credits_cents)::text AS credits, count(*)::text AS messages
       FROM troupe_usage_snapshots WHERE tenant_id = $1 GROUP BY day ORDER BY day`,
    [tenant],
  );
  const reports = await db.query<{ key: string; credits: string; messages: string }>(
    `SELECT report_key AS key, sum(credits_cents)::text AS credits,
            sum(messages)::text AS messages
       FROM troupe_usage_report_totals WHERE tenant_id = $1 AND messages <> 0
      GROUP BY report_key ORDER BY report_key`,
    [tenant],
  );
  const reportRecount = await db.query<{ key: string; credits: string; messages: string }>(
    `SELECT coalesce(report_id, '') AS key, sum(credits_cents)::text AS credits,
            count(*)::text AS messages
       FROM troupe_usage_snapshots WHERE tenant_id = $1 GROUP BY 1 ORDER BY 1`,
    [tenant],
  );
  return { daily, recount, reports, reportRecount };
}

for (const target of targets.filter((t) => t.name !== "neon")) {
  Deno.test(`usage snapshots and aggregates (${target.name})`, async (t) => {
    const { db, cleanup } = await target.open();
    try {
      await db.query(`INSERT INTO troupe_tenants (id, name) VALUES ('t1', 't1'), ('t2', 't2')`);
      const page = [
        msg("1", "2026-11-30T23:30:00Z", 0.1, "r1"),
        msg("2", "2026-12-01T00:10:00Z", 0.2, "r1"),
        msg("3", "2026-12-01T10:00:00Z", 12.35, null),
        msg("3", "2026-12-01T10:00:00Z", 12.35, null),
      ];
      const names = new Map([["r1", "Weekly"]]);
      const base = { tenantId: "t1", sourceId: "s1", timeZone: "UTC", reportNames: names };

      await t.step("a page is kept once and summed exactly", async () => {
        const r = await db.transaction((tx) => recordUsage(tx, { ...base, messages: page }));
        assert.deepEqual([r.inserted, r.unchanged, r.changed], [3, 0, 0]);
        const a = await aggregates(db, "t1");
        assert.deepEqual(a.daily, [
          { day: "2026-11-30", credits: "10", messages: "1" },
          { day: "2026-12-01", credits: "1255", messages: "2" },
        ]);
        assert.deepEqual(a.daily, a.recount);
        assert.deepEqual(a.reports, a.reportRecount);
        const [r1] = await db.query<{ report_name: string }>(
          `SELECT report_name FROM troupe_usage_report_totals WHERE report_key = 'r1'`,
        );
        assert.equal(r1?.report_name, "Weekly");
      });

      await t.step("the same page again changes nothing", async () => {
        const before = await aggregates(db, "t1");
        const r = await db.transaction((tx) => recordUsage(tx, { ...base, messages: page }));
        assert.deepEqual([r.inserted, r.unchanged, r.changed, r.lastSeq], [0, 3, 0, null]);
        assert.deepEqual(await aggregates(db, "t1"), before);
      });

      await t.step("a changed message moves its figures between days and reports", async () => {
        const r = await db.transaction((tx) =>
          recordUsage(tx, {
            ...base,
            messages: [
              msg("1", "2026-12-01T08:00:00Z", 1.05, null),
              msg("4", "2026-12-02T00:00:00Z", 2, "r2"),
            ],
            reportNames: new Map([["r2", null]]),
          })
        );
        assert.deepEqual([r.inserted, r.unchanged, r.changed], [1, 0, 1]);
        const a = await aggregates(db, "t1");
        assert.deepEqual(a.daily, [
          { day: "2026-12-01", credits: "1360", messages: "3" },
          { day: "2026-12-02", credits: "200", messages: "1" },
        ]);
        assert.deepEqual(a.daily, a.recount);
        assert.deepEqual(a.reports, a.reportRecount);
      });

      await t.step("days follow the tenant's time zone; tenants do not mix", async () => {
        await db.transaction((tx) =>
          recordUsage(tx, {
            tenantId: "t2",
            sourceId: "s9",
            timeZone: "America/New_York",
            messages: [msg("1", "2026-12-01T03:00:00Z", 1, null)],
            reportNames: new Map(),
          })
        );
        assert.equal(localDay(new Date("2026-12-01T03:00:00Z"), "America/New_York"), "2026-11-30");
        const a = await aggregates(db, "t2");
        assert.deepEqual(a.daily, [{ day: "2026-11-30", credits: "100", messages: "1" }]);
        assert.equal((await aggregates(db, "t1")).daily.length, 2);
      });

      await t.step("a rolled-back page leaves no trace", async () => {
        const before = await aggregates(db, "t1");
        await assert.rejects(db.transaction(async (tx) => {
          await recordUsage(tx, { ...base, messages: [msg("5", "2026-12-03T00:00:00Z", 9, null)] });
          throw new Error("crash before commit");
        }));
        assert.deepEqual(await aggregates(db, "t1"), before);
      });
    } finally {
      await cleanup();
    }
  });
}
