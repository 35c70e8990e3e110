/** The memory store: the shared store contract, then its LRU bounds, tag index and kind counts. */
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

Deno.test("memory store counts its live keys per kind as they come and go", async () => {
  const clock = fakeClock();
  const store = new MemoryCacheStore({ maxEntries: 4, now: clock.now });
  const kinds = async (prefix?: string) => (await store.info(prefix)).keysByKind;
  assert.deepEqual(await kinds(), {});
  await store.set("t1:q:1", "v", 60_000, ["t1:ds"], "queryResult");
  await store.set("t1:q:2", "v", 60_000, [], "queryResult");
  await store.set("t2:a:1", "v", 1_000, [], "aggregation");
  await store.set("t2:plain", "v", 60_000);
  assert.deepEqual(await kinds(), { queryResult: 2, aggregation: 1 }, "no kind: not counted");
  assert.equal((await store.info()).keys, 4);
  assert.deepEqual(await kinds("t1:"), { queryResult: 2 });
  assert.deepEqual(await kinds("t2:"), { aggregation: 1 });

  // Stored again under another kind: counted once, under the new one.
  await store.set("t1:q:2", "v", 60_000, [], "courseOutline");
  assert.deepEqual(await kinds(), { queryResult: 1, aggregation: 1, courseOutline: 1 });
  // Expiry (swept by info), a tag, a key, a prefix.
  clock.advance(1_000);
  assert.deepEqual(await kinds(), { queryResult: 1, courseOutline: 1 });
  assert.equal(await store.invalidateTag("t1:ds"), 1);
  assert.deepEqual(await kinds(), { courseOutline: 1 });
  await store.set("t3:r:1", "v", 60_000, [], "reportMeta");
  assert.equal(await store.delete(["t1:q:2"]), 1);
  assert.deepEqual(await kinds(), { reportMeta: 1 });
  // Eviction past maxEntries: the least recently used (t2:plain, no kind), then t3:r:1.
  for (const i of [1, 2, 3, 4]) await store.set(`t4:u:${i}`, "v", 60_000, [], "usageReport");
  assert.deepEqual(await kinds(), { usageReport: 4 });
  assert.equal(await store.invalidatePrefix("t4:u:1"), 1);
  assert.deepEqual(await kinds(), { usageReport: 3 });
  // A zero TTL removes the old entry and stores nothing.
  await store.set("t4:u:2", "v", 0, [], "usageReport");
  assert.deepEqual(await kinds(), { usageReport: 2 });
  await store.close();
  assert.deepEqual(await kinds(), {});
});

Deno.test("memory store: the kind counts match its keys after random churn", async () => {
  const clock = fakeClock();
  const store = new MemoryCacheStore({ maxEntries: 50, now: clock.now });
  const kinds = ["queryResult", "aggregation", "datasetMeta"];
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n;
  for (let i = 0; i < 2_000; i++) {
    const key = `t${rand(3)}:k${rand(120)}`;
    const op = rand(10);
    if (op < 6) await store.set(key, "v", 100 + rand(5_000), [`tag${rand(5)}`], kinds[rand(3)]);
    else if (op === 6) await store.delete([key]);
    else if (op === 7) await store.invalidateTag(`tag${rand(5)}`);
    else if (op === 8) await store.invalidatePrefix(`t${rand(3)}:k${rand(12)}`);
    else clock.advance(rand(500));
    if (i % 100 === 99) {
      const all = await store.info();
      const counted = Object.values(all.keysByKind!).reduce((a, b) => a + b, 0);
      assert.equal(counted, all.keys, `after ${i + 1} operations`);
      for (const t of ["t0:", "t1:", "t2:"]) {
        const one = await store.info(t);
        assert.equal(Object.values(one.keysByKind!).reduce((a, b) => a + b, 0), one.keys);
      }
    }
  }
});
