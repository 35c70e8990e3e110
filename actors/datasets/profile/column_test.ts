import assert from "node:assert/strict";
import { ColumnProfile, type ColumnProfileJSON, valueType } from "./column.ts";
import { TableProfile } from "./table.ts";
import { prng } from "./test_util.ts";
import { parseTime } from "./time.ts";

/** Linear interpolation between the closest ranks of ascending `sorted`, as pandas does. */
function interpolated(sorted: readonly number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (h - lo);
}

const QS = { p01: 0.01, p05: 0.05, p25: 0.25, p50: 0.5, p75: 0.75, p95: 0.95, p99: 0.99 };

function assertQuantiles(actual: Record<string, number> | null, sorted: readonly number[]): void {
  assert.ok(actual);
  for (const [key, q] of Object.entries(QS)) {
    const want = interpolated(sorted, q);
    assert.ok(Math.abs(actual[key]! - want) <= 1e-12 * Math.abs(want), `${key}: ${actual[key]}`);
  }
}

Deno.test("parseTime: agrees with Date.parse on zoned texts, naive read as UTC", () => {
  for (
    const s of [
      "2024-02-29",
      "1969-12-31T23:59:59.999Z",
      "2024-01-02T03:04:05+02:00",
      "2024-01-02T03:04:05.123-05:30",
      "0001-01-01T00:00:00Z",
    ]
  ) {
    assert.equal(parseTime(s), Date.parse(s), s);
  }
  assert.equal(parseTime("2024-01-02 03:04"), Date.parse("2024-01-02T03:04:00Z"));
  assert.equal(parseTime("2024-01-02T03:04:05.5"), Date.parse("2024-01-02T03:04:05.500Z"));
  assert.equal(parseTime("2024-01-02T03:04:05+0100"), Date.parse("2024-01-02T02:04:05Z"));
  for (const bad of ["2024-13-01", "2024-01-02T25:00", "2024/01/02", "2024-01-02T03:04:05Q", ""]) {
    assert.ok(Number.isNaN(parseTime(bad)), bad);
  }
});

Deno.test("column: numeric summary", () => {
  const c = new ColumnProfile();
  for (const v of [3, 1, null, 2, 4, NaN]) c.add(v, v === null ? "null" : "integer");
  const s = c.summary();
  assert.equal(s.type, "integer");
  assert.equal(s.count, 4);
  assert.equal(s.nulls, 2);
  assert.equal(s.min, 1);
  assert.equal(s.max, 4);
  assert.equal(s.mean, 2.5);
  assert.equal(s.variance, 5 / 3);
  assert.equal(s.populationVariance, 1.25);
  assert.equal(s.stddev, Math.sqrt(5 / 3));
  assert.equal(s.distinct, 4);
  assert.ok(s.distinctExact);
  assert.ok(s.quantilesExact);
  assertQuantiles({ ...s.quantiles }, [1, 2, 3, 4]);
  assert.equal(s.quantiles!.p50, 2.5);
  assert.equal(s.quantiles!.p25, 1.75);
  assert.equal(s.types.integer, 4);
  assert.equal(s.types.null, 2);
});

Deno.test("column: min/max by column type — time, booleans, lexicographic", () => {
  const dates = new ColumnProfile();
  // By text, the zoned values would be the min and the max; by time they are not.
  dates.add("2024-01-02T08:00:00+09:00", "datetime"); // 2024-01-01T23:00Z
  dates.add("2024-01-02T00:30:00Z", "datetime");
  dates.add("2023-12-31T23:00:00-05:00", "datetime"); // 2024-01-01T04:00Z
  dates.add("2024-01-01", "date");
  const d = dates.summary();
  assert.equal(d.type, "datetime");
  assert.equal(d.min, "2024-01-01");
  assert.equal(d.max, "2024-01-02T00:30:00Z");
  assert.equal(d.mean, null);
  assert.equal(d.quantiles, null);

  const flags = new ColumnProfile();
  for (const b of [true, true, null]) flags.add(b);
  assert.deepEqual([flags.summary().min, flags.summary().max], [true, true]);
  flags.add(false);
  const f = flags.summary();
  assert.deepEqual([f.type, f.min, f.max, f.count], ["boolean", false, true, 3]);
  assert.deepEqual(f.topValues.map((e) => [e.value, e.count]), [["true", 2], ["false", 1]]);

  const mixed = new ColumnProfile();
  for (const v of [10, "apple", 9, "Zebra"]) mixed.add(v);
  const m = mixed.summary();
  assert.equal(m.type, "string");
  assert.deepEqual([m.min, m.max], ["10", "apple"]); // UTF-16 order: digits < upper < lower
  assert.equal(m.mean, null);
  assert.equal(m.variance, null);

  const empty = new ColumnProfile().summary();
  assert.deepEqual([empty.type, empty.min, empty.count, empty.distinct], ["null", null, 0, 0]);
});

