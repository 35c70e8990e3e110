import assert from "node:assert/strict";
import { LimitError } from "./errors.ts";
import { checkCsvHeader, checkedHeaderStream, HeaderScanner } from "./header.ts";
import { parseChunk } from "./parse.ts";
import {
  bytesOf,
  millionColumnCsv,
  wideCsv,
  wideNdjson,
} from "../../../tests/hostile/input_files.ts";

const enc = new TextEncoder();
const limits = { maxColumns: 1000, maxBytes: 1024 * 1024 };

function limitCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof LimitError) return err.code;
    throw err;
  }
  return "none";
}

Deno.test("checkCsvHeader() takes a header at the column limit and refuses one column more", async () => {
  assert.equal(limitCode(() => checkCsvHeader(enc.encode("a,b,c\n1,2,3\n"), limits)), "none");
  const at = await bytesOf(wideCsv(1000));
  assert.equal(limitCode(() => checkCsvHeader(at, limits)), "none");
  const over = await bytesOf(wideCsv(1001));
  assert.equal(limitCode(() => checkCsvHeader(over, limits)), "too_many_columns");
});

Deno.test("checkCsvHeader() counts fields as csv-parse cuts them (quotes, blank lines, CRLF)", () => {
  const two = { maxColumns: 2, maxBytes: 1024 };
  // Delimiters and newlines inside quotes, "" escapes, leading blank lines, CRLF: 2 fields.
  for (const text of ['"a,b","c\n,d"\n1,2\n', '\r\n\n"x""y,",z\r\n1,2\r\n', "a,b"]) {
    assert.equal(limitCode(() => checkCsvHeader(enc.encode(text), two)), "none", text);
  }
  // A quote inside an unquoted field is a character: the comma after it counts.
  assert.equal(limitCode(() => checkCsvHeader(enc.encode('a"b,c,d\n'), two)), "too_many_columns");
  // Only the first record counts: wider rows are the parser's to report.
  assert.equal(limitCode(() => checkCsvHeader(enc.encode("a,b\n1,2,3,4\n"), two)), "none");
  // TSV.
  const tsv = enc.encode("a\tb\tc\n");
  assert.equal(
    limitCode(() => checkCsvHeader(tsv, { ...two, delimiter: "\t" })),
    "too_many_columns",
  );
});

Deno.test("checkCsvHeader() refuses a header line longer than maxBytes, however few its columns", () => {
  const long = enc.encode(`${"x".repeat(5000)},y\n1,2\n`);
  assert.equal(
    limitCode(() => checkCsvHeader(long, { maxColumns: 10, maxBytes: 4096 })),
    "header_too_long",
  );
  assert.equal(limitCode(() => checkCsvHeader(long, { maxColumns: 10, maxBytes: 8192 })), "none");
});

Deno.test("checkCsvHeader() reads UTF-16 by code units", () => {
  const utf16 = (text: string, little: boolean) => {
    const out = new Uint8Array(2 + text.length * 2);
    out.set(little ? [0xff, 0xfe] : [0xfe, 0xff]);
    for (let i = 0; i < text.length; i++) {
      const [lo, hi] = [text.charCodeAt(i) & 0xff, text.charCodeAt(i) >> 8];
      out.set(little ? [lo, hi] : [hi, lo], 2 + 2 * i);
    }
    return out;
  };
  for (const little of [true, false]) {
    const three = utf16("é,ü,ß\n1,2,3\n", little);
    assert.equal(limitCode(() => checkCsvHeader(three, { maxColumns: 3, maxBytes: 64 })), "none");
    assert.equal(
      limitCode(() => checkCsvHeader(three, { maxColumns: 2, maxBytes: 64 })),
      "too_many_columns",
    );
  }
});

Deno.test("checkedHeaderStream() refuses a million-column header after reading about its limit", async () => {
  let pulled = 0;
  const source = millionColumnCsv().pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        pulled += chunk.length;
        controller.enqueue(chunk);
      },
    }),
  );
  const checked = checkedHeaderStream(source, { ...limits, encoding: "auto" });
  await assert.rejects(
    bytesOf(checked),
    (err) => err instanceof LimitError && err.code === "too_many_columns",
  );
  // 1,000 columns are ~5 KB; the generator's pieces are 64 KiB, a few of them in flight.
  assert.ok(pulled < 1024 * 1024, `read ${pulled} bytes of a ~7 MB header`);
});

Deno.test("checkedHeaderStream() passes a file through unchanged, in any pieces", async () => {
  const text = '\ufeff"a,1",b,c\r\n1,2,3\n4,5,6\n';
  const whole = enc.encode(text);
  for (const size of [1, 2, 3, 7, whole.length]) {
    const pieces = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < whole.length; i += size) controller.enqueue(whole.slice(i, i + size));
        controller.close();
      },
    });
    const out = await bytesOf(
      checkedHeaderStream(pieces, { maxColumns: 3, maxBytes: 64, encoding: "auto" }),
    );
    assert.deepEqual(out, whole, `pieces of ${size}`);
    const refused = checkedHeaderStream(
      new Blob([whole]).stream(),
      { maxColumns: 2, maxBytes: 64, encoding: "auto" },
      (err) => new Error(`refused: ${err.code}`),
    );
    await assert.rejects(bytesOf(refused), /refused: too_many_columns/);
  }
});

Deno.test("HeaderScanner refuses a header that never ends once it passes maxBytes", () => {
  const s = new HeaderScanner({ maxColumns: 10, maxBytes: 100 });
  assert.equal(s.scan(enc.encode("x".repeat(60))), false);
  assert.throws(
    () => s.scan(enc.encode("x".repeat(60))),
    (e) => e instanceof LimitError && e.code === "header_too_long",
  );
});

Deno.test("parseChunk() with maxColumns refuses a wide CSV header and JSON records with too many keys", async () => {
  const csv = await bytesOf(wideCsv(30, { rows: 2 }));
  assert.equal(limitCode(() => parseChunk(csv, { format: "csv", maxColumns: 30 })), "none");
  assert.equal(
    limitCode(() => parseChunk(csv, { format: "csv", maxColumns: 29 })),
    "too_many_columns",
  );
  assert.equal(
    limitCode(() => parseChunk(csv, { format: "csv", maxColumns: 29, csvReader: "csv-parse" })),
    "too_many_columns",
  );
  const nd = enc.encode(wideNdjson(40));
  assert.equal(limitCode(() => parseChunk(nd, { format: "ndjson", maxColumns: 40 })), "none");
  assert.equal(
    limitCode(() => parseChunk(nd, { format: "ndjson", maxColumns: 39 })),
    "too_many_columns",
  );
  const array = enc.encode(`[${wideNdjson(40).trim().split("\n").join(",")}]`);
  assert.equal(
    limitCode(() => parseChunk(array, { format: "json-array", maxColumns: 39 })),
    "too_many_columns",
  );
});
