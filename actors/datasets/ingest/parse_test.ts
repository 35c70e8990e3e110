import assert from "node:assert/strict";
import { EncodingError, IngestError, NotJsonArrayError, RowError } from "./errors.ts";
import { csvBatches, parseChunk, type ParseOptions, uniqueNames } from "./parse.ts";
import { prng, pythonCsv, splitAndParse, utf8 } from "./test_util.ts";

const CSV: ParseOptions = { format: "csv" };

Deno.test("CSV basics: header, rows, quoted delimiter + CRLF inside a field", () => {
  const r = parseChunk(utf8('id,text\r\n1,"a, b\r\nc"\r\n2,"say ""hi"""\r\n'), CSV);
  assert.deepEqual(r.header, ["id", "text"]);
  assert.deepEqual(r.rows, [["1", "a, b\r\nc"], ["2", 'say "hi"']]);
  assert.deepEqual(r.errors, []);
  assert.equal(r.skipped, 0);
});

Deno.test("TSV, no header row: names are column_1..n", () => {
  const r = parseChunk(utf8("a\tb\nc\td\n"), { format: "csv", delimiter: "\t", hasHeader: false });
  assert.deepEqual(r.header, ["column_1", "column_2"]);
  assert.deepEqual(r.rows, [["a", "b"], ["c", "d"]]);
});

Deno.test("empty file and header-only file", () => {
  assert.deepEqual(parseChunk(new Uint8Array(0), CSV), {
    header: [],
    rows: [],
    errors: [],
    skipped: 0,
  });
  const h = parseChunk(utf8("a,b,c\n"), CSV);
  assert.deepEqual([h.header, h.rows], [["a", "b", "c"], []]);
  const noNewline = parseChunk(utf8("\ufeffa,b"), CSV);
  assert.deepEqual([noNewline.header, noNewline.rows], [["a", "b"], []]);
});

Deno.test("duplicate and empty header names are made unique", () => {
  assert.deepEqual(uniqueNames(["name", "name", "", " id ", "name_2", ""]), [
    "name",
    "name_3",
    "column_3",
    "id",
    "name_2",
    "column_6",
  ]);
  assert.deepEqual(uniqueNames(["column_2", ""]), ["column_2", "column_2_2"]);
  const r = parseChunk(utf8("x,x,\n1,2,3\n"), CSV);
  assert.deepEqual(r.header, ["x", "x_2", "column_3"]);
});

Deno.test("short rows are kept with null trailing fields; long rows are reported with their line", () => {
  const src = 'a,b\n1,"multi\nline"\n2\n\n3,4,5\n6,7\n';
  const r = parseChunk(utf8(src), CSV);
  assert.deepEqual(r.rows, [["1", "multi\nline"], ["2", null], ["6", "7"]]);
  assert.equal(r.skipped, 1);
  assert.deepEqual(r.errors, [{ line: 6, message: "expected 2 fields, found 3" }]);
  assert.throws(
    () => parseChunk(utf8(src), { ...CSV, errorPolicy: "fail" }),
    (e: unknown) => e instanceof RowError && e.line === 6,
  );
});

Deno.test("rows of 6 to 9 of 9 fields read as Python's csv module reads them", async () => {
  const header = Array.from({ length: 9 }, (_, i) => `c${i + 1}`).join(",");
  const lines = [header];
  const random = prng(17);
  for (let i = 0; i < 44; i++) {
    const width = 6 + Math.floor(random() * 4);
    lines.push(
      Array.from({ length: width }, (_, k) => k === 2 ? `"x, ${i}"` : `${i}.${k}`).join(","),
    );
  }
  const src = lines.join("\r\n") + "\r\n";
  const python = await pythonCsv(src);
  for (const reader of ["auto", "csv-parse"] as const) {
    const r = parseChunk(utf8(src), { ...CSV, csvReader: reader });
    assert.equal(r.rows.length, python.length - 1, reader);
    assert.equal(r.skipped, 0);
    // Python gives the fields present; the missing ones are nulls here.
    const ours = r.rows.map((row) => row.filter((v) => v !== null));
    assert.deepEqual([r.header, ...ours], python, reader);
  }
});

