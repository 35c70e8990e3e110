/**
 * Parses one chunk (whole records, as cut by the splitter) into rows.
 *
 * - CSV/TSV: well-formed UTF-8 through a fast reader (`fast_csv.ts`) that gives csv-parse's
 *   records; everything else through csv-parse on the chunk's bytes, with
 *   `relax_column_count`: a short record is a row whose missing trailing fields are `null`, a
 *   long one is reported here with its line. Blank lines are skipped. Quotes inside unquoted
 *   fields are kept literally (`relax_quotes`), matching the splitter.
 * - NDJSON: `JSON.parse` per line; each line must be an object.
 * - JSON array: one `JSON.parse` for the whole chunk on the fast path, per element (with its
 *   line) when that fails or an element is not an object.
 *
 * Objects become rows by the union of their keys, in order of first appearance (after the
 * names passed in `header`); keys missing from an object are `null`.
 *
 * Line numbers are 1-based physical lines of the file: the chunk's `firstLine` plus the LFs
 * before the record start (quoted newlines included).
 */
import { Buffer, isUtf8 } from "node:buffer";
import { parse as csvParse } from "csv-parse/sync";
import { bomLength, decodeText, type Encoding, findInvalidUtf8 } from "./encoding.ts";
import { EncodingError, IngestError, LimitError, RowError } from "./errors.ts";
import { FastCsvReader, fastCsvRecords } from "./fast_csv.ts";

/** What to do with a bad row. */
export type ErrorPolicy = "skip" | "fail";

/** A reported bad row. */
export interface RowIssue {
  /** 1-based physical line of the file where the bad record starts. */
  line: number;
  message: string;
}

/** Where the chunk sits in the file (a {@link ChunkBoundary} fits). */
export interface ChunkPosition {
  /** 0-based chunk number: chunk 0 holds the BOM, the header row and the JSON `[`. */
  index: number;
  /** 1-based physical line at which the chunk starts. */
  firstLine: number;
  /** Byte offset of the chunk in the file (for encoding error offsets; default 0). */
  start?: number;
}

/** Options of {@link parseChunk}. */
export interface ParseOptions {
  format: "csv" | "ndjson" | "json-array";
  /** CSV field delimiter (default `,`; `\t` for TSV). */
  delimiter?: string;
  /**
   * CSV quote character (default `"`); `""` inside quotes is an escaped quote. `""`: no
   * quoting, a quote is text (TSV).
   */
  quote?: string;
  /** Default UTF-8. */
  encoding?: Encoding;
  /** CSV: the first record is a header row (default true). */
  hasHeader?: boolean;
  /**
   * Column names from chunk 0's result. Required for CSV chunks after chunk 0; optional for
   * JSON (keeps the column order stable across chunks).
   */
  header?: readonly string[];
  /** Position of the chunk; default: chunk 0 at line 1. */
  chunk?: ChunkPosition;
  /** `skip` (default): drop and report bad rows; `fail`: throw {@link RowError}. */
  errorPolicy?: ErrorPolicy;
  /** How many issues to keep in `errors` under `skip` (default 100); all are counted. */
  maxErrors?: number;
  /** Throw {@link EncodingError} on invalid bytes instead of decoding them as U+FFFD. */
  fatalEncoding?: boolean;
  /**
   * CSV reader: `auto` (default) reads well-formed UTF-8 with the fast reader and hands
   * everything else to csv-parse; `csv-parse` always uses csv-parse (tests compare the two).
   */
  csvReader?: "auto" | "csv-parse";
  /**
   * Most columns: a wider CSV header (or first row) or more JSON keys than this throw
   * {@link LimitError} (`too_many_columns`). @default no limit
   */
  maxColumns?: number;
}

/** Result of {@link parseChunk}. */
export interface ParseResult {
  /** Column names (unique, non-empty for CSV). JSON: may grow from chunk to chunk. */
  header: string[];
  /** Rows aligned with `header`: strings for CSV, JSON values for JSON formats. */
  rows: unknown[][];
  /** The first `maxErrors` bad rows, in file order. */
  errors: RowIssue[];
  /** Number of bad rows dropped. */
  skipped: number;
}

/** Default number of issues kept per chunk. */
export const MAX_ERRORS = 100;

