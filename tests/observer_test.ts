/**
 * What the runtime tells its observer (the metrics port): each committed attempt with its
 * outcome, dead letters, heartbeats; and the bounded queue-depth reading. PGlite, table queue.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  type DeadLetterReason,
  defineActor,
  type JobOutcome,
  jsonLogger,
  NonRetryableError,
  Runtime,
  type RuntimeObserver,
  TableQueueTransport,
} from "@troupe/runtime";
import { pgliteTarget, waitFor } from "./harness.ts";

class Recorder implements RuntimeObserver {
  finished: [string, JobOutcome, number][] = [];
  dead: [string, DeadLetterReason][] = [];
  heartbeats: string[] = [];
  jobFinished(actor: string, outcome: JobOutcome, ms: number) {
    this.finished.push([actor, outcome, ms]);
  }
  deadLettered(actor: string, reason: DeadLetterReason) {
    this.dead.push([actor, reason]);
  }
  heartbeat(workerId: string) {
    this.heartbeats.push(workerId);
  }
}

Deno.test(
  { name: "the observer hears each committed attempt, dead letter and heartbeat" },
  async () => {
    const tdb = await pgliteTarget.open();
    const observer = new Recorder();
    let flakyRuns = 0;
    const actors = [
      defineActor({
        name: "o.slow",
        input: z.object({ n: z.number() }),
        key: (i) => `o.slow:${i.n}`,
        handler: async () => {
          await new Promise((r) => setTimeout(r, 30));
          return null;
        },
      }),
      defineActor({
        name: "o.flaky",
        input: z.object({}),
        retries: 1,
        backoff: { baseMs: 10, jitter: 0 },
        handler: () => {
          flakyRuns++;
          throw new Error("down");
        },
      }),
      defineActor({
        name: "o.bad",
        input: z.object({}),
        handler: () => {
          throw new NonRetryableError("no", { code: "NO" });
        },
      }),
    ];
    const runtime = new Runtime({
      db: tdb.db,
      actors,
      transport: new TableQueueTransport(tdb.db, { pollMs: 20 }),
      logger: jsonLogger("silent"),
      leaseMs: 1000,
      observer,
    });
    await runtime.start();
    try {
      await runtime.enqueue("o.slow", { n: 1 });
      await runtime.enqueue("o.slow", { n: 2 });
      await runtime.enqueue("o.flaky", {});
      await runtime.enqueue("o.bad", {});
      await waitFor(() => observer.finished.length >= 5 && observer.dead.length >= 2, {
        what: "five attempts and two dead letters",
      });
      const count = (actor: string, outcome: JobOutcome) =>
        observer.finished.filter(([a, o]) => a === actor && o === outcome).length;
      assert.equal(count("o.slow", "succeeded"), 2);
      assert.equal(count("o.flaky", "retry"), 1);
      assert.equal(count("o.flaky", "failed"), 1);
      assert.equal(count("o.bad", "failed"), 1);
      assert.equal(flakyRuns, 2);
      assert.ok(
        observer.finished.filter(([a]) => a === "o.slow").every(([, , ms]) => ms >= 25),
        "the handler's time is reported",
      );
      assert.deepEqual(observer.dead.sort(), [["o.bad", "failed"], ["o.flaky", "failed"]]);
      await waitFor(() => observer.heartbeats.length > 0, { what: "a heartbeat" });
      assert.equal(observer.heartbeats[0], runtime.workerId);
    } finally {
      await runtime.stop();
      await tdb.cleanup();
    }
  },
);

Deno.test({
  name: "queueDepths counts queued jobs per actor up to its limit, with the oldest due wait",
}, async () => {
  const tdb = await pgliteTarget.open();
  const handler = () => null;
  const actors = ["q.a", "q.b"].map((name) =>
    defineActor({ name, input: z.object({ n: z.number() }), key: (i) => `${name}:${i.n}`, handler })
  );
  // Not started: nothing claims the jobs.
  const runtime = new Runtime({
    db: tdb.db,
    actors,
    transport: new TableQueueTransport(tdb.db),
    logger: jsonLogger("silent"),
  });
  try {
    for (let n = 0; n < 3; n++) await runtime.enqueue("q.a", { n });
    await runtime.enqueue("q.b", { n: 0 }, { delayMs: 60_000 });
    // The first q.a job has been due for 90 s.
    await tdb.db.query(
      "UPDATE troupe_jobs SET run_at = now() - interval '90 seconds' WHERE actor = 'q.a' AND input->>'n' = '0'",
    );
    const all = await runtime.queueDepths(100);
    assert.equal(all.capped, false);
    const a = all.actors.find((r) => r.actor === "q.a")!;
    const b = all.actors.find((r) => r.actor === "q.b")!;
    assert.equal(a.depth, 3);
    assert.ok(a.oldestSeconds >= 89 && a.oldestSeconds < 120, String(a.oldestSeconds));
    assert.equal(b.depth, 1);
    assert.equal(b.oldestSeconds, 0, "a delayed job is not late");

    const capped = await runtime.queueDepths(2);
    assert.equal(capped.capped, true);
    assert.equal(capped.actors.reduce((n, r) => n + r.depth, 0), 2, "reads no more than the limit");
  } finally {
    await tdb.cleanup();
  }
});

Deno.test(
  { name: "a message the transport gave up on is an undeliverable dead letter" },
  async () => {
    const tdb = await pgliteTarget.open();
    const observer = new Recorder();
    const runtime = new Runtime({
      db: tdb.db,
      actors: [defineActor({ name: "u.x", input: z.object({}), handler: () => null })],
      transport: new TableQueueTransport(tdb.db),
      logger: jsonLogger("silent"),
      observer,
    });
    try {
      const { job } = await runtime.enqueue("u.x", {});
      assert.equal(
        await runtime.giveUp(job.id, { code: "X", message: "gave up" }),
        "dead-lettered",
      );
      assert.equal(await runtime.giveUp(job.id, { code: "X", message: "again" }), "finished");
      assert.deepEqual(observer.dead, [["u.x", "undeliverable"]]);
      assert.deepEqual(observer.finished, [], "no attempt ran");
    } finally {
      await tdb.cleanup();
    }
  },
);

Deno.test(
  { name: "jobs the reaper dead-letters are reported as poison or lease_expired" },
  async () => {
    const tdb = await pgliteTarget.open();
    const observer = new Recorder();
    const runtime = new Runtime({
      db: tdb.db,
      actors: [
        defineActor({
          name: "r.x",
          input: z.object({ n: z.number() }),
          key: (i) => `r.x:${i.n}`,
          handler: () => null,
        }),
      ],
      transport: new TableQueueTransport(tdb.db),
      logger: jsonLogger("silent"),
      maxLeaseLosses: 2,
      observer,
    });
    try {
      const last = (await runtime.enqueue("r.x", { n: 1 })).job.id;
      const poison = (await runtime.enqueue("r.x", { n: 2 })).job.id;
      const again = (await runtime.enqueue("r.x", { n: 3 })).job.id;
      // Running under a lease no process holds: on its last attempt; a suspect that lost its
      // lease once before; an early attempt (requeued, not dead).
      await tdb.db.query(
        `UPDATE troupe_jobs SET status = 'running', lease_owner = 'gone', lease_fence = 1,
         attempts = CASE WHEN id = $1 THEN max_attempts ELSE 1 END,
         lease_losses = CASE WHEN id = $2 THEN 1 ELSE 0 END,
         started_fence = CASE WHEN id = $2 THEN 1 END
       WHERE id = ANY($3::text[])`,
        [last, poison, [last, poison, again]],
      );
      assert.equal(await runtime.reap(), 3);
      assert.deepEqual(observer.dead.sort(), [["r.x", "lease_expired"], ["r.x", "poison"]]);
      assert.equal((await runtime.getJob(again)).status, "queued");
    } finally {
      await tdb.cleanup();
    }
  },
);
