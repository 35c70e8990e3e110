/**
 * Production mode on one machine: two server processes (the real main.ts, env vars only) on
 * different ports behind a round-robin proxy, sharing one PostgreSQL through the Neon
 * WebSocket bridge, one Redis through the Upstash REST bridge, and the QStash stand-in
 * delivering to the proxy. Checks that deliveries spread over both instances, that per-key
 * serialization holds across them, that duplicate deliveries have one effect, that usage
 * committed elsewhere reaches a usage stream on the other instance, and that rate limits are
 * shared.
 */
import assert from "node:assert/strict";
import { Client } from "@upstash/qstash";
import pg from "pg";
import { openPostgres } from "@troupe/runtime/postgres";
import { recordUsage } from "../actors/usage/store.ts";
import { createPgDatabase, sseReader, waitFor, within } from "./harness.ts";
import { startNeonBridge } from "./fixtures/neon_bridge.ts";
import { startQStash } from "./fixtures/qstash_server.ts";
import { startRedisBridge } from "./fixtures/upstash_redis_bridge.ts";
import { startRoundRobinProxy } from "./fixtures/round_robin_proxy.ts";
import { freePort, untilUp } from "./start_task.ts";

const SERVER = new URL("./fixtures/server.ts", import.meta.url).pathname;
const KEY = "mi-test-key-0123456789abcdefghij";
const QSTASH = { token: "mi-qstash", current: "sig_mi_current", next: "sig_mi_next" };

