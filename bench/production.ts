/**
 * Production mode on this machine, through the local stand-ins (tests/fixtures):
 * - end-to-end no-op messages/s through QStash (stand-in: signed HTTP deliveries, flow
 *   control per key) into the Troupe webhook, over Neon's WebSocket driver (bridge) to the
 *   real PostgreSQL; for comparison the table queue on the same PostgreSQL in the same run;
 * - cache hit latency through the Upstash REST bridge to the real Redis, next to the
 *   in-memory store.
 *
 *   deno run -A bench/production.ts [--n 5000] [--keys 256] [--hits 5000]
 *
 * The stand-ins run in this process and share its two cores: the figures are a floor for
 * what the real services (on other machines) give.
 */
import { parseArgs } from "node:util";
import { Client, Receiver } from "@upstash/qstash";
import { Redis } from "@upstash/redis";
import { z } from "zod";
import {
  defineActor,
  jsonLogger,
  Runtime,
  type SqlDatabase,
  TableQueueTransport,
  type Transport,
} from "@troupe/runtime";
import { QStashTransport } from "@troupe/runtime/transports/qstash";
import { Cache } from "../db/cache/cache.ts";
import { MemoryCacheStore } from "../db/cache/memory.ts";
import { UpstashCacheStore } from "../db/cache/upstash.ts";
import { migrate } from "../db/migrate.ts";
import { openNeon } from "@troupe/runtime/neon";
import { TenantStore } from "../db/tenants.ts";
import { createApp } from "../routes/app.ts";
import { createPgDatabase } from "../tests/harness.ts";
import { startNeonBridge } from "../tests/fixtures/neon_bridge.ts";
import { startQStash } from "../tests/fixtures/qstash_server.ts";
import { startRedisBridge } from "../tests/fixtures/upstash_redis_bridge.ts";
import { pct } from "./stats.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "5000" },
    keys: { type: "string", default: "256" },
    hits: { type: "string", default: "5000" },
    json: { type: "string", default: "bench/results/production.json" },
  },
});
const N = Number(args.n);
const KEYS = Number(args.keys);
const HITS = Number(args.hits);

const noop = defineActor({
  name: "bench.noop",
  input: z.object({ i: z.number().int() }),
  key: (input) => `bench:${input.i % KEYS}`,
  handler: () => {},
});

async function succeeded(db: SqlDatabase): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM troupe_jobs WHERE status = 'succeeded'",
  );
  return row!.n;
}

async function runMessages(
  db: SqlDatabase,
  transport: Transport,
  extra?: (runtime: Runtime) => Promise<() => Promise<void>>,
): Promise<{ rate: number; check: string }> {
  const runtime = new Runtime({ db, actors: [noop], transport, logger: jsonLogger("error") });
  await runtime.start();
  const stopExtra = extra ? await extra(runtime) : async () => {};
  try {
    const t0 = performance.now();
    for (let start = 0; start < N; start += 500) {
      await runtime.enqueueMany(
        "bench.noop",
        Array.from({ length: Math.min(500, N - start) }, (_, j) => ({ i: start + j })),
      );
    }
    const deadline = Date.now() + 600_000;
    while (await succeeded(db) < N) {
      if (Date.now() > deadline) throw new Error("did not finish in time");
      await new Promise((r) => setTimeout(r, 50));
    }
    const rate = N / ((performance.now() - t0) / 1000);
    const [r] = await db.query<{ ledger: number; retried: number }>(
      `SELECT (SELECT count(*)::int FROM troupe_processed_messages) AS ledger,
              (SELECT count(*)::int FROM troupe_jobs WHERE attempts > 1) AS retried`,
    );
    // A pushed message writes a ledger row with its success; a pulled one does not (its job
    // row is its only copy), and every job has succeeded once the loop above ends.
    const ledger = transport.inTransaction.outbox ? N : 0;
    const check = `${r!.ledger === ledger ? "PASS" : "FAIL"} (ledger ${r!.ledger}, retried ${
      r!.retried
    })`;
    return { rate, check };
  } finally {
    await stopExtra();
    await runtime.stop();
  }
}

