import assert from "node:assert/strict";
import { hash64, HyperLogLog } from "./hll.ts";
import { prng } from "./test_util.ts";

Deno.test("hll: hash is deterministic, 64-bit, and sensitive to every code unit", () => {
  assert.deepEqual(hash64("hello"), hash64("hello"));
  const seen = new Set<string>();
  for (const s of ["", "a", "b", "ab", "ba", "abc", "abd", "\u00e9", "e\u0301", "😀"]) {
    const [a, b] = hash64(s);
    assert.ok(a >= 0 && a < 2 ** 32 && b >= 0 && b < 2 ** 32);
    assert.notEqual(a, b);
    seen.add(`${a}:${b}`);
  }
  assert.equal(seen.size, 10);
});

Deno.test("hll: hash equals MurmurHash3_x86_32 of the UTF-16LE bytes with the two seeds", () => {
  // Vectors from an independent byte-wise Murmur3 reference (Python), seeds 0x9747b28c and
  // 0x5bd1e995. Stored sketches depend on the hash never changing.
  assert.deepEqual(hash64(""), [3954623016, 3651860435]);
  assert.deepEqual(hash64("a"), [2863223161, 1229274632]);
  assert.deepEqual(hash64("troupe"), [2460795446, 1527110059]);
  assert.deepEqual(hash64("h\u00e9llo\u{1f600}"), [2139478491, 256101670]);
});

Deno.test("hll: every bit of both lanes is balanced", () => {
  const n = 100_000;
  const ones = new Float64Array(64);
  for (let i = 0; i < n; i++) {
    const [a, b] = hash64(`key-${i}`);
    for (let bit = 0; bit < 32; bit++) {
      ones[bit]! += (a >>> bit) & 1;
      ones[32 + bit]! += (b >>> bit) & 1;
    }
  }
  // Each bit is a fair coin: 5 standard deviations of Binomial(n, 1/2) is ~790.
  for (const c of ones) assert.ok(Math.abs(c - n / 2) < 5 * Math.sqrt(n / 4), `bit count ${c}`);
});

for (const p of [12, 14]) {
  Deno.test(`hll p=${p}: estimates within 3 standard errors over the whole range`, () => {
    const h = new HyperLogLog(p);
    assert.equal(h.estimate(), 0);
    const checkpoints = [1, 10, 100, 1000, 5000, 20_000, 60_000, 200_000, 1_000_000];
    let added = 0;
    for (const target of checkpoints) {
      for (; added < target; added++) h.add(`id-${added}-${added * 7919}`);
      const est = h.estimate();
      const tolerance = Math.max(3 * h.standardError * target, 1);
      assert.ok(Math.abs(est - target) <= tolerance, `n=${target} est=${est} p=${p}`);
    }
    // Duplicates do not move the estimate.
    const before = h.registers();
    for (let i = 0; i < 1000; i++) h.add(`id-${i}-${i * 7919}`);
    assert.deepEqual(h.registers(), before);
  });
}

Deno.test("hll: merge equals the sketch of the union, register for register", () => {
  const r = prng(3);
  const whole = new HyperLogLog();
  const parts = Array.from({ length: 5 }, () => new HyperLogLog());
  for (let i = 0; i < 50_000; i++) {
    const v = `v${Math.floor(r() * 30_000)}`;
    whole.add(v);
    parts[i % 5]!.add(v);
  }
  const merged = parts.reduce((a, b) => a.merge(b), new HyperLogLog());
  assert.ok(merged.equals(whole));
  assert.equal(merged.estimate(), whole.estimate());
  assert.throws(() => merged.merge(new HyperLogLog(12)), RangeError);
  assert.throws(() => new HyperLogLog(3), RangeError);
  assert.throws(() => new HyperLogLog(17), RangeError);
});

