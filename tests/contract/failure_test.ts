/**
 * Bounded failure: retries with backoff, dead letters and replay, non-retryable errors,
 * timeouts and cancellation, crash recovery by the reaper. Against PGlite and PostgreSQL.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { ConflictError, defineActor, NonRetryableError, RetryLaterError } from "@troupe/runtime";
import { settle, sleep, waitFor } from "../harness.ts";
import { contractSuite, untilAborted } from "./suite.ts";

/** The parts of a job's error record that say what it was and whether a retry could help. */
function errorOf(job: { error: unknown }): { code: string; retryable: boolean } {
  const { code, retryable } = job.error as { code: string; retryable: boolean };
  return { code, retryable };
}

contractSuite("failure", {
  "RetryLaterError runs the message again at its time without consuming an attempt": async (
    { runtime },
  ) => {
    const times: number[] = [];
    const def = defineActor({
      name: "f0.later",
      input: z.object({ id: z.string() }),
      key: (i) => `f0:${i.id}`,
      retries: 0,
      handler: () => {
        times.push(Date.now());
        if (times.length <= 3) throw new RetryLaterError(300, "upstream said 429");
        return { ok: true };
      },
    });
    const rt = await runtime([def], { leaseMs: 2000 });
    const { job } = await rt.enqueue("f0.later", { id: "a" });
    const seen = await waitFor(async () => {
      const j = await rt.getJob(job.id);
      return j.status === "queued" && j.error ? j : null;
    }, { what: "the job back in the queue with its reason" });
    assert.equal(errorOf(seen).code, "RETRY_LATER");
    const done = await settle(rt, job.id);
    assert.equal(
      done.status,
      "succeeded",
      "three run-again-later with no retries left is no failure",
    );
    assert.equal(done.attempts, 1, "the attempts asked to run later were given back");
    assert.equal(times.length, 4);
    for (let i = 1; i < times.length; i++) {
      assert.ok(times[i]! - times[i - 1]! >= 280, `gap ${i}: ${times[i]! - times[i - 1]!} ms`);
    }
    assert.equal((await rt.listDeadLetters({ actor: "f0.later" })).items.length, 0);
  },
  "failures retry with exponential backoff and end in a dead letter that replays": async (
    { runtime },
  ) => {
    let broken = true;
    const times: number[] = [];
    const def = defineActor({
      name: "f1.flaky",
      input: z.object({ id: z.string() }),
      key: (i) => `f1:${i.id}`,
      retries: 2,
      backoff: { baseMs: 150, factor: 2, jitter: 0 },
      handler: (input) => {
        times.push(Date.now());
        if (broken) throw new Error(`upstream down for ${input.id}`);
        return { ok: true };
      },
    });
    const rt = await runtime([def], { leaseMs: 2000 });
    const { job } = await rt.enqueue("f1.flaky", { id: "a" });
    const failed = await settle(rt, job.id);
    assert.equal(failed.status, "failed");
    assert.equal(failed.attempts, 3);
    assert.equal(times.length, 3);
    // Delays grow: >= 150 ms, then >= 300 ms (poll granularity only adds).
    assert.ok(times[1]! - times[0]! >= 140, `first gap ${times[1]! - times[0]!}`);
    assert.ok(times[2]! - times[1]! >= 290, `second gap ${times[2]! - times[1]!}`);
    assert.match(JSON.stringify(failed.error), /upstream down for a/);

    const { items } = await rt.listDeadLetters({ actor: "f1.flaky" });
    assert.equal(items.length, 1);
    const dl = items[0]!;
    assert.equal(dl.jobId, job.id);
    assert.equal(dl.attempts, 3);
    assert.deepEqual(dl.input, { id: "a" });

    broken = false;
    const replayed = await rt.replay(dl.id);
    assert.equal(replayed.replayOf, job.id);
    assert.equal((await settle(rt, replayed.id)).status, "succeeded");
    const after = (await rt.listDeadLetters({ actor: "f1.flaky" })).items[0]!;
    assert.equal(after.replayJobId, replayed.id);
    assert.ok(after.replayedAt);
    await assert.rejects(() => rt.replay(dl.id), ConflictError);
  },

  "inputs, results and errors keep every character they were written with": async ({ runtime }) => {
    const odd = `quote " backslash \\ brace {} comma , NULL null \u00e9 \u{1F600} \n tab\t`;
    const def = defineActor({
      name: "f.chars",
      input: z.object({ fail: z.boolean(), text: z.string() }),
      key: (i) => `f.chars:${i.fail}`,
      retries: 0,
      handler: ({ fail, text }) => {
        assert.equal(text, odd);
        if (fail) throw new NonRetryableError(odd);
        return { text: odd, list: [odd, null, 1.5], nested: { [odd]: odd } };
      },
    });
    const rt = await runtime([def]);
    const ok = await settle(rt, (await rt.enqueue(def, { fail: false, text: odd })).job.id);
    assert.deepEqual(ok.input, { fail: false, text: odd });
    assert.equal(ok.status, "succeeded");
    assert.deepEqual(ok.result, { text: odd, list: [odd, null, 1.5], nested: { [odd]: odd } });
    const failed = await settle(rt, (await rt.enqueue(def, { fail: true, text: odd })).job.id);
    assert.equal(failed.status, "failed");
    assert.equal((failed.error as { message: string }).message, odd);
  },

  "a non-retryable error dead-letters after one attempt": async ({ runtime }) => {
    let runs = 0;
    const def = defineActor({
      name: "f2.bad",
      input: z.object({}),
      retries: 5,
      handler: () => {
        runs++;
        throw new NonRetryableError("the PDF is encrypted", { code: "PDF_ENCRYPTED" });
      },
    });
    const rt = await runtime([def]);
    const { job } = await rt.enqueue("f2.bad", {});
    const done = await settle(rt, job.id);
    assert.equal(done.status, "failed");
    assert.equal(runs, 1);
    assert.equal((done.error as { code: string }).code, "PDF_ENCRYPTED");
    assert.equal((await rt.listDeadLetters({ actor: "f2.bad" })).items.length, 1);
  },

  "a timeout stops a running handler, discards its effects and is recorded": async (
    { db, runtime },
  ) => {
    await db.query("CREATE TABLE IF NOT EXISTS test_marks (what text)");
    const { promise: released, resolve: release } = Promise.withResolvers<void>();
    const { promise: returned, resolve: returnedNow } = Promise.withResolvers<void>();
    const def = defineActor({
      name: "f3.slow",
      input: z.object({}),
      retries: 0,
      timeoutMs: 200,
      // Ignores its signal on purpose: runs on until the test releases it, then asks for an
      // effect.
      handler: async (_i, ctx) => {
        try {
          await released;
          ctx.effect(async (tx) => {
            await tx.query("INSERT INTO test_marks VALUES ('f3 late effect')");
          });
        } finally {
          returnedNow();
        }
      },
    });
    const rt = await runtime([def]);
    const { job } = await rt.enqueue("f3.slow", {});
    try {
      // Settled while the handler still runs: the runtime did not wait for it.
      const done = await settle(rt, job.id);
      assert.equal(done.status, "failed");
      assert.equal((done.error as { code: string }).code, "TIMEOUT");
    } finally {
      release();
      await returned;
    }
    // Whatever the runtime still had in flight is committed or dropped by its stop.
    await rt.stop(2000);
    const marks = await db.query("SELECT * FROM test_marks WHERE what = 'f3 late effect'");
    assert.equal(marks.length, 0);
  },

  "cancel stops a running handler, and a cancelled queued job never runs": async (
    { runtime },
  ) => {
    let aborted = false;
    let runs = 0;
    const def = defineActor({
      name: "f4.wait",
      input: z.object({ id: z.string() }),
      key: (i) => `f4:${i.id}`,
      handler: async (_i, ctx) => {
        runs++;
        ctx.progress(10, "waiting");
        await new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => {
            aborted = true;
            reject(ctx.signal.reason);
          })
        );
      },
    });
    const rt = await runtime([def]);
    const { job } = await rt.enqueue("f4.wait", { id: "run" });
    await waitFor(async () => (await rt.getJob(job.id)).status === "running");
    const cancelling = await rt.cancel(job.id);
    assert.ok(["running", "cancelled"].includes(cancelling.status));
    const done = await settle(rt, job.id);
    assert.equal(done.status, "cancelled");
    assert.ok(aborted, "the handler's signal was aborted");
    assert.deepEqual(errorOf(done), { code: "CANCELLED", retryable: false });
    await assert.rejects(() => rt.cancel(job.id), ConflictError);

    const later = await rt.enqueue("f4.wait", { id: "later" }, { delayMs: 60_000 });
    const cancelled = await rt.cancel(later.job.id);
    assert.equal(cancelled.status, "cancelled");
    assert.deepEqual(errorOf(cancelled), { code: "CANCELLED", retryable: false });
    await sleep(200);
    assert.equal(runs, 1, "the queued job never ran");
  },

  "a cancel reaches a handler running in another runtime": async ({ runtime }) => {
    const def = untilAborted("f5.wait");
    const worker = await runtime([def], { leaseMs: 900 });
    const api = await runtime([def], { start: false });
    const { job } = await api.enqueue("f5.wait", {});
    await waitFor(async () => (await api.getJob(job.id)).status === "running");
    await api.cancel(job.id);
    const done = await settle(worker, job.id, 5000);
    assert.equal(done.status, "cancelled");
    assert.deepEqual(errorOf(done), { code: "CANCELLED", retryable: false });
  },

  "a job cancelled while it waits for a retry says its error is not retryable": async (
    { runtime },
  ) => {
    const def = defineActor({
      name: "f8.flaky",
      input: z.object({}),
      retries: 3,
      backoff: { baseMs: 60_000, jitter: 0 },
      handler: () => {
        throw new Error("upstream down");
      },
    });
    const rt = await runtime([def]);
    const { job } = await rt.enqueue("f8.flaky", {});
    const waiting = await waitFor(async () => {
      const j = await rt.getJob(job.id);
      return j.status === "queued" && j.attempts === 1 ? j : null;
    }, { what: "the first attempt to fail" });
    assert.deepEqual(errorOf(waiting), { code: "Error", retryable: true });
    const cancelled = await rt.cancel(job.id);
    assert.equal(cancelled.status, "cancelled");
    assert.deepEqual(errorOf(cancelled), { code: "CANCELLED", retryable: false });
  },

  "a cancelled job whose worker died is reaped as cancelled, not retryable": async (
    { db, runtime },
  ) => {
    let runs = 0;
    const def = defineActor({
      name: "f9.job",
      input: z.object({}),
      key: () => "f9:key",
      handler: () => {
        runs++;
      },
    });
    const api = await runtime([def], { start: false });
    const { job } = await api.enqueue("f9.job", {});
    // The worker running it vanished after the cancel was requested, before it acknowledged.
    await db.query(
      `INSERT INTO troupe_actor_state (key, fence, lease_owner, lease_until)
       VALUES ('f9:key', 7, 'dead-worker', now() - interval '1 second')
       ON CONFLICT (key) DO UPDATE SET fence = 7, lease_owner = 'dead-worker',
         lease_until = now() - interval '1 second'`,
    );
    await db.query(
      `UPDATE troupe_jobs SET status = 'running', attempts = 1, lease_owner = 'dead-worker',
         lease_fence = 7, cancel_requested = true WHERE id = $1`,
      [job.id],
    );
    const rt = await runtime([def], { leaseMs: 600 });
    const done = await settle(rt, job.id);
    assert.equal(done.status, "cancelled");
    assert.deepEqual(errorOf(done), { code: "CANCELLED", retryable: false });
    assert.equal(runs, 0);
  },

  "a job whose worker died is requeued by the reaper and completes once": async (
    { db, runtime },
  ) => {
    let runs = 0;
    const def = defineActor({
      name: "f6.job",
      input: z.object({}),
      key: () => "f6:key",
      handler: () => {
        runs++;
        return "done";
      },
    });
    const api = await runtime([def], { start: false });
    const { job } = await api.enqueue("f6.job", {});
    // A worker claimed it, took the lease, then vanished without renewing it.
    await db.query(
      `INSERT INTO troupe_actor_state (key, fence, lease_owner, lease_until)
       VALUES ('f6:key', 7, 'dead-worker', now() - interval '1 second')
       ON CONFLICT (key) DO UPDATE SET fence = 7, lease_owner = 'dead-worker',
         lease_until = now() - interval '1 second'`,
    );
    await db.query(
      `UPDATE troupe_jobs SET status = 'running', attempts = 1, lease_owner = 'dead-worker',
         lease_fence = 7 WHERE id = $1`,
      [job.id],
    );
    const rt = await runtime([def], { leaseMs: 600 });
    const done = await settle(rt, job.id);
    assert.equal(done.status, "succeeded");
    assert.equal(done.attempts, 2, "the crashed attempt counts");
    assert.equal(runs, 1);
  },
  "onDeadLetter messages commit with the final failure, so a fan-in hears of it": async (
    { runtime },
  ) => {
    const heard: { part: number; code: string }[] = [];
    const parent = defineActor({
      name: "f7.parent",
      input: z.object({ part: z.number(), code: z.string() }),
      key: () => "f7:parent",
      handler: (input) => {
        heard.push(input);
      },
    });
    let attempts = 0;
    const part = defineActor({
      name: "f7.part",
      input: z.object({ part: z.number() }),
      key: (i) => `f7:part:${i.part}`,
      retries: 1,
      backoff: { baseMs: 10, maxMs: 20 },
      handler: () => {
        attempts++;
        throw new Error("broken part");
      },
      onDeadLetter: (input, error) => ({
        actor: "f7.parent",
        input: { part: input.part, code: error.code },
      }),
    });
    const rt = await runtime([parent, part]);
    const { job } = await rt.enqueue("f7.part", { part: 3 });
    await waitFor(() => heard.length === 1, { what: "the parent to hear of the failure" });
    assert.deepEqual(heard, [{ part: 3, code: "Error" }]);
    assert.equal(attempts, 2, "only after the last attempt");
    assert.equal((await rt.getJob(job.id)).status, "failed");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(heard.length, 1, "exactly once");
  },
});
