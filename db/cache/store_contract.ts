/**
 * The behaviour every `CacheStore` adapter must have (the invariants in `port.ts`), as one
 * suite that `memory_test.ts` and `upstash_test.ts` run against their adapter.
 */
import assert from "node:assert/strict";
import type { CacheStore } from "./port.ts";

/** A fresh, empty store and how to dispose of it. */
export type OpenStore = () => Promise<{ store: CacheStore; close(): Promise<void> }>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cases: Record<string, (store: CacheStore) => Promise<void>> = {
  "returns exactly what was stored, null when absent": async (store) => {
    const values = [
      "plain",
      "",
      "héllo wörld ✓ 𝄞",
      '{"a":1,"b":[true,null]}',
      "~starts with the mark",
      "123",
      "x".repeat(200_000),
    ];
    for (const [i, v] of values.entries()) await store.set(`v:${i}`, v, 60_000);
    for (const [i, v] of values.entries()) assert.equal(await store.get(`v:${i}`), v);
    assert.equal(await store.get("v:none"), null);
  },

  "set replaces the value and the tags": async (store) => {
    await store.set("r", "one", 60_000, ["t1"]);
    await store.set("r", "two", 60_000, ["t2"]);
    assert.equal(await store.get("r"), "two");
    await store.invalidateTag("t2");
    assert.equal(await store.get("r"), null);
  },

  "entries expire after their TTL": async (store) => {
    await store.set("short", "v", 100);
    await store.set("long", "v", 60_000);
    assert.equal(await store.get("short"), "v");
    await sleep(200);
    assert.equal(await store.get("short"), null);
    assert.equal(await store.get("long"), "v");
    assert.equal((await store.info()).keys, 1);
  },

  "delete counts the keys that were present": async (store) => {
    await store.set("d1", "v", 60_000);
    await store.set("d2", "v", 60_000);
    assert.equal(await store.delete(["d1", "d2", "d3"]), 2);
    assert.equal(await store.get("d1"), null);
    assert.equal(await store.delete([]), 0);
  },

  "invalidatePrefix removes only keys with that literal prefix": async (store) => {
    await store.set("ta:q:1", "v", 60_000);
    await store.set("ta:q:2", "v", 60_000);
    await store.set("tb:q:1", "v", 60_000);
    await store.set("t*:x", "v", 60_000);
    await store.set("t?:x", "v", 60_000);
    assert.equal(await store.invalidatePrefix("ta:"), 2);
    assert.equal(await store.get("ta:q:1"), null);
    assert.equal(await store.get("tb:q:1"), "v");
    assert.equal(await store.invalidatePrefix("t*"), 1, "glob characters are literal");
    assert.equal(await store.get("t?:x"), "v");
    assert.equal(await store.invalidatePrefix("nothing:"), 0);
  },

  "an empty prefix empties the store": async (store) => {
    await store.set("e1", "v", 60_000, ["tag"]);
    await store.set("e2", "v", 60_000);
    assert.equal(await store.invalidatePrefix(""), 2);
    assert.equal((await store.info()).keys, 0);
    assert.equal(await store.invalidateTag("tag"), 0);
  },

  "invalidateTag removes every key stored with the tag, and only those": async (store) => {
    await store.set("g1", "v", 60_000, ["ds:1"]);
    await store.set("g2", "v", 60_000, ["ds:1", "ds:2"]);
    await store.set("g3", "v", 60_000, ["ds:2"]);
    await store.set("g4", "v", 60_000);
    assert.equal(await store.invalidateTag("ds:1"), 2);
    assert.equal(await store.get("g1"), null);
    assert.equal(await store.get("g2"), null);
    assert.equal(await store.get("g3"), "v");
    assert.equal(await store.get("g4"), "v");
    assert.equal(await store.invalidateTag("ds:1"), 0, "the tag is gone");
    assert.equal(await store.invalidateTag("ds:2"), 1);
    assert.equal(await store.invalidateTag("never"), 0);
  },

  "info counts entries, not tags, and reports memory": async (store) => {
    assert.equal((await store.info()).keys, 0);
    await store.set("i1", "v", 60_000, ["a", "b"]);
    await store.set("i2", "v", 60_000, ["a"]);
    const info = await store.info();
    assert.equal(info.keys, 2);
    assert.equal(typeof info.memoryBytes, "number");
    assert.ok(info.memoryBytes! > 0);
  },

  "info with a prefix counts only the keys under it": async (store) => {
    await store.set("tenant-a:q:1", "v", 60_000, ["tenant-a:ds"]);
    await store.set("tenant-a:q:2", "v", 60_000);
    await store.set("tenant-b:q:1", "v", 60_000);
    assert.equal((await store.info("tenant-a:")).keys, 2);
    assert.equal((await store.info("tenant-b:")).keys, 1);
    assert.equal((await store.info("tenant-c:")).keys, 0);
    assert.equal((await store.info("tenant-*")).keys, 0, "a prefix is matched literally");
    const all = await store.info();
    assert.equal(all.keys, 3);
    const one = (await store.info("tenant-b:")).memoryBytes;
    assert.ok(one === null || (one > 0 && one < all.memoryBytes!));
  },

  "ping answers": async (store) => {
    await store.ping();
  },
};

/** Registers the suite for one adapter. */
export function storeContract(name: string, open: OpenStore): void {
  for (const [behaviour, run] of Object.entries(cases)) {
    Deno.test(`cache store [${name}]: ${behaviour}`, async () => {
      const { store, close } = await open();
      try {
        await run(store);
      } finally {
        await close();
      }
    });
  }
}