/** Collects bad rows according to the error policy. */
class Issues {
  readonly errors: RowIssue[] = [];
  skipped = 0;
  constructor(private readonly policy: ErrorPolicy, private readonly max: number) {}

  add(line: number, message: string): void {
    if (this.policy === "fail") throw new RowError(line, message);
    this.skipped++;
    if (this.errors.length < this.max) this.errors.push({ line, message });
  }

  sorted(): RowIssue[] {
    return this.errors.sort((a, b) => a.line - b.line);
  }
}

/**
 * Parses one chunk. Throws {@link RowError} under the `fail` policy, {@link EncodingError}
 * with `fatalEncoding`, and {@link IngestError} for misuse (e.g. a CSV chunk after chunk 0
 * without `header`).
 */
export function parseChunk(bytes: Uint8Array, options: ParseOptions): ParseResult {
  const issues = new Issues(options.errorPolicy ?? "skip", options.maxErrors ?? MAX_ERRORS);
  const chunk = options.chunk ?? { index: 0, firstLine: 1 };
  if (options.format === "csv") return parseCsv(bytes, options, chunk, issues);
  const text = jsonText(bytes, options, chunk);
  const columns = new ColumnIndex(options.header ?? [], options.maxColumns);
  const rows = options.format === "ndjson"
    ? parseNdjson(text, chunk.firstLine, columns, issues)
    : parseJsonArray(text, chunk, columns, issues);
  return {
    header: columns.names,
    rows: columns.pad(rows),
    errors: issues.sorted(),
    skipped: issues.skipped,
  };
}

/** A JSON chunk's text; an {@link EncodingError} of UTF-8 gets its line. */
function jsonText(bytes: Uint8Array, options: ParseOptions, chunk: ChunkPosition): string {
  const encoding = options.encoding ?? "utf-8";
  try {
    return decodeText(bytes, encoding, {
      fatal: options.fatalEncoding ?? false,
      stripBom: chunk.index === 0,
      fileOffset: chunk.start ?? 0,
    });
  } catch (e) {
    if (!(e instanceof EncodingError) || encoding !== "utf-8") throw e;
    const at = e.offset - (chunk.start ?? 0);
    let line = chunk.firstLine;
    for (let i = 0; i < at; i++) if (bytes[i] === 10) line++;
    throw new EncodingError(encoding, e.offset, line);
  }
}

// ---------------------------------------------------------------------------------------------
// CSV

/** Raw csv-parse error fields we use. */
interface CsvIssue {
  code: string;
  lines: number;
}

function parseCsv(
  bytes: Uint8Array,
  options: ParseOptions,
  chunk: ChunkPosition,
  issues: Issues,
): ParseResult {
  const { encoding, delimiter, quote, body } = csvBody(bytes, options, chunk);
  const { input, csvEncoding, units } = csvInput(body, encoding, options, chunk);
  const csvIssues: CsvIssue[] = [];
  const fast = encoding === "utf-8" && options.csvReader !== "csv-parse"
    ? fastCsvRecords(body, delimiter, quote)
    : null;
  const records = fast ?? csvParse(input, {
    delimiter,
    quote: quote || null,
    escape: quote || null,
    encoding: csvEncoding,
    relax_quotes: true,
    relax_column_count: true,
    skip_records_with_error: true,
    skip_empty_lines: true,
    record_delimiter: ["\r\n", "\n"],
    max_record_size: 0,
    on_skip: (err) => {
      csvIssues.push({ code: err?.code ?? "CSV_ERROR", lines: lineOf(err) });
      return undefined;
    },
  });
  const startLine = recordStartLine(units, delimiter, quote, chunk.firstLine);
  const { header, from } = csvHeader(records, options, chunk);
  const rows = fitRows(records, from, header.length, startLine, issues);
  for (const e of csvIssues) {
    const line = chunk.firstLine + e.lines - 1;
    issues.add(recordContaining(line, startLine, records.length), csvMessage(e.code));
  }
  return { header, rows, errors: issues.sorted(), skipped: issues.skipped };
}

/**
 * A CSV chunk's settings and body: chunk 0 without its BOM; with `fatalEncoding`, UTF-8 is
 * checked first ({@link EncodingError} with the offset and line).
 */
