/**
 * The Upstash store through the REST bridge (tests/fixtures) to the real Redis on
 * 127.0.0.1:6379: the shared store contract, its Redis layout, and the cache over it when
 * Redis is down. Every test uses its own namespace and empties it afterwards.
 */
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { startRedisBridge } from "../../tests/fixtures/upstash_redis_bridge.ts";
import { Cache } from "./cache.ts";
import { storeContract } from "./store_contract.ts";
import { UpstashCacheStore } from "./upstash.ts";

const TOKEN = "cache-store-test";
const namespace = () => `test:cache:${crypto.randomUUID()}:`;

storeContract("upstash", async () => {
  const bridge = await startRedisBridge({ token: TOKEN });
  const store = new UpstashCacheStore({ url: bridge.url, token: TOKEN }, {
    namespace: namespace(),
  });
  return {
    store,
    async close() {
      try {
        await store.invalidatePrefix("");
      } finally {
        await bridge.close();
      }
    },
  };
});

Deno.test("upstash store: keys live under the namespace; tag sets outlive their entries", async () => {
  const bridge = await startRedisBridge({ token: TOKEN });
  const redis = new Redis({ url: bridge.url, token: TOKEN, enableTelemetry: false });
  const ns = namespace();
  const store = new UpstashCacheStore(redis, { namespace: ns, tagGraceMs: 30_000 });
  try {
    await store.set("a:1", "v", 10_000, ["t"]);
    await store.set("a:2", "v", 60_000, ["t"]);
    await store.set("a:3", "v", 5_000, ["t"]);
    const [, keys] = await redis.scan(0, { match: `${ns}*`, count: 1000 });
    assert.deepEqual(keys.sort(), [`${ns}k:a:1`, `${ns}k:a:2`, `${ns}k:a:3`, `${ns}t:t`]);
    const entryTtl = await redis.pttl(`${ns}k:a:2`);
    const tagTtl = await redis.pttl(`${ns}t:t`);
    assert.ok(tagTtl > entryTtl + 25_000, `tag ${tagTtl} ms, entry ${entryTtl} ms`);
    assert.ok(tagTtl <= 90_000, "the TTL grew to the longest entry, not beyond it");
    assert.deepEqual(
      (await redis.smembers(`${ns}t:t`)).sort(),
      keys.filter((k) => k.includes(":k:")),
    );
    // The stored text survives the client's automatic deserialisation in both settings.
    await store.set("json", "42", 60_000);
    assert.equal(await store.get("json"), "42");
    const raw = new Redis({
      url: bridge.url,
      token: TOKEN,
      automaticDeserialization: false,
      enableTelemetry: false,
    });
    assert.equal(await new UpstashCacheStore(raw, { namespace: ns }).get("json"), "42");
    // A value not written by the store reads as a miss.
    await redis.set(`${ns}k:foreign`, "bare");
    assert.equal(await store.get("foreign"), null);
    const info = await store.info();
    assert.equal(info.keys, 5);
    assert.ok(info.memoryBytes! > 100_000, "used_memory of the Redis server");
  } finally {
    await store.invalidatePrefix("");
    await bridge.close();
  }
});

Deno.test("upstash store: prefix invalidation walks many keys in batches", async () => {
  const bridge = await startRedisBridge({ token: TOKEN });
  const store = new UpstashCacheStore({ url: bridge.url, token: TOKEN }, {
    namespace: namespace(),
    batchSize: 50,
  });
  try {
    await Promise.all(Array.from({ length: 300 }, (_, i) => store.set(`p:${i}`, "v", 60_000)));
    await store.set("q:1", "v", 60_000);
    assert.equal((await store.info()).keys, 301);
    assert.equal(await store.invalidatePrefix("p:"), 300);
    assert.equal((await store.info()).keys, 1);
  } finally {
    await store.invalidatePrefix("");
    await bridge.close();
  }
});

