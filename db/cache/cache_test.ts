/**
 * The cache on both stores (memory, and Upstash through the REST bridge to the real Redis):
 * cache-aside, TTLs, single-flight, invalidation by prefix and tag, stats, and requests that
 * keep working while Redis is down.
 */
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { startRedisBridge } from "../../tests/fixtures/upstash_redis_bridge.ts";
import { Cache, cacheKey } from "./cache.ts";
import { MemoryCacheStore } from "./memory.ts";
import type { CacheStore } from "./port.ts";
import { UpstashCacheStore } from "./upstash.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const stores: Record<string, () => Promise<{ store: CacheStore; close(): Promise<void> }>> = {
  memory: () => Promise.resolve({ store: new MemoryCacheStore(), close: () => Promise.resolve() }),
  upstash: async () => {
    const bridge = await startRedisBridge({ token: "cache-test" });
    const redis = new Redis({ url: bridge.url, token: "cache-test" });
    const namespace = `test:${crypto.randomUUID()}:`;
    const store = new UpstashCacheStore(redis, { namespace });
    return {
      store,
      async close() {
        await store.invalidatePrefix("");
        await bridge.close();
      },
    };
  },
};

for (const [name, make] of Object.entries(stores)) {
  Deno.test(
    { name: `cache [${name}]: cache-aside, TTL, single-flight, invalidation`, ...opts },
    async () => {
      const { store, close } = await make();
      const cache = new Cache(store, { ttl: { queryResult: 300 } });
      try {
        let computed = 0;
        const compute = async () => {
          computed++;
          await new Promise((r) => setTimeout(r, 20));
          return { rows: [1, 2, 3], at: computed };
        };
        const key = cacheKey("tenant-a", "q", "x:y");
        assert.equal(key, "tenant-a:q:x%3Ay");
        const stampede = await Promise.all(
          Array.from(
            { length: 50 },
            () => cache.getOrCompute("queryResult", key, compute, { tags: ["ds:1"] }),
          ),
        );
        assert.equal(computed, 1, "50 concurrent misses computed once");
        assert.ok(stampede.every((v) => v.at === 1));
        assert.deepEqual(await cache.getOrCompute("queryResult", key, compute), {
          rows: [1, 2, 3],
          at: 1,
        });
        assert.equal(computed, 1, "then a hit");

        await new Promise((r) => setTimeout(r, 400));
        await cache.getOrCompute("queryResult", key, compute);
        assert.equal(computed, 2, "expired after its TTL");

        await cache.getOrCompute("aggregation", "tenant-a:agg:1", compute, { tags: ["ds:1"] });
        await cache.getOrCompute("aggregation", "tenant-b:agg:1", compute, { tags: ["ds:2"] });
        // Memory drops exactly what is tagged now; Redis may also drop a key that was tagged
        // before it expired and came back (over-invalidation is safe).
        assert.ok(await cache.invalidate({ tag: "ds:1" }) >= 1);
        await cache.getOrCompute("aggregation", "tenant-b:agg:1", compute);
        const before = computed;
        await cache.getOrCompute("aggregation", "tenant-a:agg:1", compute);
        assert.equal(computed, before + 1, "the tagged entry was dropped");
        assert.ok(await cache.invalidate({ prefix: "tenant-a:" }) >= 1);
        await cache.getOrCompute("aggregation", "tenant-b:agg:1", compute);
        assert.equal(computed, before + 1, "other prefixes stay");

        const stats = await cache.stats();
        assert.equal(stats.store, name);
        assert.ok(stats.hits >= 3 && stats.misses >= 4, JSON.stringify(stats));
        assert.equal(stats.keys, 1);
        assert.equal(stats.degraded, false);
        assert.equal(await cache.check(), "ok");
      } finally {
        await close();
      }
    },
  );
}

Deno.test(
  { name: "cache [upstash]: Redis down, requests bypass the cache and recover", ...opts },
  async () => {
    const bridge = await startRedisBridge({ token: "t" });
    const redis = new Redis({ url: bridge.url, token: "t", retry: { retries: 0 } });
    const cache = new Cache(
      new UpstashCacheStore(redis, { namespace: `test:${crypto.randomUUID()}:` }),
      {
        retryAfterMs: 200,
      },
    );
    let computed = 0;
    const compute = () => Promise.resolve(++computed);
    assert.equal(await cache.getOrCompute("queryResult", "k", compute), 1);
    await bridge.close(); // Redis "down": the REST endpoint no longer answers
    assert.equal(await cache.getOrCompute("queryResult", "k2", compute), 2, "computed, not failed");
    assert.equal(cache.health(), "degraded");
    assert.equal(await cache.getOrCompute("queryResult", "k3", compute), 3);
    assert.equal((await cache.stats()).degraded, true);
    assert.equal(await cache.check(), "degraded");
  },
);

Deno.test("cache [memory]: bounded by entries and bytes", async () => {
  const store = new MemoryCacheStore({ maxEntries: 3, maxBytes: 1000 });
  for (let i = 0; i < 5; i++) await store.set(`k${i}`, "v", 60_000);
  assert.equal((await store.info()).keys, 3);
  assert.equal(await store.get("k0"), null, "least recently used went first");
  await store.set("big", "x".repeat(400), 60_000);
  assert.ok(((await store.info()).memoryBytes ?? 0) <= 1000);
});
