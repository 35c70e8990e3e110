import assert from "node:assert/strict";
import { ExactCounts } from "./counts.ts";
import { hash64 } from "./hll.ts";

/** Adds each value once, `n` times over; a number as a number with its text. */
function fill(c: ExactCounts, values: readonly (string | number)[], n = 1): void {
  for (let round = 0; round < n; round++) {
    for (const v of values) {
      const s = String(v);
      const [h1, h2] = hash64(s);
      assert.ok(c.add(s, h1!, h2!, 1, 1e6, 1e9, typeof v === "number" ? v : undefined));
    }
  }
}

function entries(c: ExactCounts): [string, number, number | undefined][] {
  return Array.from({ length: c.size }, (_, i) => [c.key(i), c.count(i), c.number(i)]);
}

Deno.test("exact counts: a table that takes a released table's buffers as it grows counts the same", () => {
  const values = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? i * 1.5 : `v${i}`));
  const fresh = new ExactCounts();
  fill(fresh, values, 2);
  const want = entries(fresh);
  assert.equal(want.length, 3000);
  assert.ok(want.every(([, n]) => n === 2));
  // A grown table's buffers go to the next tables, which take them while they are still
  // adding (the strings of the first 128 values are in the small arrays by then).
  fresh.release();
  assert.equal(fresh.size, 0);
  const numbersOnly = Array.from({ length: 500 }, (_, i) => i + 0.25);
  const other = new ExactCounts();
  fill(other, numbersOnly);
  other.release(); // numbers: its buffers carry a numbers array
  const reused = new ExactCounts();
  fill(reused, values, 2);
  assert.deepEqual(entries(reused), want);
  const again = new ExactCounts();
  fill(again, numbersOnly, 3);
  assert.deepEqual(
    entries(again),
    numbersOnly.map((x) => [String(x), 3, x]),
  );
});