function csvBody(bytes: Uint8Array, options: ParseOptions, chunk: ChunkPosition) {
  let encoding = options.encoding ?? "utf-8";
  let body = chunk.index === 0 ? bytes.subarray(bomLength(encoding, bytes)) : bytes;
  if (encoding === "windows-1252") {
    // Read as the UTF-8 it decodes to, so the fast reader takes it: every byte is a
    // character and the line feeds stay line feeds.
    body = utf8Encoder.encode(windows1252.decode(body));
    encoding = "utf-8";
  } else if (encoding === "utf-8" && options.fatalEncoding) checkUtf8(body, bytes, chunk);
  return { encoding, delimiter: options.delimiter ?? ",", quote: options.quote ?? '"', body };
}

const windows1252 = new TextDecoder("windows-1252");
const utf8Encoder = new TextEncoder();

/**
 * The start line of a chunk's record by its number, the record starts found on first use
 * (only a reported row needs them).
 */
function recordStartLine(
  units: () => Uint8Array,
  delimiter: string,
  quote: string,
  firstLine: number,
): (record: number) => number {
  let starts: number[] | null = null;
  return (record) => {
    starts ??= csvRecordStarts(units(), delimiter, quote, firstLine);
    return starts[record] ?? firstLine;
  };
}

/** Input for csv-parse: bytes as they are for UTF-8/Latin-1, a string for UTF-16. */
function csvInput(
  body: Uint8Array,
  encoding: Encoding,
  options: ParseOptions,
  chunk: ChunkPosition,
): { input: Buffer | string; csvEncoding: "utf8" | "latin1"; units: () => Uint8Array } {
  if (encoding === "utf-8" || encoding === "latin1") {
    return {
      input: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      csvEncoding: encoding === "latin1" ? "latin1" : "utf8",
      units: () => body,
    };
  }
  const text = decodeText(body, encoding, {
    fatal: options.fatalEncoding ?? false,
    fileOffset: (chunk.start ?? 0) + (chunk.index === 0 ? bomLength(encoding, body) : 0),
  });
  return { input: text, csvEncoding: "utf8", units: () => new TextEncoder().encode(text) };
}

/** Throws an {@link EncodingError} with the exact offset and line if `body` is not UTF-8. */
function checkUtf8(body: Uint8Array, bytes: Uint8Array, chunk: ChunkPosition): void {
  if (isUtf8(body)) return;
  const at = findInvalidUtf8(body);
  const skipped = bytes.length - body.length;
  let line = chunk.firstLine;
  for (let i = 0; i < at; i++) if (body[i] === 10) line++;
  throw new EncodingError("utf-8", (chunk.start ?? 0) + skipped + at, line);
}

function lineOf(err: unknown): number {
  const lines = (err as { lines?: unknown } | undefined)?.lines;
  return typeof lines === "number" ? lines : 1;
}

function csvMessage(code: string): string {
  if (code === "CSV_QUOTE_NOT_CLOSED") return "unclosed quoted field (unbalanced quotes)";
  return `malformed CSV (${code})`;
}

/** Header and index of the first data record. */
function csvHeader(
  records: string[][],
  options: ParseOptions,
  chunk: ChunkPosition,
): { header: string[]; from: number } {
  if (options.header !== undefined) return { header: [...options.header], from: 0 };
  if (chunk.index !== 0) {
    throw new IngestError("CSV chunks after chunk 0 need the header from chunk 0");
  }
  const first = records[0];
  if (first === undefined) return { header: [], from: 0 };
  if (options.maxColumns !== undefined && first.length > options.maxColumns) {
    throw new LimitError("too_many_columns", options.maxColumns, first.length);
  }
  if (options.hasHeader ?? true) return { header: uniqueNames(first), from: 1 };
  return { header: first.map((_, i) => `column_${i + 1}`), from: 0 };
}

/** A CSV row: a field missing at the end of a short record is `null`. */
export type CsvRow = (string | null)[];

/**
 * Fits records to the header's width: a short record is a row whose missing trailing fields
 * are `null` (exports leave trailing empty fields out; pandas and spreadsheets read them so);
 * a record with more fields than the header is reported. Returns `records` itself if all fit.
 * `offset`: the chunk's record number of `records[0]` (for line numbers).
 */