Deno.test({
  name:
    "two instances share Neon, Redis and QStash: spread, serialized per key, once each, shared limits",
}, async () => {
  const database = await createPgDatabase();
  const neon = await startNeonBridge();
  const redis = await startRedisBridge({ token: "mi-redis" });
  const qstash = await startQStash({
    token: QSTASH.token,
    currentSigningKey: QSTASH.current,
    nextSigningKey: QSTASH.next,
    retryDelayMs: () => 50,
  });
  const ports = [freePort(), freePort()];
  const proxy = await startRoundRobinProxy(ports.map((p) => `http://127.0.0.1:${p}`));
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  const servers: Deno.ChildProcess[] = [];
  try {
    // Migrations first, then the test table (the servers would create the schema too).
    const env = (port: number, instance: string): Record<string, string> => ({
      PORT: String(port),
      INSTANCE: instance,
      LOG_LEVEL: "warn",
      DATA_DIR: `/tmp/troupe-mi-unused-${instance}`,
      DATABASE_URL: database.url,
      NEON_WS_PROXY: neon.wsProxy,
      QSTASH_URL: qstash.url,
      QSTASH_TOKEN: QSTASH.token,
      QSTASH_CURRENT_SIGNING_KEY: QSTASH.current,
      QSTASH_NEXT_SIGNING_KEY: QSTASH.next,
      PUBLIC_URL: proxy.url,
      UPSTASH_REDIS_REST_URL: redis.url,
      UPSTASH_REDIS_REST_TOKEN: "mi-redis",
      DEV_API_KEY: KEY,
      RATE_LIMIT_PER_KEY: "300",
      RATE_LIMIT_PER_IP: "10000",
    });
    await admin.query(`CREATE TABLE test_runs (job_id text NOT NULL, key text NOT NULL,
      instance text NOT NULL, started double precision NOT NULL, ended double precision NOT NULL)`);
    for (const [i, port] of ports.entries()) {
      servers.push(
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", SERVER],
          env: env(port, `i${i}`),
          stdout: "null",
          stderr: "inherit",
        }).spawn(),
      );
    }
    for (const [i, port] of ports.entries()) {
      await untilUp(`http://127.0.0.1:${port}/api/health`, servers[i]!);
    }

    // 200 read-modify-writes on 10 keys, enqueued through both instances.
    const headers = { "content-type": "application/json", "x-api-key": KEY };
    const jobIds: string[] = [];
    for (let i = 0; i < 200; i++) {
      // Straight to the instances (alternating); the proxy carries QStash's deliveries only.
      const res = await fetch(`http://127.0.0.1:${ports[i % 2]}/api/actors/mi.rmw/jobs`, {
        method: "POST",
        headers,
        body: JSON.stringify({ input: { key: `k${i % 10}` } }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      jobIds.push((await res.json()).jobId);
    }
    await waitFor(async () => {
      const r = await admin.query("SELECT count(*)::int AS n FROM test_runs");
      return r.rows[0].n === 200;
    }, { timeoutMs: 60_000, intervalMs: 200, what: "200 committed runs" });

    const runs = (await admin.query(
      "SELECT key, instance, started, ended FROM test_runs ORDER BY key, started",
    )).rows as { key: string; instance: string; started: number; ended: number }[];
    const perInstance = new Map<string, number>();
    for (const r of runs) perInstance.set(r.instance, (perInstance.get(r.instance) ?? 0) + 1);
    assert.equal(perInstance.size, 2, `deliveries on both instances: ${[...perInstance]}`);
    for (const [, n] of perInstance) assert.ok(n >= 40, `a fair share each: ${[...perInstance]}`);
    for (let i = 1; i < runs.length; i++) {
      const a = runs[i - 1]!;
      const b = runs[i]!;
      if (a.key === b.key) assert.ok(b.started >= a.ended, `overlapping runs on ${a.key}`);
    }
    const states = (await admin.query(
      "SELECT key, state FROM troupe_actor_state WHERE key LIKE 'mi:%' ORDER BY key",
    )).rows as { key: string; state: { count: number } }[];
    assert.equal(states.length, 10);
    for (const s of states) assert.equal(s.state.count, 20, s.key);

    // QStash delivering finished messages again: acknowledged, no second effect.
    const client = new Client({ baseUrl: qstash.url, token: QSTASH.token });
    for (const jobId of jobIds.slice(0, 20)) {
      await client.publishJSON({ url: `${proxy.url}/actors/mi.rmw`, body: { jobId } });
    }
    await qstash.idle();
    const after = await admin.query("SELECT count(*)::int AS n FROM test_runs");
    assert.equal(after.rows[0].n, 200);

    // A second key for the usage stream below: the reads next use up the first key's budget.
    const made = await fetch(`http://127.0.0.1:${ports[0]}/api/keys`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ name: "usage-stream" }),
    });
    assert.equal(made.status, 201);
    const usageHeaders = { "x-api-key": (await made.json()).key as string };

    // The per-key limit (300/min) is shared: 200 enqueues used most of it, so of 150 reads
    // alternating between the instances some are refused. Were each instance counting alone
    // (~100 enqueues + 75 reads each), none would be.
    const statuses: number[] = [];
    for (let i = 0; i < 150; i++) {
      const res = await fetch(`http://127.0.0.1:${ports[i % 2]}/api/jobs?limit=1`, { headers });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    const ok = statuses.filter((s) => s === 200).length;
    assert.ok(ok >= 90 && ok < 150, `${ok} of 150 reads passed a shared budget of ~100`);
    assert.equal(statuses.filter((s) => s === 429).length, 150 - ok);

    // Usage committed through another connection pool (as a sync on instance A commits it)
    // reaches a stream open on instance B, through the database's NOTIFY.
    const tenant =
      await (await fetch(`http://127.0.0.1:${ports[1]}/api/v1/tenant`, { headers: usageHeaders }))
        .json();
    const streamAbort = new AbortController();
    const stream = await fetch(`http://127.0.0.1:${ports[1]}/api/v1/usage/stream`, {
      headers: { ...usageHeaders, "last-event-id": "0" },
      signal: streamAbort.signal,
    });
    const sse = sseReader(stream);
    sse.all.catch(() => {});
    const writer = openPostgres(database.url, { max: 2 });
    try {
      await writer.transaction((tx) =>
        recordUsage(tx, {
          tenantId: tenant.id,
          sourceId: "src-mi",
          timeZone: "UTC",
          messages: [{
            id: "mi-1",
            timestamp: new Date("2026-12-01T10:00:00Z"),
            creditsCents: 4321n,
            reportId: "r1",
          }],
          reportNames: new Map([["r1", "Weekly"]]),
        })
      );
      const event = await within(
        sse.next((e) => e.event === "usage" && e.data.messageId === "mi-1"),
        30_000,
        "the usage event on instance B",
      );
      assert.equal(event.data.creditsUsed, 43.21);
      assert.equal(event.data.reportName, "Weekly");
    } finally {
      streamAbort.abort();
      await writer.close();
    }
  } finally {
    for (const s of servers) {
      try {
        s.kill("SIGTERM");
      } catch { /* exited */ }
      await s.status;
    }
    await admin.end();
    await proxy.close();
    await qstash.close();
    await redis.close();
    await neon.close();
    await database.drop();
  }
});

