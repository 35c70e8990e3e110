/**
 * Actors declared `ordered: false`, against PGlite, PostgreSQL and Neon: their messages run in
 * parallel whatever their key, under the instance lease of the process that claimed them (no
 * lease row per key); a process that stalls past that lease or stops has its jobs taken back
 * by the reaper, and its late commits are refused, even when the two processes' instance
 * leases carry the same fencing token; pushed deliveries, cancels and claims mixed with keyed
 * actors and tenants; the instance leases of instances gone for a day are removed.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { CancelledError, defineActor, type Logger, type SqlExecutor } from "@troupe/runtime";
import { settle, sleep, waitFor } from "../harness.ts";
import { contractSuite, deliverAtOnce } from "./suite.ts";

/** One row per handler run that committed: which job, which attempt. */
async function runsTable(db: SqlExecutor): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS unordered_runs (
    job_id text NOT NULL, attempt int NOT NULL, worker text NOT NULL)`);
}

async function committedRuns(db: SqlExecutor, jobId: string) {
  return await db.query<{ attempt: number; worker: string }>(
    "SELECT attempt, worker FROM unordered_runs WHERE job_id = $1 ORDER BY attempt",
    [jobId],
  );
}

async function instanceLease(db: SqlExecutor, workerId: string) {
  const [row] = await db.query<{ fence: number; lease_owner: string | null }>(
    "SELECT fence, lease_owner FROM troupe_actor_state WHERE key = $1",
    [`~instance:${workerId}`],
  );
  return row;
}

/** The code of a job view's error. */
const codeOf = (error: unknown) => (error as { code?: string } | null)?.code;

/** A logger that keeps the messages of warnings and errors. */
function recorder(): Logger & { seen: string[] } {
  const seen: string[] = [];
  const log: Logger = {
    debug() {},
    info() {},
    warn: (msg) => seen.push(msg),
    error: (msg) => seen.push(msg),
    child: () => log,
  };
  return Object.assign(log, { seen });
}

/** A job's lease columns. */
async function leaseOf(db: SqlExecutor, id: string) {
  const [row] = await db.query<{
    unordered: boolean;
    lease_owner: string | null;
    lease_fence: number;
    lease_losses: number;
    attempts: number;
  }>(
    `SELECT unordered, lease_owner, lease_fence, lease_losses, attempts
     FROM troupe_jobs WHERE id = $1`,
    [id],
  );
  return row!;
}

/**
 * An unordered actor whose first attempt of each message waits for `gate` (the process
 * "stalls"), then writes a row of its run with the commit.
 */
function stallsOnce(name: string, gate: Promise<void>, started: string[], worker: () => string) {
  return defineActor({
    name,
    input: z.object({ n: z.number().int() }),
    ordered: false,
    retries: 3,
    handler: async (_input, ctx) => {
      started.push(`${ctx.jobId}/${ctx.attempt}`);
      if (ctx.attempt === 1) await gate;
      ctx.insert("unordered_runs", { job_id: ctx.jobId, attempt: ctx.attempt, worker: worker() });
      return { attempt: ctx.attempt };
    },
  });
}

contractSuite("unordered actors", {
  "messages of one key run at once, with no lease row for the key": async ({ db, runtime }) => {
    let running = 0;
    let most = 0;
    const all = Promise.withResolvers<void>();
    const work = defineActor({
      name: "unord1.work",
      input: z.object({ n: z.number().int() }),
      ordered: false,
      // Every message has the actor's one key (the default).
      handler: async ({ n }) => {
        most = Math.max(most, ++running);
        if (running === 5) all.resolve();
        // Each waits for all five to be running (a keyed actor would never get there).
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([all.promise, new Promise((r) => timer = setTimeout(r, 5000))]);
        clearTimeout(timer);
        running--;
        return { n };
      },
    });
    const rt = await runtime([work]);
    const jobs = await Promise.all([1, 2, 3, 4, 5].map((n) => rt.enqueue(work, { n })));
    for (const { job } of jobs) {
      const done = await settle(rt, job.id);
      assert.equal(done.status, "succeeded");
    }
    assert.equal(most, 5, "the five messages of one key ran at once");
    assert.deepEqual(
      await db.query("SELECT key FROM troupe_actor_state WHERE key = 'unord1.work'"),
      [],
      "no lease row for the key",
    );
    const lease = await instanceLease(db, rt.workerId);
    assert.ok(lease, "the instance lease row");
    for (const { job } of jobs) {
      const row = await leaseOf(db, job.id);
      assert.equal(row.unordered, true);
      assert.equal(row.lease_fence, lease.fence);
      assert.equal(row.attempts, 1);
    }
  },

  "a runtime of unordered actors claims 512 at a time on a shared database, a keyed one 256":
    async (
      { db, runtime },
    ) => {
      const gate = Promise.withResolvers<void>();
      const input = z.object({ n: z.number().int() });
      const free = defineActor({
        name: "unord.batch.free",
        input,
        ordered: false,
        handler: async () => await gate.promise,
      });
      const keyed = defineActor({
        name: "unord.batch.keyed",
        input,
        key: ({ n }) => `k${n}`,
        handler: async () => await gate.promise,
      });
      const inputs = Array.from({ length: 600 }, (_, n) => ({ n }));
      const plain = await runtime([keyed], { start: false });
      await plain.enqueueMany(keyed, inputs);
      assert.equal(await plain.pump(), 256, "a keyed runtime's claim");
      const wide = await runtime([free], { start: false });
      await wide.enqueueMany(free, inputs);
      // PGlite runs one statement at a time: one batch of 256 in flight there.
      const batch = db.shared ? 512 : 256;
      assert.equal(await wide.pump(), batch, "an unordered runtime's first claim");
      assert.equal(await wide.pump(), db.shared ? 600 - batch : 0, "the second batch in flight");
      gate.resolve();
      await wide.start();
      await plain.start();
      await waitFor(async () => {
        const [r] = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM troupe_jobs
           WHERE status = 'succeeded' AND actor LIKE 'unord.batch.%'`,
        );
        return r!.n === 1200 || null;
      }, { timeoutMs: 30_000, what: "every job succeeded" });
    },

  "state is refused: at definition, and in the handler": async ({ runtime }) => {
    assert.throws(
      () =>
        defineActor({
          name: "unord2.bad",
          input: z.object({}),
          ordered: false,
          initialState: () => ({ n: 0 }),
          handler: () => null,
        }),
      /ordered: false keeps no state/,
    );
    const reads = defineActor({
      name: "unord2.reads",
      input: z.object({}),
      ordered: false,
      retries: 0,
      handler: (_i, ctx) => ctx.state,
    });
    const writes = defineActor({
      name: "unord2.writes",
      input: z.object({}),
      ordered: false,
      retries: 0,
      handler: (_i, ctx) => ctx.setState({}),
    });
    const rt = await runtime([reads, writes]);
    for (const actor of [reads, writes]) {
      const { job } = await rt.enqueue(actor, {});
      const done = await settle(rt, job.id);
      assert.equal(done.status, "failed");
      assert.equal(codeOf(done.error), "NO_STATE");
    }
  },

  "a process stalled past its instance lease: the reaper takes the job back, its late commit is refused":
    async ({ db, runtime }) => {
      await runsTable(db);
      const gate = Promise.withResolvers<void>();
      const started: string[] = [];
      let worker = "";
      const work = stallsOnce("unord3.work", gate.promise, started, () => worker);
      // No background loops: no heartbeat renews the lease, each step is taken here.
      const log = recorder();
      const a = await runtime([work], { start: false, workerId: "w-unord3-a", logger: log });
      const b = await runtime([work], { start: false, workerId: "w-unord3-b" });
      const { job } = await a.enqueue(work, { n: 1 });
      worker = "a";
      assert.equal(await a.pump(), 1);
      await waitFor(() => started.length === 1, { what: "a's run to start" });
      assert.equal(await b.reap(), 0, "a's instance lease is held: nothing to reap");
      // a stalls past its lease.
      await db.query(
        "UPDATE troupe_actor_state SET lease_until = now() - interval '1 second' WHERE key = $1",
        ["~instance:w-unord3-a"],
      );
      assert.equal(await b.reap(), 1);
      assert.equal((await leaseOf(db, job.id)).lease_losses, 1);
      worker = "b";
      assert.equal(await b.pump(), 1);
      const done = await settle(b, job.id);
      assert.equal(done.status, "succeeded");
      assert.deepEqual(done.result, { attempt: 2 });
      // Both leases carry the same token: only the job row's owner tells a's commit from b's.
      assert.equal(
        (await instanceLease(db, "w-unord3-a"))!.fence,
        (await instanceLease(db, "w-unord3-b"))!.fence,
      );
      gate.resolve();
      await waitFor(() => log.seen.includes("lease lost; leaving the rest to the new owner"), {
        what: "a's late commit to be refused",
      });
      assert.deepEqual(await committedRuns(db, job.id), [{ attempt: 2, worker: "b" }]);
      const after = await settle(b, job.id);
      assert.deepEqual(after.result, { attempt: 2 });
    },

  "the late handler's progress is not written onto the job as the next process runs it": async (
    { db, runtime },
  ) => {
    const gates = [Promise.withResolvers<void>(), Promise.withResolvers<void>()];
    const started: number[] = [];
    const work = defineActor({
      name: "unord9.work",
      input: z.object({}),
      ordered: false,
      handler: async (_i, ctx) => {
        started.push(ctx.attempt);
        await gates[ctx.attempt - 1]!.promise;
        ctx.progress(ctx.attempt === 1 ? 11 : 22);
        // The first report is written at once; give it the time to land.
        await sleep(200);
        return { attempt: ctx.attempt };
      },
    });
    const log = recorder();
    const a = await runtime([work], { start: false, workerId: "w-unord9-a", logger: log });
    const b = await runtime([work], { start: false, workerId: "w-unord9-b" });
    const { job } = await a.enqueue(work, {});
    await a.pump();
    await waitFor(() => started.length === 1, { what: "a's run to start" });
    await db.query(
      "UPDATE troupe_actor_state SET lease_until = now() - interval '1 second' WHERE key = $1",
      ["~instance:w-unord9-a"],
    );
    assert.equal(await b.reap(), 1);
    await b.pump();
    await waitFor(() => started.length === 2, { what: "b's run to start" });
    // a's handler goes on while b's runs under a lease with the same token.
    gates[0]!.resolve();
    await waitFor(() => log.seen.includes("lease lost; leaving the rest to the new owner"), {
      what: "a's late commit to be refused",
    });
    const [mid] = await db.query<{ status: string; progress: number }>(
      "SELECT status, progress FROM troupe_jobs WHERE id = $1",
      [job.id],
    );
    assert.deepEqual(mid, { status: "running", progress: 0 });
    gates[1]!.resolve();
    const done = await settle(b, job.id);
    assert.deepEqual(done.result, { attempt: 2 });
  },

  "an instance lease found lapsed (heartbeat or claim): its handlers are aborted, their jobs rerun":
    async (
      { db, runtime },
    ) => {
      const reasons: string[] = [];
      const work = defineActor({
        name: "unord10.work",
        input: z.object({}),
        ordered: false,
        handler: (_i, ctx) => {
          if (ctx.attempt > 1) return { attempt: ctx.attempt };
          return new Promise((_, reject) =>
            ctx.signal.addEventListener("abort", () => {
              reasons.push(codeOf(ctx.signal.reason) ?? String(ctx.signal.reason));
              reject(ctx.signal.reason);
            })
          );
        },
      });
      // A heartbeat every 300 ms (a third of the lease).
      const rt = await runtime([work], { workerId: "w-unord10", leaseMs: 900 });
      const { job } = await rt.enqueue(work, {});
      await waitFor(async () => (await leaseOf(db, job.id)).attempts === 1, {
        what: "the job to be claimed",
      });
      const before = (await instanceLease(db, "w-unord10"))!.fence;
      // The process stalled past its lease, as far as the database can tell.
      await db.query(
        "UPDATE troupe_actor_state SET lease_until = now() - interval '1 second' WHERE key = $1",
        ["~instance:w-unord10"],
      );
      const done = await settle(rt, job.id);
      assert.equal(done.status, "succeeded");
      assert.deepEqual(done.result, { attempt: 2 });
      assert.deepEqual(reasons, ["LEASE_LOST"]);
      assert.ok((await instanceLease(db, "w-unord10"))!.fence > before, "a new token");
    },

  "a stopped process gives its unordered jobs back: requeued at once, no lease lost": async (
    { db, runtime },
  ) => {
    await runsTable(db);
    const gate = Promise.withResolvers<void>();
    const started: string[] = [];
    let worker = "";
    const work = stallsOnce("unord4.work", gate.promise, started, () => worker);
    const a = await runtime([work], { start: false, workerId: "w-unord4-a" });
    const b = await runtime([work], { start: false, workerId: "w-unord4-b" });
    const { job } = await a.enqueue(work, { n: 1 });
    worker = "a";
    await a.start();
    await waitFor(() => started.length === 1, { what: "a's run to start" });
    await a.stop(50);
    assert.equal((await instanceLease(db, "w-unord4-a"))!.lease_owner, null);
    assert.equal((await leaseOf(db, job.id)).lease_owner, null);
    assert.equal(await b.reap(), 1);
    worker = "b";
    assert.equal(await b.pump(), 1);
    const done = await settle(b, job.id);
    assert.equal(done.status, "succeeded");
    assert.equal((await leaseOf(db, job.id)).lease_losses, 0);
    gate.resolve();
    await sleep(50);
    assert.deepEqual(await committedRuns(db, job.id), [{ attempt: 2, worker: "b" }]);
  },

  "pushed: twenty concurrent deliveries of one message run it once": async ({ db, runtime }) => {
    await runsTable(db);
    let runs = 0;
    const work = defineActor({
      name: "unord5.work",
      input: z.object({ n: z.number().int() }),
      ordered: false,
      handler: async (_i, ctx) => {
        runs++;
        await sleep(30);
        ctx.insert("unordered_runs", { job_id: ctx.jobId, attempt: ctx.attempt, worker: "push" });
        return { ok: true };
      },
    });
    const rt = await runtime([work], { start: false });
    const { job } = await rt.enqueue(work, { n: 1 });
    await deliverAtOnce(rt, job.id);
    assert.equal(runs, 1, "the handler ran once");
    assert.equal((await committedRuns(db, job.id)).length, 1);
    assert.equal((await leaseOf(db, job.id)).unordered, true);
    assert.deepEqual(await rt.deliver(job.id), { status: "succeeded" });
  },

  "a cancel aborts a running unordered job": async ({ runtime }) => {
    const started = Promise.withResolvers<void>();
    const work = defineActor({
      name: "unord6.work",
      input: z.object({}),
      ordered: false,
      handler: (_i, ctx) => {
        started.resolve();
        return new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
        );
      },
    });
    const rt = await runtime([work]);
    const { job } = await rt.enqueue(work, {});
    await started.promise;
    await rt.cancel(job.id);
    const done = await settle(rt, job.id);
    assert.equal(done.status, "cancelled");
    assert.equal(codeOf(done.error), new CancelledError().code);
  },

  "an instance not heard of for a day is forgotten with its instance lease": async (
    { db, runtime },
  ) => {
    await db.query(
      `INSERT INTO troupe_workers (id, transport, mode, concurrency, heartbeat_at)
       VALUES ('w-unord8-gone', 'table-queue', 'pull', 1, now() - interval '25 hours'),
              ('w-unord8-here', 'table-queue', 'pull', 1, now() - interval '23 hours')`,
    );
    await db.query(
      `INSERT INTO troupe_actor_state (key, fence, lease_owner, lease_until)
       VALUES ('~instance:w-unord8-gone', 3, 'w-unord8-gone', now() - interval '25 hours'),
              ('~instance:w-unord8-here', 2, 'w-unord8-here', now() - interval '23 hours')`,
    );
    // A runtime's start writes its heartbeat, which forgets the instances gone for a day.
    await runtime([]);
    const left = await db.query<{ key: string }>(
      "SELECT key FROM troupe_actor_state WHERE key LIKE '~instance:w-unord8-%' ORDER BY key",
    );
    assert.deepEqual(left, [{ key: "~instance:w-unord8-here" }]);
    assert.deepEqual(
      await db.query("SELECT id FROM troupe_workers WHERE id LIKE 'w-unord8-%'"),
      [{ id: "w-unord8-here" }],
    );
  },

  "claims mixed with keyed actors and tenants: each kind under its own lease": async (
    { db, runtime },
  ) => {
    const order: number[] = [];
    const keyed = defineActor({
      name: "unord7.keyed",
      input: z.object({ n: z.number().int() }),
      key: () => "unord7:one",
      initialState: () => ({ sum: 0 }),
      handler: ({ n }, ctx) => {
        order.push(n);
        ctx.setState({ sum: ctx.state.sum + n });
        return { n };
      },
    });
    const loose = defineActor({
      name: "unord7.loose",
      input: z.object({ n: z.number().int() }),
      ordered: false,
      key: () => "unord7:one",
      handler: ({ n }) => ({ n }),
    });
    const rt = await runtime([keyed, loose], { start: false });
    const sent = [];
    for (let n = 1; n <= 6; n++) {
      const tenantId = n % 2 === 0 ? "unord7-t1" : "unord7-t2";
      sent.push((await rt.enqueue(keyed, { n }, { tenantId })).job);
      sent.push((await rt.enqueue(loose, { n }, { tenantId })).job);
    }
    await rt.start();
    for (const job of sent) assert.equal((await settle(rt, job.id)).status, "succeeded");
    const [state] = await db.query<{ state: { sum: number } }>(
      "SELECT state FROM troupe_actor_state WHERE key = 'unord7:one'",
    );
    assert.deepEqual(state!.state, { sum: 21 });
    assert.equal(order.length, 6);
    // Each tenant's keyed messages in queue order (the tenants' shares interleave them).
    for (const parity of [0, 1]) {
      const mine = order.filter((n) => n % 2 === parity);
      assert.deepEqual(mine, [...mine].sort((x, y) => x - y));
    }
    const rows = await db.query<{ actor: string; unordered: boolean }>(
      "SELECT actor, unordered FROM troupe_jobs WHERE actor LIKE 'unord7.%' ORDER BY actor",
    );
    for (const row of rows) assert.equal(row.unordered, row.actor === "unord7.loose");
  },
});
