/**
 * Schedules and the `system.cleanup` actor, against PGlite and PostgreSQL.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "@troupe/runtime";
import { cleanupActor } from "../../actors/system/cleanup.ts";
import { waitFor } from "../harness.ts";
import { contractSuite } from "./suite.ts";

contractSuite("system", {
  "a scheduled actor is registered with cron and enqueued once per minute": async (
    { runtime },
  ) => {
    const def = defineActor({
      name: "s1.tick",
      input: z.object({ source: z.string() }),
      schedule: "*/5 * * * *",
      scheduleInput: { source: "cron" },
      handler: (input) => input.source,
    });
    const plain = defineActor({ name: "s1.plain", input: z.object({}), handler: () => {} });
    const a = await runtime([def, plain], { start: false });
    const b = await runtime([def, plain], { start: false });
    const registered: [string, string][] = [];
    const names = a.registerSchedules((name, cron) => registered.push([name, cron]));
    assert.deepEqual(names, ["s1.tick"]);
    assert.deepEqual(registered, [["troupe_s1_tick", "*/5 * * * *"]]);

    // Two instances fire for the same minute: one job.
    const at = new Date("2026-01-01T10:05:12Z");
    const first = await a.fireSchedule("s1.tick", at);
    const second = await b.fireSchedule("s1.tick", new Date("2026-01-01T10:05:48Z"));
    assert.equal(first.created, true);
    assert.equal(second.created, false);
    assert.equal(second.job.id, first.job.id);
    const next = await a.fireSchedule("s1.tick", new Date("2026-01-01T10:10:00Z"));
    assert.notEqual(next.job.id, first.job.id);
    assert.deepEqual(first.job.input, { source: "cron" });
  },

  "cleanup deletes finished jobs, ledger rows, dead letters, audit entries past retention and expired report names":
    async (
      { db, runtime },
    ) => {
      const noop = defineActor({
        name: "s2.noop",
        input: z.object({ n: z.number() }),
        handler: () => {},
      });
      const cleanup = cleanupActor({ db, retentionDays: 7 });
      const rt = await runtime([noop, cleanup]);
      const ids: string[] = [];
      for (let n = 0; n < 6; n++) ids.push((await rt.enqueue("s2.noop", { n })).job.id);
      await waitFor(async () => {
        const rows = await db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM troupe_jobs WHERE actor = 's2.noop' AND status = 'succeeded'",
        );
        return rows[0]!.n === 6;
      });
      const old = ids.slice(0, 4);
      await db.query(
        `UPDATE troupe_jobs SET finished_at = now() - interval '8 days' WHERE id = ANY($1::text[])`,
        [old],
      );
      // Ledger rows of pushed messages (the table queue's pulled ones write none): four past
      // retention, one within it.
      await db.query(
        `INSERT INTO troupe_processed_messages (message_id, processed_at)
       SELECT id, now() - interval '8 days' FROM unnest($1::text[]) AS id
       UNION ALL SELECT 'pushed-new', now()`,
        [old],
      );
      await db.query(
        `INSERT INTO troupe_dead_letters (id, job_id, actor, key, input, error, attempts, created_at)
       VALUES ('dl-old', 'j-old', 's2.noop', 's2.noop', '{}', '{}', 1, now() - interval '8 days'),
              ('dl-new', 'j-new', 's2.noop', 's2.noop', '{}', '{}', 1, now())`,
      );
      await db.query(
        `INSERT INTO troupe_groups (id, parts, remaining, status, continuation, finished_at)
       VALUES ('g-old', '[]', 0, 'succeeded', '{}', now() - interval '8 days'),
              ('g-new', '[]', 0, 'succeeded', '{}', now()),
              ('g-open', '[]', 1, 'open', '{}', NULL)`,
      );
      await db.query(
        `INSERT INTO troupe_audit_log (id, action, created_at)
       VALUES ('a-old', 'job.cancel', now() - interval '91 days'),
              ('a-kept', 'job.cancel', now() - interval '89 days')`,
      );
      // Report names cached past their expiry go; those still fresh stay.
      await db.query(
        `INSERT INTO troupe_usage_reports (tenant_id, source_id, report_id, name, found, expires_at)
       VALUES ('t1', 's1', 'r-expired', 'Old', true, now() - interval '1 minute'),
              ('t1', 's1', 'r-missing', NULL, false, now() - interval '2 hours'),
              ('t1', 's1', 'r-fresh', 'New', true, now() + interval '1 hour')`,
      );
      const queued = await rt.enqueue("s2.noop", { n: 99 }, { delayMs: 3_600_000 });
      await db.query(
        "UPDATE troupe_jobs SET created_at = now() - interval '30 days' WHERE id = $1",
        [
          queued.job.id,
        ],
      );

      const { job } = await rt.enqueue("system.cleanup", {});
      const done = await waitFor(async () => {
        const j = await rt.getJob(job.id);
        return j.status === "succeeded" ? j : null;
      });
      const result = done.result as {
        jobs: number;
        ledger: number;
        deadLetters: number;
        groups: number;
        audit: number;
        reports: number;
      };
      assert.equal(result.audit, 1);
      assert.equal(result.reports, 2);
      const reports = await db.query<{ report_id: string }>(
        "SELECT report_id FROM troupe_usage_reports",
      );
      assert.deepEqual(reports.map((r) => r.report_id), ["r-fresh"]);
      const audit = await db.query<{ id: string }>("SELECT id FROM troupe_audit_log");
      assert.deepEqual(audit.map((r) => r.id), ["a-kept"]);
      assert.equal(result.jobs, 4);
      assert.equal(result.ledger, 4);
      const ledger = await db.query<{ message_id: string }>(
        "SELECT message_id FROM troupe_processed_messages",
      );
      assert.deepEqual(ledger.map((r) => r.message_id), ["pushed-new"]);
      assert.equal(result.deadLetters, 1);
      const left = await db.query<{ id: string }>(
        "SELECT id FROM troupe_jobs WHERE actor = 's2.noop' ORDER BY id",
      );
      assert.deepEqual(left.map((r) => r.id).sort(), [...ids.slice(4), queued.job.id].sort());
      const dls = await db.query<{ id: string }>("SELECT id FROM troupe_dead_letters");
      assert.deepEqual(dls.map((r) => r.id), ["dl-new"]);
      assert.equal(result.groups, 1);
      const groups = await db.query<{ id: string }>("SELECT id FROM troupe_groups ORDER BY id");
      assert.deepEqual(groups.map((r) => r.id), ["g-new", "g-open"]);
      assert.equal(cleanup.schedule?.cron, "17 3 * * *");
    },

  "an idempotency key makes an enqueue happen once": async ({ runtime }) => {
    const def = defineActor({
      name: "s3.once",
      input: z.object({ v: z.number() }),
      handler: () => {},
    });
    const rt = await runtime([def], { start: false });
    const a = await rt.enqueue("s3.once", { v: 1 }, { idempotencyKey: "order-42" });
    const b = await rt.enqueue("s3.once", { v: 1 }, { idempotencyKey: "order-42" });
    assert.equal(a.created, true);
    assert.equal(b.created, false);
    assert.equal(a.job.id, b.job.id);
    await assert.rejects(() => rt.enqueue("s3.once", { v: "x" }), /input of actor s3.once/);
  },

  "enqueueMany stores all messages in one transaction, or none": async ({ db, runtime }) => {
    const def = defineActor({
      name: "s4.many",
      input: z.object({ v: z.number() }),
      key: (i) => `s4:${i.v % 3}`,
      handler: (input) => input.v,
    });
    const rt = await runtime([def]);
    const count = async () =>
      (await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM troupe_jobs WHERE actor = 's4.many'",
      ))[0]!.n;
    await assert.rejects(() => rt.enqueueMany("s4.many", [{ v: 1 }, { v: "bad" }]), /invalid/);
    assert.equal(await count(), 0, "one invalid input rejects the whole batch");
    const ids = await rt.enqueueMany("s4.many", Array.from({ length: 50 }, (_, v) => ({ v })));
    assert.equal(ids.length, 50);
    await waitFor(async () => {
      const rows = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM troupe_jobs WHERE actor = 's4.many' AND status = 'succeeded'",
      );
      return rows[0]!.n === 50;
    });
    assert.equal((await rt.getJob(ids[7]!)).result, 7);
  },
  "getJob: many concurrent reads are answered each with its own job, unknown ids 404": async (
    { runtime },
  ) => {
    const def = defineActor({
      name: "s5.read",
      input: z.object({ v: z.number() }),
      key: (i) => `s5:${i.v}`,
      handler: () => {},
    });
    const rt = await runtime([def], { start: false });
    const ids = await rt.enqueueMany("s5.read", Array.from({ length: 120 }, (_, v) => ({ v })));
    const unknown = "01a20cf1-0000-7000-8000-00000000abcd";
    const reads = await Promise.allSettled(
      [...ids, unknown, ...ids.slice(0, 10)].map((id) => rt.getJob(id)),
    );
    for (const [i, id] of ids.entries()) {
      const read = reads[i]!;
      assert.equal(read.status, "fulfilled");
      assert.equal(read.value.id, id);
      assert.deepEqual(read.value.input, { v: i });
    }
    const missing = reads[ids.length]!;
    assert.equal(missing.status, "rejected");
    assert.match(String(missing.reason), /not found/i);
    assert.equal(reads.filter((r) => r.status === "fulfilled").length, ids.length + 10);
  },
  "enqueue with an effect: the message and the effect commit together or not at all": async (
    { db, runtime },
  ) => {
    const def = defineActor({
      name: "s6.fx",
      input: z.object({ v: z.number() }),
      handler: () => {},
    });
    const rt = await runtime([def], { start: false });
    await db.query("CREATE TABLE IF NOT EXISTS s6_things (id text PRIMARY KEY, job_id text)");
    await assert.rejects(
      () =>
        rt.enqueue("s6.fx", { v: 1 }, {
          effect: async (tx) => {
            await tx.query("INSERT INTO s6_things VALUES ('a', 'x')");
            throw new Error("the effect failed");
          },
        }),
      /the effect failed/,
    );
    const jobs = await db.query("SELECT 1 FROM troupe_jobs WHERE actor = 's6.fx'");
    assert.equal(jobs.length, 0, "no message without its effect");
    assert.equal((await db.query("SELECT 1 FROM s6_things")).length, 0);
    const { job } = await rt.enqueue("s6.fx", { v: 2 }, {
      effect: async (tx, jobId) => {
        await tx.query("INSERT INTO s6_things VALUES ('b', $1)", [jobId]);
      },
    });
    const things = await db.query<{ job_id: string }>("SELECT job_id FROM s6_things");
    assert.deepEqual(things.map((t) => t.job_id), [job.id]);
  },
});