Deno.test({
  name: "ROLE=api and ROLE=worker apart: jobs posted to the api run on the worker only",
}, async () => {
  const database = await createPgDatabase();
  const neon = await startNeonBridge();
  const redis = await startRedisBridge({ token: "mi-redis" });
  const qstash = await startQStash({
    token: QSTASH.token,
    currentSigningKey: QSTASH.current,
    nextSigningKey: QSTASH.next,
    retryDelayMs: () => 50,
  });
  const [apiPort, workerPort] = [freePort(), freePort()];
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  const servers: Deno.ChildProcess[] = [];
  try {
    await admin.query(`CREATE TABLE test_runs (job_id text NOT NULL, key text NOT NULL,
      instance text NOT NULL, started double precision NOT NULL, ended double precision NOT NULL)`);
    for (const [role, port] of [["api", apiPort], ["worker", workerPort]] as const) {
      servers.push(
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", SERVER],
          env: {
            ROLE: role,
            PORT: String(port),
            INSTANCE: role,
            LOG_LEVEL: "warn",
            DATA_DIR: `/tmp/troupe-mi-unused-${role}`,
            DATABASE_URL: database.url,
            NEON_WS_PROXY: neon.wsProxy,
            QSTASH_URL: qstash.url,
            QSTASH_TOKEN: QSTASH.token,
            QSTASH_CURRENT_SIGNING_KEY: QSTASH.current,
            QSTASH_NEXT_SIGNING_KEY: QSTASH.next,
            // Deliveries go to the workers; the api instances only publish.
            PUBLIC_URL: `http://127.0.0.1:${workerPort}`,
            UPSTASH_REDIS_REST_URL: redis.url,
            UPSTASH_REDIS_REST_TOKEN: "mi-redis",
            DEV_API_KEY: KEY,
            RATE_LIMIT_PER_KEY: "10000",
            RATE_LIMIT_PER_IP: "10000",
          },
          stdout: "null",
          stderr: "inherit",
        }).spawn(),
      );
      await untilUp(`http://127.0.0.1:${port}/api/health`, servers.at(-1)!);
    }
    const headers = { "content-type": "application/json", "x-api-key": KEY };
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`http://127.0.0.1:${apiPort}/api/actors/mi.rmw/jobs`, {
        method: "POST",
        headers,
        body: JSON.stringify({ input: { key: `r${i % 4}` } }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      await res.body?.cancel();
    }
    await waitFor(async () => {
      const r = await admin.query("SELECT count(*)::int AS n FROM test_runs");
      return r.rows[0].n === 20;
    }, { timeoutMs: 60_000, intervalMs: 200, what: "20 committed runs" });
    const where = await admin.query("SELECT DISTINCT instance FROM test_runs");
    assert.deepEqual(where.rows.map((r) => r.instance), ["worker"]);

    // The worker serves health only; the api takes no deliveries.
    const onWorker = await fetch(`http://127.0.0.1:${workerPort}/api/jobs`, { headers });
    assert.equal(onWorker.status, 404);
    assert.match((await onWorker.json()).error.message, /ROLE=worker/);
    const delivery = await fetch(`http://127.0.0.1:${apiPort}/actors/mi.rmw`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jobId: "x" }),
    });
    assert.equal(delivery.status, 404);
    await delivery.body?.cancel();
    const jobs = await fetch(`http://127.0.0.1:${apiPort}/api/jobs?limit=50`, { headers });
    assert.equal(jobs.status, 200);
    await jobs.body?.cancel();
  } finally {
    for (const s of servers) {
      try {
        s.kill("SIGTERM");
      } catch { /* exited */ }
      await s.status;
    }
    await admin.end();
    await qstash.close();
    await redis.close();
    await neon.close();
    await database.drop();
  }
});
