/**
 * The runtime's delivery guarantees, against PGlite and real PostgreSQL:
 * effectively-once under duplicate and concurrent delivery, one handler at a time per key,
 * the transactional outbox, fencing of a lost lease; background work paused, then held to one
 * message, while a foreground request (an upload) is open.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor, InProcessTransport, type SqlExecutor } from "@troupe/runtime";
import { settle, sleep, waitFor } from "../harness.ts";
import { contractSuite, deliverAtOnce } from "./suite.ts";

async function effectsTable(db: SqlExecutor) {
  await db.query(`CREATE TABLE IF NOT EXISTS test_effects (
    job_id text NOT NULL, key text NOT NULL, value int NOT NULL DEFAULT 1)`);
}

async function effectCount(db: SqlExecutor, where: string, params: unknown[]) {
  const rows = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM test_effects WHERE ${where}`,
    params,
  );
  return rows[0]!.n;
}

/** A read-modify-write counter whose every commit also writes one effect row. */
function counter(name: string, opts: { delayMs?: number; onRun?: (key: string) => void } = {}) {
  return defineActor({
    name,
    input: z.object({ key: z.string(), by: z.number().int().default(1) }),
    key: (i) => `${name}:${i.key}`,
    initialState: () => ({ count: 0 }),
    handler: async (input, ctx) => {
      opts.onRun?.(ctx.key);
      const before = ctx.state.count;
      if (opts.delayMs) await sleep(opts.delayMs);
      ctx.setState({ count: before + input.by });
      ctx.effect(async (tx) => {
        await tx.query("INSERT INTO test_effects (job_id, key) VALUES ($1, $2)", [
          ctx.jobId,
          ctx.key,
        ]);
      });
      return { count: before + input.by };
    },
  });
}

async function stateOf(db: SqlExecutor, key: string): Promise<unknown> {
  const rows = await db.query<{ state: unknown }>(
    "SELECT state FROM troupe_actor_state WHERE key = $1",
    [key],
  );
  return rows[0]?.state;
}

