import assert from "node:assert/strict";
import { kllRankError, KllSketch } from "./quantiles.ts";
import { normal, prng, rankError } from "./test_util.ts";

const QS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999];
const EPS = kllRankError(200);

function maxRankError(sketch: KllSketch, data: Float64Array): number {
  const sorted = data.slice().sort();
  let worst = 0;
  for (const q of QS) worst = Math.max(worst, rankError(sorted, q, sketch.quantile(q)!));
  for (let i = 1; i < 100; i++) {
    const x = sorted[Math.floor((i / 100) * sorted.length)]!;
    const { below, atMost } = { below: sorted.indexOf(x), atMost: sorted.lastIndexOf(x) + 1 };
    const est = sketch.rank(x)!;
    const err = est < below / sorted.length
      ? below / sorted.length - est
      : Math.max(0, est - atMost / sorted.length);
    worst = Math.max(worst, err);
  }
  return worst;
}

const r = prng(42);
const N = 200_000;
const datasets: Record<string, Float64Array> = {
  uniform: Float64Array.from({ length: N }, () => r()),
  lognormal: Float64Array.from({ length: N }, () => Math.exp(2 * normal(r))),
  sorted: Float64Array.from({ length: N }, (_, i) => i),
  reversed: Float64Array.from({ length: N }, (_, i) => N - i),
  fewValues: Float64Array.from({ length: N }, () => Math.floor(r() * 7)),
};

Deno.test(`kll: stated rank error ${(EPS * 100).toFixed(2)}% holds for k=200`, () => {
  assert.ok(EPS > 0.013 && EPS < 0.0135);
  for (const [name, data] of Object.entries(datasets)) {
    const s = new KllSketch();
    for (const x of data) s.add(x);
    assert.equal(s.n, N);
    assert.equal(s.min, data.reduce((a, b) => Math.min(a, b)));
    assert.equal(s.max, data.reduce((a, b) => Math.max(a, b)));
    assert.equal(s.quantile(0), s.min);
    assert.equal(s.quantile(1), s.max);
    assert.ok(s.retained < 1000, `${name}: retained ${s.retained}`);
    const err = maxRankError(s, data);
    console.log(`${name}: max rank error ${(err * 100).toFixed(3)}%`);
    assert.ok(err <= EPS, `${name}: rank error ${err}`);
  }
});

Deno.test("kll: merges of 17 parts, in two merge trees, stay within the rank error", () => {
  const data = datasets.lognormal!;
  const parts = Array.from({ length: 17 }, (_, i) => {
    const s = new KllSketch();
    const from = Math.floor((i * N) / 17) + (i % 3) * 101;
    const to = Math.min(N, Math.floor(((i + 1) * N) / 17) + ((i + 1) % 3) * 101);
    for (let j = i === 0 ? 0 : from; j < (i === 16 ? N : to); j++) s.add(data[j]!);
    return s;
  });
  assert.equal(parts.reduce((a, p) => a + p.n, 0), N);
  const chain = parts.reduce((acc, p) => acc.merge(p), new KllSketch());
  let level = parts.map((p) => p.clone()).reverse();
  while (level.length > 1) {
    const next: KllSketch[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? level[i]!.merge(level[i + 1]!) : level[i]!);
    }
    level = next;
  }
  const tree = level[0]!;
  for (const s of [chain, tree]) {
    assert.equal(s.n, N);
    assert.equal(s.min, data.reduce((a, b) => Math.min(a, b)));
    assert.equal(s.max, data.reduce((a, b) => Math.max(a, b)));
    const err = maxRankError(s, data);
    console.log(`merged: max rank error ${(err * 100).toFixed(3)}%`);
    assert.ok(err <= EPS, `rank error ${err}`);
  }
});

Deno.test("kll: exact while nothing was compacted; empty sketch", () => {
  const s = new KllSketch();
  assert.equal(s.quantile(0.5), null);
  assert.equal(s.rank(1), null);
  for (const x of [5, 1, 4, 2, 3]) s.add(x);
  s.add(NaN);
  s.add(Infinity);
  assert.equal(s.n, 5);
  assert.deepEqual([0.2, 0.4, 0.5, 0.6, 0.8].map((q) => s.quantile(q)), [1, 2, 3, 3, 4]);
  assert.equal(s.rank(3), 0.6);
  assert.equal(s.rank(0), 0);
});

Deno.test("kll: deterministic, and JSON restores the full state (RNG included)", () => {
  const data = datasets.uniform!;
  const a = new KllSketch();
  const b = new KllSketch();
  for (let i = 0; i < 50_000; i++) {
    a.add(data[i]!);
    b.add(data[i]!);
  }
  assert.deepEqual(a.toJSON(), b.toJSON());
  const c = KllSketch.fromJSON(JSON.parse(JSON.stringify(a)));
  assert.deepEqual(c.toJSON(), a.toJSON());
  for (let i = 50_000; i < 100_000; i++) {
    a.add(data[i]!);
    c.add(data[i]!);
  }
  assert.deepEqual(c.toJSON(), a.toJSON());
  const other = new KllSketch(100);
  assert.throws(() => a.merge(other), RangeError);
  assert.throws(() => KllSketch.fromJSON({ ...a.toJSON(), levels: [1] }), TypeError);
});
