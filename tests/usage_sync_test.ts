/**
 * Report syncs against the usage API stand-in, on PGlite and PostgreSQL: every message kept
 * once, aggregates exact to the cent, through duplicates across pages, shared and missing
 * reports, 429s, 5xx, timeouts, a wrong token, changed messages, a crash mid-sync, and the next
 * sync continuing from the last cursor.
 */
import assert from "node:assert/strict";
import { toCents } from "../actors/usage/money.ts";
import type { RateLimiter } from "../db/ratelimit/port.ts";
import { generateReports, generateUsage, type UsageMessage } from "./fixtures/usage_api.ts";
import { postgresTarget, targets, waitFor } from "./harness.ts";
import { openUsageWorld, type UsageWorld } from "./usage_world.ts";

const drivers = targets.filter((t) => t.name !== "neon");

/** The figures a full recount of `messages` (last copy of each id wins) gives. */
function expected(messages: UsageMessage[]) {
  const byId = new Map(messages.map((m) => [String(m.id), m]));
  const days = new Map<string, { cents: bigint; n: number }>();
  for (const m of byId.values()) {
    const day = m.timestamp.slice(0, 10);
    const d = days.get(day) ?? { cents: 0n, n: 0 };
    d.cents += toCents(m.credits_used);
    d.n++;
    days.set(day, d);
  }
  return { count: byId.size, days };
}

/** Asserts the tenant's snapshots and daily aggregates equal a recount of `messages`. */
async function assertExact(w: UsageWorld, messages: UsageMessage[]) {
  const want = expected(messages);
  const [snap] = await w.tdb.db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM troupe_usage_snapshots WHERE tenant_id = $1",
    [w.tenantId],
  );
  assert.equal(snap!.n, want.count, "every message once");
  const rows = await w.tdb.db.query<{ day: string; cents: string; n: string }>(
    `SELECT day::text AS day, sum(credits_cents)::text AS cents, sum(messages)::text AS n
       FROM troupe_usage_daily WHERE tenant_id = $1 GROUP BY day ORDER BY day`,
    [w.tenantId],
  );
  const got = new Map(rows.map((r) => [r.day, { cents: BigInt(r.cents), n: Number(r.n) }]));
  for (const [day, d] of want.days) {
    assert.deepEqual(got.get(day), d, `aggregates of ${day}`);
  }
  assert.equal(got.size, want.days.size);
}

