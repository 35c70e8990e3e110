/**
 * Property: for random CSVs (seeded) full of quotes, delimiters, CRLF/LF and quoted newlines,
 * splitting at random chunk sizes (and random read sizes) then parsing each chunk yields
 * exactly the rows of parsing the whole file at once — and the same reported errors; with
 * quoting and without (TSV's default).
 */
import assert from "node:assert/strict";
import { parseChunk, type ParseOptions } from "./parse.ts";
import { prng, splitAndParse, utf8 } from "./test_util.ts";

const ALPHABET = ["a", "b", "Z", " ", ",", '"', "\n", "\r\n", "é", "東", "😀", "1", "-", ";"];

function field(rand: () => number): string {
  const len = Math.floor(rand() * 8);
  let s = "";
  for (let i = 0; i < len; i++) s += ALPHABET[Math.floor(rand() * ALPHABET.length)]!;
  const needsQuotes = /[",\r\n]/.test(s) || rand() < 0.2;
  return needsQuotes ? `"${s.replaceAll('"', '""')}"` : s;
}

function randomCsv(rand: () => number): { text: string; width: number } {
  const width = 1 + Math.floor(rand() * 5);
  const rows = Math.floor(rand() * 60);
  const lines: string[] = [];
  for (let r = 0; r <= rows; r++) {
    // Occasionally a long row (reported), a short one (kept, padded) or a blank line.
    const odd = rand();
    const w = odd < 0.05
      ? width + 1
      : odd < 0.12
      ? Math.max(1, width - 1 - Math.floor(rand() * 2))
      : width;
    if (rand() < 0.03) lines.push("");
    lines.push(Array.from({ length: w }, () => field(rand)).join(","));
  }
  const eol = rand() < 0.5 ? "\n" : "\r\n";
  return { text: lines.join(eol) + (rand() < 0.7 ? eol : ""), width };
}

Deno.test("split at random sizes + parse per chunk == parse of the whole file", async () => {
  const rand = prng(20240611);
  for (let trial = 0; trial < 300; trial++) {
    // Every third file without a quote character: quotes are text, every LF ends a record.
    const quote = trial % 3 === 2 ? "" : '"';
    // Without quoting, quoted commas make many long rows: every error is kept to compare.
    const parse: ParseOptions = { format: "csv", quote, maxErrors: Infinity };
    const { text } = randomCsv(rand);
    const bytes = utf8(text);
    const whole = parseChunk(bytes, parse);
    const target = 1 + Math.floor(rand() * Math.max(1, bytes.length / 2));
    const piece = 1 + Math.floor(rand() * 97);
    const split = await splitAndParse(
      bytes,
      { format: { kind: "csv", quote }, targetChunkBytes: target },
      parse,
      piece,
    );
    const ctx = `trial ${trial} target ${target} piece ${piece} quote ${JSON.stringify(quote)}`;
    assert.deepEqual(split.header, whole.header, ctx);
    assert.deepEqual(split.rows, whole.rows, ctx);
    assert.deepEqual(split.errors, whole.errors, ctx);
    assert.equal(split.skipped, whole.skipped, ctx);
    if (bytes.length > 0) assert.equal(split.chunks.at(-1)?.end, bytes.length, ctx);
  }
});

Deno.test("random CSV: rows survive a round trip through the generator's quoting", () => {
  // Sanity check of the generator itself: a quoted field with an escaped quote and CRLF.
  const r = parseChunk(utf8('h\n"a""\r\nb"\n'), { format: "csv" });
  assert.deepEqual(r.rows, [['a"\r\nb']]);
});
