import assert from "node:assert/strict";
import {
  cleanRows,
  normalizeDatetime,
  normalizeValue,
  plainNumber,
  planColumns,
  rowHash,
} from "./clean.ts";
import { IngestError } from "./errors.ts";
import { inferColumns } from "./infer.ts";

Deno.test("normalisation per column type", () => {
  assert.equal(normalizeValue(" 42 ", "integer"), 42);
  assert.equal(normalizeValue("+3", "integer"), 3);
  assert.equal(normalizeValue("3", "float"), 3);
  assert.equal(normalizeValue("1,234.5", "float", { thousands: true }), 1234.5);
  assert.equal(normalizeValue("YES", "boolean"), true);
  assert.equal(normalizeValue("false", "boolean"), false);
  assert.equal(normalizeValue("2024-01-02", "date"), "2024-01-02");
  assert.equal(normalizeValue("2024-01-02", "datetime"), "2024-01-02");
  assert.equal(normalizeValue("2024-01-02 03:04+02:00", "datetime"), "2024-01-02T01:04:00.000Z");
  assert.equal(normalizeValue("2024-01-02 03:04", "datetime"), "2024-01-02T03:04:00");
  assert.equal(normalizeValue("N/A", "integer"), null);
  assert.equal(normalizeValue("  ", "string"), null);
  assert.equal(normalizeValue(" null ", "string"), "null"); // a token is text in a text column
  assert.equal(normalizeValue("None", "date"), null);
  assert.equal(normalizeValue("abc", "integer"), "abc"); // does not fit: kept as text
  assert.equal(normalizeValue(12, "string"), "12");
  assert.equal(normalizeValue(" 12 ", "string"), "12");
  assert.deepEqual(normalizeValue({ a: 1 }, "json"), { a: 1 });
  assert.equal(normalizeDatetime("2024-01-02T03:04:05,5Z"), "2024-01-02T03:04:05.500Z");
});

Deno.test("cleanRows: drop, rename, trim, nulls, types, in-chunk duplicates with hashes", () => {
  const header = ["id", "junk", "amount", "when"];
  const rows = [
    [" 1", "x", "2.5", "2024-01-01"],
    ["1 ", "y", "2.5", "2024-01-01"],
    ["2", "z", "NA", ""],
  ];
  const r = cleanRows(
    header,
    rows,
    { dropColumns: ["junk"], renameColumns: { amount: "price" }, dropDuplicateRows: true },
    ["integer", "string", "float", "date"],
  );
  assert.deepEqual(r.header, ["id", "price", "when"]);
  assert.deepEqual(r.rows, [[1, 2.5, "2024-01-01"], [2, null, null]]);
  assert.equal(r.duplicates, 1);
  assert.deepEqual(r.hashes, [rowHash([1, 2.5, "2024-01-01"]), rowHash([2, null, null])]);
  const untyped = cleanRows(header, rows, { trim: false, emptyAsNull: false });
  assert.deepEqual(untyped.rows[0], [" 1", "x", "2.5", "2024-01-01"]);
  assert.equal(untyped.hashes, undefined);
  assert.throws(() => planColumns(["a", "b"], { renameColumns: { a: "b" } }), IngestError);
});

Deno.test("cleanRows: null tokens are nulls in typed columns and text in text columns", () => {
  const header = ["n", "word"];
  const rows = [["1", "null"], ["NA", "None"], ["-", "-"], ["", ""], ["4", "NA"], ["5", "ok"]];
  for (const fitted of [true, false]) {
    const types = inferColumns(rows, 2).map((s) => s.type);
    assert.deepEqual(types, ["integer", "string"]);
    const r = cleanRows(header, rows, {}, types, { fitted });
    assert.deepEqual(r.rows, [
      [1, "null"],
      [null, "None"],
      [null, "-"],
      [null, null],
      [4, "NA"],
      [5, "ok"],
    ]);
  }
  const off = inferColumns(rows, 2, { nullTokens: [] }).map((s) => s.type);
  assert.deepEqual(off, ["string", "string"]);
  const r = cleanRows(header, rows, { nullTokens: [] }, off, { fitted: true });
  assert.deepEqual(r.rows.map((row) => row[0]), ["1", "NA", "-", null, "4", "5"]);
});

