/**
 * A stop with a handler still running: past the grace its lease is given back (another
 * instance claims the job at once, not after the lease), and the outbox rows of committed jobs
 * are relayed before the runtime closes.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  defineActor,
  jsonLogger,
  type OutgoingMessage,
  Runtime,
  type Transport,
} from "@troupe/runtime";
import { postgresTarget, waitFor } from "./harness.ts";

/** Set: the next run hangs on `gate` (the long handler a stop finds running). */
let hangNext = false;
const gate = Promise.withResolvers<void>();
const long = defineActor({
  name: "stop.long",
  input: z.object({ n: z.number().int() }),
  key: () => "stop.long:one",
  handler: async (input) => {
    if (hangNext) {
      hangNext = false;
      await gate.promise;
    }
    return input.n;
  },
});

/** A push transport that records what it is handed; `down` makes publish fail. */
function recording() {
  const published: string[] = [];
  const state = { down: false };
  const transport: Transport = {
    name: "recording",
    inTransaction: { outbox: true, notify: false },
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    wake: () => {},
    afterCommit: (messages: readonly OutgoingMessage[]) => {
      if (state.down) return Promise.reject(new Error("transport down"));
      published.push(...messages.map((m) => m.id));
      return Promise.resolve();
    },
  };
  return { transport, published, state };
}

Deno.test(
  { name: "stop gives back a running handler's lease and relays the outbox" },
  async () => {
    const tdb = await postgresTarget.open();
    const a = recording();
    const b = recording();
    const make = (transport: Transport) =>
      new Runtime({
        db: tdb.db,
        actors: [long],
        transport,
        logger: jsonLogger("silent"),
        leaseMs: 60_000,
        backgroundTimers: false,
      });
    const first = make(a.transport);
    const second = make(b.transport);
    let running: Promise<unknown> = Promise.resolve();
    try {
      await first.start();
      const { job } = await first.enqueue(long, { n: 1 });
      hangNext = true;
      running = first.deliver(job.id);
      await waitFor(async () => (await first.getJob(job.id)).status === "running", {
        what: "the long handler to start",
      });
      // A committed job whose publish failed: its message waits in the outbox.
      a.state.down = true;
      await assert.rejects(first.enqueue(long, { n: 2 }), /transport down/);
      const before = await tdb.db.query<{ id: string }>("SELECT job_id AS id FROM troupe_outbox");
      assert.equal(before.length, 1);
      const pending = before[0]!;
      a.state.down = false;

      await first.stop(100);
      assert.ok(a.published.includes(pending.id), "the outbox was relayed at stop");
      const after = await tdb.db.query("SELECT 1 FROM troupe_outbox");
      assert.equal(after.length, 0);

      // The lease is back: another instance runs the job now, without waiting 60 s.
      await second.start();
      const outcome = await second.deliver(job.id);
      assert.equal(outcome.status, "succeeded");
      assert.equal((await second.getJob(job.id)).result, 1);
    } finally {
      gate.resolve();
      // The abandoned handler ends; its commit finds the lease gone.
      await running.catch(() => {});
      await first.stop();
      await second.stop();
      await tdb.cleanup();
    }
  },
);
