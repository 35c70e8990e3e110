import assert from "node:assert/strict";
import { GroupCommit } from "./group_commit.ts";

Deno.test("group commit: items added while a batch is written go together in the next", async () => {
  const batches: number[][] = [];
  const g = new GroupCommit<number, number>({
    write: async (items) => {
      batches.push(items);
      await new Promise((r) => setTimeout(r, 20));
      return items.map((i) => i * 10);
    },
  });
  const results = await Promise.all([1, 2, 3, 4, 5].map((i) => g.add(i)));
  assert.deepEqual(results, [10, 20, 30, 40, 50]);
  // The first starts alone; the others waited for it and went in one batch.
  assert.deepEqual(batches, [[1], [2, 3, 4, 5]]);
});

Deno.test("group commit: a failed batch is written item by item, the bad item fails alone", async () => {
  const batches: number[][] = [];
  const g = new GroupCommit<number, string>({
    write: async (items) => {
      batches.push(items);
      await Promise.resolve();
      if (items.includes(3)) throw new Error(`item 3 in ${items.join(",")}`);
      return items.map(String);
    },
  });
  const first = g.add(0);
  const rest = [1, 2, 3, 4].map((i) => g.add(i));
  assert.deepEqual(await first, "0");
  await assert.rejects(() => rest[2]!, /item 3 in 3/);
  assert.deepEqual(await Promise.all([rest[0], rest[1], rest[3]]), ["1", "2", "4"]);
  assert.deepEqual(batches, [[0], [1, 2, 3, 4], [1], [2], [3], [4]]);
});

Deno.test("group commit: batches hold at most maxBatch items, at most `parallel` at once", async () => {
  let running = 0;
  let most = 0;
  const sizes: number[] = [];
  const g = new GroupCommit<number, number>({
    maxBatch: 3,
    parallel: 2,
    write: async (items) => {
      running++;
      most = Math.max(most, running);
      sizes.push(items.length);
      await new Promise((r) => setTimeout(r, 10));
      running--;
      return items;
    },
  });
  const all = Array.from({ length: 10 }, (_, i) => i);
  assert.deepEqual(await Promise.all(all.map((i) => g.add(i))), all);
  assert.deepEqual(most, 2);
  assert.deepEqual(Math.max(...sizes), 3);
  assert.deepEqual(sizes.reduce((a, b) => a + b, 0), 10);
});