Deno.test("cache over upstash: single-flight, hits and tag invalidation shared by instances", async () => {
  const bridge = await startRedisBridge({ token: TOKEN });
  const ns = namespace();
  const one = new Cache(
    new UpstashCacheStore({ url: bridge.url, token: TOKEN }, { namespace: ns }),
  );
  const two = new Cache(
    new UpstashCacheStore({ url: bridge.url, token: TOKEN }, { namespace: ns }),
  );
  try {
    let computed = 0;
    const compute = async () => {
      computed++;
      await new Promise((r) => setTimeout(r, 20));
      return { rows: [1, 2, 3] };
    };
    const all = await Promise.all(
      Array.from(
        { length: 50 },
        () => one.getOrCompute("queryResult", "t1:q:1", compute, { tags: ["t1:ds:1"] }),
      ),
    );
    assert.equal(computed, 1);
    assert.ok(all.every((v) => v.rows.length === 3));
    assert.deepEqual(await two.getOrCompute("queryResult", "t1:q:1", compute), { rows: [1, 2, 3] });
    assert.equal(computed, 1, "the other instance hit what the first stored");
    assert.equal(await two.invalidate({ tag: "t1:ds:1" }), 1);
    await one.getOrCompute("queryResult", "t1:q:1", compute);
    assert.equal(computed, 2, "invalidated for every instance");
    const stats = await two.stats();
    assert.deepEqual([stats.store, stats.hits, stats.misses, stats.keys], ["upstash", 1, 0, 1]);
    assert.equal(stats.keysByKind, null, "Redis keys are not counted per TTL class");
  } finally {
    await one.invalidate({ prefix: "" });
    await bridge.close();
  }
});

Deno.test("cache over upstash: Redis unreachable, requests bypass the cache, degraded", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const bridge = await startRedisBridge({ token: TOKEN, redis: `127.0.0.1:${closedPort}` });
  try {
    const cache = new Cache(
      new UpstashCacheStore({ url: bridge.url, token: TOKEN }, { namespace: namespace() }),
    );
    let computed = 0;
    const compute = () => Promise.resolve({ n: ++computed });
    assert.equal(cache.health(), "ok");
    assert.deepEqual(await cache.getOrCompute("queryResult", "k", compute), { n: 1 });
    assert.equal(cache.health(), "degraded");
    assert.deepEqual(await cache.getOrCompute("queryResult", "k", compute), { n: 2 });
    assert.equal(await cache.invalidate({ prefix: "" }), 0);
    const stats = await cache.stats();
    assert.equal(stats.degraded, true);
    assert.equal(stats.keys, null);
    assert.equal(stats.errors, 1, "the second call bypassed the store instead of failing again");
    assert.equal(stats.bypasses, 2);
    assert.equal(await cache.check(), "degraded");
  } finally {
    await bridge.close();
  }
});

Deno.test("cache over upstash: the bridge stops, then comes back; the cache recovers", async () => {
  let bridge = await startRedisBridge({ token: TOKEN });
  const port = bridge.port;
  const ns = namespace();
  const redis = new Redis({ url: bridge.url, token: TOKEN, retry: false, enableTelemetry: false });
  let now = 0;
  const cache = new Cache(new UpstashCacheStore(redis, { namespace: ns }), {
    retryAfterMs: 5_000,
    now: () => now,
  });
  let computed = 0;
  const compute = () => Promise.resolve(++computed);
  try {
    assert.equal(await cache.getOrCompute("aggregation", "a", compute), 1);
    assert.equal(await cache.getOrCompute("aggregation", "a", compute), 1, "a hit");
    await bridge.close();
    assert.equal(await cache.getOrCompute("aggregation", "a", compute), 2, "computed, not failed");
    assert.equal(cache.degraded, true);
    // Dropped while down: replayed when the store is back, so "a" is not served stale.
    assert.equal(await cache.invalidate({ keys: ["a"] }), 0);
    bridge = await startRedisBridge({ token: TOKEN, port });
    assert.equal(await cache.getOrCompute("aggregation", "a", compute), 3, "still backing off");
    assert.equal(cache.degraded, true);
    now += 5_000;
    assert.equal(await cache.getOrCompute("aggregation", "a", compute), 4, "a miss after replay");
    assert.equal(cache.degraded, false);
    assert.equal(await cache.getOrCompute("aggregation", "a", compute), 4, "a hit again");
    assert.equal(await cache.check(), "ok");
  } finally {
    await cache.invalidate({ prefix: "" });
    await bridge.close();
  }
});
