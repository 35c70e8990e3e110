/**
 * Rate limiters: the in-memory sliding window, and the Upstash one through the REST bridge
 * to the real Redis (shared by two limiter instances, as by two servers; failing open when
 * Redis is down).
 */
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { startRedisBridge } from "../../tests/fixtures/upstash_redis_bridge.ts";
import { MemoryRateLimiter } from "./memory.ts";
import { UpstashRateLimiter } from "./upstash.ts";

Deno.test("memory limiter: a sliding window per rule and id", async () => {
  let now = 60_000 * 100;
  const limiter = new MemoryRateLimiter({ now: () => now });
  const rule = { name: "ip", limit: 3, windowMs: 60_000 };
  const seen = [];
  for (let i = 0; i < 4; i++) seen.push((await limiter.limit(rule, "a")).allowed);
  assert.deepEqual(seen, [true, true, true, false]);
  assert.equal((await limiter.limit(rule, "b")).allowed, true, "ids are apart");
  assert.equal((await limiter.limit({ ...rule, name: "key" }, "a")).allowed, true, "rules too");
  now += 90_000; // halfway through the next window the previous one weighs half: 3 * 0.5 = 1
  assert.equal((await limiter.limit(rule, "a")).allowed, true);
  assert.equal((await limiter.limit(rule, "a")).allowed, true);
  assert.equal((await limiter.limit(rule, "a")).allowed, false);
  now += 120_000;
  const fresh = await limiter.limit(rule, "a");
  assert.deepEqual([fresh.allowed, fresh.remaining], [true, 2]);
});

Deno.test({
  name: "upstash limiter: shared by instances, fails open when Redis is down",
}, async () => {
  const bridge = await startRedisBridge({ token: "rl" });
  const make = () =>
    new UpstashRateLimiter({
      redis: new Redis({ url: bridge.url, token: "rl", retry: { retries: 0 } }),
      prefix: `test:rl:${crypto.randomUUID()}`,
    });
  const one = make();
  const prefix = `test:rl:${crypto.randomUUID()}`;
  const a = new UpstashRateLimiter({ redis: new Redis({ url: bridge.url, token: "rl" }), prefix });
  const b = new UpstashRateLimiter({ redis: new Redis({ url: bridge.url, token: "rl" }), prefix });
  // An hour's window: a sliding window weighs in the previous fixed window's count, so six
  // requests that straddle a window's end can get a fifth through; with an hour they almost never do.
  const rule = { name: "key", limit: 4, windowMs: 3_600_000 };
  const results = [];
  for (let i = 0; i < 6; i++) results.push((await (i % 2 ? a : b).limit(rule, "k1")).allowed);
  assert.deepEqual(results, [true, true, true, true, false, false], "one budget for both");
  await bridge.close();
  const down = await one.limit(rule, "k2");
  assert.equal(down.allowed, true, "fail open");
  assert.equal(one.degraded, true);
});