async function qstashMessages(): Promise<{ rate: number; check: string }> {
  const neon = await startNeonBridge();
  const pg = await createPgDatabase();
  const db = openNeon(pg.url, { max: 20, wsProxy: neon.wsProxy });
  await migrate(db);
  const keys = { token: "bench", current: "sig_bench_current", next: "sig_bench_next" };
  const qstash = await startQStash({
    token: keys.token,
    currentSigningKey: keys.current,
    nextSigningKey: keys.next,
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const publicUrl = `http://127.0.0.1:${port}`;
  const client = new Client({ baseUrl: qstash.url, token: keys.token });
  try {
    return await runMessages(db, new QStashTransport({ client, publicUrl }), (runtime) => {
      const app = createApp({
        limiter: new MemoryRateLimiter(),
        runtime,
        tenants: new TenantStore(db),
        logger: jsonLogger("error"),
        webhooks: {
          receiver: new Receiver({ currentSigningKey: keys.current, nextSigningKey: keys.next }),
          publicUrl,
          db,
        },
      });
      const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, app.fetch);
      return Promise.resolve(() => server.shutdown());
    });
  } finally {
    await qstash.close();
    await db.close();
    await neon.close();
    await pg.drop();
  }
}

async function tableQueueMessages(): Promise<{ rate: number; check: string }> {
  const neon = await startNeonBridge();
  const pg = await createPgDatabase();
  const db = openNeon(pg.url, { max: 20, wsProxy: neon.wsProxy });
  await migrate(db);
  try {
    return await runMessages(db, new TableQueueTransport(db));
  } finally {
    await db.close();
    await neon.close();
    await pg.drop();
  }
}

async function cacheHits(cache: Cache): Promise<{ p50: number; p99: number; perSecond: number }> {
  const key = `bench:${crypto.randomUUID()}`;
  const value = { rows: Array.from({ length: 20 }, (_, i) => ({ id: i, name: `row ${i}` })) };
  await cache.getOrCompute("queryResult", key, () => Promise.resolve(value));
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < HITS; i++) {
    const s = performance.now();
    await cache.getOrCompute("queryResult", key, () => Promise.reject(new Error("miss")));
    times.push(performance.now() - s);
  }
  const total = performance.now() - t0;
  await cache.invalidate({ prefix: key });
  return {
    p50: pct(times, 0.5),
    p99: pct(times, 0.99),
    perSecond: HITS / (total / 1000),
  };
}

const qstash = await qstashMessages();
const table = await tableQueueMessages();
const bridge = await startRedisBridge({ token: "bench" });
const upstash = await cacheHits(
  new Cache(
    new UpstashCacheStore(new Redis({ url: bridge.url, token: "bench" }), {
      namespace: `bench:${crypto.randomUUID()}:`,
    }),
  ),
);
await bridge.close();
const memory = await cacheHits(new Cache(new MemoryCacheStore()));

const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
console.log(
  `\n${
    N.toLocaleString("en-US")
  } no-op messages over ${KEYS} keys, PostgreSQL through the Neon driver ` +
    `(Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores shared with the stand-ins)\n`,
);
console.log("| transport | msgs/s end to end | exactly-once check |");
console.log("|---|---|---|");
console.log(
  `| QStash stand-in (signed webhooks, flow control per key) | ${
    fmt(qstash.rate)
  } | ${qstash.check} |`,
);
console.log(`| table queue, same database | ${fmt(table.rate)} | ${table.check} |`);
console.log(`\ncache hits, ${fmt(HITS)} sequential reads of one 20-row query result\n`);
console.log("| store | p50 ms | p99 ms | hits/s (one at a time) |");
console.log("|---|---|---|---|");
for (
  const [name, r] of [["Upstash REST bridge -> Redis", upstash], ["in-memory", memory]] as const
) {
  console.log(`| ${name} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${fmt(r.perSecond)} |`);
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  args.json,
  JSON.stringify({ at: new Date().toISOString(), n: N, qstash, table, upstash, memory }, null, 2),
);
Deno.exit(0);
