import assert from "node:assert/strict";
import { ColumnProfile, valueType } from "./column.ts";
import { TableProfile } from "./table.ts";
import { parseTime } from "./time.ts";

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
  assert.deepEqual(s.quantiles, { p01: 1, p05: 1, p25: 1, p50: 2, p75: 3, p95: 4, p99: 4 });
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