Deno.test("line numbers of a later chunk start at its firstLine", () => {
  const r = parseChunk(utf8('1,"x\ny"\n2,3,4\n'), {
    ...CSV,
    header: ["a", "b"],
    chunk: { index: 3, firstLine: 1000, start: 5000 },
  });
  assert.deepEqual(r.rows, [["1", "x\ny"]]);
  assert.deepEqual(r.errors, [{ line: 1002, message: "expected 2 fields, found 3" }]);
  assert.throws(
    () => parseChunk(utf8("1,2\n"), { ...CSV, chunk: { index: 1, firstLine: 9 } }),
    IngestError,
  );
});

Deno.test("unbalanced quotes: the record's start line is reported (skip) or thrown (fail)", () => {
  const src = 'a,b\n1,ok\n2,"never closed\n3,x\n';
  const r = parseChunk(utf8(src), CSV);
  assert.deepEqual(r.rows, [["1", "ok"]]);
  assert.deepEqual(r.errors, [{ line: 3, message: "unclosed quoted field (unbalanced quotes)" }]);
  assert.equal(r.skipped, 1);
  assert.throws(
    () => parseChunk(utf8(src), { ...CSV, errorPolicy: "fail" }),
    (e: unknown) => e instanceof RowError && e.line === 3,
  );
});

Deno.test("skip policy keeps the first 100 errors but counts all", () => {
  const src = "a,b\n" + "1,2,3\n".repeat(250) + "x,y\n";
  const r = parseChunk(utf8(src), CSV);
  assert.equal(r.skipped, 250);
  assert.equal(r.errors.length, 100);
  assert.equal(r.errors[0]!.line, 2);
  assert.equal(r.errors[99]!.line, 101);
  assert.deepEqual(r.rows, [["x", "y"]]);
});

Deno.test("a 5 MB cell parses and splits", async () => {
  const big = "x".repeat(5_000_000);
  const src = `id,blob\n1,"${big}"\n2,small\n`;
  const r = await splitAndParse(
    utf8(src),
    { format: { kind: "csv" }, targetChunkBytes: 1024 },
    CSV,
  );
  assert.equal(r.rows.length, 2);
  assert.equal((r.rows[0]![1] as string).length, 5_000_000);
  assert.deepEqual(r.rows[1], ["2", "small"]);
  assert.equal(r.chunks.length, 2); // header + big record, then the last row
});

Deno.test("BOMs: UTF-8 BOM stripped from the first header name", () => {
  const r = parseChunk(utf8('\ufeff"id",name\n1,a\n'), CSV);
  assert.deepEqual(r.header, ["id", "name"]);
});

Deno.test("UTF-16LE with BOM and UTF-16BE, split then parsed", async () => {
  const src = 'id,name\n1,"Zoë\nLine"\n2,東京😀\n';
  for (const le of [true, false]) {
    const units = "\ufeff" + src;
    const bytes = new Uint8Array(units.length * 2);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < units.length; i++) view.setUint16(i * 2, units.charCodeAt(i), le);
    const encoding = le ? "utf-16le" : "utf-16be";
    const r = await splitAndParse(
      bytes,
      { format: { kind: "csv" }, targetChunkBytes: 4 },
      { ...CSV, encoding },
      5,
    );
    assert.deepEqual(r.header, ["id", "name"]);
    assert.deepEqual(r.rows, [["1", "Zoë\nLine"], ["2", "東京😀"]]);
  }
});

Deno.test("Latin-1 file with é", () => {
  const bytes = Uint8Array.of(
    ...utf8("name,city\nRen"),
    0xe9,
    ...utf8(",Orl"),
    0xe9,
    0x61,
    0x6e,
    0x73,
    0x0a,
  );
  const r = parseChunk(bytes, { ...CSV, encoding: "latin1" });
  assert.deepEqual(r.rows, [["René", "Orléans"]]);
});

Deno.test("non-UTF-8 bytes: U+FFFD by default, EncodingError with offset and line when fatal", () => {
  const bytes = Uint8Array.of(...utf8("a,b\n1,x\n2,"), 0xff, ...utf8("y\n"));
  const r = parseChunk(bytes, CSV);
  assert.deepEqual(r.rows[1], ["2", "\ufffdy"]);
  assert.throws(
    () => parseChunk(bytes, { ...CSV, fatalEncoding: true, chunk: { index: 0, firstLine: 1 } }),
    (e: unknown) => e instanceof EncodingError && e.offset === 10 && e.line === 3,
  );
  const later = bytes.subarray(4);
  assert.throws(
    () =>
      parseChunk(later, {
        ...CSV,
        header: ["a", "b"],
        fatalEncoding: true,
        chunk: { index: 1, firstLine: 2, start: 4 },
      }),
    (e: unknown) => e instanceof EncodingError && e.offset === 10 && e.line === 3,
  );
});

