import assert from "node:assert/strict";
import {
  type ColumnType,
  inferColumns,
  inferValue,
  joinTypes,
  mergeStats,
  TypeInference,
} from "./infer.ts";

Deno.test("value detection", () => {
  const cases: [unknown, ColumnType][] = [
    ["42", "integer"],
    ["-7", "integer"],
    ["+3", "integer"],
    ["0", "integer"],
    ["007", "string"],
    ["9007199254740991", "integer"],
    ["9007199254740993", "string"],
    ["1.5", "float"],
    ["-2e3", "float"],
    [".5", "float"],
    ["1.", "float"],
    ["1e", "string"],
    ["1,234.5", "string"],
    ["true", "boolean"],
    ["FALSE", "boolean"],
    ["Yes", "boolean"],
    ["no", "boolean"],
    ["1", "integer"],
    ["2024-02-29", "date"],
    ["2023-02-29", "string"],
    ["2024-13-01", "string"],
    ["2024-01-02T03:04:05Z", "datetime"],
    ["2024-01-02 03:04", "datetime"],
    ["2024-01-02T03:04:05.123+02:00", "datetime"],
    ["2024-01-02T25:00:00", "string"],
    ["  12  ", "integer"],
    ["", "null"],
    ["NA", "null"],
    ["N/A", "null"],
    ["null", "null"],
    ["hello", "string"],
    ["-", "null"],
    ["None", "null"],
    ["-5", "integer"],
    [null, "null"],
    [3, "integer"],
    [3.5, "float"],
    [true, "boolean"],
    [{ a: 1 }, "json"],
  ];
  for (const [value, type] of cases) assert.equal(inferValue(value), type, JSON.stringify(value));
  assert.equal(inferValue("1,234", { thousands: true }), "integer");
  assert.equal(inferValue("1,234.5", { thousands: true }), "float");
  assert.equal(inferValue("12,34", { thousands: true }), "string");
  assert.equal(inferValue("", { emptyAsNull: false }), "string");
  assert.equal(inferValue("missing", { nullTokens: ["missing"] }), "null");
  assert.equal(inferValue("NA", { nullTokens: [] }), "string");
  assert.equal(inferValue("—", { nullTokens: ["—", "missing"] }), "null"); // a wide first character
  assert.equal(inferValue("mist", { nullTokens: ["—", "missing"] }), "string");
  assert.equal(inferValue("-", { nullTokens: ["—"] }), "string");
});

Deno.test("lattice joins", () => {
  assert.equal(joinTypes("integer", "float"), "float");
  assert.equal(joinTypes("date", "datetime"), "datetime");
  assert.equal(joinTypes("null", "boolean"), "boolean");
  assert.equal(joinTypes("integer", "boolean"), "string");
  assert.equal(joinTypes("float", "string"), "string");
  assert.equal(joinTypes("json", "integer"), "string");
});

Deno.test("column inference: mixed types in a column, nulls counted, chunk merge", () => {
  const rows = [
    ["1", "1", "true", "2024-01-01", "x", ""],
    ["2", "2.5", "no", "2024-01-01T10:00:00Z", "3", "NA"],
    ["3", "", "YES", "", "y", ""],
  ];
  const stats = inferColumns(rows, 6);
  assert.deepEqual(stats.map((s) => s.type), [
    "integer",
    "float",
    "boolean",
    "datetime",
    "string",
    "null",
  ]);
  assert.deepEqual(stats.map((s) => s.nulls), [0, 1, 0, 1, 0, 3]);
  const a = new TypeInference(2);
  a.add([["1", "a"]]);
  const b = new TypeInference(3);
  b.add([["1.5", "b", "true"], ["2", "", "false"]]);
  assert.deepEqual(mergeStats(a.stats(), b.stats()), [
    { type: "float", count: 3, nulls: 0 },
    { type: "string", count: 3, nulls: 1 },
    { type: "boolean", count: 3, nulls: 1 },
  ]);
});

Deno.test("column inference: a null token is null only where the other values are not text", () => {
  const rows = [
    ["1", "apple", "2024-01-01", "yes", "NA", "x"],
    ["NA", "null", "None", "-", "", "NA"],
    ["3", "None", "2024-01-03", "no", "N/A", ""],
    ["-", "-", "NaN", "true", "-", "y"],
    ["5", "NA", "", "null", "", "null"],
  ];
  const stats = inferColumns(rows, 6);
  assert.deepEqual(stats.map((s) => s.type), [
    "integer",
    "string",
    "date",
    "boolean",
    "null",
    "string",
  ]);
  // In the text columns only the empty field is null; elsewhere the tokens are too.
  assert.deepEqual(stats.map((s) => s.nulls), [2, 0, 3, 2, 5, 1]);
});

Deno.test("column inference: the null tokens are configurable and can be switched off", () => {
  const rows = [["1", "n.d."], ["NA", "2.5"], ["3", "n.d."]];
  const off = inferColumns(rows, 2, { nullTokens: [] });
  assert.deepEqual(off.map((s) => [s.type, s.nulls]), [["string", 0], ["string", 0]]);
  const custom = inferColumns(rows, 2, { nullTokens: ["n.d."] });
  assert.deepEqual(custom.map((s) => [s.type, s.nulls]), [["string", 0], ["float", 2]]);
});

Deno.test("column inference: tokens seen before a column turns text are not nulls of it", () => {
  // The column settles at string on its second row: later tokens take the settled path.
  const inference = new TypeInference(1);
  inference.add([["NA"], ["1"], ["NA"]]);
  assert.deepEqual(inference.stats(), [{ type: "integer", count: 3, nulls: 2 }]);
  inference.add([["word"], ["NA"], [""]]);
  assert.deepEqual(inference.stats(), [{ type: "string", count: 6, nulls: 1 }]);
});

Deno.test("value detection: what PostgreSQL's types refuse stays text", () => {
  const cases: [string, ColumnType][] = [
    ["0000-01-01", "string"], // no year 0
    ["0000-01-01T00:00:00Z", "string"],
    ["1000-01-01", "date"],
    ["1e400", "string"], // past a double's range
    ["-1e400", "string"],
    ["1e-400", "string"], // reads as 0, its digits are not
    ["0e-400", "float"],
    ["1e308", "float"],
    ["4e-320", "float"], // subnormal: PostgreSQL takes it
    ["9".repeat(400) + ".5", "string"],
    ["2024-01-02T03:04:05+15:59", "datetime"],
    ["2024-01-02T03:04:05+16:00", "string"], // offsets end at 15:59
  ];
  for (const [value, type] of cases) assert.equal(inferValue(value), type, value);
});