function fitRows(
  records: string[][],
  from: number,
  width: number,
  startLine: (record: number) => number,
  issues: Issues,
  offset = 0,
): CsvRow[] {
  let bad = -1;
  for (let r = from; r < records.length; r++) {
    if (records[r]!.length !== width) {
      bad = r;
      break;
    }
  }
  if (bad < 0) return from === 0 ? records : records.slice(from);
  const rows: CsvRow[] = records.slice(from, bad);
  for (let r = bad; r < records.length; r++) {
    const rec: CsvRow = records[r]!;
    if (rec.length === width) rows.push(rec);
    else if (rec.length < width) {
      for (let k = rec.length; k < width; k++) rec.push(null);
      rows.push(rec);
    } else issues.add(startLine(offset + r), `expected ${width} fields, found ${rec.length}`);
  }
  return rows;
}

/** What {@link CsvBatches.next} gives when the chunk turns out to need csv-parse. */
export const NEEDS_CSV_PARSE = Symbol("needs csv-parse");

/**
 * A CSV chunk's rows a batch at a time, with the same header, rows, line numbers and issues
 * as {@link parseChunk}: a caller can be done with a batch before the next is parsed, so a
 * chunk's rows are never all alive at once. Only for chunks the fast reader takes
 * ({@link csvBatches}); a batch is {@link NEEDS_CSV_PARSE} when the reader meets what only
 * csv-parse may judge further on: the caller then drops what it made and calls `parseChunk`.
 */
export class CsvBatches {
  #issues!: Issues;
  #record = 0;

  constructor(
    readonly header: string[],
    readonly from: number,
    readonly reader: FastCsvReader,
    readonly startLine: (record: number) => number,
    readonly options: ParseOptions,
    readonly batchRows: number,
  ) {
    this.rewind();
  }

  /** Bad rows so far, in file order (the first `maxErrors`). */
  get errors(): RowIssue[] {
    return this.#issues.sorted();
  }

  /** Bad rows dropped so far. */
  get skipped(): number {
    return this.#issues.skipped;
  }

  /** Back to the first row: rows and issues are given again. */
  rewind(): void {
    this.reader.rewind();
    this.#issues = new Issues(
      this.options.errorPolicy ?? "skip",
      this.options.maxErrors ?? MAX_ERRORS,
    );
    this.#record = 0;
  }

  /** The next rows (`null` at the end), or {@link NEEDS_CSV_PARSE}. */
  next(): CsvRow[] | null | typeof NEEDS_CSV_PARSE {
    const records = this.reader.next(this.batchRows);
    if (records === null) return NEEDS_CSV_PARSE;
    if (records.length === 0) return null;
    const offset = this.#record;
    this.#record += records.length;
    // The header row, when the chunk has one, is the first batch's first record.
    const from = offset === 0 ? this.from : 0;
    return fitRows(records, from, this.header.length, this.startLine, this.#issues, offset);
  }
}

/**
 * {@link CsvBatches} over a CSV chunk, or `null` when the fast reader does not take it
 * (not UTF-8, csv-parse asked for, invalid bytes, ...): then `parseChunk` it. Throws as
 * `parseChunk` does for a bad header or, with `fatalEncoding`, invalid bytes.
 */
export function csvBatches(
  bytes: Uint8Array,
  options: ParseOptions,
  batchRows: number,
): CsvBatches | null {
  if (options.format !== "csv" || options.csvReader === "csv-parse") return null;
  const chunk = options.chunk ?? { index: 0, firstLine: 1 };
  const { encoding, delimiter, quote, body } = csvBody(bytes, options, chunk);
  if (encoding !== "utf-8") return null;
  const reader = FastCsvReader.open(body, delimiter, quote);
  if (!reader) return null;
  // The header: the first record unless given (chunk 0 reads it; a header-less file names
  // its columns by the first record's width, which stays a row).
  let header: string[];
  let from = 0;
  if (options.header === undefined && chunk.index === 0) {
    const first = reader.next(1);
    if (first === null) return null;
    ({ header, from } = csvHeader(first, options, chunk));
    reader.rewind();
  } else {
    ({ header, from } = csvHeader([], options, chunk));
  }
  const startLine = recordStartLine(() => body, delimiter, quote, chunk.firstLine);
  return new CsvBatches(header, from, reader, startLine, options, Math.max(1, batchRows));
}

