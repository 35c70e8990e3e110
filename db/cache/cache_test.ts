/**
 * Cache-aside over the memory store and over stores that fail: single-flight, TTL classes,
 * invalidation (and its race with a running computation), stats, and degradation with
 * back-off and recovery. The Upstash store has the same tests in `upstash_test.ts`.
 */
import assert from "node:assert/strict";
import { ManualClock } from "@troupe/runtime/testing";
import { Cache, cacheKey, TTL } from "./cache.ts";
import { MemoryCacheStore } from "./memory.ts";
import type { CacheStore, CacheStoreInfo } from "./port.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A memory store that can be switched down (throws) or hung, and counts its calls. */
class FlakyStore implements CacheStore {
  readonly kind = "memory" as const;
  readonly inner = new MemoryCacheStore();
  mode: "up" | "down" | "hung" = "up";
  calls = 0;

  #gate<T>(op: () => Promise<T>): Promise<T> {
    this.calls++;
    if (this.mode === "down") return Promise.reject(new Error("connection refused"));
    if (this.mode === "hung") return new Promise<T>(() => {});
    return op();
  }
  get(key: string) {
    return this.#gate(() => this.inner.get(key));
  }
  set(key: string, value: string, ttlMs: number, tags?: readonly string[], kind?: string) {
    return this.#gate(() => this.inner.set(key, value, ttlMs, tags, kind));
  }
  delete(keys: readonly string[]) {
    return this.#gate(() => this.inner.delete(keys));
  }
  invalidatePrefix(prefix: string) {
    return this.#gate(() => this.inner.invalidatePrefix(prefix));
  }
  invalidateTag(tag: string) {
    return this.#gate(() => this.inner.invalidateTag(tag));
  }
  info(prefix?: string): Promise<CacheStoreInfo> {
    return this.#gate(() => this.inner.info(prefix));
  }
  ping() {
    return this.#gate(() => this.inner.ping());
  }
}

/** A compute function that counts its runs and takes a little while. */
function counted<T>(value: (n: number) => T, ms = 10) {
  const fn = async () => {
    fn.runs++;
    await sleep(ms);
    return value(fn.runs);
  };
  fn.runs = 0;
  return fn;
}

Deno.test("cacheKey joins a tenant and parts, escaping : and %", () => {
  assert.equal(cacheKey("t1", "q", "x:y", 50, "100%"), "t1:q:x%3Ay:50:100%25");
  assert.notEqual(cacheKey("t1", "a:b"), cacheKey("t1", "a", "b"));
  assert.equal(cacheKey("t:1"), "t%3A1");
});

Deno.test("getOrCompute: 50 concurrent misses compute once, then hit", async () => {
  const cache = new Cache(new MemoryCacheStore());
  const compute = counted((n) => ({ rows: [1, 2, 3], run: n }), 20);
  const results = await Promise.all(
    Array.from({ length: 50 }, () => cache.getOrCompute("queryResult", "t1:q:1", compute)),
  );
  assert.equal(compute.runs, 1);
  assert.ok(results.every((r) => r.run === 1 && r.rows.length === 3));
  assert.deepEqual(await cache.getOrCompute("queryResult", "t1:q:1", compute), {
    rows: [1, 2, 3],
    run: 1,
  });
  assert.equal(compute.runs, 1);
  const stats = await cache.stats();
  assert.deepEqual(
    [stats.hits, stats.misses, stats.coalesced, stats.hitRate, stats.keys],
    [1, 1, 49, 0.5, 1],
  );
  assert.equal(typeof stats.memoryBytes, "number");
  assert.equal(stats.store, "memory");
  assert.equal(stats.degraded, false);
});

Deno.test("getOrCompute returns the JSON round trip on a miss as on a hit", async () => {
  const cache = new Cache(new MemoryCacheStore());
  const at = new Date("2024-01-02T03:04:05.000Z");
  const compute = () => Promise.resolve({ at, skip: undefined, n: 1 });
  const miss = await cache.getOrCompute("reportMeta", "k", compute);
  const hit = await cache.getOrCompute("reportMeta", "k", compute);
  assert.deepEqual(miss, { at: "2024-01-02T03:04:05.000Z", n: 1 });
  assert.deepEqual(hit, miss);
});