Deno.test("column: a number and its text are one value for distinct and top-k", () => {
  const c = new ColumnProfile();
  c.add(1.5);
  c.add("1.5");
  assert.equal(c.summary().distinct, 1);
  assert.deepEqual(c.summary().topValues, [{ value: "1.5", count: 2, error: 0 }]);
});

Deno.test("valueType: value types refined by the column type", () => {
  assert.equal(valueType(1), "integer");
  assert.equal(valueType(1, "float"), "float");
  assert.equal(valueType(1.5), "float");
  assert.equal(valueType("x", "integer"), "string");
  assert.equal(valueType("2024-01-01", "date"), "date");
  assert.equal(valueType(null, "date"), "null");
  assert.equal(valueType(true), "boolean");
});

Deno.test("table: rows, column order, merge of disjoint columns, validation", () => {
  const a = new TableProfile(["b", "a", "10"]);
  a.addRow([1, "x", true], ["integer", "string", "boolean"]);
  a.addRow([2]);
  assert.throws(() => a.addRow([1, 2, 3, 4]), RangeError);
  const other = new TableProfile(["c", "a"]);
  other.addRow(["z", "y"]);
  a.merge(other);
  assert.equal(a.rows, 3);
  assert.deepEqual(a.names, ["b", "a", "10", "c"]);
  const back = TableProfile.fromJSON(JSON.parse(JSON.stringify(a)));
  assert.deepEqual(back.names, ["b", "a", "10", "c"]);
  assert.deepEqual(back.toJSON(), a.toJSON());
  const s = back.summary();
  assert.equal(s.columns[1]!.name, "a");
  assert.equal(s.columns[1]!.count, 2);
  assert.equal(s.columns[1]!.nulls, 1);
  assert.throws(
    () => new ColumnProfile().merge(new ColumnProfile({ hllPrecision: 12 })),
    RangeError,
  );
});

Deno.test("column: exact quantiles by linear interpolation, as pandas computes them", () => {
  const r = prng(400);
  const values = Array.from({ length: 400 }, () => Math.round(r() * r() * 1e5) / 100);
  const c = new ColumnProfile();
  for (const v of values) c.add(v, "float");
  const s = c.summary();
  assert.ok(s.quantilesExact);
  assertQuantiles({ ...s.quantiles }, [...values].sort((a, b) => a - b));
  // Exact fractions for the histogram too.
  const below = values.filter((v) => v <= s.quantiles!.p50).length;
  assert.equal(c.rank(s.quantiles!.p50), below / values.length);
});

Deno.test("column: the bounds count everything merged — exact within, sketches past them", () => {
  const options = { exactDistinct: 100, exactNumbers: 1000 };
  /** `n` numbers: `distinct` values from `offset` on, in turn. */
  const part = (offset: number, n: number, distinct: number) => {
    const c = new ColumnProfile(options);
    for (let i = 0; i < n; i++) c.add(offset + (i % distinct), "integer");
    return c;
  };
  // 600 numbers and 60 distinct values each; together 1200 numbers, 120 distinct values.
  const a = part(0, 600, 60);
  const b = part(60, 600, 60);
  for (const p of [a, b]) {
    assert.ok(p.summary().distinctExact && p.summary().quantilesExact);
  }
  const ab = a.clone().merge(b);
  const s = ab.summary();
  assert.equal(s.distinctExact, false);
  assert.equal(s.quantilesExact, false);
  assert.ok(s.distinct <= s.count);
  assert.ok(Math.abs(s.distinct - 120) <= 3, `distinct ${s.distinct}`);
  for (const e of s.topValues) assert.ok(e.error > 0);
  // Within the bounds when merged: 2 × 400 numbers, the same 100 values.
  const c = part(0, 400, 100).merge(
    ColumnProfile.fromJSON(JSON.parse(JSON.stringify(part(0, 400, 100)))),
  );
  const exact = c.summary(3);
  assert.ok(exact.distinctExact && exact.quantilesExact);
  assert.equal(exact.distinct, 100);
  // Values 0…99 occur 8 times in 2 × 400; by count, then by text ("0" < "1" < "10").
  assert.deepEqual(exact.topValues, [
    { value: "0", count: 8, error: 0 },
    { value: "1", count: 8, error: 0 },
    { value: "10", count: 8, error: 0 },
  ]);
  const all = [...Array(400).keys(), ...Array(400).keys()].map((i) => i % 100);
  assertQuantiles({ ...exact.quantiles }, all.sort((x, y) => x - y));
  // Merging a spilled profile spills the exact one: the result is past the bounds either way.
  assert.equal(part(0, 10, 10).merge(ab).summary().distinctExact, false);
  assert.equal(ab.clone().merge(part(0, 10, 10)).summary().quantilesExact, false);
});