Deno.test("Windows-1252: both readers give the same rows, € and accents read right", () => {
  const text = 'name,city,price\nJürgen,Malmö,5 €\n"Zoë, “q”",Orléans,\n';
  const bytes = Uint8Array.from(
    text,
    (ch) => ch === "€" ? 0x80 : ch === "“" ? 0x93 : ch === "”" ? 0x94 : ch.charCodeAt(0),
  );
  const expected = [["Jürgen", "Malmö", "5 €"], ["Zoë, “q”", "Orléans", ""]];
  for (const reader of ["auto", "csv-parse"] as const) {
    const r = parseChunk(bytes, { ...CSV, encoding: "windows-1252", csvReader: reader });
    assert.deepEqual(r.rows, expected, reader);
  }
  const batches = csvBatches(bytes, { ...CSV, encoding: "windows-1252" }, 10);
  assert.ok(batches);
  assert.deepEqual(batches.next(), expected);
});

Deno.test("invalid UTF-8 in JSON: the error names the line and the encoding option", () => {
  const bytes = Uint8Array.of(...utf8('{"a":1}\n{"a":"'), 0xe9, ...utf8('"}\n'));
  assert.throws(
    () => parseChunk(bytes, { format: "ndjson", fatalEncoding: true }),
    (e: unknown) =>
      e instanceof EncodingError && e.line === 2 && e.code === "invalid_encoding" &&
      /line 2/.test(e.message) && /encoding option/.test(e.message),
  );
});

Deno.test("NDJSON: key union, blank lines, bad lines with line numbers", () => {
  const src = '{"a":1}\n\n{"b":"x","a":2}\r\n[1]\n{oops\n{"c":null}\n';
  const r = parseChunk(utf8(src), { format: "ndjson" });
  assert.deepEqual(r.header, ["a", "b", "c"]);
  assert.deepEqual(r.rows, [[1, null, null], [2, "x", null], [null, null, null]]);
  assert.equal(r.skipped, 2);
  assert.equal(r.errors[0]!.line, 4);
  assert.match(r.errors[0]!.message, /expected a JSON object, found an array/);
  assert.equal(r.errors[1]!.line, 5);
  assert.throws(
    () => parseChunk(utf8(src), { format: "ndjson", errorPolicy: "fail" }),
    (e: unknown) => e instanceof RowError && e.line === 4,
  );
});

Deno.test("JSON array: elements → columns by key union; non-objects are errors with lines", async () => {
  const src =
    '[\n  {"id":1,"tags":["a","b"]},\n  42,\n  {"id":2,"name":"n, ]"},\n  "s",\n  {"id":3}\n]\n';
  const r = await splitAndParse(
    utf8(src),
    { format: { kind: "json-array" }, targetChunkBytes: 1 },
    { format: "json-array" },
  );
  assert.equal(r.chunks.length, 5);
  assert.deepEqual(r.header, ["id", "tags", "name"]);
  assert.deepEqual(r.rows, [[1, ["a", "b"]], [2, null, "n, ]"], [3, null, null]]);
  assert.deepEqual(r.errors.map((e) => e.line), [3, 5]);
  const whole = parseChunk(utf8(src), { format: "json-array" });
  assert.deepEqual(whole.rows, [[1, ["a", "b"], null], [2, null, "n, ]"], [3, null, null]]);
  assert.deepEqual(whole.errors.map((e) => e.line), [3, 5]);
  const bad = parseChunk(utf8('[{"a":1},\n{"a":}]'), { format: "json-array" });
  assert.deepEqual(bad.rows, [[1]]);
  assert.equal(bad.errors[0]!.line, 2);
  assert.deepEqual(parseChunk(utf8("[]"), { format: "json-array" }).rows, []);
});

Deno.test("JSON: a file that is not an array fails at the split stage", async () => {
  await assert.rejects(
    splitAndParse(utf8('{"a":1}'), { format: { kind: "json-array" } }, { format: "json-array" }),
    NotJsonArrayError,
  );
});

Deno.test("mixed types in a column stay strings after parse (typing is infer's job)", () => {
  const r = parseChunk(utf8("v\n1\n2.5\nabc\n\n"), CSV);
  assert.deepEqual(r.rows, [["1"], ["2.5"], ["abc"]]);
});
