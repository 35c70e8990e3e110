/**
 * Pausing an actor: its jobs wait (enqueues accepted, nothing claimed or run, no attempt used)
 * and run after a resume, on the table queue and on push transports (with and without
 * `reschedule`); a pause holds across instances and a resume wakes them at once; instances are
 * recorded by their heartbeat and by the deliveries they take.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "./define.ts";
import { openPglite } from "./drivers/pglite.ts";
import { migrateRuntime } from "./migrate.ts";
import { jsonLogger } from "./ports.ts";
import { Runtime } from "./runtime.ts";
import type { OutgoingMessage, Transport } from "./transport.ts";
import { InProcessTransport } from "./transports/in_process.ts";
import { TableQueueTransport } from "./transports/table_queue.ts";

/** A push transport that can reschedule (as QStash does), counting its reschedules. */
class ReschedulingTransport extends InProcessTransport {
  reschedules = 0;
  reschedule(m: OutgoingMessage): Promise<void> {
    this.reschedules++;
    return this.afterCommit([m]);
  }
}

let runs = 0;
const work = defineActor({
  name: "ops.work",
  input: z.object({ n: z.number() }),
  key: (i) => `ops.work:${i.n}`,
  initialState: () => ({ n: 0 }),
  handler: (input, ctx) => {
    runs++;
    ctx.setState({ n: input.n });
    return input.n;
  },
});
const other = defineActor({ name: "ops.other", input: z.object({}), handler: () => "ran" });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const transports: { name: string; make(db: Awaited<ReturnType<typeof openPglite>>): Transport }[] =
  [
    { name: "table queue", make: (db) => new TableQueueTransport(db, { pollMs: 50 }) },
    { name: "in-process push (busy)", make: () => new InProcessTransport() },
    { name: "push with reschedule", make: () => new ReschedulingTransport() },
  ];

for (const t of transports) {
  Deno.test(`pause (${t.name}): a paused actor's jobs wait, then run after resume with attempts unchanged`, async () => {
    const db = await openPglite();
    await migrateRuntime(db);
    const transport = t.make(db);
    const runtime = new Runtime({
      db,
      actors: [work, other],
      transport,
      logger: jsonLogger("silent"),
      pauseRecheckMs: 1000,
      workerId: "w-ops",
    });
    await runtime.start();
    try {
      runs = 0;
      const paused = await runtime.pause("ops.work", "tester");
      assert.equal(paused.actor, "ops.work");
      assert.equal(paused.pausedBy, "tester");
      const again = await runtime.pause("ops.work", "someone else");
      assert.equal(again.pausedAt, paused.pausedAt, "a second pause keeps the first");
      assert.deepEqual((await runtime.paused()).map((p) => p.actor), ["ops.work"]);
      await assert.rejects(runtime.pause("ops.nope"), /ops\.nope/);

      const ids = await runtime.enqueueMany("ops.work", [{ n: 1 }, { n: 2 }, { n: 3 }]);
      const { job: free } = await runtime.enqueue("ops.other", {});
      await until(async () => (await runtime.getJob(free.id)).status === "succeeded", "other");
      // Deliveries of the paused actor come and go (1 s recheck) without running anything.
      await sleep(1500);
      for (const id of ids) {
        const job = await runtime.getJob(id);
        assert.equal(job.status, "queued", `${id} waits`);
        assert.equal(job.attempts, 0, "no attempt used while paused");
      }
      assert.equal(runs, 0);
      if (transport instanceof ReschedulingTransport) {
        assert.ok(transport.reschedules >= 3, `${transport.reschedules} reschedules`);
      }

      assert.equal(await runtime.resume("ops.work"), true);
      assert.equal(await runtime.resume("ops.work"), false, "resuming twice is harmless");
      assert.deepEqual(await runtime.paused(), []);
      await until(
        async () =>
          (await Promise.all(ids.map((id) => runtime.getJob(id)))).every((j) =>
            j.status === "succeeded"
          ),
        "the jobs after resume",
      );
      for (const id of ids) assert.equal((await runtime.getJob(id)).attempts, 1, id);
      assert.equal(runs, 3, "each ran once");

      // The instance is recorded, with its actors, and the keys name their actor.
      const view = await runtime.workers();
      const me = view.instances.find((i) => i.id === "w-ops");
      assert.ok(me, JSON.stringify(view.instances));
      assert.deepEqual(me.actors, ["ops.work", "ops.other"]);
      assert.equal(me.mode, transport.inTransaction.outbox ? "push" : "pull");
      assert.equal(me.stoppedAt, null);
      const keys = await runtime.actorKeys("ops.work");
      assert.deepEqual(keys.map((k) => k.key), ["ops.work:1", "ops.work:2", "ops.work:3"]);
      assert.deepEqual(keys[0]!.state, { n: 1 });
      assert.equal(keys[0]!.leaseOwner, null, "no live lease after the job");
      const stats = await runtime.actorStats();
      const row = stats.actors.find((a) => a.actor === "ops.work");
      assert.equal(row?.succeeded, 3);
      assert.equal(row?.successRate, 1);
      assert.ok(row!.p50Ms !== null && row!.p50Ms >= 0 && row!.p99Ms! >= row!.p50Ms);
    } finally {
      await runtime.stop();
      const [row] = await db.query<{ stopped: boolean }>(
        "SELECT stopped_at IS NOT NULL AS stopped FROM troupe_workers WHERE id = 'w-ops'",
      );
      assert.equal(row?.stopped, true, "a clean stop is recorded");
      await db.close();
    }
  });
}