contractSuite("delivery", {
  "a message runs once and commits its state, result and effects": async ({ db, runtime }) => {
    await effectsTable(db);
    const rt = await runtime([counter("c1.add")]);
    const { job, created } = await rt.enqueue("c1.add", { key: "a", by: 3 });
    assert.ok(created);
    const done = await settle(rt, job.id);
    assert.equal(done.status, "succeeded");
    const full = await rt.getJob(job.id);
    assert.deepEqual(full.result, { count: 3 });
    assert.equal(full.progress, 100);
    assert.equal(full.attempts, 1);
    assert.deepEqual(await stateOf(db, "c1.add:a"), { count: 3 });
    assert.equal(await effectCount(db, "job_id = $1", [job.id]), 1);
  },

  "an effect plans with the settings the transaction began with, not the commit's own": async (
    { db, runtime },
  ) => {
    await db.query("CREATE TABLE planner_seen (job_id text PRIMARY KEY, bitmap text)");
    const [{ setting }] = await db.query<{ setting: string }>(
      "SELECT current_setting('enable_bitmapscan') AS setting",
    ) as [{ setting: string }];
    const seen = defineActor({
      name: "c1.seen",
      input: z.object({ n: z.number().int() }),
      key: (i) => `c1.seen:${i.n}`,
      handler: (_input, ctx) => {
        ctx.effect(async (tx) => {
          await tx.query(
            "INSERT INTO planner_seen SELECT $1, current_setting('enable_bitmapscan')",
            [ctx.jobId],
          );
        });
      },
    });
    const rt = await runtime([seen]);
    const jobs = await Promise.all([1, 2, 3].map((n) => rt.enqueue(seen, { n })));
    for (const { job } of jobs) assert.equal((await settle(rt, job.id)).status, "succeeded");
    const rows = await db.query<{ bitmap: string }>("SELECT bitmap FROM planner_seen");
    assert.equal(rows.length, 3);
    assert.equal(setting, "on");
    for (const row of rows) assert.equal(row.bitmap, setting);
  },

  "the same message delivered 20 times concurrently has one effect": async ({ db, runtime }) => {
    await effectsTable(db);
    let runs = 0;
    const rt = await runtime([counter("c2.add", { delayMs: 30, onRun: () => runs++ })], {
      start: false,
    });
    const { job } = await rt.enqueue("c2.add", { key: "x" });
    // 20 pushed deliveries and a pull claim race for the one message.
    const outcomes = await deliverAtOnce(rt, job.id);
    assert.equal(runs, 1, "the handler ran once");
    assert.equal(await effectCount(db, "job_id = $1", [job.id]), 1);
    assert.deepEqual(await stateOf(db, "c2.add:x"), { count: 1 });
    const statuses = new Set(outcomes.map((o) => o.status));
    assert.ok(statuses.has("busy") || statuses.has("succeeded"), [...statuses].join());
  },

  "a redelivery after commit is stopped by the ledger, not re-applied": async ({ db, runtime }) => {
    await effectsTable(db);
    let runs = 0;
    const rt = await runtime([counter("c3.add", { onRun: () => runs++ })], { start: false });
    const { job } = await rt.enqueue("c3.add", { key: "k" });
    // Pushed: a copy of the message lives outside the database, so its success is ledgered.
    assert.deepEqual(await rt.deliver(job.id), { status: "succeeded" });
    // A transport that lost its ack redelivers the message as if it never finished.
    await db.query(
      "UPDATE troupe_jobs SET status = 'queued', finished_at = NULL WHERE id = $1",
      [job.id],
    );
    assert.deepEqual(await rt.deliver(job.id), { status: "duplicate" });
    const [row] = await db.query<{ status: string }>(
      "SELECT status FROM troupe_jobs WHERE id = $1",
      [job.id],
    );
    assert.equal(row?.status, "succeeded");
    assert.equal(runs, 2, "the handler ran again");
    assert.equal(await effectCount(db, "job_id = $1", [job.id]), 1, "but committed once");
    assert.deepEqual(await stateOf(db, "c3.add:k"), { count: 1 });
    // A redelivery after the job record was cleaned up is recognised from the ledger alone.
    await db.query("DELETE FROM troupe_jobs WHERE id = $1", [job.id]);
    assert.deepEqual(await rt.deliver(job.id), { status: "duplicate" });
    assert.deepEqual(await rt.deliver("no-such-message"), { status: "unknown" });
    assert.equal(runs, 2);
  },

  "a pulled message writes no ledger row; its job row refuses a second run": async (
    { db, runtime },
  ) => {
    await effectsTable(db);
    let runs = 0;
    const rt = await runtime([counter("c3b.add", { onRun: () => runs++ })]);
    const { job } = await rt.enqueue("c3b.add", { key: "k" });
    await settle(rt, job.id);
    const ledger = await db.query("SELECT 1 FROM troupe_processed_messages WHERE message_id = $1", [
      job.id,
    ]);
    assert.equal(ledger.length, 0, "the table queue's row is the message: no ledger row");
    // Delivered again (pushed) and claimed again (pulled): the row says it is done.
    assert.deepEqual(await rt.deliver(job.id), { status: "succeeded" });
    assert.equal(await rt.pump(), 0);
    assert.equal(runs, 1);
    assert.equal(await effectCount(db, "job_id = $1", [job.id]), 1);
    assert.deepEqual(await stateOf(db, "c3b.add:k"), { count: 1 });
  },

  "messages to one key never overlap while other keys run in parallel": async (
    { db, runtime },
  ) => {
    await effectsTable(db);
    const active = new Map<string, number>();
    let maxPerKey = 0;
    let total = 0;
    let maxTotal = 0;
    const def = defineActor({
      name: "c4.rmw",
      input: z.object({ key: z.string() }),
      key: (i) => `c4:${i.key}`,
      initialState: () => ({ count: 0 }),
      handler: async (_input, ctx) => {
        const now = (active.get(ctx.key) ?? 0) + 1;
        active.set(ctx.key, now);
        total++;
        maxPerKey = Math.max(maxPerKey, now);
        maxTotal = Math.max(maxTotal, total);
        const before = ctx.state.count;
        await sleep(2);
        ctx.setState({ count: before + 1 });
        active.set(ctx.key, active.get(ctx.key)! - 1);
        total--;
      },
    });
    const rt = await runtime([def], { start: false, concurrency: 16, claimBatch: 32 });
    for (let i = 0; i < 200; i++) await rt.enqueue("c4.rmw", { key: `k${i % 5}` });
    await rt.start();
    await waitFor(async () => (await rt.health()).queued + (await rt.health()).running === 0, {
      timeoutMs: 30_000,
      what: "all 200 messages",
    });
    assert.equal(maxPerKey, 1, "a key ran two handlers at once");
    assert.ok(maxTotal > 1, `different keys should run in parallel (max ${maxTotal})`);
    for (let k = 0; k < 5; k++) assert.deepEqual(await stateOf(db, `c4:k${k}`), { count: 40 });
  },

  "while a foreground request is open: none, then one message at a time; then full width": async (
    { runtime },
  ) => {
    let running = 0;
    let peak = 0;
    let done = 0;
    const def = defineActor({
      name: "c9.slow",
      input: z.object({ key: z.string() }),
      key: (i) => `c9:${i.key}`,
      handler: async () => {
        peak = Math.max(peak, ++running);
        await sleep(20);
        running--;
        done++;
      },
    });
    const rt = await runtime([def], {
      start: false,
      concurrency: 16,
      foregroundDeferMs: 600,
    });
    const opened = performance.now();
    const leave = rt.foreground();
    const again = rt.foreground();
    for (let i = 0; i < 40; i++) await rt.enqueue("c9.slow", { key: `k${i}` });
    await rt.start();
    await sleep(300);
    // Checked only if the machine was not so slow that the pause could have ended.
    if (performance.now() - opened < 550) {
      assert.equal(done + running, 0, "no message claimed during the pause");
    }
    await waitFor(() => done >= 6, { timeoutMs: 20_000, what: "six messages after the pause" });
    assert.ok(performance.now() - opened >= 600, "messages ran before the pause ended");
    leave();
    leave(); // a second call does nothing: the other request is still open
    await sleep(100);
    assert.equal(peak, 1, "one message at a time once the pause is over");
    again();
    await waitFor(() => done === 40, { timeoutMs: 20_000, what: "all 40 messages" });
    assert.ok(peak > 1, `full width once the last foreground request closed (peak ${peak})`);
  },

  "a foreground request that closes during the pause releases the queue at once": async (
    { runtime },
  ) => {
    let done = 0;
    const def = defineActor({
      name: "c9.quick",
      input: z.object({ key: z.string() }),
      key: (i) => `c9q:${i.key}`,
      handler: () => {
        done++;
        return Promise.resolve();
      },
    });
    const rt = await runtime([def], { start: false, foregroundDeferMs: 60_000 });
    const leave = rt.foreground();
    for (let i = 0; i < 5; i++) await rt.enqueue("c9.quick", { key: `k${i}` });
    await rt.start();
    await sleep(200);
    assert.equal(done, 0, "held during the pause");
    const closed = performance.now();
    leave();
    await waitFor(() => done === 5, { timeoutMs: 20_000, what: "all 5 messages" });
    assert.ok(performance.now() - closed < 10_000, "not held until the pause's end");
  },

  "an outgoing message is published only if its transaction commits": async (
    { db, runtime },
  ) => {
    await effectsTable(db);
    const sink = counter("c5.sink");
    const sender = defineActor({
      name: "c5.send",
      input: z.object({ mode: z.enum(["throw", "effect-fails-once", "ok"]) }),
      key: (i) => `c5:${i.mode}`,
      retries: 1,
      backoff: { baseMs: 10, jitter: 0 },
      handler: (input, ctx) => {
        ctx.send("c5.sink", { key: input.mode });
        if (input.mode === "throw") throw new Error("after send");
        if (input.mode === "effect-fails-once") {
          // The first attempt's transaction fails at commit and rolls back.
          const attempt = ctx.attempt;
          ctx.effect(() =>
            attempt === 1 ? Promise.reject(new Error("effect failed")) : Promise.resolve()
          );
        }
      },
    });
    const rt = await runtime([sender, sink]);
    const thrown = (await rt.enqueue("c5.send", { mode: "throw" })).job;
    const flaky = (await rt.enqueue("c5.send", { mode: "effect-fails-once" })).job;
    const ok = (await rt.enqueue("c5.send", { mode: "ok" })).job;
    assert.equal((await settle(rt, thrown.id)).status, "failed");
    assert.equal((await settle(rt, flaky.id)).status, "succeeded");
    assert.equal((await settle(rt, ok.id)).status, "succeeded");
    const children = async (parent: string) =>
      await db.query<{ id: string; status: string }>(
        "SELECT id, status FROM troupe_jobs WHERE parent_id = $1",
        [parent],
      );
    assert.equal((await children(thrown.id)).length, 0, "a failed handler sent nothing");
    const flakyKids = await children(flaky.id);
    assert.equal(flakyKids.length, 1, "the rolled-back attempt's send was not published");
    assert.equal((await rt.getJob(flaky.id)).attempts, 2);
    const okKids = await children(ok.id);
    assert.equal(okKids.length, 1);
    await settle(rt, okKids[0]!.id);
    assert.equal(await effectCount(db, "key = 'c5.sink:ok'", []), 1);
  },

  "a handler that lost its lease cannot commit (fencing)": async ({ db, runtime }) => {
    await effectsTable(db);
    let runs = 0;
    const def = defineActor({
      name: "c6.fenced",
      input: z.object({}),
      key: () => "c6:only",
      handler: async (_i, ctx) => {
        runs++;
        if (runs === 1) {
          // Another worker takes the lease over (as after an expiry) while we still run.
          await db.query(
            `UPDATE troupe_actor_state SET fence = fence + 1, lease_owner = 'thief',
               lease_until = now() + interval '300 milliseconds' WHERE key = 'c6:only'`,
          );
        }
        ctx.effect(async (tx) => {
          await tx.query("INSERT INTO test_effects (job_id, key) VALUES ($1, 'c6')", [ctx.jobId]);
        });
      },
    });
    const rt = await runtime([def], { leaseMs: 1000 });
    const { job } = await rt.enqueue("c6.fenced", {});
    const done = await settle(rt, job.id);
    assert.equal(done.status, "succeeded");
    assert.equal(runs, 2, "the fenced run was redone by the next lease owner");
    assert.equal(await effectCount(db, "key = 'c6'", []), 1, "only the unfenced run committed");
  },

  "the push path (outbox + in-process transport) delivers sends exactly once": async (
    { db, runtime },
  ) => {
    await effectsTable(db);
    const transport = new InProcessTransport();
    const parent = defineActor({
      name: "c7.parent",
      input: z.object({ n: z.number().int() }),
      key: () => "c7:parent",
      handler: (input, ctx) => {
        for (let i = 0; i < input.n; i++) ctx.send("c7.add", { key: `k${i % 3}` });
      },
    });
    const rt = await runtime([parent, counter("c7.add", { delayMs: 1 })], { transport });
    const { job } = await rt.enqueue("c7.parent", { n: 30 });
    await settle(rt, job.id);
    await waitFor(async () => (await effectCount(db, "key LIKE 'c7.add:%'", [])) === 30, {
      what: "30 child effects",
    });
    await sleep(100);
    assert.equal(await effectCount(db, "key LIKE 'c7.add:%'", []), 30);
    const outbox = await db.query("SELECT * FROM troupe_outbox");
    assert.equal(outbox.length, 0, "the outbox is drained after publish");
    const total = [0, 1, 2].map(async (k) => await stateOf(db, `c7.add:k${k}`));
    assert.deepEqual(await Promise.all(total), [{ count: 10 }, { count: 10 }, { count: 10 }]);
  },

  "a pipelined message re-runs when the one before it fails to commit": async (
    { db, runtime },
  ) => {
    await effectsTable(db);
    const runs = new Map<number, number>();
    const def = defineActor({
      name: "c8.chain",
      input: z.object({ n: z.number().int(), failCommitOnce: z.boolean().default(false) }),
      key: () => "c8:chain",
      initialState: () => ({ total: 0 }),
      backoff: { baseMs: 20, jitter: 0 },
      handler: (input, ctx) => {
        runs.set(input.n, (runs.get(input.n) ?? 0) + 1);
        ctx.setState({ total: ctx.state.total + input.n });
        const attempt = ctx.attempt;
        ctx.effect(async (tx) => {
          if (input.failCommitOnce && attempt === 1) throw new Error("commit-time failure");
          await tx.query("INSERT INTO test_effects (job_id, key) VALUES ($1, 'c8')", [ctx.jobId]);
        });
      },
    });
    const rt = await runtime([def], { start: false });
    await rt.enqueue("c8.chain", { n: 1, failCommitOnce: true });
    await rt.enqueue("c8.chain", { n: 10 });
    await rt.enqueue("c8.chain", { n: 100 });
    await rt.start(); // the three are claimed together and run as one chain
    await waitFor(async () => (await effectCount(db, "key = 'c8'", [])) === 3, {
      what: "three committed effects",
    });
    await waitFor(async () => (await rt.health()).running + (await rt.health()).queued === 0);
    assert.deepEqual(await stateOf(db, "c8:chain"), { total: 111 }, "no update applied twice");
    assert.equal(await effectCount(db, "key = 'c8'", []), 3);
    assert.ok((runs.get(10) ?? 0) >= 2, "the message after the failed commit ran again");
  },
});
