/**
 * Hostile inputs for the dataset and query APIs, made on demand (nothing is stored): CSV files
 * with a header of any width, generated as a stream so that a 1,000,000-column header is never
 * held whole; JSON records with too many keys; tampered pagination cursors; dates JavaScript
 * accepts and PostgreSQL does not; random query parameter values for fuzzing; a gzip bomb made as
 * it is read.
 */
import { concatBytes } from "../../actors/datasets/ingest/encoding.ts";
import { constants as zlib, crc32, deflateRawSync } from "node:zlib";

const encoder = new TextEncoder();

/** Columns of the widest header the suite sends. */
export const MILLION_COLUMNS = 1_000_000;

/** The name of column `i` (0-based) in generated files. */
export const columnName = (i: number) => `c${i + 1}`;

/**
 * A CSV file whose header has `columns` columns (`c1,c2,...`), then `rows` rows of as many
 * small integers, as a stream of pieces of about `pieceBytes`: only one piece is ever made at
 * a time, whatever the width. `delimiter` `\t` makes a TSV.
 */
export function wideCsv(
  columns: number,
  { rows = 1, pieceBytes = 64 * 1024, delimiter = "," }: {
    rows?: number;
    pieceBytes?: number;
    delimiter?: string;
  } = {},
): ReadableStream<Uint8Array> {
  let line = 0; // 0: the header, then rows
  let col = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (line > rows) {
        controller.close();
        return;
      }
      let piece = "";
      while (piece.length < pieceBytes && line <= rows) {
        piece += (col > 0 ? delimiter : "") + (line === 0 ? columnName(col) : String(col % 10));
        if (++col === columns) {
          piece += "\n";
          col = 0;
          line++;
        }
      }
      controller.enqueue(encoder.encode(piece));
    },
  }, { highWaterMark: 0 });
}

/** The whole of a (small) stream, for tests that need the file's bytes. */
export async function bytesOf(
  stream: ReadableStream<Uint8Array>,
): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A CSV header line of a million columns and one row: about 14 MB, streamed. */
export function millionColumnCsv(): ReadableStream<Uint8Array> {
  return wideCsv(MILLION_COLUMNS);
}

/** NDJSON: `records` objects of `keys` keys each (`k1..`), all records with the same keys. */
export function wideNdjson(keys: number, records = 2): string {
  const one = () =>
    JSON.stringify(Object.fromEntries(Array.from({ length: keys }, (_, i) => [`k${i + 1}`, i])));
  return Array.from({ length: records }, one).join("\n") + "\n";
}

/**
 * NDJSON whose records each bring `keysPerRecord` keys of their own (no key repeats): each
 * record alone is narrow, their union is `records × keysPerRecord` columns. `padBytes` of
 * filler in every record puts records in different chunks.
 */
export function disjointKeysNdjson(records: number, keysPerRecord: number, padBytes = 0): string {
  const lines: string[] = [];
  for (let r = 0; r < records; r++) {
    const o: Record<string, unknown> = {};
    for (let k = 0; k < keysPerRecord; k++) o[`r${r}_k${k}`] = k;
    if (padBytes) o.pad = "x".repeat(padBytes);
    lines.push(JSON.stringify(o));
  }
  return lines.join("\n") + "\n";
}

/** A row cursor as the API encodes one (base64url JSON of `{ v, r }`). */
export function encodeRowCursor(value: unknown): string {
  return btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Row cursors a client could forge: wrong types, out of range, nested, not JSON at all. */
export const TAMPERED_CURSORS: { what: string; cursor: string }[] = [
  { what: "r: 1.5", cursor: encodeRowCursor({ v: null, r: 1.5 }) },
  { what: "r: 1e30", cursor: encodeRowCursor({ v: null, r: 1e30 }) },
  { what: "r: -1", cursor: encodeRowCursor({ v: null, r: -1 }) },
  { what: "r: a string", cursor: encodeRowCursor({ v: null, r: "1" }) },
  { what: "v: {}", cursor: encodeRowCursor({ v: {}, r: 1 }) },
  { what: "v: []", cursor: encodeRowCursor({ v: [1, 2], r: 1 }) },
  { what: "v: true", cursor: encodeRowCursor({ v: true, r: 1 }) },
  { what: "v: 1e400 as text", cursor: encodeRowCursor({ v: "1e400", r: 1 }) },
  { what: "v: not a number", cursor: encodeRowCursor({ v: "abc", r: 1 }) },
  { what: "v: a huge integer", cursor: encodeRowCursor({ v: "9".repeat(40), r: 1 }) },
  { what: "v: a NUL", cursor: encodeRowCursor({ v: "a\u0000b", r: 1 }) },
  { what: "v: a bad date", cursor: encodeRowCursor({ v: "+275760-09-13", r: 1 }) },
  { what: "nested 200 deep", cursor: encodeRowCursor({ v: nested(200), r: 1 }) },
  { what: "an array", cursor: encodeRowCursor([1, 2]) },
  { what: "null", cursor: encodeRowCursor(null) },
  { what: "not base64", cursor: "!!!***" },
  { what: "base64 of not JSON", cursor: btoa("{r:1") },
];

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { v };
  return v;
}

