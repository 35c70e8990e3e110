/**
 * The fast CSV reader against csv-parse, its oracle: on thousands of generated chunks (quotes,
 * doubled quotes, quoted newlines, CRLF, blank and whitespace lines, ragged rows, unicode,
 * invalid bytes, stray and unclosed quotes) `parseChunk` gives the same header, rows, errors
 * and skipped count with the fast reader as with csv-parse alone. Also: the fast reader
 * really takes well-formed input, and hands malformed input back; reading a chunk in small
 * pieces, in batches, rewound, gives what reading it whole does.
 */
import assert from "node:assert/strict";
import { FastCsvReader, fastCsvRecords } from "./fast_csv.ts";
import { parseChunk, type ParseOptions } from "./parse.ts";
import { prng } from "./test_util.ts";

const enc = new TextEncoder();

function field(r: () => number, d: string, nasty: boolean): string {
  const x = r();
  if (x < 0.1) return "";
  if (x < 0.3) return String(Math.floor(r() * 1e6) - 5e5);
  if (x < 0.4) return (r() * 1000).toFixed(3);
  if (x < 0.5) return `"quoted ${d} with ""doubled"" quotes"`;
  if (x < 0.55) return `"line one\nline two\r\nthree"`;
  if (x < 0.6) return "ünïcödé ✓ 漢字 🙂";
  if (x < 0.63) return " padded ";
  if (x < 0.66) return `""`;
  if (!nasty) return `word${Math.floor(r() * 100)}`;
  if (x < 0.7) return `mid"quote`;
  if (x < 0.73) return `"closed"trailing`;
  if (x < 0.75) return `"unclosed ${d} field`;
  if (x < 0.77) return "lone\rcr";
  return `word${Math.floor(r() * 100)}`;
}

function chunkText(seed: number, nasty: boolean, d: string): string {
  const r = prng(seed);
  const width = 1 + Math.floor(r() * 5);
  const lines: string[] = [];
  const rows = 1 + Math.floor(r() * 30);
  for (let i = 0; i < rows; i++) {
    const y = r();
    if (y < 0.05) lines.push("");
    else if (nasty && y < 0.08) lines.push("   ");
    else {
      const w = nasty && y < 0.15 ? Math.max(1, width + Math.floor(r() * 3) - 1) : width;
      lines.push(Array.from({ length: w }, () => field(r, d, nasty)).join(d));
    }
  }
  const eol = r() < 0.3 ? "\r\n" : "\n";
  return lines.join(eol) + (r() < 0.7 ? eol : "");
}

function both(bytes: Uint8Array, options: ParseOptions) {
  const run = (csvReader: "auto" | "csv-parse") => {
    try {
      return { ok: parseChunk(bytes, { ...options, csvReader }) };
    } catch (err) {
      return { err: `${(err as Error).name}: ${(err as Error).message}` };
    }
  };
  return { fast: run("auto"), oracle: run("csv-parse") };
}

Deno.test("fast csv: same result as csv-parse on generated chunks", () => {
  let taken = 0;
  let total = 0;
  for (let seed = 1; seed <= 3000; seed++) {
    const nasty = seed % 3 === 0;
    const d = seed % 5 === 0 ? "\t" : seed % 7 === 0 ? ";" : ",";
    const text = chunkText(seed, nasty, d);
    let bytes = enc.encode(text);
    if (nasty && seed % 11 === 0) {
      // Invalid UTF-8 somewhere.
      bytes = new Uint8Array([
        ...bytes.subarray(0, bytes.length >> 1),
        0xff,
        0xc3,
        ...bytes.subarray(bytes.length >> 1),
      ]);
    }
    // Every other chunk also without quoting (TSV's default): quotes are text.
    for (const quote of seed % 2 ? ['"'] : ['"', ""]) {
      for (const hasHeader of [true, false]) {
        for (const errorPolicy of ["skip", "fail"] as const) {
          const options: ParseOptions = {
            format: "csv",
            delimiter: d,
            quote,
            hasHeader,
            errorPolicy,
          };
          const { fast, oracle } = both(bytes, options);
          assert.deepEqual(
            fast,
            oracle,
            `seed ${seed} (${JSON.stringify(text)}) ${hasHeader} ${errorPolicy} quote ${quote}`,
          );
        }
      }
      total++;
      if (fastCsvRecords(bytes, d, quote) !== null) taken++;
    }
  }
  // The fast reader must actually take the well-formed chunks (a third of them are nasty).
  assert.ok(taken > total * 0.6, `fast reader took ${taken} of ${total}`);
});

