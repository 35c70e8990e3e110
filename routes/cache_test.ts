/**
 * Cache routes and health: tenant-scoped stats and invalidation (audited), the admin key's
 * view of all, bad bodies, on the memory and the Upstash store; and a Redis that is down
 * making health `degraded` while requests keep working.
 */
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { InProcessTransport, jsonLogger, Runtime } from "@troupe/runtime";
import { Cache } from "../db/cache/cache.ts";
import { MemoryCacheStore } from "../db/cache/memory.ts";
import { UpstashCacheStore } from "../db/cache/upstash.ts";
import { TenantStore } from "../db/tenants.ts";
import { pgliteTarget } from "../tests/harness.ts";
import { startRedisBridge } from "../tests/fixtures/upstash_redis_bridge.ts";
import { createApp } from "./app.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";

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
  const app = createApp({
    runtime,
    tenants,
    limiter: new MemoryRateLimiter(),
    cache,
    logger: jsonLogger("silent"),
  });
  const call = async (path: string, key: string, init: RequestInit = {}) => {
    const res = await app.request(path, {
      ...init,
      headers: { "x-api-key": key, "content-type": "application/json" },
    });
    return { status: res.status, body: await res.json() };
  };
  return { tdb, a, b, keyA, keyB, tenants, call };
}

/** The cache over each driver: in memory (embedded) and Upstash Redis (production). */
const caches: Record<string, () => Promise<{ cache: Cache; close(): Promise<void> }>> = {
  memory: () =>
    Promise.resolve({ cache: new Cache(new MemoryCacheStore()), close: async () => {} }),
  upstash: async () => {
    const bridge = await startRedisBridge({ token: "s" });
    const redis = new Redis({ url: bridge.url, token: "s", retry: { retries: 0 } });
    const store = new UpstashCacheStore(redis, { namespace: `t:${crypto.randomUUID()}:` });
    return { cache: new Cache(store), close: () => bridge.close() };
  },
};

for (const [driver, make] of Object.entries(caches)) {
  Deno.test(
    {
      name: `cache routes [${driver}]: a tenant sees and drops only its own entries; an admin all`,
    },
    async () => {
      const { cache, close } = await make();
      const { tdb, a, b, keyA, keyB, tenants, call } = await setup(cache);
      try {
        await cache.getOrCompute("queryResult", `${a.id}:q:1`, () => Promise.resolve(1));
        await cache.getOrCompute("queryResult", `${a.id}:q:1`, () => Promise.resolve(1));
        await cache.getOrCompute("queryResult", `${b.id}:q:1`, () => Promise.resolve(2));
        await cache.getOrCompute("aggregation", `${b.id}:a:2`, () => Promise.resolve(3));
        const statsA = await call("/api/cache/stats", keyA);
        assert.equal(statsA.status, 200);
        assert.deepEqual(
          [statsA.body.scope, statsA.body.hits, statsA.body.misses, statsA.body.keys],
          ["tenant", 1, 1, 1],
          "tenant a's own lookups and keys, none of b's",
        );
        assert.equal(statsA.body.degraded, false);
        const statsB = await call("/api/cache/stats", keyB);
        assert.deepEqual([statsB.body.hits, statsB.body.misses, statsB.body.keys], [0, 2, 2]);
        const denied = await call("/api/cache/stats?scope=all", keyA);
        assert.equal(denied.status, 403);
        assert.equal(denied.body.error.code, "FORBIDDEN");

        const ops = await tenants.createTenant("ops");
        const adminKey = (await tenants.createKey(ops.id, { admin: true })).key;
        const own = await call("/api/cache/stats", adminKey);
        assert.deepEqual([own.body.scope, own.body.hits, own.body.keys], ["tenant", 0, 0]);
        const all = await call("/api/cache/stats?scope=all", adminKey);
        assert.equal(all.status, 200);
        assert.deepEqual(
          [all.body.scope, all.body.hits, all.body.misses, all.body.keys],
          ["all", 1, 3, 3],
        );
        const detailsA = (await call("/api/health/details", keyA)).body.cache;
        assert.deepEqual(
          [detailsA.scope, detailsA.hits, detailsA.misses, detailsA.hitRate, detailsA.keys],
          ["tenant", 1, 1, 0.5, 1],
          "health details: the key's tenant's cache figures",
        );
        const detailsAll = (await call("/api/health/details", adminKey)).body.cache;
        assert.deepEqual(
          [detailsAll.scope, detailsAll.hits, detailsAll.misses, detailsAll.keys],
          ["all", 1, 3, 3],
          "health details: every tenant's for an admin key",
        );
        // Keys per TTL class: counted by the memory store, not by Redis.
        if (driver === "memory") {
          assert.equal(detailsA.keysByKind.queryResult, 1);
          assert.equal(detailsAll.keysByKind.queryResult, 2);
          assert.equal(detailsAll.keysByKind.aggregation, 1);
          assert.equal(detailsAll.keysByKind.courseOutline, 0);
          assert.deepEqual(statsB.body.keysByKind.queryResult, 1);
        } else {
          assert.equal(detailsAll.keysByKind, null);
          assert.equal(statsB.body.keysByKind, null);
        }
        assert.equal((await call("/api/health", keyA)).body.cache.hits, undefined);

        const inv = await call("/api/cache/invalidate", keyB, {
          method: "POST",
          body: JSON.stringify({ prefix: "" }),
        });
        assert.deepEqual(inv.body, { removed: 2, degraded: false });
        assert.equal((await call("/api/cache/stats", keyA)).body.keys, 1, "a's entry stays");
        const audit = await call("/api/audit", keyB);
        assert.ok(
          audit.body.items.some((e: { action: string }) => e.action === "cache.invalidate"),
        );
        const notAdmin = await call("/api/cache/invalidate", keyA, {
          method: "POST",
          body: JSON.stringify({ prefix: "", scope: "all" }),
        });
        assert.equal(notAdmin.status, 403);
        assert.equal((await call("/api/cache/stats", keyA)).body.keys, 1);
        const everything = await call("/api/cache/invalidate", adminKey, {
          method: "POST",
          body: JSON.stringify({ prefix: "", scope: "all" }),
        });
        assert.deepEqual(everything.body, { removed: 1, degraded: false });
        assert.equal((await call("/api/cache/stats", keyA)).body.keys, 0);

        for (
          const body of [
            "{}",
            '{"prefix": 5}',
            '{"tag":"x","other":1}',
            '{"prefix":"","scope":"some"}',
            "not json",
          ]
        ) {
          const bad = await call("/api/cache/invalidate", keyA, { method: "POST", body });
          assert.equal(bad.status, 400, body);
        }
        assert.equal((await call("/api/cache/stats?scope=every", keyA)).status, 400);
      } finally {
        await tdb.cleanup();
        await close();
      }
    },
  );
}

Deno.test(
  "health: Redis down makes the service degraded, not down",
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