Deno.test("rowHash is stable and separates types and framing", () => {
  assert.equal(rowHash(["a", 1, null, true]), rowHash(["a", 1, null, true]));
  assert.match(rowHash([]), /^[0-9a-f]{16}$/);
  // Pinned: the hash must not change between releases (stored hashes are compared).
  assert.equal(rowHash(["a", "b"]), "b3ff2ce647d2f75c");
  assert.equal(rowHash(["a", 1, null, true]), "98e44c8480f895e1");
  assert.notEqual(rowHash(["a,b"]), rowHash(["a", "b"]));
  assert.notEqual(rowHash([1]), rowHash(["1"]));
  assert.notEqual(rowHash([null]), rowHash([""]));
  assert.notEqual(rowHash(["ab", "c"]), rowHash(["a", "bc"]));
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) seen.add(rowHash([i, `row ${i}`]));
  assert.equal(seen.size, 100_000);
});

Deno.test("cleanRows fitted: same rows as classifying every value, when types are the rows' own", () => {
  const cells = [
    "",
    " ",
    "NA",
    "null",
    "0",
    "007",
    "42",
    " 42 ",
    "-3",
    "+3",
    "1.5",
    ".5",
    "1.",
    "-2e3",
    "1e",
    "1,234",
    "1,234.5",
    "9007199254740993",
    "true",
    "YES",
    "no",
    "maybe",
    "2024-02-29",
    "2023-02-29",
    "2024-01-02 03:04",
    "2024-01-02T03:04:05,5Z",
    "2024-01-02 03:04+02:00",
    "NaN",
    "Infinity",
    "text",
    "a\tb",
    "Köln",
  ];
  const json = [null, undefined, 1, 1.5, true, false, { a: 1 }, [1, 2], "x", " 2 "];
  let seed = 7;
  const pick = <T>(xs: readonly T[]): T => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return xs[seed % xs.length]!;
  };
  for (const rules of [{}, { thousands: true }, { trim: false, emptyAsNull: false }]) {
    for (let trial = 0; trial < 200; trial++) {
      // Each column draws from a few kinds of cell, so columns of every type come up.
      const pools = [0, 1, 2, 3].map(() => {
        const pool = trial % 5 === 4 ? json : cells;
        return [pick(pool), pick(pool), pick(pool)];
      });
      const rows = Array.from({ length: 6 }, () => pools.map((p) => pick(p)));
      const header = ["a", "b", "c", "d"];
      const types = inferColumns(rows, 4, rules).map((s) => s.type);
      const slow = cleanRows(header, rows, rules, types);
      const fast = cleanRows(header, rows, rules, types, { fitted: true });
      assert.deepEqual(fast, slow, JSON.stringify({ rows, types, rules }));
    }
  }
});

Deno.test("plainNumber reads exactly the texts String() writes, as Number() reads them", () => {
  const check = (text: string) => {
    const v = plainNumber(text);
    const plain = String(Number(text)) === text;
    if (v === v) {
      assert.ok(plain, `${JSON.stringify(text)} is not written so by String()`);
      assert.ok(Object.is(v, Number(text)), `${JSON.stringify(text)}: ${v} ≠ ${Number(text)}`);
    } else if (plain && /^-?[0-9.]+$/.test(text)) {
      // Missed: only texts of more than 15 significant digits may be.
      const significant = text.replace(/^-/, "").replace(".", "").replace(/^0+/, "");
      assert.ok(significant.length > 15, `${JSON.stringify(text)} is plain`);
    }
  };
  for (
    const text of [
      ...["", "-", "0", "-0", "0.0", "1.", ".5", "-.5", "00", "01", "+1", "1e5", " 1", "1 "],
      ...["0.000001", "0.0000001", "-0.000001", "999999999999999", "9999999999999999"],
      ...["123456789012.345", "1234567890123.456", "0.1", "0.30000000000000004", "1,000"],
      ...["5e-324", "Infinity", "NaN", "0x10", "1_000", "١٢", "12.50", "-12.5"],
    ]
  ) check(text);
  assert.equal(plainNumber("0.000001"), 0.000001);
  assert.equal(plainNumber("-12.5"), -12.5);
  assert.ok(Number.isNaN(plainNumber("-0")), "-0 is written 0");
  assert.ok(Number.isNaN(plainNumber("12.50")), "a trailing zero");
  // Random texts of digits, points and signs, and numbers written by toFixed and String().
  let x = 1;
  const rand = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const alphabet = "0123456789.-";
  for (let i = 0; i < 100_000; i++) {
    let s = "";
    for (let j = 1 + Math.floor(rand() * 18); j > 0; j--) s += alphabet[Math.floor(rand() * 12)];
    check(s);
    const scale = 10 ** Math.floor(rand() * 22 - 8);
    check((rand() * scale).toFixed(Math.floor(rand() * 12)));
    check(String(rand() * scale));
    check(String(-Math.floor(rand() * 1e15)));
  }
});
