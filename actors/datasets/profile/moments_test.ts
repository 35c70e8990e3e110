import assert from "node:assert/strict";
import { Moments } from "./moments.ts";
import { normal, prng, relDiff } from "./test_util.ts";

function twoPass(xs: number[]): { mean: number; m2: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, m2: xs.reduce((a, x) => a + (x - mean) ** 2, 0) };
}

const r = prng(1);
const data = Array.from({ length: 50_000 }, () => 1e6 + 1000 * normal(r)); // large offset

Deno.test("moments: Welford matches a two-pass computation", () => {
  const m = new Moments();
  for (const x of data) m.add(x);
  const ref = twoPass(data);
  assert.equal(m.count, data.length);
  assert.equal(m.min, Math.min(...data));
  assert.equal(m.max, Math.max(...data));
  assert.ok(relDiff(m.mean, ref.mean) < 1e-12);
  assert.ok(relDiff(m.variance!, ref.m2 / data.length) < 1e-9);
  assert.ok(relDiff(m.sampleVariance!, ref.m2 / (data.length - 1)) < 1e-9);
  assert.ok(relDiff(m.stddev!, Math.sqrt(ref.m2 / data.length)) < 1e-9);
  assert.ok(relDiff(m.sampleStddev!, Math.sqrt(ref.m2 / (data.length - 1))) < 1e-9);
});

Deno.test("moments: Chan merge of uneven parts equals one pass", () => {
  const whole = new Moments();
  for (const x of data) whole.add(x);
  const cuts = [0, 1, 7, 1000, 1001, 30_000, data.length];
  const parts = cuts.slice(1).map((end, i) => {
    const m = new Moments();
    for (const x of data.slice(cuts[i], end)) m.add(x);
    return m;
  });
  const merged = parts.reduceRight((acc, p) => acc.merge(p), new Moments());
  assert.equal(merged.count, whole.count);
  assert.equal(merged.min, whole.min);
  assert.equal(merged.max, whole.max);
  assert.ok(relDiff(merged.mean, whole.mean) < 1e-12);
  assert.ok(relDiff(merged.variance!, whole.variance!) < 1e-9);
});

Deno.test("moments: empty, nulls, non-finite, -0 and small counts", () => {
  const m = new Moments();
  assert.equal(m.variance, null);
  assert.equal(m.sampleVariance, null);
  assert.deepEqual(m.toJSON(), { count: 0, nulls: 0, min: null, max: null, mean: 0, m2: 0 });
  m.addNull();
  m.add(NaN);
  m.add(Infinity);
  m.add(-0);
  assert.equal(m.nulls, 3);
  assert.equal(m.count, 1);
  assert.ok(Object.is(m.min, 0));
  assert.equal(m.variance, 0);
  assert.equal(m.sampleVariance, null);
  m.add(2);
  assert.equal(m.sampleVariance, 2);
  assert.equal(new Moments().merge(m).toJSON().nulls, 3);
});

Deno.test("moments: JSON round trip is exact and validated", () => {
  const m = new Moments();
  for (const x of data.slice(0, 999)) m.add(x);
  m.addNull();
  const back = Moments.fromJSON(JSON.parse(JSON.stringify(m)));
  assert.deepEqual(back.toJSON(), m.toJSON());
  assert.equal(back.mean, m.mean);
  assert.throws(() => Moments.fromJSON({ ...m.toJSON(), count: -1 }), TypeError);
  assert.throws(() => Moments.fromJSON({ ...m.toJSON(), min: null }), TypeError);
});
