/**
 * The QStash transport end to end: the official client publishes to the QStash stand-in
 * (tests/fixtures/qstash_server.ts), which delivers signed webhooks to a real HTTP server
 * running the Troupe app, over real PostgreSQL.
 */
import assert from "node:assert/strict";
import { Client, Receiver } from "@upstash/qstash";
import { z } from "zod";
import {
  defineActor,
  jsonLogger,
  NonRetryableError,
  RetryLaterError,
  Runtime,
} from "@troupe/runtime";
import { QStashTransport } from "@troupe/runtime/transports/qstash";
import { TenantStore } from "../db/tenants.ts";
import { createApp } from "../routes/app.ts";
import { startQStash } from "./fixtures/qstash_server.ts";
import { postgresTarget, waitFor } from "./harness.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "./shared_world.ts";

const opts = SHARED_WORLD_TEST;
const TOKEN = "qstash-test-token";
const CURRENT = "sig_current_0123456789abcdef";
const NEXT = "sig_next_0123456789abcdef";

/** Handler runs per key, to prove two never overlap. */
const running = new Map<string, number>();
let overlaps = 0;

const counter = defineActor({
  name: "q.count",
  input: z.object({ k: z.number().int(), i: z.number().int() }),
  key: (i) => `q.count:${i.k}`,
  initialState: () => ({ n: 0 }),
  handler: async (input, ctx) => {
    const key = `q.count:${input.k}`;
    running.set(key, (running.get(key) ?? 0) + 1);
    if (running.get(key)! > 1) overlaps++;
    await new Promise((r) => setTimeout(r, 2));
    ctx.setState({ n: ctx.state.n + 1 });
    running.set(key, running.get(key)! - 1);
    return ctx.state.n + 1;
  },
});

let failCalls = 0;
const failing = defineActor({
  name: "q.fail",
  input: z.object({ hard: z.boolean() }),
  retries: 2,
  backoff: { baseMs: 50, maxMs: 100 },
  handler: (input) => {
    failCalls++;
    if (input.hard) throw new NonRetryableError("no way");
    throw new Error("flaky");
  },
});

let laterCalls = 0;
const later = defineActor({
  name: "q.later",
  input: z.object({}),
  retries: 0,
  handler: () => {
    laterCalls++;
    if (laterCalls <= 2) throw new RetryLaterError(1000, "upstream said 429");
    return "done";
  },
});

/** Calls of `q.soon` (Date.now() of each), and how many 429s it answers before succeeding. */
const soonCalls: number[] = [];
let soonLaters = 12;
let soonDelayMs = 50;
const soon = defineActor({
  name: "q.soon",
  input: z.object({}),
  retries: 0,
  handler: () => {
    soonCalls.push(Date.now());
    if (soonCalls.length <= soonLaters) throw new RetryLaterError(soonDelayMs, "429");
    return "done";
  },
});

const stuck = defineActor({
  name: "q.stuck",
  input: z.object({}),
  key: () => "q.stuck:held",
  retries: 0,
  handler: () => "never runs while the key is held",
});

const tick = defineActor({
  name: "q.tick",
  input: z.object({ source: z.string() }),
  schedule: "*/10 * * * *",
  scheduleInput: { source: "cron" },
  handler: (input) => input.source,
});

/** Runs of `q.paused`, in order, with the resume between them (see the pause test). */
const pauseEvents: string[] = [];
const pausedWork = defineActor({
  name: "q.paused",
  input: z.object({ n: z.number().int() }),
  key: (i) => `q.paused:${i.n}`,
  retries: 0,
  handler: (input) => {
    pauseEvents.push(`ran ${input.n}`);
    return input.n;
  },
});