Deno.test("column: a distinct estimate never exceeds the non-null count", () => {
  // Sketched from the first value on; the smallest count where the estimate overshoots.
  const c = new ColumnProfile({ exactDistinct: 0 });
  let n = 0;
  while (n < 5000) {
    c.add(`value ${n++}`);
    if (c.hll.estimate() > n) break;
  }
  assert.ok(c.hll.estimate() > n, "the estimate overshoots somewhere below 5,000");
  c.add(null);
  const s = c.summary();
  assert.equal(s.distinctExact, false);
  assert.equal(s.distinct, n);
});

Deno.test("column: JSON keeps the exact forms compactly and checks them", () => {
  const c = new ColumnProfile();
  for (let i = 0; i < 3000; i++) c.add(i % 7, "integer");
  const json = c.toJSON();
  assert.deepEqual(json.counts![0].slice(0, 3), ["0", "1", "2"]);
  assert.deepEqual(json.counts![1].slice(0, 3), [429, 429, 429]);
  assert.equal(json.numbers, "counts", "an all-numbers column's numbers are its counts' keys");
  const back = ColumnProfile.fromJSON(JSON.parse(JSON.stringify(json)));
  assert.deepEqual(back.summary(), c.summary());
  assert.deepEqual(back.toJSON(), json);
  const mixed = new ColumnProfile();
  for (const v of [1.5, "x", 2.5, 1.5]) mixed.add(v);
  const m = mixed.toJSON();
  assert.equal(typeof m.numbers, "string");
  assert.deepEqual(ColumnProfile.fromJSON(m).summary(), mixed.summary());

  const bad: ColumnProfileJSON = { ...json, counts: [["0"], [1]] };
  const target = new ColumnProfile();
  target.add(5);
  const before = JSON.stringify(target);
  assert.throws(() => target.mergeJSON(bad), TypeError);
  assert.throws(() => ColumnProfile.fromJSON(bad), TypeError);
  assert.equal(JSON.stringify(target), before, "nothing changed");
  assert.throws(() => c.clone().mergeJSON({ ...json, exact: [5, 5, 5] }), RangeError);
  // A version 1 profile (sketches only) is read as past the bounds.
  const spilled = new ColumnProfile({ exactDistinct: 0, exactNumbers: 0 });
  for (let i = 0; i < 50; i++) spilled.add(i);
  const { exact: _e, counts: _c, numbers: _n, ...v1 } = spilled.toJSON();
  const old = ColumnProfile.fromJSON({ ...v1, v: 1 });
  assert.equal(old.summary().distinctExact, false);
  assert.equal(old.summary().count, 50);
  const merged = new ColumnProfile().mergeJSON({ ...v1, v: 1 }).summary();
  assert.deepEqual([merged.distinctExact, merged.quantilesExact], [false, false]);
});

Deno.test("column: a profile made after another released its buffers serializes the same", () => {
  const r = prng(5);
  const numbers = Array.from({ length: 20_000 }, () => Math.round(r() * 1e6) / 100);
  const texts = Array.from({ length: 12_000 }, (_, i) => `t${i % 11_000}`);
  const fill = (c: ColumnProfile, xs: readonly (number | string)[]) => {
    for (const x of xs) c.add(x, typeof x === "number" ? "float" : "string");
  };
  const first = [new ColumnProfile(), new ColumnProfile()];
  fill(first[0]!, numbers);
  fill(first[1]!, texts.slice(0, 5_000));
  const want = first.map((c) => JSON.stringify(c.toJSON()));
  for (const c of first) c.release();
  // The next profiles grow into the released buffers (numbers, exact counts), which still
  // hold the first profiles' entries.
  const next = [new ColumnProfile(), new ColumnProfile(), new ColumnProfile()];
  fill(next[0]!, numbers);
  fill(next[1]!, texts.slice(0, 5_000));
  fill(next[2]!, texts); // past the distinct bound: spills
  assert.deepEqual(next.slice(0, 2).map((c) => JSON.stringify(c.toJSON())), want);
  const spilled = new ColumnProfile();
  fill(spilled, texts);
  assert.equal(JSON.stringify(next[2]!.toJSON()), JSON.stringify(spilled.toJSON()));
  assert.equal(next[0]!.summary().quantilesExact, true);
});