/** Dates and times that `Date.parse` accepts (or that look like dates) and PostgreSQL rejects. */
export const HOSTILE_DATES = [
  "+275760-09-13", // JavaScript's last day; years past 5874897 are out of a date's range
  "-271821-04-20",
  "Tue 1", // Date.parse reads a day of the week and a month number
  "1",
  "2024-02-30",
  "2024-13-01",
  "0000-01-01", // there is no year 0
  "2024-01-01T25:00:00",
  "2024-01-01T10:00:00+99:00",
  "10000-01-01",
  "March 7, 99999",
  "2024-01-01\u0000",
];

export { seeded } from "../fixtures/seeded.ts";

/** A random hostile parameter value: odd strings, huge or odd numbers, nested JSON, cursors. */
export function fuzzValue(random: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const kinds: (() => string)[] = [
    () => pick(HOSTILE_DATES),
    () => pick(TAMPERED_CURSORS).cursor,
    () => String(10 ** Math.floor(random() * 400)),
    () => "-" + "9".repeat(1 + Math.floor(random() * 60)),
    () => pick(["NaN", "Infinity", "-0", "1e-400", "0x10", "1_000", " 1", "1.5e308", "4e-320"]),
    () => JSON.stringify(nested(1 + Math.floor(random() * 50))),
    () => "x".repeat(Math.floor(random() * 5000)),
    () => String.fromCharCode(...Array.from({ length: 20 }, () => Math.floor(random() * 0xffff))),
    () => pick(["\u0000", "%", "_", "\\", "'", '"', ":", ",", "::", "a:b:c"]),
    () => pick(["true", "TRUE", "yes", "", " ", "null"]),
  ];
  return pick(kinds)();
}

/**
 * A gzip bomb: `decompressedBytes` (1 GiB by default) of one repeated CSV line under a header,
 * as one gzip member made as it is pulled: the same 1 MiB block's deflate segment (about 2 KB,
 * compressed once, its window reset so segments join) again and again, then the trailer. The
 * whole GiB is about 2 MB and is never made. `pulled()`: compressed bytes the consumer took so
 * far; `cancelled()`: whether it let the stream go.
 */
export function gzipBomb(
  { decompressedBytes = 2 ** 30, line = "1,2,3,4,5,6,7,8\n" }: {
    decompressedBytes?: number;
    line?: string;
  } = {},
): { body: ReadableStream<Uint8Array>; pulled(): number; cancelled(): boolean } {
  const head = encoder.encode("a,b,c,d,e,f,g,h\n");
  const block = encoder.encode(line.repeat(Math.ceil((1 << 20) / line.length)));
  const segment = (bytes: Uint8Array) =>
    new Uint8Array(deflateRawSync(bytes, { level: 9, finishFlush: zlib.Z_FULL_FLUSH }));
  const whole = segment(block);
  // magic, deflate, no flags, no time, max compression, unknown OS
  const gzipHeader = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
  let made = 0;
  let crc = 0;
  let state: "header" | "body" | "end" | "done" = "header";
  let pulled = 0;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      let out: Uint8Array;
      if (state === "header") {
        crc = crc32(head, crc);
        made = head.length;
        out = concatBytes(gzipHeader, segment(head));
        state = "body";
      } else if (state === "body") {
        const n = Math.min(block.length, decompressedBytes - made);
        const part = n === block.length ? block : block.subarray(0, n);
        crc = crc32(part, crc);
        made += n;
        out = n === block.length ? whole : segment(part);
        if (made >= decompressedBytes) state = "end";
      } else if (state === "end") {
        const trailer = new DataView(new ArrayBuffer(8));
        trailer.setUint32(0, crc >>> 0, true);
        trailer.setUint32(4, made % 2 ** 32, true);
        // The last block: empty, final, fixed codes.
        out = concatBytes(new Uint8Array([3, 0]), new Uint8Array(trailer.buffer));
        state = "done";
      } else {
        controller.close();
        return;
      }
      pulled += out.length;
      controller.enqueue(out);
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { body, pulled: () => pulled, cancelled: () => cancelled };
}
