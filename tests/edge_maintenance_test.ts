/**
 * No correctness without requests: with every background timer off (`backgroundTimers:
 * false`, as `BACKGROUND_TIMERS=off`), jobs pushed through QStash (the stand-in, real
 * PostgreSQL, real HTTP) complete exactly once, including one whose worker died holding its
 * lease: the maintenance pass, posted by QStash to `/schedules/system.maintain`, reaps it and
 * publishes it again.
 */
import assert from "node:assert/strict";
import { Client, Receiver } from "@upstash/qstash";
import { z } from "zod";
import { defineActor, jsonLogger, Runtime, type Transport } from "@troupe/runtime";
import { QStashTransport } from "@troupe/runtime/transports/qstash";
import { TenantStore } from "../db/tenants.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";
import { createApp } from "../routes/app.ts";
import { MAINTENANCE_PATH } from "../routes/qstash.ts";
import { startQStash } from "./fixtures/qstash_server.ts";
import { postgresTarget, waitFor } from "./harness.ts";

const TOKEN = "qstash-edge-token";
const CURRENT = "sig_edge_current_0123456789";
const NEXT = "sig_edge_next_0123456789";

/** Handler runs that began, per input `i` (the dead worker's run is not counted). */
const runs = new Map<number, number>();
/** Set: the next run hangs on `gate` (the worker that dies while running it). */
let hangNext = false;
const gate = Promise.withResolvers<void>();

const once = defineActor({
  name: "edge.once",
  input: z.object({ i: z.number().int() }),
  key: (input) => `edge.once:${input.i}`,
  handler: async (input) => {
    if (hangNext) {
      hangNext = false;
      await gate.promise;
      return "the dead worker's result";
    }
    runs.set(input.i, (runs.get(input.i) ?? 0) + 1);
    return input.i;
  },
});

/** A push transport that never delivers: the worker holding it dies before QStash hears. */
const nowhere: Transport = {
  name: "nowhere",
  inTransaction: { outbox: true, notify: false },
  start: () => Promise.resolve(),
  stop: () => Promise.resolve(),
  wake: () => {},
  afterCommit: () => Promise.resolve(),
};

Deno.test(
  { name: "timers off: QStash pushes and the maintenance pass finish every job once" },
  async () => {
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
    const runtime = new Runtime({
      db: tdb.db,
      actors: [once],
      transport: new QStashTransport({ client, publicUrl }),
      logger: jsonLogger("silent"),
      backgroundTimers: false,
    });
    const dead = new Runtime({
      db: tdb.db,
      actors: [once],
      transport: nowhere,
      logger: jsonLogger("silent"),
      leaseMs: 300,
      backgroundTimers: false,
    });
    await runtime.start();
    // Started, with timers off: no heartbeat renews the lease of its hung handler below.
    await dead.start();
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
    try {
      // The worker that dies: it claims a job, its handler hangs, its lease lapses unrenewed.
      const { job: orphan } = await dead.enqueue(once, { i: 99 });
      hangNext = true;
      const lost = dead.deliver(orphan.id);
      await waitFor(async () => {
        const rows = await tdb.db.query<{ lapsed: boolean }>(
          `SELECT s.lease_until < now() AS lapsed FROM troupe_jobs j
           JOIN troupe_actor_state s ON s.key = j.key
           WHERE j.id = $1 AND j.status = 'running'`,
          [orphan.id],
        );
        return rows[0]?.lapsed === true;
      }, { what: "the dead worker's lease to lapse" });

      const ids = await runtime.enqueueMany(once, Array.from({ length: 20 }, (_, i) => ({ i })));
      // QStash's every-minute schedule posting the maintenance pass.
      await client.publishJSON({ url: publicUrl + MAINTENANCE_PATH, body: {} });
      for (const id of [...ids, orphan.id]) {
        await waitFor(async () => {
          const job = await runtime.getJob(id);
          return job.status === "succeeded" ? job : null;
        }, { timeoutMs: 30_000, what: `job ${id} to succeed` });
      }
      await qstash.idle();
      for (let i = 0; i < 20; i++) assert.equal(runs.get(i), 1, `job ${i} ran once`);
      assert.equal(runs.get(99), 1, "the orphan ran once more, here");
      assert.equal((await runtime.getJob(orphan.id)).result, 99);
      const outbox = await tdb.db.query("SELECT 1 FROM troupe_outbox");
      assert.equal(outbox.length, 0);

      // The dead worker wakes up late: its commit is fenced, nothing changes.
      gate.resolve();
      await lost;
      assert.equal((await runtime.getJob(orphan.id)).result, 99);
      assert.equal(runtime.maintenanceFailures, 0);
    } finally {
      gate.resolve();
      await dead.stop();
      await runtime.stop();
      await server.shutdown();
      await qstash.close();
      await tdb.cleanup();
    }
  },
);

const tick = defineActor({
  name: "edge.tick",
  input: z.object({ from: z.string() }),
  schedule: "*/5 * * * *",
  scheduleInput: { from: "cron" },
  handler: (input) => input.from,
});

Deno.test(
  { name: "the maintenance pass fires a schedule due this minute, once" },
  async () => {
    const tdb = await postgresTarget.open();
    const runtime = new Runtime({
      db: tdb.db,
      actors: [tick],
      transport: nowhere,
      logger: jsonLogger("silent"),
      backgroundTimers: false,
    });
    try {
      const due = new Date("2026-03-01T10:05:20Z");
      const first = await runtime.maintenancePass(due);
      assert.deepEqual(first.fired, ["edge.tick"]);
      assert.equal(first.failures, 0);
      // Another scheduler (QStash's own schedule, a second instance's cron) the same minute.
      const again = await runtime.maintenancePass(new Date("2026-03-01T10:05:50Z"));
      assert.deepEqual(again.fired, []);
      const notDue = await runtime.maintenancePass(new Date("2026-03-01T10:07:00Z"));
      assert.deepEqual(notDue.fired, []);
      const jobs = await tdb.db.query("SELECT 1 FROM troupe_jobs WHERE actor = 'edge.tick'");
      assert.equal(jobs.length, 1);
    } finally {
      await tdb.cleanup();
    }
  },
);