async function world({ pauseRecheckMs }: { pauseRecheckMs?: number } = {}) {
  const qstash = await startQStash({
    token: TOKEN,
    currentSigningKey: CURRENT,
    nextSigningKey: NEXT,
    retryDelayMs: () => 20,
  });
  const tdb = await postgresTarget.open();
  const client = new Client({ baseUrl: qstash.url, token: TOKEN });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const publicUrl = `http://127.0.0.1:${port}`;
  const transport = new QStashTransport({ client, publicUrl });
  const runtime = new Runtime({
    db: tdb.db,
    actors: [counter, failing, later, soon, stuck, tick, pausedWork],
    transport,
    logger: jsonLogger("silent"),
    ...(pauseRecheckMs !== undefined ? { pauseRecheckMs } : {}),
  });
  await runtime.start();
  const app = createApp({
    limiter: new MemoryRateLimiter(),
    runtime,
    tenants: new TenantStore(tdb.db),
    logger: jsonLogger("silent"),
    webhooks: {
      receiver: new Receiver({ currentSigningKey: CURRENT, nextSigningKey: NEXT }),
      publicUrl,
      db: tdb.db,
    },
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, app.fetch);
  return {
    qstash,
    tdb,
    client,
    transport,
    runtime,
    publicUrl,
    async close() {
      await runtime.stop();
      await server.shutdown();
      await qstash.close();
      await tdb.cleanup();
    },
  };
}

async function stateOf(w: Awaited<ReturnType<typeof world>>, key: string) {
  const rows = await w.tdb.db.query<{ state: unknown }>(
    "SELECT state FROM troupe_actor_state WHERE key = $1",
    [key],
  );
  return rows[0]?.state;
}

const shared = sharedWorld(world);
const open = shared.open;

Deno.test(
  { name: "messages go through QStash, once each, one at a time per key", ...opts },
  async () => {
    const w = await open();
    const inputs = Array.from({ length: 60 }, (_, i) => ({ k: i % 4, i }));
    const ids = await w.runtime.enqueueMany("q.count", inputs);
    await waitFor(async () => {
      const rows = await w.tdb.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM troupe_jobs WHERE actor = 'q.count' AND status = 'succeeded'",
      );
      return rows[0]!.n === 60;
    }, { timeoutMs: 30_000, what: "60 deliveries" });
    for (let k = 0; k < 4; k++) assert.deepEqual(await stateOf(w, `q.count:${k}`), { n: 15 });
    assert.equal(overlaps, 0);
    const outbox = await w.tdb.db.query("SELECT 1 FROM troupe_outbox");
    assert.equal(outbox.length, 0, "published messages leave the outbox");

    // QStash delivering some of them again (at least once) changes nothing.
    for (const jobId of ids.slice(0, 10)) {
      await w.client.publishJSON({ url: w.transport.destination("q.count"), body: { jobId } });
    }
    await w.qstash.idle();
    for (let k = 0; k < 4; k++) assert.deepEqual(await stateOf(w, `q.count:${k}`), { n: 15 });
  },
);

Deno.test(
  { name: "RetryLaterError comes back through QStash without consuming an attempt", ...opts },
  async () => {
    const w = await open();
    laterCalls = 0;
    const began = Date.now();
    const { job } = await w.runtime.enqueue("q.later", {});
    const done = await waitFor(async () => {
      const j = await w.runtime.getJob(job.id);
      return j.status === "succeeded" || j.status === "failed" ? j : null;
    }, { timeoutMs: 30_000, what: "the job asked to run later to finish" });
    assert.equal(done.status, "succeeded");
    assert.equal(done.attempts, 1);
    assert.equal(laterCalls, 3);
    assert.ok(Date.now() - began >= 1900, "each run came after its time");
  },
);

/** The QStash DLQ entries whose message carried `jobId`. */
async function dlqOf(w: Awaited<ReturnType<typeof world>>, jobId: string) {
  await w.qstash.idle();
  const { messages } = await w.client.dlq.listMessages();
  return messages.filter((m) => m.body?.includes(jobId));
}

async function finished(w: Awaited<ReturnType<typeof world>>, jobId: string) {
  return await waitFor(async () => {
    const j = await w.runtime.getJob(jobId);
    return j.status === "succeeded" || j.status === "failed" ? j : null;
  }, { timeoutMs: 30_000, what: `job ${jobId} to finish` });
}