/** Start line of the record containing `line` (records are in file order). */
function recordContaining(line: number, startLine: (r: number) => number, count: number): number {
  let found = startLine(0);
  for (let r = 0; r <= count; r++) {
    const s = startLine(r);
    if (s > line) break;
    found = s;
  }
  return found;
}

/**
 * Start lines of the non-blank records of a CSV chunk, by the same rules as the splitter and
 * csv-parse (`skip_empty_lines`). Only computed when a row is reported.
 */
export function csvRecordStarts(
  units: Uint8Array,
  delimiter: string,
  quote: string,
  firstLine: number,
): number[] {
  const d = delimiter.charCodeAt(0);
  const q = quote === "" ? -1 : quote.charCodeAt(0);
  const starts: number[] = [];
  let line = firstLine;
  let recStart = 0;
  let recLine = firstLine;
  let inQ = false;
  let after = false;
  let fs = true;
  const n = units.length;
  for (let i = 0; i < n; i++) {
    const c = units[i]!;
    if (inQ) {
      if (c === q) [inQ, after] = [false, true];
      else if (c === 10) line++;
      continue;
    }
    if (after) {
      after = false;
      if (c === q) {
        inQ = true;
        continue;
      }
    }
    if (c === 10) {
      const blank = i === recStart || (i === recStart + 1 && units[recStart] === 13);
      if (!blank) starts.push(recLine);
      line++;
      recStart = i + 1;
      recLine = line;
      fs = true;
    } else if (c === d) fs = true;
    else if (c === q && fs) [inQ, fs] = [true, false];
    else if (c !== 13) fs = false;
  }
  if (recStart < n) starts.push(recLine);
  return starts;
}

/**
 * Makes header names unique and non-empty: names are trimmed, an empty name becomes
 * `column_<position>`, and a repeated name gets `_2`, `_3`… (skipping names used elsewhere in
 * the header), e.g. `["id", "", "id"]` → `["id", "column_2", "id_2"]`.
 */
export function uniqueNames(names: readonly string[]): string[] {
  const trimmed = names.map((n) => n.trim());
  const reserved = new Set(trimmed.filter((n) => n !== ""));
  const taken = new Set<string>();
  return trimmed.map((name, i) => {
    let candidate = name === "" ? `column_${i + 1}` : name;
    if (taken.has(candidate) || (name === "" && reserved.has(candidate))) {
      let k = 2;
      while (taken.has(`${candidate}_${k}`) || reserved.has(`${candidate}_${k}`)) k++;
      candidate = `${candidate}_${k}`;
    }
    taken.add(candidate);
    return candidate;
  });
}

// ---------------------------------------------------------------------------------------------
// JSON

/** Maps object keys to column positions (union of keys, first-seen order). */
class ColumnIndex {
  readonly names: string[];
  private readonly positions = new Map<string, number>();

  /** `max`: most names ({@link LimitError} past it). */
  constructor(initial: readonly string[], private readonly max = Infinity) {
    this.names = [...initial];
    this.names.forEach((n, i) => this.positions.set(n, i));
  }

  /** The row of `obj`, aligned to the current names (later names are padded by {@link pad}). */
  row(obj: Record<string, unknown>): unknown[] {
    const row: unknown[] = new Array(this.names.length).fill(null);
    for (const key of Object.keys(obj)) {
      let at = this.positions.get(key);
      if (at === undefined) {
        at = this.names.length;
        if (at >= this.max) throw new LimitError("too_many_columns", this.max, at + 1);
        this.names.push(key);
        this.positions.set(key, at);
      }
      row[at] = obj[key];
    }
    return row;
  }