Deno.test("getOrCompute: a failing compute fails its callers and stores nothing", async () => {
  const cache = new Cache(new MemoryCacheStore());
  let runs = 0;
  const failing = async () => {
    runs++;
    await sleep(5);
    throw new Error("database down");
  };
  const outcomes = await Promise.allSettled(
    Array.from({ length: 5 }, () => cache.getOrCompute("aggregation", "k", failing)),
  );
  assert.equal(runs, 1);
  assert.ok(outcomes.every((o) => o.status === "rejected"));
  assert.equal(await cache.getOrCompute("aggregation", "k", () => Promise.resolve(7)), 7);
  assert.equal(cache.degraded, false, "a compute failure is not a cache failure");
});

Deno.test("TTL classes: defaults, overrides, and expiry", async () => {
  assert.deepEqual(
    Object.keys(TTL).sort(),
    ["aggregation", "courseOutline", "datasetMeta", "queryResult", "reportMeta", "usageReport"],
  );
  const clock = new ManualClock();
  const cache = new Cache(new MemoryCacheStore({ now: clock.now }), { ttl: { queryResult: 80 } });
  assert.equal(cache.ttlOf("queryResult"), 80);
  assert.equal(cache.ttlOf("courseOutline"), TTL.courseOutline);
  const compute = counted((n) => n, 0);
  await cache.getOrCompute("queryResult", "q", compute);
  await cache.getOrCompute("courseOutline", "c", compute);
  clock.advance(79);
  assert.equal(await cache.getOrCompute("queryResult", "q", compute), 1, "not yet expired");
  clock.advance(1);
  assert.equal(await cache.getOrCompute("queryResult", "q", compute), 3, "expired");
  assert.equal(await cache.getOrCompute("courseOutline", "c", compute), 2, "still cached");
});

Deno.test("invalidate by prefix, tag and keys", async () => {
  const cache = new Cache(new MemoryCacheStore());
  const value = () => Promise.resolve("v");
  await cache.getOrCompute("datasetMeta", "ta:ds:1", value, { tags: ["ta:dataset:1"] });
  await cache.getOrCompute("queryResult", "ta:q:1", value, { tags: ["ta:dataset:1"] });
  await cache.getOrCompute("queryResult", "ta:q:2", value, { tags: ["ta:dataset:2"] });
  await cache.getOrCompute("queryResult", "tb:q:1", value, { tags: ["tb:dataset:1"] });
  await cache.getOrCompute("queryResult", "tb:q:2", value);
  assert.equal(await cache.invalidate({ tag: "ta:dataset:1" }), 2);
  assert.equal((await cache.stats()).keys, 3);
  assert.equal(await cache.invalidate({ prefix: "ta:" }), 1);
  assert.equal(await cache.invalidate({ keys: ["tb:q:2", "nope"] }), 1);
  assert.equal(await cache.invalidate({ prefix: "tb:", tag: "tb:dataset:1" }), 1);
  assert.equal((await cache.stats()).keys, 0);
});

Deno.test("an invalidation during a computation keeps its stale value out", async () => {
  const store = new MemoryCacheStore();
  const cache = new Cache(store);
  let version = 1;
  const slow = (ms: number) => async () => {
    const seen = version;
    await sleep(ms);
    return seen;
  };
  const before = cache.getOrCompute("datasetMeta", "k", slow(30));
  await sleep(5);
  version = 2;
  await cache.invalidate({ keys: ["k"] });
  const after = cache.getOrCompute("datasetMeta", "k", slow(60));
  assert.equal(await before, 1, "the caller that started earlier gets what it computed");
  assert.equal(await store.get("k"), null, "but it is not stored");
  assert.equal(await after, 2, "a caller after the invalidation does not join the old flight");
  assert.equal(await cache.getOrCompute("datasetMeta", "k", slow(0)), 2, "2 was stored");
});