Deno.test(
  { name: "run-again-later many more times than QStash's retries: one attempt", ...opts },
  async () => {
    const w = await open();
    [soonCalls.length, soonLaters, soonDelayMs] = [0, 12, 50];
    const { job } = await w.runtime.enqueue("q.soon", {});
    const done = await finished(w, job.id);
    assert.equal(done.status, "succeeded");
    assert.equal(done.attempts, 1);
    assert.equal(soonCalls.length, 13);
    // Each reschedule is a new message answered 2xx: none used up QStash's 0 + 3 retries.
    assert.deepEqual(await dlqOf(w, job.id), []);
    assert.equal((await w.runtime.listDeadLetters({ actor: "q.soon" })).items.length, 0);
  },
);

Deno.test(
  { name: "a failed reschedule publish leaves the delivery to QStash's retry", ...opts },
  async () => {
    const w = await open();
    [soonCalls.length, soonLaters, soonDelayMs] = [0, 1, 50];
    let refused = 0;
    w.transport.reschedule = () => {
      refused++;
      delete (w.transport as { reschedule?: unknown }).reschedule; // the prototype's again
      return Promise.reject(new Error("QStash unreachable"));
    };
    const { job } = await w.runtime.enqueue("q.soon", {});
    const done = await finished(w, job.id);
    assert.equal(refused, 1);
    assert.equal(done.status, "succeeded");
    assert.equal(done.attempts, 1);
    assert.equal(soonCalls.length, 2);
  },
);

Deno.test(
  { name: "a delivery before the job's run-again time does not run it early", ...opts },
  async () => {
    const w = await open();
    [soonCalls.length, soonLaters, soonDelayMs] = [0, 1, 2500];
    const { job } = await w.runtime.enqueue("q.soon", {});
    await waitFor(() => soonCalls.length === 1, { what: "the first run" });
    await waitFor(async () => (await w.runtime.getJob(job.id)).status === "queued", {
      what: "the run-again-later to commit",
    });
    // An old message arriving again (QStash delivers at least once).
    await w.client.publishJSON({ url: w.transport.destination("q.soon"), body: { jobId: job.id } });
    const done = await finished(w, job.id);
    assert.equal(done.status, "succeeded");
    assert.equal(done.attempts, 1);
    assert.equal(soonCalls.length, 2);
    assert.ok(soonCalls[1]! - soonCalls[0]! >= 2400, "the second run came at its time");
  },
);

Deno.test({ name: "the publish request maps the actor's policy", ...opts }, async () => {
  const w = await open();
  const req = await w.transport.request({
    id: "job-1",
    actor: "q.fail",
    key: "q.fail:ä/x",
    runAt: new Date(Date.now() + 60_000),
    policy: failing.policy,
  });
  assert.equal(req.url, `${w.publicUrl}/actors/q.fail`);
  assert.equal(req.deduplicationId, "job-1");
  assert.equal(req.retries, 2 + 3);
  assert.equal(req.retryDelay, "min(100, 50 * pow(2, retried))");
  assert.deepEqual(req.body, { jobId: "job-1" });
  assert.equal(req.failureCallback, `${w.publicUrl}/actors/q.fail/failure`);
  assert.match(req.flowControl!.key, /^q\.fail___x-[0-9a-f]{12}$/);
  assert.ok(req.notBefore! >= Math.floor(Date.now() / 1000) + 59);
});

Deno.test(
  { name: "retries end in a dead letter; non-retryable failures stop at once", ...opts },
  async () => {
    const w = await open();
    failCalls = 0;
    const { job } = await w.runtime.enqueue("q.fail", { hard: false });
    const failed = await waitFor(async () => {
      const j = await w.runtime.getJob(job.id);
      return j.status === "failed" ? j : null;
    }, { timeoutMs: 20_000, what: "the flaky job to fail" });
    assert.equal(failed.attempts, 3);
    assert.equal(failCalls, 3);
    const hard = await w.runtime.enqueue("q.fail", { hard: true });
    const hardFailed = await waitFor(async () => {
      const j = await w.runtime.getJob(hard.job.id);
      return j.status === "failed" ? j : null;
    }, { timeoutMs: 20_000 });
    assert.equal(hardFailed.attempts, 1);
    const dls = await w.runtime.listDeadLetters({ actor: "q.fail" });
    assert.deepEqual(dls.items.map((d) => d.jobId).sort(), [job.id, hard.job.id].sort());
    // The last delivery was answered 489: QStash holds it in its DLQ, not retrying.
    await w.qstash.idle();
    const dlq = await w.client.dlq.listMessages();
    assert.ok(dlq.messages.length >= 2, "QStash moved the failed deliveries to its DLQ");
  },
);

