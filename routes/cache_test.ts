/**
 * Cache routes and health: stats, tenant-scoped invalidation (audited), bad bodies, and a
 * Redis that is down making health `degraded` while requests keep working.
 */
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { jsonLogger } from "../actors/runtime/ports.ts";
import { Runtime } from "../actors/runtime/runtime.ts";
import { InProcessTransport } from "../actors/transports/in_process.ts";
import { Cache } from "../db/cache/cache.ts";
import { MemoryCacheStore } from "../db/cache/memory.ts";
import { UpstashCacheStore } from "../db/cache/upstash.ts";
import { TenantStore } from "../db/tenants.ts";
import { pgliteTarget } from "../tests/harness.ts";
import { startRedisBridge } from "../tests/fixtures/upstash_redis_bridge.ts";
import { createApp } from "./app.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function setup(cache: Cache) {
  const tdb = await pgliteTarget.open();
  const runtime = new Runtime({
    db: tdb.db,
    actors: [],
    transport: new InProcessTransport(),
    logger: jsonLogger("silent"),
  });
  const tenants = new TenantStore(tdb.db);
  const a = await tenants.createTenant("a");
  const b = await tenants.createTenant("b");
  const keyA = (await tenants.createKey(a.id)).key;
  const keyB = (await tenants.createKey(b.id)).key;
  const app = createApp({ runtime, tenants, cache, logger: jsonLogger("silent") });
  const call = async (path: string, key: string, init: RequestInit = {}) => {
    const res = await app.request(path, {
      ...init,
      headers: { "x-api-key": key, "content-type": "application/json" },
    });
    return { status: res.status, body: await res.json() };
  };
  return { tdb, a, b, keyA, keyB, call };
}

Deno.test(
  { name: "cache routes: stats and tenant-scoped, audited invalidation", ...opts },
  async () => {
    const cache = new Cache(new MemoryCacheStore());
    const { tdb, a, b, keyA, keyB, call } = await setup(cache);
    try {
      await cache.getOrCompute("queryResult", `${a.id}:q:1`, () => Promise.resolve(1));
      await cache.getOrCompute("queryResult", `${a.id}:q:1`, () => Promise.resolve(1));
      await cache.getOrCompute("queryResult", `${b.id}:q:1`, () => Promise.resolve(2));
      const stats = await call("/api/cache/stats", keyA);
      assert.equal(stats.status, 200);
      assert.deepEqual(
        [stats.body.hits, stats.body.misses, stats.body.keys, stats.body.degraded],
        [1, 2, 2, false],
      );
      assert.equal(typeof stats.body.memoryBytes, "number");

      const inv = await call("/api/cache/invalidate", keyB, {
        method: "POST",
        body: JSON.stringify({ prefix: "" }),
      });
      assert.deepEqual(inv.body, { removed: 1, degraded: false });
      assert.equal((await call("/api/cache/stats", keyA)).body.keys, 1, "tenant a's entry stays");
      const audit = await call("/api/audit", keyB);
      assert.ok(audit.body.items.some((e: { action: string }) => e.action === "cache.invalidate"));

      for (const body of ["{}", '{"prefix": 5}', '{"tag":"x","other":1}', "not json"]) {
        const bad = await call("/api/cache/invalidate", keyA, { method: "POST", body });
        assert.equal(bad.status, 400, body);
      }
    } finally {
      await tdb.cleanup();
    }
  },
);

Deno.test(
  { name: "health: Redis down makes the service degraded, not down", ...opts },
  async () => {
    const bridge = await startRedisBridge({ token: "h" });
    const redis = new Redis({ url: bridge.url, token: "h", retry: { retries: 0 } });
    const cache = new Cache(
      new UpstashCacheStore(redis, { namespace: `t:${crypto.randomUUID()}:` }),
    );
    const { tdb, keyA, call } = await setup(cache);
    try {
      const up = await call("/api/health", keyA);
      assert.equal(up.status, 200);
      assert.equal(up.body.status, "ok");
      assert.deepEqual(up.body.cache, { status: "ok", store: "upstash" });
      await bridge.close();
      const down = await call("/api/health", keyA);
      assert.equal(down.status, 200);
      assert.equal(down.body.status, "degraded");
      assert.equal(down.body.cache.status, "degraded");
      assert.equal(down.body.database.status, "ok");
      const stats = await call("/api/cache/stats", keyA);
      assert.equal(stats.status, 200);
      assert.equal(stats.body.degraded, true);
    } finally {
      await tdb.cleanup();
    }
  },
);