Deno.test("a store that throws: values still come back, degraded, back-off, recovery", async () => {
  const store = new FlakyStore();
  let now = 0;
  const errors: unknown[] = [];
  const cache = new Cache(store, {
    retryAfterMs: 5_000,
    now: () => now,
    onError: (e) => errors.push(e),
  });
  const compute = counted((n) => ({ n }), 0);
  assert.deepEqual(await cache.getOrCompute("queryResult", "k", compute), { n: 1 });
  store.mode = "down";
  assert.deepEqual(await cache.getOrCompute("queryResult", "k", compute), { n: 2 });
  assert.equal(cache.degraded, true);
  assert.equal(cache.health(), "degraded");
  assert.equal(errors.length, 1);

  const callsWhileDown = store.calls;
  for (let i = 0; i < 5; i++) await cache.getOrCompute("queryResult", `k${i}`, compute);
  assert.equal(store.calls, callsWhileDown, "the store is skipped during the back-off");
  assert.equal(await cache.invalidate({ prefix: "" }), 0, "remembered, not applied");
  const down = await cache.stats();
  assert.deepEqual(
    [down.degraded, down.keys, down.keysByKind, down.memoryBytes, down.bypasses, down.errors],
    [true, null, null, null, 6, 1],
  );

  now += 5_000;
  assert.deepEqual(await cache.getOrCompute("queryResult", "k", compute), { n: 8 });
  assert.equal(cache.degraded, true, "the probe failed: still down");
  assert.equal(errors.length, 2);

  store.mode = "up";
  assert.equal(await cache.check(), "ok", "a health check probes despite the back-off");
  assert.equal(cache.degraded, false);
  assert.equal(await store.inner.get("k"), null, "the invalidation was replayed on recovery");
  assert.deepEqual(await cache.getOrCompute("queryResult", "k", compute), { n: 9 });
  assert.deepEqual(await cache.getOrCompute("queryResult", "k", compute), { n: 9 }, "a hit");
});

Deno.test("a store that hangs is bounded by the timeout", async () => {
  const store = new FlakyStore();
  store.mode = "hung";
  const cache = new Cache(store, { timeoutMs: 50 });
  const started = performance.now();
  assert.equal(await cache.getOrCompute("queryResult", "k", () => Promise.resolve(1)), 1);
  const took = performance.now() - started;
  assert.ok(took >= 45 && took < 1_000, `${took} ms`);
  assert.equal(cache.degraded, true);
  assert.equal((await cache.stats()).errors, 1);
});

Deno.test("after the back-off a single call probes the store while others bypass", async () => {
  const store = new FlakyStore();
  let now = 0;
  const cache = new Cache(store, { retryAfterMs: 1_000, now: () => now, timeoutMs: 50 });
  store.mode = "down";
  await cache.getOrCompute("queryResult", "a", () => Promise.resolve(1));
  store.mode = "hung";
  now += 1_000;
  const calls = store.calls;
  const values = await Promise.all(
    Array.from(
      { length: 10 },
      (_, i) => cache.getOrCompute("queryResult", `p${i}`, () => Promise.resolve(i)),
    ),
  );
  assert.deepEqual(values, Array.from({ length: 10 }, (_, i) => i));
  assert.equal(store.calls - calls, 1, "one probe");
});

Deno.test("stats count the store's keys per TTL class, of all or of one tenant", async () => {
  const cache = new Cache(new MemoryCacheStore());
  const one = () => Promise.resolve(1);
  await cache.getOrCompute("queryResult", cacheKey("t1", "q", 1), one, { tags: ["t1:ds:1"] });
  await cache.getOrCompute("queryResult", cacheKey("t1", "q", 2), one, { tags: ["t1:ds:1"] });
  await cache.getOrCompute("queryResult", cacheKey("t1", "q", 2), one); // a hit: no new key
  await cache.getOrCompute("aggregation", cacheKey("t1", "a", 1), one);
  await cache.getOrCompute("courseOutline", cacheKey("t2", "course", 1), one);
  const none = Object.fromEntries(Object.keys(TTL).map((k) => [k, 0]));
  const all = await cache.stats();
  assert.equal(all.keys, 4);
  assert.deepEqual(all.keysByKind, { ...none, queryResult: 2, aggregation: 1, courseOutline: 1 });
  assert.deepEqual((await cache.stats("t1")).keysByKind, {
    ...none,
    queryResult: 2,
    aggregation: 1,
  });
  assert.deepEqual((await cache.stats("t2")).keysByKind, { ...none, courseOutline: 1 });
  assert.deepEqual((await cache.stats("t3")).keysByKind, none);
  assert.equal(await cache.invalidate({ tag: "t1:ds:1" }), 2);
  assert.deepEqual((await cache.stats()).keysByKind, {
    ...none,
    aggregation: 1,
    courseOutline: 1,
  });
});

Deno.test("stats: no keys per class from a store that does not count them", async () => {
  // The memory store without its kind counts, as the Redis store reports.
  class TotalOnly extends MemoryCacheStore {
    override async info(prefix?: string): Promise<CacheStoreInfo> {
      const { keys, memoryBytes } = await super.info(prefix);
      return { keys, memoryBytes };
    }
  }
  const store = new TotalOnly();
  const cache = new Cache(store);
  await cache.getOrCompute("queryResult", "t1:q:1", () => Promise.resolve(1));
  const stats = await cache.stats();
  assert.deepEqual([stats.keys, stats.keysByKind], [1, null]);
});