Deno.test("fast csv: pieces of any size, batches and rewinds give the whole chunk's records", () => {
  for (let seed = 1; seed <= 1500; seed++) {
    const nasty = seed % 3 === 0;
    const d = seed % 5 === 0 ? "\t" : ",";
    let bytes = enc.encode(chunkText(seed, nasty, d));
    if (nasty && seed % 11 === 0) {
      bytes = new Uint8Array([
        ...bytes.subarray(0, bytes.length >> 1),
        0xff,
        ...bytes.subarray(bytes.length >> 1),
      ]);
    }
    const whole = fastCsvRecords(bytes, d, '"', bytes.length + 1);
    for (const piece of [1, 2, 5, 16, 100]) {
      assert.deepEqual(
        fastCsvRecords(bytes, d, '"', piece),
        whole,
        `seed ${seed}, pieces of ${piece}`,
      );
      // Batches of 2 records, read twice (rewind between), as CsvBatches reads them.
      const reader = FastCsvReader.open(bytes, d, '"', piece);
      for (let pass = 0; pass < 2 && reader; pass++) {
        const got: string[][] = [];
        let failed = false;
        for (;;) {
          const batch = reader.next(2);
          if (batch === null) {
            failed = true;
            break;
          }
          if (batch.length === 0) break;
          got.push(...batch);
        }
        assert.deepEqual(
          failed ? null : got,
          whole,
          `seed ${seed}, pieces of ${piece}, pass ${pass}`,
        );
        reader.rewind();
      }
    }
  }
});

Deno.test("fast csv: later chunks with a given header and line numbers agree too", () => {
  for (let seed = 5000; seed < 5600; seed++) {
    const text = chunkText(seed, seed % 2 === 0, ",");
    const options: ParseOptions = {
      format: "csv",
      header: ["a", "b", "c"],
      chunk: { index: 3, firstLine: 120, start: 9000 },
    };
    const { fast, oracle } = both(enc.encode(text), options);
    assert.deepEqual(fast, oracle, `seed ${seed} ${JSON.stringify(text)}`);
  }
});

Deno.test("fast csv: well-formed input is taken, malformed is handed back", () => {
  const ok = (s: string) => fastCsvRecords(enc.encode(s), ",", '"');
  assert.deepEqual(ok('a,b\n"x, ""y""",2\r\n\n"multi\nline",\n'), [
    ["a", "b"],
    ['x, "y"', "2"],
    ["multi\nline", ""],
  ]);
  assert.deepEqual(ok("a;b\n1;2"), [["a;b"], ["1;2"]]);
  assert.equal(ok('a,b"c\n'), null, "quote inside an unquoted field");
  assert.equal(ok('"a"b,c\n'), null, "text after a closing quote");
  assert.equal(ok('"unclosed,c\n'), null, "unclosed quote");
  assert.equal(fastCsvRecords(new Uint8Array([0x61, 0xff, 0x0a]), ",", '"'), null, "bad UTF-8");
  assert.equal(ok("a,b\n   \n"), null, "a whitespace-only line is csv-parse's to judge");
  assert.deepEqual(fastCsvRecords(enc.encode('a\t"b\n"c"\td\n'), "\t", ""), [
    ["a", '"b'],
    ['"c"', "d"],
  ], "no quote character: quotes are text");
  for (const space of ["\t", "\u00a0", "\u2028", "\ufeff", "\u3000"]) {
    assert.equal(ok(`a,b\n${space}\n1,2\n`), null, `a line of ${JSON.stringify(space)} alone`);
    assert.deepEqual(ok(`a,b\n${space}x,2\n`), [["a", "b"], [`${space}x`, "2"]]);
  }
});
