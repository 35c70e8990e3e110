import assert from "node:assert/strict";
import { hash64 } from "./hll.ts";
import { selectNth, TopK } from "./topk.ts";
import { prng } from "./test_util.ts";

/** Zipf-like stream over `distinct` values. */
function zipf(n: number, distinct: number, seed: number): string[] {
  const r = prng(seed);
  return Array.from({ length: n }, () => `v${Math.floor(Math.pow(distinct, r()) - 1)}`);
}

function exactCounts(values: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

function assertBounds(t: TopK, truth: Map<string, number>, n: number): void {
  assert.ok(t.error <= n / (Math.floor(t.capacity / 2) + 1), `error ${t.error}`);
  for (const [v, f] of truth) {
    const c = t.count(v);
    assert.ok(c <= f && f <= c + t.error, `${v}: ${c} ≤ ${f} ≤ ${c} + ${t.error}`);
  }
}

Deno.test("topk: exact counts while the distinct values fit the capacity", () => {
  const values = zipf(10_000, 50, 1);
  const truth = exactCounts(values);
  assert.ok(truth.size <= 64);
  const t = new TopK(64);
  for (const v of values) t.add(v);
  assert.equal(t.error, 0);
  assert.equal(t.size, truth.size);
  const expected = [...truth].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 5);
  assert.deepEqual(t.top(5), expected.map(([value, count]) => ({ value, count, error: 0 })));
});

Deno.test("topk: Misra–Gries bounds hold beyond capacity, heavy hitters are kept", () => {
  const values = zipf(100_000, 20_000, 2);
  const truth = exactCounts(values);
  const t = new TopK(64);
  for (const v of values) t.add(v);
  assert.ok(t.error > 0);
  assert.ok(t.size <= 64);
  assertBounds(t, truth, values.length);
  const top = t.top(3).map((e) => e.value);
  const trueTop = [...truth].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([v]) => v);
  assert.deepEqual(top, trueTop);
});

Deno.test("topk: merge keeps the bounds and is exact when the union fits", () => {
  const values = zipf(60_000, 5_000, 3);
  const parts = Array.from({ length: 17 }, () => new TopK(64));
  values.forEach((v, i) => parts[(i * 7) % 17]!.add(v));
  const merged = parts.reduce((a, p) => a.merge(p), new TopK(64));
  assert.equal(merged.n, values.length);
  assertBounds(merged, exactCounts(values), values.length);

  const small = zipf(5_000, 40, 4);
  const a = new TopK(64);
  const b = new TopK(64);
  small.forEach((v, i) => (i % 2 ? a : b).add(v));
  const whole = new TopK(64);
  for (const v of small) whole.add(v);
  assert.deepEqual(b.merge(a).toJSON(), whole.toJSON());
  assert.throws(() => whole.merge(new TopK(32)), RangeError);
});

Deno.test("topk: canonical JSON, independent of insertion order; exact round trip", () => {
  const values = zipf(3_000, 30, 5);
  const a = new TopK(64);
  const b = new TopK(64);
  for (const v of values) a.add(v);
  for (const v of [...values].reverse()) b.add(v);
  assert.deepEqual(a.toJSON(), b.toJSON());
  const big = new TopK(16);
  for (const v of zipf(20_000, 1000, 6)) big.add(v);
  const back = TopK.fromJSON(JSON.parse(JSON.stringify(big)));
  assert.deepEqual(back.toJSON(), big.toJSON());
  assert.equal(back.count("v0"), big.count("v0"));
  assert.throws(() => TopK.fromJSON({ ...big.toJSON(), items: [["x", 1], ["x", 2]] }), TypeError);
  assert.throws(() => new TopK(1), RangeError);
});

Deno.test("selectNth gives the k-th smallest, as sorting does", () => {
  let seed = 11;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  for (let trial = 0; trial < 500; trial++) {
    const n = 1 + (next() % 130);
    // Few distinct values in some trials: ties are the purge's usual case.
    const spread = trial % 3 === 0 ? 4 : 1000;
    const a = Float64Array.from({ length: n }, () => 1 + (next() % spread));
    const sorted = a.slice().sort();
    const k = next() % n;
    assert.equal(selectNth(a, n, k), sorted[k], `n=${n} k=${k}`);
  }
});

Deno.test("topk: loadCounts keeps the bounds and reads only the survivors' values", () => {
  const load = (truth: Map<string, number>) => {
    const entries = [...truth];
    const hashes = entries.map(([v]) => hash64(v));
    let read = 0;
    const t = new TopK(64);
    t.loadCounts({
      size: entries.length,
      count: (i) => entries[i]![1],
      key: (i) => (read++, entries[i]![0]),
      h1: (i) => hashes[i]![0],
      h2: (i) => hashes[i]![1],
    });
    return { t, read };
  };
  const values = zipf(50_000, 5_000, 8);
  const truth = exactCounts(values);
  const { t, read } = load(truth);
  assert.equal(t.n, values.length);
  assert.ok(t.error > 0);
  assertBounds(t, truth, values.length);
  assert.ok(read <= 32, `${read} values read`);
  const trueTop = [...truth].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([v]) => v);
  assert.deepEqual(t.top(3).map((e) => e.value), trueTop);
  // Within the capacity: every count exact.
  const few = exactCounts(zipf(2_000, 40, 9));
  const exact = load(few).t;
  assert.equal(exact.error, 0);
  for (const [v, c] of few) assert.equal(exact.count(v), c);
  assert.throws(() => exact.loadCounts({ ...exact, size: 0 } as never), Error);
});
