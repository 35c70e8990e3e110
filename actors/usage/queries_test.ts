/**
 * The forecast's arithmetic against a recount of the messages written, and the live feed's
 * wake-ups and bounds, on PGlite and PostgreSQL.
 */
import assert from "node:assert/strict";
import { targets, waitFor, within } from "../../tests/harness.ts";
import { forecast, TRAILING_DAYS } from "./forecast.ts";
import { centsNumber } from "./money.ts";
import { averageCents } from "./aggregates.ts";
import { addDays } from "./queries.ts";
import { recordUsage, type UsageMessage } from "./store.ts";
import { UsageFeed } from "./stream.ts";

Deno.test("averages round half away from zero, to the cent", () => {
  assert.equal(averageCents(10n, 4n), 3n); // 2.5 → 3
  assert.equal(averageCents(10n, 3n), 3n); // 3.33 → 3
  assert.equal(averageCents(-10n, 4n), -3n);
  assert.equal(averageCents(5n, 0n), 0n);
  assert.equal(addDays("2026-02-28", 1), "2026-03-01");
  assert.equal(addDays("2026-03-01", -1), "2026-02-28");
});

for (const target of targets.filter((t) => t.name !== "neon")) {
  Deno.test(`forecast from the daily figures (${target.name})`, async () => {
    const { db, cleanup } = await target.open();
    try {
      await db.query(`INSERT INTO troupe_tenants (id, name) VALUES ('t1', 't1')`);
      // One message a day from Nov 20 to Dec 10, credits growing by day.
      const msgs: UsageMessage[] = [];
      for (let d = 0; d < 21; d++) {
        msgs.push({
          id: `m${d}`,
          timestamp: new Date(Date.UTC(2026, 10, 20 + d, 12)),
          creditsCents: BigInt(100 + d * 7),
          reportId: null,
        });
      }
      await db.transaction((tx) =>
        recordUsage(tx, {
          tenantId: "t1",
          sourceId: "s",
          timeZone: "UTC",
          messages: msgs,
          reportNames: new Map(),
        })
      );
      const on = (day: string) =>
        msgs.filter((m) => m.timestamp.toISOString().slice(0, 10) === day)
          .reduce((s, m) => s + m.creditsCents, 0n);
      const between = (from: string, to: string) => {
        let s = 0n;
        for (let d = from; d <= to; d = addDays(d, 1)) s += on(d);
        return s;
      };
      const today = "2026-12-10";
      const f = await forecast(db, "t1", { month: "2026-12", today, timeZone: "UTC" });
      const trailing = between(addDays(today, -TRAILING_DAYS), addDays(today, -1));
      const mean = (trailing * 2n + BigInt(TRAILING_DAYS)) / BigInt(2 * TRAILING_DAYS);
      const complete = between("2026-12-01", "2026-12-09");
      const todays = on(today);
      assert.equal(f.status, "current");
      assert.equal(f.daysComplete, 9);
      assert.equal(f.daysRemaining, 21);
      assert.equal(f.completeCredits, centsNumber(complete));
      assert.equal(f.todayCredits, centsNumber(todays));
      assert.equal(f.toDateCredits, centsNumber(complete + todays));
      assert.equal(f.toDateMessages, 10);
      assert.equal(f.trailing.credits, centsNumber(trailing));
      assert.equal(f.trailing.meanCredits, centsNumber(mean));
      assert.equal(
        f.projectedCredits,
        centsNumber(complete + (todays > mean ? todays : mean) + mean * 21n),
      );
      const past = await forecast(db, "t1", { month: "2026-11", today, timeZone: "UTC" });
      assert.equal(past.status, "past");
      assert.equal(past.projectedCredits, centsNumber(between("2026-11-01", "2026-11-30")));
      const next = await forecast(db, "t1", { month: "2027-02", today, timeZone: "UTC" });
      assert.equal(next.status, "future");
      assert.equal(next.daysInMonth, 28);
      assert.equal(next.projectedCredits, centsNumber(mean * 28n));
    } finally {
      await cleanup();
    }
  });

  Deno.test(`the usage feed wakes on a commit and bounds its streams (${target.name})`, async () => {
    const { db, cleanup } = await target.open();
    const feed = new UsageFeed(db, { pollMs: 600_000, maxStreams: 2, maxPerTenant: 1 });
    try {
      const a = await feed.subscribe("t1");
      await assert.rejects(
        feed.subscribe("t1"),
        (e: Error & { code?: string }) => e.code === "TOO_MANY_STREAMS",
      );
      const b = await feed.subscribe("t2");
      await assert.rejects(
        feed.subscribe("t3"),
        (e: Error & { code?: string }) => e.code === "TOO_MANY_STREAMS",
      );
      assert.equal(await feed.latest("t1"), "0");
      // Only a notification can wake it before the 10-minute poll.
      const woken = a.changed();
      await db.transaction((tx) =>
        recordUsage(tx, {
          tenantId: "t1",
          sourceId: "s",
          timeZone: "UTC",
          messages: [{ id: "1", timestamp: new Date(), creditsCents: 5n, reportId: null }],
          reportNames: new Map(),
        })
      );
      await within(woken, 10_000, "the wake-up of t1's stream");
      const events = await feed.after("t1", "0");
      assert.equal(events.length, 1);
      assert.equal(events[0]!.creditsUsed, 0.05);
      assert.deepEqual(await feed.after("t2", "0"), []);
      a.close();
      a.close();
      const again = await feed.subscribe("t1");
      again.close();
      b.close();
      assert.equal(feed.open, 0);
    } finally {
      await feed.close();
      await cleanup();
    }
  });
}

Deno.test("a tenant's pages take their seqs in commit order (postgres)", {
  ignore: !targets.some((t) => t.name === "postgres"),
}, async () => {
  const { db, cleanup } = await targets.find((t) => t.name === "postgres")!.open();
  const page = (sourceId: string, id: string) => ({
    tenantId: "t1",
    sourceId,
    timeZone: "UTC",
    messages: [{ id, timestamp: new Date(), creditsCents: 1n, reportId: null }],
    reportNames: new Map<string, string | null>(),
  });
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  const running: Promise<unknown>[] = [];
  try {
    let firstSeq = 0n;
    const first = db.transaction(async (tx) => {
      firstSeq = (await recordUsage(tx, page("a", "1"))).lastSeq!;
      await held;
    });
    running.push(first);
    await waitFor(() => firstSeq > 0n, { timeoutMs: 10_000, what: "the first page written" });
    let secondSeq = 0n;
    const second = db.transaction(async (tx) => {
      secondSeq = (await recordUsage(tx, page("b", "2"))).lastSeq!;
    });
    running.push(second);
    // The second page waits for the first one's commit before it takes a seq.
    await waitFor(async () => {
      const rows = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
      );
      return rows[0]!.n === 1;
    }, { timeoutMs: 10_000, what: "the second page waiting" });
    assert.equal(secondSeq, 0n);
    release();
    await first;
    await second;
    assert.ok(secondSeq > firstSeq);
  } finally {
    release();
    await Promise.allSettled(running);
    await cleanup();
  }
});