Deno.test("pause holds across instances; a resume wakes the other instances' table queues", async () => {
  const db = await openPglite();
  await migrateRuntime(db);
  // The admin's instance runs no actor's jobs (an API role); the worker polls only once a minute,
  // so only the resume's notification can make it look again within the test.
  const api = new Runtime({
    db,
    actors: [work],
    transport: new TableQueueTransport(db, { pollMs: 60_000 }),
    logger: jsonLogger("silent"),
    workerId: "w-api",
  });
  const worker = new Runtime({
    db,
    actors: [work],
    transport: new TableQueueTransport(db, { pollMs: 60_000 }),
    logger: jsonLogger("silent"),
    workerId: "w-worker",
  });
  await worker.start();
  try {
    runs = 0;
    await api.pause("ops.work");
    const ids = await api.enqueueMany("ops.work", [{ n: 7 }, { n: 8 }]);
    await sleep(500);
    for (const id of ids) assert.equal((await worker.getJob(id)).status, "queued");
    assert.equal(runs, 0, "the other instance claimed nothing");
    await api.resume("ops.work");
    await until(
      async () =>
        (await Promise.all(ids.map((id) => worker.getJob(id)))).every((j) =>
          j.status === "succeeded"
        ),
      "the worker after the resume",
      20_000,
    );
    for (const id of ids) assert.equal((await worker.getJob(id)).attempts, 1);
    const seen = (await api.workers()).instances.map((i) => i.id);
    assert.deepEqual(seen, ["w-worker"], "an instance never started writes no row");
  } finally {
    await worker.stop();
    await db.close();
  }
});

Deno.test("a push endpoint without timers is listed by the deliveries it takes", async () => {
  const db = await openPglite();
  await migrateRuntime(db);
  const runtime = new Runtime({
    db,
    actors: [other],
    transport: new InProcessTransport(),
    logger: jsonLogger("silent"),
    workerId: "w-edge",
    backgroundTimers: false,
    leaseMs: 3000, // at most one instance write a second
  });
  await runtime.start();
  try {
    await db.query("DELETE FROM troupe_workers");
    await sleep(1100); // past the least time between two writes (a third of the lease)
    assert.deepEqual((await runtime.workers()).instances, []);
    const { job } = await runtime.enqueue("ops.other", {});
    await until(async () => (await runtime.getJob(job.id)).status === "succeeded", "the job");
    const [me] = (await runtime.workers()).instances;
    assert.equal(me?.id, "w-edge");
    assert.equal(me?.mode, "push");
    assert.ok(me.idleSeconds < 5);
  } finally {
    await runtime.stop();
    await db.close();
  }
});