Deno.test({
  name: "when QStash gives up on a message, the failure callback dead-letters it",
  ...opts,
}, async () => {
  const w = await open();
  // Another holder keeps the key's lease: every delivery is answered 503 "busy".
  await w.tdb.db.query(
    `INSERT INTO troupe_actor_state (key, fence, lease_owner, lease_until)
     VALUES ('q.stuck:held', 1, 'someone-else', now() + interval '1 hour')`,
  );
  const { job } = await w.runtime.enqueue("q.stuck", {});
  const dead = await waitFor(async () => {
    const j = await w.runtime.getJob(job.id);
    return j.status === "failed" ? j : null;
  }, { timeoutMs: 30_000, what: "QStash to give up" });
  assert.equal((dead.error as { code: string }).code, "DELIVERY_FAILED");
  assert.equal(dead.attempts, 0, "the handler never ran");
  const dls = await w.runtime.listDeadLetters({ actor: "q.stuck" });
  assert.equal(dls.items[0]?.jobId, job.id);
});

Deno.test(
  { name: "a QStash schedule run enqueues the scheduled actor once", ...opts },
  async () => {
    const w = await open();
    const scheduleId = "troupe-q-tick";
    await w.client.schedules.create({
      scheduleId,
      destination: `${w.publicUrl}/schedules/q.tick`,
      cron: "*/10 * * * *",
    });
    await w.qstash.triggerSchedule(scheduleId);
    await w.qstash.triggerSchedule(scheduleId); // the same minute twice: one job
    const jobs = await waitFor(async () => {
      const page = await w.runtime.listJobs({ actor: "q.tick" });
      return page.items.length > 0 && page.items.every((j) => j.status === "succeeded")
        ? page.items
        : null;
    }, { timeoutMs: 15_000, what: "the scheduled job" });
    await w.qstash.idle();
    assert.equal((await w.runtime.listJobs({ actor: "q.tick" })).items.length, 1);
    assert.equal(jobs[0]!.result, "cron");
  },
);

Deno.test(
  { name: "a resumed actor's paused messages are published again at once, not a recheck later" },
  async () => {
    // An hour between the rechecks of a paused actor's deliveries: only the resume can bring
    // its messages back while the test runs.
    const w = await world({ pauseRecheckMs: 3_600_000 });
    try {
      pauseEvents.length = 0;
      const bounced = new Map<string, number>();
      const reschedule = w.transport.reschedule.bind(w.transport);
      w.transport.reschedule = async (m) => {
        await reschedule(m);
        bounced.set(m.id, (bounced.get(m.id) ?? 0) + 1);
      };
      await w.runtime.pause("q.paused");
      const ids = await w.runtime.enqueueMany("q.paused", [{ n: 1 }, { n: 2 }, { n: 3 }]);
      // Each delivery found the actor paused and published its message again, an hour on.
      await waitFor(() => ids.every((id) => bounced.has(id)), {
        timeoutMs: 20_000,
        what: "the paused deliveries",
      });
      for (const id of ids) {
        const job = await w.runtime.getJob(id);
        assert.equal(job.status, "queued");
        assert.equal(job.attempts, 0);
      }
      assert.equal(pauseEvents.length, 0, "nothing ran while paused");

      pauseEvents.push("resumed");
      assert.equal(await w.runtime.resume("q.paused"), true);
      for (const id of ids) {
        const done = await finished(w, id);
        assert.equal(done.status, "succeeded");
        assert.equal(done.attempts, 1, "no attempt used while paused");
      }
      assert.equal(pauseEvents[0], "resumed", "nothing ran before the resume");
      assert.deepEqual(pauseEvents.slice(1).sort(), ["ran 1", "ran 2", "ran 3"]);
    } finally {
      await w.close();
    }
  },
);
