/**
 * Guards that keep one bad job or one failing background task from stopping the server: the
 * reaper's dead letters, poison jobs, dead-letter hooks on every way a message dies, input
 * errors, failing maintenance and reused idempotency keys. Against every database target.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  type AnyActor,
  defineActor,
  IdempotencyKeyReusedError,
  InputError,
  type SqlDatabase,
} from "@troupe/runtime";
import { claimJobs, releaseLeases } from "../../actors/runtime/sql/claim_jobs.ts";
import { PUBLIC_TABLES } from "../../actors/runtime/sql/tables.ts";
import { settle, sleep, waitFor } from "../harness.ts";
import { contractSuite } from "./suite.ts";

/**
 * Leaves job `id` as a crashed worker does: running under a lease that lapsed without being
 * given back (the job row keeps its owner). `started`: a suspect's handler had begun.
 */
async function crashedWhileRunning(
  db: SqlDatabase,
  id: string,
  { attempts, leaseLosses = 0, started = false }: {
    attempts: number;
    leaseLosses?: number;
    started?: boolean;
  },
) {
  const [job] = await db.query<{ key: string }>("SELECT key FROM troupe_jobs WHERE id = $1", [id]);
  await db.query(
    `INSERT INTO troupe_actor_state (key, fence, lease_owner, lease_until)
     VALUES ($1, 7, 'dead-worker', now() - interval '1 second')
     ON CONFLICT (key) DO UPDATE SET fence = 7, lease_owner = 'dead-worker',
       lease_until = now() - interval '1 second'`,
    [job!.key],
  );
  await db.query(
    `UPDATE troupe_jobs SET status = 'running', attempts = $2, lease_owner = 'dead-worker',
       lease_fence = 7, lease_losses = $3, started_fence = $4 WHERE id = $1`,
    [id, attempts, leaseLosses, started ? 7 : null],
  );
}

/** `<prefix>.part`, whose dead letters are reported to `heard` through `<prefix>.parent`. */
function withParent(
  prefix: string,
  { retries, handler }: { retries: number; handler: () => unknown },
) {
  const heard: { id: string; code: string }[] = [];
  const parent = defineActor({
    name: `${prefix}.parent`,
    input: z.object({ id: z.string(), code: z.string() }),
    key: () => `${prefix}:parent`,
    handler: (input) => {
      heard.push(input);
    },
  });
  const child = defineActor({
    name: `${prefix}.part`,
    input: z.object({ id: z.string() }),
    key: (i) => `${prefix}:${i.id}`,
    retries,
    handler,
    onDeadLetter: (input, error) => ({
      actor: `${prefix}.parent`,
      input: { id: input.id, code: error.code },
    }),
  });
  return { heard, actors: [parent, child] as AnyActor[] };
}

const part = {
  input: z.object({ id: z.string() }),
};