for (const target of drivers) {
  const name = (what: string) => `usage sync [${target.name}]: ${what}`;

  Deno.test({
    name: name("duplicates across pages, shared and missing reports: once each, exact"),
  }, async () => {
    const messages = generateUsage({ count: 450, reports: 30, nullReportShare: 0.1 });
    const reports = generateReports(30);
    for (const id of ["7", "8"]) reports.delete(id);
    const w = await openUsageWorld(target, { messages, reports, overlap: 5 });
    try {
      const id = await w.addSource({ pageSize: 50, concurrency: 4 });
      const sync = await w.sync(id);
      assert.equal(sync.status, "succeeded", JSON.stringify(sync));
      await assertExact(w, messages);
      assert.ok(sync.pages >= 10, `pages: ${sync.pages}`);
      assert.equal(sync.messages.new, 450);
      assert.ok(sync.messages.seen > 0, "the repeated messages were seen again");
      assert.equal(sync.reports.fetched, 30, "each report fetched once");
      assert.ok(sync.reports.missing >= 2);
      assert.equal(w.api.calls.reports, 30);
      assert.equal(sync.calls, w.api.calls.usage + w.api.calls.reports);
      const job = await w.call("GET", `/api/v1/jobs/${sync.jobId}`);
      assert.equal(job.body.status, "succeeded");
      assert.deepEqual(job.body.pipeline, { done: sync.pages, total: null, unit: "pages" });
      assert.ok(sync.calls <= sync.pages + 30, `calls ${sync.calls}`);
      const named = await w.tdb.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM troupe_usage_snapshots
          WHERE tenant_id = $1 AND report_id = '7' AND report_name IS NOT NULL`,
        [w.tenantId],
      );
      assert.equal(named[0]!.n, 0, "a 404 report leaves its messages without a name");

      // The next sync re-reads only the last page, and picks up what arrived since.
      const more = generateUsage({
        count: 20,
        reports: 30,
        firstId: 10_000,
        start: new Date("2026-12-01T00:00:00Z"),
      });
      w.api.append(more);
      const before = w.api.calls.usage;
      const next = await w.sync(id);
      assert.equal(next.status, "succeeded");
      assert.equal(next.messages.new, 20);
      assert.ok(w.api.calls.usage - before <= 2, "continued from the last cursor");
      assert.equal(next.reports.fetched, 0, "reports came from the table");
      await assertExact(w, [...messages, ...more]);
    } finally {
      await w.close();
    }
  });

  Deno.test(
    { name: name("429 with Retry-After, 5xx and a timeout: retried, exact") },
    async () => {
      const messages = generateUsage({ count: 300, reports: 10 });
      const w = await openUsageWorld(target, { messages, reports: generateReports(10) });
      try {
        const id = await w.addSource({ pageSize: 50 });
        w.api.fail(
          { on: "usage", status: 429, retryAfterSeconds: 1 },
          { on: "usage", status: 503 },
          { on: "reports", status: 500 },
          { on: "usage", status: "timeout" },
          { on: "usage", status: 502 },
        );
        const began = Date.now();
        const sync = await w.sync(id);
        assert.equal(sync.status, "succeeded", JSON.stringify(sync));
        await assertExact(w, messages);
        assert.equal(sync.rateLimited, 1);
        assert.equal(sync.errors, 4);
        assert.ok(Date.now() - began >= 1000, "the 429's Retry-After was waited");
        const jobs = await w.tdb.db.query<{ attempts: number }>(
          `SELECT attempts FROM troupe_jobs WHERE pipeline_id = $1 AND actor = 'usage.sync_page'
          ORDER BY attempts DESC`,
          [sync.id],
        );
        assert.ok(jobs.every((j) => j.attempts <= 5), "a 429 consumed no attempt");
      } finally {
        await w.close();
      }
    },
  );

  Deno.test({
    name: name("a sync whose job ended unrecorded does not block the source"),
  }, async () => {
    const w = await openUsageWorld(target, { messages: generateUsage({ count: 30 }) });
    try {
      const id = await w.addSource();
      const first = await w.sync(id);
      // As if the job ended and its end never reached the sync (a purged or lost job).
      await w.tdb.db.query(
        "UPDATE troupe_usage_syncs SET status = 'running', finished_at = NULL WHERE id = $1",
        [first.id],
      );
      await w.tdb.db.query("UPDATE troupe_usage_sources SET current_sync_id = $2 WHERE id = $1", [
        id,
        first.id,
      ]);
      const next = await w.sync(id);
      assert.notEqual(next.id, first.id);
      assert.equal(next.status, "succeeded");
      const { body } = await w.call("GET", `/api/v1/sources/${id}/syncs`);
      const old = body.items.find((s: { id: string }) => s.id === first.id);
      assert.equal(old.status, "failed");
      assert.equal(old.error.code, "SYNC_ABANDONED");
    } finally {
      await w.close();
    }
  });

  Deno.test({ name: name("days follow the tenant's time zone") }, async () => {
    const messages = [
      { id: 1, timestamp: "2026-11-02T03:30:00Z", credits_used: 1.25, report_id: null },
      { id: 2, timestamp: "2026-11-02T06:00:00Z", credits_used: 2.5, report_id: null },
    ];
    const w = await openUsageWorld(target, { messages });
    try {
      await w.tdb.db.query("UPDATE troupe_tenants SET time_zone = $2 WHERE id = $1", [
        w.tenantId,
        "America/New_York",
      ]);
      const id = await w.addSource();
      assert.equal((await w.sync(id)).status, "succeeded");
      const rows = await w.tdb.db.query<{ day: string; cents: string }>(
        `SELECT day::text AS day, credits_cents::text AS cents FROM troupe_usage_daily
          WHERE tenant_id = $1 ORDER BY day`,
        [w.tenantId],
      );
      assert.deepEqual(rows.map((r) => [r.day, r.cents]), [
        ["2026-11-01", "125"],
        ["2026-11-02", "250"],
      ]);
    } finally {
      await w.close();
    }
  });

  Deno.test({
    name: name("the source's requests-per-minute holds calls back, no attempt used"),
  }, async () => {
    // A limiter that refuses every fourth call for 300 ms: the page waits, it does not fail.
    let counted = 0;
    const refusals: number[] = [];
    const limiter: RateLimiter = {
      kind: "memory",
      limit(rule) {
        assert.equal(rule.limit, 7);
        counted++;
        const allowed = counted % 4 !== 0;
        if (!allowed) refusals.push(Date.now());
        return Promise.resolve({
          allowed,
          limit: rule.limit,
          remaining: allowed ? 1 : 0,
          resetAt: Date.now() + 300,
        });
      },
    };
    const messages = generateUsage({ count: 100, reports: 3 });
    const w = await openUsageWorld(target, { messages, reports: generateReports(3) }, {
      deps: { limiter, retries: 0 },
    });
    try {
      const id = await w.addSource({ pageSize: 20, requestsPerMinute: 7, concurrency: 1 });
      const sync = await w.sync(id);
      assert.equal(sync.status, "succeeded", JSON.stringify(sync));
      assert.ok(refusals.length >= 2, `refusals: ${refusals.length}`);
      assert.equal(sync.errors, 0);
      assert.equal(w.api.calls.usage + w.api.calls.reports, counted - refusals.length);
      await assertExact(w, messages);
    } finally {
      await w.close();
    }
  });

  Deno.test({
    name: name("5xx past the last retry fails the sync; the next one resumes at its cursor"),
  }, async () => {
    const messages = generateUsage({ count: 100, reports: 3 });
    const w = await openUsageWorld(target, { messages, reports: generateReports(3) }, {
      deps: { retries: 2 },
    });
    try {
      const id = await w.addSource({ pageSize: 25 });
      const started = await w.call("POST", `/api/v1/sources/${id}/sync`);
      await waitFor(async () => {
        const [s] = await w.tdb.db.query<{ pages: number }>(
          "SELECT pages FROM troupe_usage_syncs WHERE id = $1",
          [started.body.jobId],
        );
        return s!.pages >= 1;
      }, { what: "a page committed" });
      w.api.fail({ on: "usage", status: 503, times: 3 });
      const failed = await w.settled(id, started.body.jobId);
      assert.equal(failed.status, "failed", JSON.stringify(failed));
      assert.equal(failed.error.code, "UPSTREAM_UNAVAILABLE");
      assert.ok(failed.errors >= 3);
      const job = await w.call("GET", `/api/v1/jobs/${started.body.jobId}`);
      assert.equal(job.body.status, "failed");
      const usageCalls = w.api.calls.usage;
      const next = await w.sync(id);
      assert.equal(next.status, "succeeded");
      assert.equal(next.messages.new + failed.messages.new, 100);
      assert.ok(w.api.calls.usage - usageCalls <= 4, "resumed, not from the beginning");
      await assertExact(w, messages);
    } finally {
      await w.close();
    }
  });

  Deno.test(
    { name: name("a wrong token fails the sync at once, with no retry storm") },
    async () => {
      const w = await openUsageWorld(target, { messages: generateUsage({ count: 50 }) });
      try {
        const id = await w.addSource({ token: "wrong" });
        const sync = await w.sync(id);
        assert.equal(sync.status, "failed");
        assert.equal(sync.error.code, "UPSTREAM_UNAUTHORIZED");
        assert.equal(w.api.calls.unauthorized, 1, "one call, not retried");
        const test = await w.call("POST", `/api/v1/sources/${id}/test`);
        assert.equal(test.body.ok, false);
        assert.equal(test.body.error.code, "UPSTREAM_UNAUTHORIZED");
        // The source takes a sync again once fixed.
        const fixed = await w.call("PATCH", `/api/v1/sources/${id}`, { token: "usage-test-token" });
        assert.equal(fixed.status, 200);
        assert.equal((await w.sync(id)).status, "succeeded");
      } finally {
        await w.close();
      }
    },
  );

  Deno.test({
    name: name("a changed message updates its snapshot and the aggregates exactly"),
  }, async () => {
    const messages = generateUsage({ count: 120, reports: 5 });
    const w = await openUsageWorld(target, { messages, reports: generateReports(5) });
    try {
      const id = await w.addSource({ pageSize: 200 });
      assert.equal((await w.sync(id)).messages.new, 120);
      const last = messages.at(-1)!;
      w.api.update(last.id, { credits_used: 12.34, report_id: 2 });
      last.credits_used = 12.34;
      last.report_id = 2;
      const again = await w.sync(id);
      assert.equal(again.messages.changed, 1);
      assert.equal(again.messages.new, 0);
      await assertExact(w, messages);
    } finally {
      await w.close();
    }
  });

  Deno.test(
    { name: name("a runtime stopped mid-sync resumes at the committed cursor") },
    async () => {
      const messages = generateUsage({ count: 400, reports: 10 });
      const w = await openUsageWorld(target, { messages, reports: generateReports(10) });
      try {
        const id = await w.addSource({ pageSize: 40 });
        // The stand-in answers slowly so the runtime stops mid-sync, as a killed process would.
        w.api.setLatency(30);
        const started = await w.call("POST", `/api/v1/sources/${id}/sync`);
        const syncId = started.body.jobId;
        await waitFor(async () => {
          const [s] = await w.tdb.db.query<{ pages: number }>(
            "SELECT pages FROM troupe_usage_syncs WHERE id = $1",
            [syncId],
          );
          return s!.pages >= 3;
        }, { what: "three pages committed" });
        const again = await w.call("POST", `/api/v1/sources/${id}/sync`);
        assert.equal(again.body.jobId, syncId, "asked again while it runs: the running one");
        assert.equal(again.body.created, false);
        await w.runtime.stop();
        const [mid] = await w.tdb.db.query<{ cursor: string | null; pages: number }>(
          "SELECT cursor, pages FROM troupe_usage_syncs WHERE id = $1",
          [syncId],
        );
        assert.ok(mid!.cursor, "the cursor was committed with the pages");
        const usageCalls = w.api.calls.usage;
        w.api.setLatency(0);
        await w.runtime.start();
        const done = await w.settled(id, syncId);
        assert.equal(done.status, "succeeded");
        assert.equal(done.messages.new, 400, "no message counted twice");
        assert.ok(
          w.api.calls.usage - usageCalls <= 10 - mid!.pages + 2,
          "resumed where it stopped, not from the beginning",
        );
        await assertExact(w, messages);
      } finally {
        await w.close();
      }
    },
  );
}

Deno.test(
  { name: "usage sync [qstash]: a page answered 429 past QStash's retries still syncs" },
  async () => {
    const messages = generateUsage({ count: 80, reports: 4 });
    const w = await openUsageWorld(postgresTarget, {
      messages,
      reports: generateReports(4),
      overlap: 3,
    }, { transport: "qstash" });
    try {
      const id = await w.addSource({ pageSize: 40 });
      // 12 in a row: more than the page's retries plus the transport's slack (6 + 3).
      w.api.fail({ on: "usage", status: 429, retryAfterSeconds: 0, times: 12 });
      const sync = await w.sync(id);
      assert.equal(sync.status, "succeeded", JSON.stringify(sync));
      assert.equal(sync.rateLimited, 12);
      await assertExact(w, messages);
    } finally {
      await w.close();
    }
  },
);

Deno.test(
  { name: "usage sync [qstash]: faults through QStash deliveries, exact" },
  async () => {
    const messages = generateUsage({ count: 200, reports: 8 });
    const w = await openUsageWorld(postgresTarget, {
      messages,
      reports: generateReports(8),
      overlap: 3,
    }, { transport: "qstash" });
    try {
      const id = await w.addSource({ pageSize: 40 });
      w.api.fail(
        { on: "usage", status: 429, retryAfterSeconds: 1 },
        { on: "reports", status: 503 },
        { on: "usage", status: 500 },
      );
      const sync = await w.sync(id);
      assert.equal(sync.status, "succeeded", JSON.stringify(sync));
      assert.equal(sync.rateLimited, 1);
      assert.equal(sync.errors, 2);
      await assertExact(w, messages);
    } finally {
      await w.close();
    }
  },
);