  /** Pads rows created before later keys appeared with `null`. */
  pad(rows: unknown[][]): unknown[][] {
    const width = this.names.length;
    for (const row of rows) while (row.length < width) row.push(null);
    return rows;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

function parseNdjson(
  text: string,
  firstLine: number,
  columns: ColumnIndex,
  issues: Issues,
): unknown[][] {
  const rows: unknown[][] = [];
  let line = firstLine;
  let pos = 0;
  const n = text.length;
  while (pos < n) {
    let nl = text.indexOf("\n", pos);
    if (nl < 0) nl = n;
    const end = nl > pos && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
    if (end > pos) ndjsonLine(text.slice(pos, end), line, columns, rows, issues);
    pos = nl + 1;
    line++;
  }
  return rows;
}

function ndjsonLine(
  src: string,
  line: number,
  columns: ColumnIndex,
  rows: unknown[][],
  issues: Issues,
): void {
  let value: unknown;
  try {
    value = JSON.parse(src);
  } catch (e) {
    if (src.trim() === "") return;
    issues.add(line, `invalid JSON: ${(e as Error).message}`);
    return;
  }
  if (isRecord(value)) rows.push(columns.row(value));
  else issues.add(line, `expected a JSON object, found ${describe(value)}`);
}

/** Range of the chunk's elements inside `text` (without `[`, trailing `,` or `]`). */
function jsonBody(text: string, first: boolean): { from: number; to: number } {
  let from = 0;
  if (first) {
    from = skipBlank(text, 0);
    if (text.charCodeAt(from) === 0x5b) from++;
  }
  let to = text.length;
  while (to > from && isBlank(text.charCodeAt(to - 1))) to--;
  const last = text.charCodeAt(to - 1);
  if (to > from && (last === 0x2c || last === 0x5d)) to--;
  return { from, to };
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipBlank(text: string, i: number): number {
  while (i < text.length && isBlank(text.charCodeAt(i))) i++;
  return i;
}

function parseJsonArray(
  text: string,
  chunk: ChunkPosition,
  columns: ColumnIndex,
  issues: Issues,
): unknown[][] {
  const { from, to } = jsonBody(text, chunk.index === 0);
  let values: unknown[] | null = null;
  try {
    values = JSON.parse(`[${text.slice(from, to)}]`) as unknown[];
  } catch {
    values = null;
  }
  if (values !== null && values.every(isRecord)) {
    return values.map((v) => columns.row(v as Record<string, unknown>));
  }
  return parseJsonElements(text, from, to, chunk.firstLine, columns, issues);
}

/** Slow path: splits the body into top-level elements and parses each (with its line). */
function parseJsonElements(
  text: string,
  from: number,
  to: number,
  firstLine: number,
  columns: ColumnIndex,
  issues: Issues,
): unknown[][] {
  const rows: unknown[][] = [];
  let line = firstLine;
  for (let i = 0; i < from; i++) if (text.charCodeAt(i) === 10) line++;
  let start = from;
  let depth = 0;
  let inStr = false;
  let esc = false;
  for (let i = from; i <= to; i++) {
    const c = i < to ? text.charCodeAt(i) : 0x2c;
    if (inStr && i < to) {
      if (esc) esc = false;
      else if (c === 0x5c) esc = true;
      else if (c === 0x22) inStr = false;
      continue;
    }
    if (c === 0x22) inStr = true;
    else if (c === 0x5b || c === 0x7b) depth++;
    else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c && (depth <= 0 || i === to)) {
      line = jsonElement(text, start, i, line, columns, rows, issues, i === to && start === from);
      start = i + 1;
      depth = 0;
    }
  }
  return rows;
}

/** Parses one element `text[start, end)`; returns the line count at `end`. */
function jsonElement(
  text: string,
  start: number,
  end: number,
  line: number,
  columns: ColumnIndex,
  rows: unknown[][],
  issues: Issues,
  only: boolean,
): number {
  let s = start;
  while (s < end && isBlank(text.charCodeAt(s))) if (text.charCodeAt(s++) === 10) line++;
  const elementLine = line;
  for (let i = s; i < end; i++) if (text.charCodeAt(i) === 10) line++;
  if (s === end) {
    if (!only) issues.add(elementLine, "empty array element");
    return line;
  }
  let value: unknown;
  try {
    value = JSON.parse(text.slice(s, end));
  } catch (e) {
    issues.add(elementLine, `invalid JSON: ${(e as Error).message}`);
    return line;
  }
  if (isRecord(value)) rows.push(columns.row(value));
  else issues.add(elementLine, `expected a JSON object, found ${describe(value)}`);
  return line;
}