Deno.test("hll: sparse and dense serializations round-trip exactly", () => {
  const small = new HyperLogLog();
  for (let i = 0; i < 100; i++) small.add(`s${i}`);
  const sj = small.toJSON();
  assert.equal(sj.enc, "sparse");
  assert.ok(sj.data.length < 500, `sparse size ${sj.data.length}`);
  assert.ok(HyperLogLog.fromJSON(JSON.parse(JSON.stringify(sj))).equals(small));

  const big = new HyperLogLog();
  for (let i = 0; i < 100_000; i++) big.add(`d${i}`);
  const dj = big.toJSON();
  assert.equal(dj.enc, "dense");
  assert.equal(dj.data.length, (16384 * 6) / 8 / 3 * 4); // 6 bits per register, base64
  const back = HyperLogLog.fromJSON(JSON.parse(JSON.stringify(dj)));
  assert.ok(back.equals(big));
  assert.deepEqual(back.toJSON(), dj);

  const empty = new HyperLogLog(12).toJSON();
  assert.deepEqual(empty, { v: 1, p: 12, enc: "sparse", data: "" });
  assert.equal(HyperLogLog.fromJSON(empty).estimate(), 0);
  assert.throws(() => HyperLogLog.fromJSON({ ...dj, data: dj.data.slice(4) }), TypeError);
  assert.throws(() => HyperLogLog.fromJSON({ ...sj, data: "AAAAAAAA" }), TypeError);
});

Deno.test("hll: mergeJSON folds serialized sketches as merge(fromJSON) does; bad input changes nothing", () => {
  const r = prng(7);
  const base = new HyperLogLog();
  for (let i = 0; i < 3_000; i++) base.add(`b${Math.floor(r() * 5_000)}`);
  const dense = new HyperLogLog();
  for (let i = 0; i < 60_000; i++) dense.add(`d${Math.floor(r() * 40_000)}`);
  const sparse = new HyperLogLog();
  for (let i = 0; i < 300; i++) sparse.add(`s${i}`);
  const dj = JSON.parse(JSON.stringify(dense.toJSON()));
  const sj = JSON.parse(JSON.stringify(sparse.toJSON()));
  assert.deepEqual([dj.enc, sj.enc], ["dense", "sparse"]);
  const viaJson = base.clone().mergeJSON(dj).mergeJSON(sj);
  const viaSketch = base.clone().merge(HyperLogLog.fromJSON(dj)).merge(HyperLogLog.fromJSON(sj));
  assert.ok(viaJson.equals(viaSketch));
  assert.ok(viaJson.equals(base.clone().merge(dense).merge(sparse)));
  assert.deepEqual(new HyperLogLog(12).mergeJSON(new HyperLogLog(12).toJSON()).toJSON(), {
    v: 1,
    p: 12,
    enc: "sparse",
    data: "",
  });

  // What fromJSON refuses, mergeJSON refuses, before changing a register.
  const before = viaJson.toJSON();
  const flip = (text: string, at: number, c: string) => text.slice(0, at) + c + text.slice(at + 1);
  const bad: [unknown, ErrorConstructor][] = [
    [{ ...dj, v: 2 }, TypeError],
    [{ ...dj, p: 12 }, RangeError],
    [{ ...dj, enc: "other" }, TypeError],
    [{ ...dj, data: dj.data.slice(4) }, TypeError], // short
    [{ ...dj, data: flip(dj.data, 9_000, "*") }, SyntaxError], // not base64
    [{ ...dj, data: flip(dj.data, 9_000, "/") }, TypeError], // register 63 > 51
    [{ ...sj, data: sj.data.slice(1) }, TypeError], // length
    [{ ...sj, data: "AAAAAAAA" }, TypeError], // index 0 twice
    [{ ...sj, data: sj.data + "////" }, TypeError], // index 65535 out of range
  ];
  for (const [json, type] of bad) {
    assert.throws(
      () => HyperLogLog.fromJSON(json as never),
      Error,
      JSON.stringify(json).slice(0, 60),
    );
    assert.throws(() => viaJson.mergeJSON(json as never), type, JSON.stringify(json).slice(0, 60));
    assert.deepEqual(viaJson.toJSON(), before);
  }
});
