/** The memory store: the shared store contract, then its LRU bounds and tag index. */
import assert from "node:assert/strict";
import { MemoryCacheStore } from "./memory.ts";
import { storeContract } from "./store_contract.ts";

storeContract("memory", () => {
  const store = new MemoryCacheStore();
  return Promise.resolve({ store, close: () => store.close() });
});

/** A clock the test moves. */
function fakeClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

Deno.test("memory store evicts the least recently used entry past maxEntries", async () => {
  const store = new MemoryCacheStore({ maxEntries: 3 });
  for (const k of ["a", "b", "c"]) await store.set(k, "v", 60_000);
  assert.equal(await store.get("a"), "v"); // a is now the most recently used
  await store.set("d", "v", 60_000);
  assert.equal(await store.get("b"), null, "b was the least recently used");
  assert.deepEqual(
    await Promise.all(["a", "c", "d"].map((k) => store.get(k))),
    ["v", "v", "v"],
  );
  assert.equal((await store.info()).keys, 3);
});

Deno.test("memory store stays under maxBytes and skips a value larger than it", async () => {
  const store = new MemoryCacheStore({ maxBytes: 4_000 });
  for (let i = 0; i < 20; i++) await store.set(`k${i}`, "x".repeat(500), 60_000);
  const info = await store.info();
  assert.ok(info.memoryBytes! <= 4_000, `${info.memoryBytes} bytes`);
  assert.ok(info.keys >= 2 && info.keys < 20, `${info.keys} keys`);
  assert.equal(await store.get("k19"), "x".repeat(500), "the newest stays");
  assert.equal(await store.get("k0"), null, "the oldest went");
  await store.set("huge", "x".repeat(10_000), 60_000);
  assert.equal(await store.get("huge"), null);
  assert.equal(await store.get("k19"), "x".repeat(500), "nothing evicted for it");
});

Deno.test("memory store prefers dropping expired entries when full", async () => {
  const clock = fakeClock();
  const store = new MemoryCacheStore({ maxEntries: 2, now: clock.now });
  await store.set("short", "v", 100);
  await store.set("long", "v", 60_000);
  await store.get("short"); // most recently used, but about to expire
  clock.advance(2_000);
  await store.set("new", "v", 60_000);
  assert.equal(await store.get("long"), "v", "the live entry stayed");
  assert.equal(await store.get("new"), "v");
});

Deno.test("memory store expires by its clock and frees the tag index", async () => {
  const clock = fakeClock();
  const store = new MemoryCacheStore({ maxEntries: 2, now: clock.now });
  await store.set("a", "v", 1_000, ["t1", "t2"]);
  assert.equal(store.tagCount, 2);
  clock.advance(999);
  assert.equal(await store.get("a"), "v");
  clock.advance(1);
  assert.equal(await store.get("a"), null);
  assert.equal(store.tagCount, 0, "tags of an expired entry are dropped");

  await store.set("b", "v", 60_000, ["t3"]);
  await store.set("c", "v", 60_000, ["t4"]);
  await store.set("d", "v", 60_000, ["t4"]);
  assert.equal(store.tagCount, 1, "tags of an evicted entry are dropped");
  assert.equal(await store.invalidateTag("t4"), 2);
  assert.equal(store.tagCount, 0);
  assert.equal((await store.info()).memoryBytes, 0);
});

Deno.test("memory store ignores a non-positive TTL and rejects bad limits", async () => {
  const store = new MemoryCacheStore();
  await store.set("k", "old", 60_000);
  await store.set("k", "v", 0);
  assert.equal(await store.get("k"), null, "a zero TTL removes the old value");
  assert.throws(() => new MemoryCacheStore({ maxEntries: 0 }), RangeError);
});
