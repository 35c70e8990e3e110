/**
 * The front a healthFirst start serves (routes/front.ts): the health check before the full app,
 * the same answer as the full app's, and every other request held for the full app, loaded once.
 */
import assert from "node:assert/strict";
import { jsonLogger, Runtime, TableQueueTransport } from "@troupe/runtime";
import { openPglite } from "@troupe/runtime/pglite";
import { migrate } from "../db/migrate.ts";
import { TenantStore } from "../db/tenants.ts";
import { databaseWriteProbe } from "../db/write_probe.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";
import { createApp } from "./app.ts";
import { frontApp } from "./front.ts";
import type { FetchHandler, ServeInfo } from "./serve.ts";

const info: ServeInfo = { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } };
const get = (path: string) => new Request(`http://troupe.test${path}`);

Deno.test("frontApp answers the health check before the full app, as the full app does", async () => {
  const db = await openPglite();
  try {
    await migrate(db);
    let loads = 0;
    const front = frontApp({
      subject: {
        db,
        transport: { name: "table-queue" },
        health: () => Promise.reject(new Error("not asked")),
      },
      health: { probes: [databaseWriteProbe(db)] },
      load: () => {
        loads++;
        return Promise.reject(new Error("not loaded by a health check"));
      },
    });
    const v1 = await front.fetch(get("/api/v1/health"), info);
    const alias = await front.fetch(get("/api/health"), info);
    await front.answered;
    assert.equal(loads, 0);
    assert.equal(front.full, null);
    assert.equal(v1.status, 200);
    assert.equal(alias.status, 200);
    assert.ok(v1.headers.get("x-request-id"));
    assert.equal(v1.headers.get("deprecation"), null);
    assert.match(alias.headers.get("deprecation") ?? "", /^@\d+$/);
    const early = await v1.json();
    await alias.body?.cancel();

    // The full app's answer, over the same database: the same fields and values.
    const runtime = new Runtime({
      db,
      actors: [],
      transport: new TableQueueTransport(db, { pollMs: 50 }),
      logger: jsonLogger("silent"),
    });
    const app = createApp({
      limiter: new MemoryRateLimiter(),
      runtime,
      tenants: new TenantStore(db),
      logger: jsonLogger("silent"),
      health: { probes: [databaseWriteProbe(db)] },
    });
    const full = await (await app.request("/api/v1/health")).json();
    assert.deepEqual(early, full);
    assert.equal(early.status, "ok");
    assert.equal(early.writes.status, "ok");
  } finally {
    await db.close();
  }
});

Deno.test("frontApp loads the full app once, on the first other request, and then serves from it", async () => {
  const db = await openPglite();
  try {
    await migrate(db);
    let loads = 0;
    const { promise: gate, resolve: open } = Promise.withResolvers<void>();
    const full: FetchHandler = (req) => new Response(`full ${new URL(req.url).pathname}`);
    const front = frontApp({
      subject: { db, transport: { name: "qstash" }, health: () => Promise.reject(new Error()) },
      load: async () => {
        loads++;
        await gate;
        return full;
      },
    });
    const waiting = [
      front.fetch(get("/api/v1/jobs"), info),
      front.fetch(get("/api/v1/datasets"), info),
    ];
    // The health check is not held behind the loading app.
    const health = await front.fetch(get("/api/v1/health"), info);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).transport, "qstash");
    open();
    const answers = await Promise.all(waiting.map(async (r) => await (await r).text()));
    assert.deepEqual(answers, ["full /api/v1/jobs", "full /api/v1/datasets"]);
    assert.equal(loads, 1);
    assert.equal(front.full, full);
    assert.equal(
      await (await front.fetch(get("/api/v1/health"), info)).text(),
      "full /api/v1/health",
    );
    assert.equal(await front.start(), full);
    assert.equal(loads, 1);
  } finally {
    await db.close();
  }
});

Deno.test("frontApp: a failed load fails the requests waiting for it and later ones", async () => {
  const db = await openPglite();
  try {
    let loads = 0;
    const front = frontApp({
      subject: { db, transport: { name: "qstash" }, health: () => Promise.reject(new Error()) },
      load: () => {
        loads++;
        return Promise.reject(new Error("compose failed"));
      },
    });
    await assert.rejects(
      async () => await front.fetch(get("/api/v1/jobs"), info),
      /compose failed/,
    );
    await assert.rejects(
      async () => await front.fetch(get("/api/v1/keys"), info),
      /compose failed/,
    );
    assert.equal(loads, 1);
  } finally {
    await db.close();
  }
});

Deno.test("frontApp answers no health check before `ready`, and fails it if `ready` fails", async () => {
  const db = await openPglite();
  try {
    await migrate(db);
    const subject = {
      db,
      transport: { name: "table-queue" },
      health: () => Promise.reject(new Error("not asked")),
    };
    const load = () => Promise.reject(new Error("not loaded"));
    const { promise: ready, resolve } = Promise.withResolvers<void>();
    const front = frontApp({ subject, ready, load });
    let answered = false;
    const pending = Promise.resolve(front.fetch(get("/api/v1/health"), info)).then((res) => {
      answered = true;
      return res;
    });
    // Database round trips have had time to end: only `ready` holds the answer.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(answered, false);
    resolve();
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal((await res.json()).status, "ok");

    const failed = Promise.reject(new Error("migrations missing"));
    failed.catch(() => {});
    const refused = frontApp({ subject, ready: failed, load });
    await assert.rejects(
      Promise.resolve(refused.fetch(get("/api/v1/health"), info)),
      /migrations missing/,
    );
  } finally {
    await db.close();
  }
});
