/**
 * Rows declared with `ctx.insert()`, against PGlite, PostgreSQL and Neon: written with their
 * message's commit, exactly once, the rows of a commit in one statement a table and set of
 * columns, each value converted to its column's type; a refused row fails its own message only.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor, type Logger, type SqlExecutor } from "@troupe/runtime";
import { completeJobs, type Completion } from "../../actors/runtime/sql/complete_jobs.ts";
import { declareRow } from "../../actors/runtime/sql/insert_rows.ts";
import { tables } from "../../actors/runtime/sql/tables.ts";
import { settle } from "../harness.ts";
import { contractSuite } from "./suite.ts";

/** `tx`, recording the first three words of each statement it runs in `seen`. */
function recording(tx: SqlExecutor, seen: string[]): SqlExecutor {
  return {
    ...tx,
    query: (text, params) => {
      seen.push(text.trim().split(/\s+/).slice(0, 3).join(" "));
      return tx.query(text, params);
    },
  };
}

contractSuite("insert", {
  "rows declared with insert() commit with their messages, typed by their columns": async (
    { db, runtime },
  ) => {
    await db.query(`CREATE TABLE ins_typed (
      id int PRIMARY KEY, label text NOT NULL, at timestamptz, big bigint, doc jsonb,
      tags text[], raw bytea, flag boolean, note text DEFAULT 'kept')`);
    const when = new Date("2026-12-06T10:00:00.123Z");
    const writer = defineActor({
      name: "ins1.write",
      input: z.object({ id: z.number().int() }),
      key: (i) => `ins1:${i.id}`,
      handler: (i, ctx) => {
        ctx.insert("ins_typed", {
          id: i.id,
          label: `row ${i.id}`,
          at: when,
          big: 9_007_199_254_740_993n,
          doc: { nested: [1, "two"] },
          tags: ["a", "b"],
          raw: new Uint8Array([0, 255, 16]),
          flag: true,
          note: undefined,
        });
      },
    });
    const rt = await runtime([writer]);
    const { job } = await rt.enqueue("ins1.write", { id: 7 });
    assert.equal((await settle(rt, job.id)).status, "succeeded");
    const [row] = await db.query<Record<string, unknown>>(
      `SELECT id, label, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS') AS at,
         big::text AS big, doc, tags, encode(raw, 'hex') AS raw, flag, note FROM ins_typed`,
    );
    assert.deepEqual(row, {
      id: 7,
      label: "row 7",
      at: "2026-12-06T10:00:00.123",
      big: "9007199254740993",
      doc: { nested: [1, "two"] },
      tags: ["a", "b"],
      raw: "00ff10",
      flag: true,
      note: "kept",
    });
  },

  "the rows of a commit go in one statement a table and set of columns": async ({ db }) => {
    await db.query(
      "CREATE TABLE ins_batch (i int PRIMARY KEY, k text NOT NULL, v int NOT NULL DEFAULT 5)",
    );
    await db.query("CREATE TABLE ins_other (i int NOT NULL)");
    const seen: string[] = [];
    // Four messages' rows: three with the same columns, one leaving `v` to its default, and a
    // row of another table.
    const rows = (i: number) =>
      i === 3
        ? [declareRow("ins_batch", { i, k: `k${i}` }), declareRow("ins_other", { i })]
        : [declareRow("ins_batch", { i, k: `k${i}`, v: i * 10 })];
    const completions: Completion[] = [0, 1, 2, 3].map((i) => ({
      id: `ins2-${i}`,
      key: `ins2:${i}`,
      fence: 1,
      outcome: "succeeded",
      sends: [],
      effects: [],
      rows: rows(i),
      release: true,
    }));
    // Completions of jobs that do not exist are fenced and write nothing: claim real ones.
    await db.query(
      `INSERT INTO troupe_jobs (id, actor, key, input, status, lease_fence, lease_owner, attempts,
         max_attempts)
       SELECT 'ins2-' || i, 'ins2.a', 'ins2:' || i, '{}', 'running', 1, 'w-ins', 1, 1
       FROM generate_series(0, 3) AS i`,
    );
    await db.query(
      `INSERT INTO troupe_actor_state (key, fence, lease_owner, lease_until)
       SELECT 'ins2:' || i, 1, 'w-ins', now() + interval '1 minute' FROM generate_series(0, 3) AS i`,
    );
    const { results } = await db.transaction((tx) =>
      completeJobs(recording(tx, seen), tables(), "w-ins", completions, {
        writes: { outbox: false, notify: false },
        hook: () => null,
        allValid: "off",
      })
    );
    assert.deepEqual(results, ["committed", "committed", "committed", "committed"]);
    const inserts = seen.filter((s) => s.startsWith('INSERT INTO "ins_'));
    assert.deepEqual(inserts, [
      'INSERT INTO "ins_batch"',
      'INSERT INTO "ins_batch"',
      'INSERT INTO "ins_other"',
    ]);
    const batch = await db.query<{ i: number; k: string; v: number }>(
      "SELECT i, k, v FROM ins_batch ORDER BY i",
    );
    assert.deepEqual(batch, [
      { i: 0, k: "k0", v: 0 },
      { i: 1, k: "k1", v: 10 },
      { i: 2, k: "k2", v: 20 },
      { i: 3, k: "k3", v: 5 },
    ]);
    assert.deepEqual(await db.query("SELECT i FROM ins_other"), [{ i: 3 }]);
  },

  "a row the database refuses fails its own message; the others of the commit are written": async (
    { db, runtime },
  ) => {
    await db.query("CREATE TABLE ins_unique (id int PRIMARY KEY, by_job text NOT NULL)");
    await db.query("INSERT INTO ins_unique VALUES (2, 'before')");
    const writer = defineActor({
      name: "ins3.write",
      input: z.object({ id: z.number().int() }),
      key: (i) => `ins3:${i.id}`,
      retries: 0,
      handler: (i, ctx) => ctx.insert("ins_unique", { id: i.id, by_job: ctx.jobId }),
    });
    const warnings: string[] = [];
    const logger: Logger = {
      debug: () => {},
      info: () => {},
      warn: (msg) => warnings.push(msg),
      error: () => {},
      child: () => logger,
    };
    const rt = await runtime([writer], { start: false, logger });
    const jobs = await Promise.all([1, 2, 3].map((id) => rt.enqueue("ins3.write", { id })));
    await rt.start();
    const done = await Promise.all(jobs.map((j) => settle(rt, j.job.id)));
    assert.deepEqual(done.map((j) => j.status), ["succeeded", "failed", "succeeded"]);
    // The three were committed together; the refused row sank that commit, then each was
    // committed alone.
    assert.ok(warnings.includes("group commit failed; committing its messages one by one"));
    assert.match((done[1]!.error as { message: string }).message, /duplicate key|unique/i);
    const rows = await db.query<{ id: number; by_job: string }>(
      "SELECT id, by_job FROM ins_unique ORDER BY id",
    );
    assert.deepEqual(rows, [
      { id: 1, by_job: jobs[0]!.job.id },
      { id: 2, by_job: "before" },
      { id: 3, by_job: jobs[2]!.job.id },
    ]);
  },

  "onConflict ignore skips a row whose key exists; a redelivery writes its rows once": async (
    { db, runtime },
  ) => {
    await db.query("CREATE TABLE ins_once (id int PRIMARY KEY, n int NOT NULL)");
    await db.query("CREATE TABLE ins_log (job_id text NOT NULL)");
    await db.query("INSERT INTO ins_once VALUES (1, 100)");
    let runs = 0;
    const writer = defineActor({
      name: "ins4.write",
      input: z.object({ id: z.number().int() }),
      key: (i) => `ins4:${i.id}`,
      handler: (i, ctx) => {
        runs++;
        ctx.insert("ins_once", { id: i.id, n: runs }, { onConflict: "ignore" });
        ctx.insert("public.ins_log", { job_id: ctx.jobId });
      },
    });
    const rt = await runtime([writer], { start: false });
    const { job } = await rt.enqueue("ins4.write", { id: 1 });
    assert.deepEqual(await rt.deliver(job.id), { status: "succeeded" });
    // A transport that lost its ack redelivers the message as if it never finished.
    await db.query(
      "UPDATE troupe_jobs SET status = 'queued', finished_at = NULL WHERE id = $1",
      [job.id],
    );
    assert.deepEqual(await rt.deliver(job.id), { status: "duplicate" });
    assert.equal(runs, 2);
    assert.deepEqual(await db.query("SELECT id, n FROM ins_once"), [{ id: 1, n: 100 }]);
    assert.deepEqual(await db.query("SELECT job_id FROM ins_log"), [{ job_id: job.id }]);
  },

  "a bad name or value throws in the handler, before anything is written": async (
    { db, runtime },
  ) => {
    await db.query("CREATE TABLE ins_bad (id int)");
    const tries: [string, Record<string, unknown>][] = [
      ['ins_bad"; DROP TABLE ins_bad; --', { id: 1 }],
      ["a.b.c", { id: 1 }],
      ["ins_bad", { 'id" int); --': 1 }],
      ["ins_bad", {}],
      ["ins_bad", { id: () => 1 }],
      ["ins_bad", { id: Number.NaN }],
    ];
    const writer = defineActor({
      name: "ins5.write",
      input: z.object({ n: z.number().int() }),
      key: (i) => `ins5:${i.n}`,
      retries: 0,
      handler: (i, ctx) => ctx.insert(...tries[i.n]!),
    });
    const rt = await runtime([writer]);
    for (let n = 0; n < tries.length; n++) {
      const { job } = await rt.enqueue("ins5.write", { n });
      const done = await settle(rt, job.id);
      assert.equal(done.status, "failed", `try ${n}`);
      assert.match((done.error as { message: string }).message, /^insert\(\): /, `try ${n}`);
    }
    assert.deepEqual(await db.query("SELECT count(*)::int AS n FROM ins_bad"), [{ n: 0 }]);
  },
});