contractSuite("guards", {
  "jobs out of attempts reaped at once each get their own dead letter": async (
    { db, runtime },
  ) => {
    const def = defineActor({
      name: "g1.job",
      ...part,
      key: (i) => `g1:${i.id}`,
      retries: 0,
      handler: () => {},
    });
    const api = await runtime([def], { start: false });
    const ids: string[] = [];
    for (const id of ["a", "b", "c"]) {
      const { job } = await api.enqueue("g1.job", { id });
      await crashedWhileRunning(db, job.id, { attempts: 1 });
      ids.push(job.id);
    }
    assert.equal(await api.reap(), 3);
    const letters = await db.query<{ id: string; job_id: string }>(
      "SELECT id, job_id FROM troupe_dead_letters WHERE actor = 'g1.job' ORDER BY id",
    );
    assert.deepEqual(letters.map((l) => l.job_id).sort(), [...ids].sort());
    assert.equal(new Set(letters.map((l) => l.id)).size, 3, "one id per dead letter");
    for (const l of letters) assert.match(l.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/, "a UUIDv7");
    for (const id of ids) assert.equal((await api.getJob(id)).status, "failed");
  },

  "a runtime starts over jobs that run out of attempts in its first reap": async (
    { db, runtime },
  ) => {
    const def = defineActor({
      name: "g2.job",
      ...part,
      key: (i) => `g2:${i.id}`,
      retries: 1,
      handler: () => {},
    });
    const api = await runtime([def], { start: false });
    const ids: string[] = [];
    for (const id of ["a", "b"]) {
      const { job } = await api.enqueue("g2.job", { id });
      await crashedWhileRunning(db, job.id, { attempts: 2 });
      ids.push(job.id);
    }
    const rt = await runtime([def]);
    assert.equal(rt.maintenanceFailures, 0);
    for (const id of ids) {
      const job = await rt.getJob(id);
      assert.equal(job.status, "failed");
      assert.equal((job.error as { code: string }).code, "LEASE_EXPIRED");
    }
    assert.equal((await rt.listDeadLetters({ actor: "g2.job" })).items.length, 2);
  },

  "a failing background task is counted and retried, and the runtime goes on": async (
    { db, runtime },
  ) => {
    // The database refuses the reaper's update of one job: every reap fails until it stops.
    await db.query(`CREATE OR REPLACE FUNCTION test_refuse_reap() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.key = 'g3:stuck' AND OLD.status = 'running' AND NEW.status <> 'running' THEN
          RAISE EXCEPTION 'test: this update is refused';
        END IF;
        RETURN NEW;
      END $$`);
    await db.query(`CREATE TRIGGER test_refuse_reap BEFORE UPDATE ON troupe_jobs
      FOR EACH ROW EXECUTE FUNCTION test_refuse_reap()`);
    try {
      const def = defineActor({
        name: "g3.job",
        ...part,
        key: (i) => `g3:${i.id}`,
        handler: (input) => ({ ran: input.id }),
      });
      const api = await runtime([def], { start: false });
      const { job: stuck } = await api.enqueue("g3.job", { id: "stuck" });
      await crashedWhileRunning(db, stuck.id, { attempts: 1 });

      const rt = await runtime([def], { leaseMs: 600 });
      assert.ok(rt.maintenanceFailures >= 1, "the reap at start failed and was counted");
      const { job } = await rt.enqueue("g3.job", { id: "other" });
      assert.equal((await settle(rt, job.id)).status, "succeeded", "other work goes on");
      const before = rt.maintenanceFailures;
      await waitFor(() => rt.maintenanceFailures > before, { what: "the reaper to run again" });
      const { maintenanceFailures } = await rt.health();
      assert.ok(maintenanceFailures > before, `health shows ${maintenanceFailures} failures`);

      await db.query("DROP TRIGGER test_refuse_reap ON troupe_jobs");
      const done = await settle(rt, stuck.id);
      assert.equal(done.status, "succeeded", "the next tick reaped the job");
      assert.deepEqual(done.result, { ran: "stuck" });
    } finally {
      await db.query("DROP TRIGGER IF EXISTS test_refuse_reap ON troupe_jobs");
      await db.query("DROP FUNCTION IF EXISTS test_refuse_reap()");
    }
  },

  "the reaper calls onDeadLetter when a job's last attempt lost its lease": async (
    { db, runtime },
  ) => {
    const { heard, actors } = withParent("g4", { retries: 2, handler: () => {} });
    const api = await runtime(actors, { start: false });
    const { job } = await api.enqueue("g4.part", { id: "x" });
    await crashedWhileRunning(db, job.id, { attempts: 3 });
    const rt = await runtime(actors);
    await waitFor(() => heard.length > 0, { what: "the parent to hear of the dead letter" });
    assert.deepEqual(heard, [{ id: "x", code: "LEASE_EXPIRED" }]);
    assert.equal((await rt.getJob(job.id)).status, "failed");
    await sleep(300);
    assert.equal(heard.length, 1, "exactly once");
  },

  "a job that lost its lease twice is a poison job: dead-lettered with attempts left": async (
    { db, runtime },
  ) => {
    let runs = 0;
    const { heard, actors } = withParent("g5", {
      retries: 5,
      handler: () => {
        runs++;
      },
    });
    const api = await runtime(actors, { start: false });
    const { job: poison } = await api.enqueue("g5.part", { id: "poison" });
    await crashedWhileRunning(db, poison.id, { attempts: 2, leaseLosses: 1, started: true });
    // Given back by a live process (not lost): requeued, not counted.
    const { job: released } = await api.enqueue("g5.part", { id: "released" });
    await crashedWhileRunning(db, released.id, { attempts: 1, leaseLosses: 1 });
    await db.query("UPDATE troupe_jobs SET lease_owner = NULL WHERE id = $1", [released.id]);

    assert.equal(await api.reap(), 2);
    const dead = await api.getJob(poison.id);
    assert.equal(dead.status, "failed");
    const error = dead.error as { code: string; message: string; retryable: boolean };
    assert.equal(error.code, "POISON_JOB");
    assert.match(error.message, /stopped 2 times/);
    assert.equal(error.retryable, false);
    const letters = (await api.listDeadLetters({ actor: "g5.part" })).items;
    assert.deepEqual(letters.map((l) => l.jobId), [poison.id]);
    const [counts] = await db.query<{ losses: number }>(
      "SELECT lease_losses AS losses FROM troupe_jobs WHERE id = $1",
      [released.id],
    );
    assert.equal(counts!.losses, 1, "a lease given back is not a lost one");
    assert.equal((await api.getJob(released.id)).status, "queued");

    const rt = await runtime(actors);
    assert.equal((await settle(rt, released.id)).status, "succeeded");
    await waitFor(() => heard.length > 0, { what: "the poison job's onDeadLetter" });
    assert.deepEqual(heard, [{ id: "poison", code: "POISON_JOB" }]);
    assert.equal(runs, 1, "the poison job did not run again");
  },

  "a lease given back with its jobs unfinished requeues them without a lost lease": async (
    { db, runtime },
  ) => {
    const def = defineActor({
      name: "g8.job",
      ...part,
      key: () => "g8:one",
      handler: () => {},
    });
    const api = await runtime([def], { start: false });
    const { job } = await api.enqueue("g8.job", { id: "a" });
    const claimed = await claimJobs(db, PUBLIC_TABLES, {
      actors: ["g8.job"],
      limit: 10,
      workerId: "live-worker",
      leaseMs: 30_000,
    });
    assert.deepEqual(claimed.map((c) => c.id), [job.id]);
    await releaseLeases(db, PUBLIC_TABLES, "live-worker", [{
      key: "g8:one",
      fence: claimed[0]!.lease_fence,
    }]);
    assert.equal(await api.reap(), 1);
    const [row] = await db.query<{ status: string; lease_losses: number }>(
      "SELECT status, lease_losses FROM troupe_jobs WHERE id = $1",
      [job.id],
    );
    assert.deepEqual(row, { status: "queued", lease_losses: 0 });
  },

  "a message the transport gave up on calls onDeadLetter with its dead letter": async (
    { runtime },
  ) => {
    const { heard, actors } = withParent("g9", { retries: 3, handler: () => {} });
    const api = await runtime(actors, { start: false });
    const { job } = await api.enqueue("g9.part", { id: "lost" });
    const outcome = await api.giveUp(job.id, {
      code: "DELIVERY_FAILED",
      message: "QStash gave up after its last retry",
    });
    assert.equal(outcome, "dead-lettered");
    assert.equal((await api.listDeadLetters({ actor: "g9.part" })).items.length, 1);
    const rt = await runtime(actors);
    await waitFor(() => heard.length > 0, { what: "onDeadLetter of the given-up message" });
    assert.deepEqual(heard, [{ id: "lost", code: "DELIVERY_FAILED" }]);
    assert.equal(
      await api.giveUp(job.id, { code: "DELIVERY_FAILED", message: "again" }),
      "finished",
    );
    await sleep(200);
    assert.equal(heard.length, 1, "once");
    assert.equal((await rt.getJob(job.id)).status, "failed");
  },

  "a running job delivered again after its process stopped twice is not run again": async (
    { db, runtime },
  ) => {
    let runs = 0;
    const def = defineActor({
      name: "g10.job",
      ...part,
      key: (i) => `g10:${i.id}`,
      handler: () => {
        runs++;
      },
    });
    const rt = await runtime([def], { start: false });
    const { job } = await rt.enqueue("g10.job", { id: "a" });
    await crashedWhileRunning(db, job.id, { attempts: 2, leaseLosses: 1, started: true });
    // A push transport (QStash) delivers it again, since the crashed delivery never answered.
    assert.deepEqual(await rt.deliver(job.id), { status: "failed" });
    assert.equal(runs, 0);
    assert.equal(((await rt.getJob(job.id)).error as { code: string }).code, "POISON_JOB");

    const { job: once } = await rt.enqueue("g10.job", { id: "b" });
    await crashedWhileRunning(db, once.id, { attempts: 1 });
    assert.deepEqual(await rt.deliver(once.id), { status: "succeeded" });
    const [row] = await db.query<{ lease_losses: number }>(
      "SELECT lease_losses FROM troupe_jobs WHERE id = $1",
      [once.id],
    );
    assert.equal(row!.lease_losses, 1, "the first stop is counted, and the job runs again");
    assert.equal(runs, 1);
  },

  "a handler still running when its runtime stops gives its lease back": async (
    { db, runtime },
  ) => {
    const { promise: released, resolve: release } = Promise.withResolvers<void>();
    const { promise: returned, resolve: returnedNow } = Promise.withResolvers<void>();
    const def = defineActor({
      name: "g11.job",
      ...part,
      key: (i) => `g11:${i.id}`,
      // Ignores its signal on purpose: runs on until the test releases it.
      handler: async () => {
        await released;
        returnedNow();
      },
    });
    const rt = await runtime([def], { leaseMs: 60_000 });
    const { job } = await rt.enqueue("g11.job", { id: "a" });
    try {
      await waitFor(async () => (await rt.getJob(job.id)).status === "running");
      await rt.stop(100);
      const api = await runtime([def], { start: false });
      assert.equal(await api.reap(), 1, "requeued at once, not after its lease");
      const [row] = await db.query<{ status: string; lease_losses: number }>(
        "SELECT status, lease_losses FROM troupe_jobs WHERE id = $1",
        [job.id],
      );
      assert.deepEqual(row, { status: "queued", lease_losses: 0 });
    } finally {
      release();
      await returned;
    }
  },

  "a suspect that had not begun when its process stopped again is requeued, not poisoned": async (
    { db, runtime },
  ) => {
    const def = defineActor({
      name: "g12.job",
      ...part,
      key: (i) => `g12:${i.id}`,
      handler: () => {},
    });
    const api = await runtime([def], { start: false });
    const { job } = await api.enqueue("g12.job", { id: "a" });
    // Claimed beside the job that brought its process down, twice; never begun the second time.
    await crashedWhileRunning(db, job.id, { attempts: 2, leaseLosses: 1, started: false });
    assert.equal(await api.reap(), 1);
    const [row] = await db.query<{ status: string; lease_losses: number }>(
      "SELECT status, lease_losses FROM troupe_jobs WHERE id = $1",
      [job.id],
    );
    assert.deepEqual(row, { status: "queued", lease_losses: 1 });
  },

  "suspects run one at a time and record their start, while other jobs run beside them": async (
    { db, runtime },
  ) => {
    let running = 0;
    let suspectsRunning = 0;
    let most = 0;
    let mostSuspects = 0;
    const def = defineActor({
      name: "g13.job",
      input: z.object({ id: z.string(), suspect: z.boolean() }),
      key: (i) => `g13:${i.id}`,
      handler: async (input) => {
        running++;
        if (input.suspect) suspectsRunning++;
        most = Math.max(most, running);
        mostSuspects = Math.max(mostSuspects, suspectsRunning);
        await sleep(150);
        running--;
        if (input.suspect) suspectsRunning--;
      },
    });
    const api = await runtime([def], { start: false });
    const ids: string[] = [];
    for (const [i, suspect] of [true, true, true, false, false].entries()) {
      const { job } = await api.enqueue("g13.job", { id: `j${i}`, suspect });
      if (suspect) {
        await db.query("UPDATE troupe_jobs SET lease_losses = 1 WHERE id = $1", [job.id]);
      }
      ids.push(job.id);
    }
    const rt = await runtime([def]);
    for (const id of ids) assert.equal((await settle(rt, id)).status, "succeeded");
    assert.equal(mostSuspects, 1, "one suspect at a time");
    assert.ok(most > 1, "other jobs were not held back");
    const marks = await db.query<{ marked: boolean }>(
      `SELECT started_fence IS NOT DISTINCT FROM lease_fence AS marked FROM troupe_jobs
       WHERE id = ANY($1::text[]) ORDER BY id`,
      [ids],
    );
    assert.deepEqual(marks.map((m) => m.marked), [true, true, true, false, false]);
  },

  "an InputError fails the job at once with its code, without a dead letter": async (
    { db, runtime },
  ) => {
    let runs = 0;
    const { heard, actors } = withParent("g6", {
      retries: 4,
      handler: () => {
        runs++;
        throw new InputError("CSV_TOO_WIDE", "the CSV has 2000 columns; at most 1600 fit", {
          details: { columns: 2000 },
        });
      },
    });
    const rt = await runtime(actors);
    const { job } = await rt.enqueue("g6.part", { id: "wide" });
    const done = await settle(rt, job.id);
    assert.equal(done.status, "failed");
    assert.equal(done.attempts, 1);
    const error = done.error as { code: string; message: string; retryable: boolean };
    assert.equal(error.code, "CSV_TOO_WIDE");
    assert.equal(error.retryable, false);
    assert.match(error.message, /2000 columns/);
    await waitFor(() => heard.length > 0, { what: "onDeadLetter to hear of the input error" });
    assert.deepEqual(heard, [{ id: "wide", code: "CSV_TOO_WIDE" }]);
    assert.equal(runs, 1, "not retried");
    const letters = await db.query("SELECT 1 FROM troupe_dead_letters WHERE job_id = $1", [
      job.id,
    ]);
    assert.equal(letters.length, 0);
  },

  "an idempotency key reused with another request is refused": async ({ db, runtime }) => {
    const def = defineActor({
      name: "g7.once",
      input: z.object({ a: z.number(), b: z.string().default("x") }),
      handler: () => {},
    });
    const rt = await runtime([def], { start: false });
    const first = await rt.enqueue("g7.once", { a: 1, b: "y" }, { idempotencyKey: "k1" });
    assert.equal(first.created, true);
    const same = await rt.enqueue("g7.once", { b: "y", a: 1 }, { idempotencyKey: "k1" });
    assert.equal(same.created, false, "the same request in another key order");
    assert.equal(same.job.id, first.job.id);
    await assert.rejects(
      () => rt.enqueue("g7.once", { a: 2, b: "y" }, { idempotencyKey: "k1" }),
      (err) =>
        err instanceof IdempotencyKeyReusedError &&
        err.code === "IDEMPOTENCY_KEY_REUSED",
    );
    // A default filled in is the same request.
    const defaulted = await rt.enqueue("g7.once", { a: 3 }, { idempotencyKey: "k2" });
    const explicit = await rt.enqueue("g7.once", { a: 3, b: "x" }, { idempotencyKey: "k2" });
    assert.equal(explicit.job.id, defaulted.job.id);

    const count = async () =>
      (await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM troupe_jobs WHERE actor = 'g7.once'",
      ))[0]!.n;
    const before = await count();
    await assert.rejects(
      () =>
        rt.enqueueMany("g7.once", [{ a: 10 }, { a: 1, b: "changed" }], {
          idempotencyKeys: ["k3", "k1"],
        }),
      IdempotencyKeyReusedError,
    );
    assert.equal(await count(), before, "all or none");
    const ids = await rt.enqueueMany("g7.once", [{ a: 10 }, { a: 1, b: "y" }], {
      idempotencyKeys: ["k3", "k1"],
    });
    assert.equal(ids[1], first.job.id);
    assert.equal(await count(), before + 1);
  },
});
