/**
 * Per-value type detection and per-column type inference.
 *
 * Value types, detected on the trimmed text (JSON values by their JS type):
 * - `null`: empty (when `emptyAsNull`), or one of the null tokens (`NA`, `N/A`, `null`, …);
 *   but see below for the tokens.
 * - `boolean`: `true`/`false`/`yes`/`no`, any case. `0`/`1` are integers, never booleans: a
 *   0/1 column stays numeric (lossless and what analysts expect); map it explicitly if needed.
 * - `integer`: `[+-]?digits` within ±(2^53−1). Leading zeros (`007`, `02134`) are strings, so
 *   identifiers such as ZIP codes keep their zeros; so are integers beyond the safe range.
 * - `float`: `1.5`, `-2e3`, `.5`, `1.`; with `thousands`, also `1,234` / `1,234.5`.
 *   `NaN`/`Infinity` are not numbers (they are null tokens or strings).
 * - `date`: `YYYY-MM-DD`, a real calendar date.
 * - `datetime`: `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]]` with optional `Z` / `±HH[:MM]`.
 * - `json`: JSON objects/arrays (NDJSON / JSON array uploads only).
 * - `string`: anything else.
 *
 * Column type = join of the value types (the lattice): `null` is the bottom; `integer ⊔ float
 * = float`; `date ⊔ datetime = datetime`; every other pair of different types joins to
 * `string` (the top), e.g. numbers mixed with text, booleans mixed with numbers.
 *
 * A null token is a null marker only where the column's other values are of another type
 * (numbers, dates, booleans; or none): it does not take part in the join, and counts as a
 * null. In a `string` column it is text like any other (a word "null" or "None", a "-" in a
 * list of names), and only the empty field is null. A column's type decides which, so a
 * chunk's tokens follow the chunk's own types.
 */

/** A value or column type. */
export type ColumnType =
  | "null"
  | "boolean"
  | "integer"
  | "float"
  | "date"
  | "datetime"
  | "json"
  | "string";

/** Options shared by inference and cleaning. */
export interface ValueOptions {
  /** Trim whitespace before looking at a value (default true). */
  trim?: boolean;
  /** Treat `""` as null (default true). */
  emptyAsNull?: boolean;
  /**
   * Values meaning null in a column whose other values are not text, compared after trimming,
   * case-sensitive (default {@link NULL_TOKENS}; `[]`: none).
   */
  nullTokens?: readonly string[];
  /** Accept `,` thousands separators in numbers (default false). */
  thousands?: boolean;
}

/** Default null tokens (those of pandas' `read_csv` that spreadsheets and exports write, and `-`). */
export const NULL_TOKENS: readonly string[] = [
  "NA",
  "N/A",
  "n/a",
  "#N/A",
  "null",
  "NULL",
  "None",
  "NaN",
  "nan",
  "-",
];

/** Type codes, ordered so that a join table can be indexed. */
const T = {
  null: 0,
  boolean: 1,
  integer: 2,
  float: 3,
  date: 4,
  datetime: 5,
  json: 6,
  string: 7,
} as const;
/** A null token's code: not a type (it joins with nothing), a null unless its column is text. */
const TOKEN = 8;
type Code = (typeof T)[keyof typeof T] | typeof TOKEN;
const NAMES: readonly ColumnType[] = [
  "null",
  "boolean",
  "integer",
  "float",
  "date",
  "datetime",
  "json",
  "string",
  "null", // TOKEN, as one value: a null unless its column turns out text
];

function joinCodes(a: Code, b: Code): Code {
  if (a === b || b === T.null) return a;
  if (a === T.null) return b;
  if ((a === T.integer && b === T.float) || (a === T.float && b === T.integer)) return T.float;
  if ((a === T.date && b === T.datetime) || (a === T.datetime && b === T.date)) return T.datetime;
  return T.string;
}

/** Join of two types in the lattice described in the module doc. */
export function joinTypes(a: ColumnType, b: ColumnType): ColumnType {
  return NAMES[joinCodes(T[a], T[b])]!;
}

/** Resolved value options (a Set for the null tokens). */
export interface ResolvedValueOptions {
  trim: boolean;
  emptyAsNull: boolean;
  nullTokens: ReadonlySet<string>;
  /** Length of the longest null token (cheap pre-check). */
  maxTokenLength: number;
  /** 1 at the code of each null token's first character below 256 (cheap pre-check). */
  tokenStarts: Uint8Array;
  /** Some null token starts with a character ≥ U+0100. */
  wideTokenStart: boolean;
  thousands: boolean;
}

/** Fills in defaults. */
export function resolveValueOptions(options: ValueOptions = {}): ResolvedValueOptions {
  const tokens = options.nullTokens ?? NULL_TOKENS;
  return {
    trim: options.trim ?? true,
    emptyAsNull: options.emptyAsNull ?? true,
    nullTokens: new Set(tokens),
    maxTokenLength: tokens.reduce((m, t) => Math.max(m, t.length), 0),
    tokenStarts: Uint8Array.from(
      { length: 256 },
      (_, c) => tokens.some((t) => t.charCodeAt(0) === c) ? 1 : 0,
    ),
    wideTokenStart: tokens.some((t) => t.charCodeAt(0) >= 256),
    thousands: options.thousands ?? false,
  };
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13 || c === 160 || c === 0xfeff;
}

/** Trims only when needed (no allocation for the common already-trimmed value). */
export function trimFast(s: string): string {
  const n = s.length;
  if (n === 0) return s;
  return isSpace(s.charCodeAt(0)) || isSpace(s.charCodeAt(n - 1)) ? s.trim() : s;
}

/** True if the (trimmed, non-empty) text is one of the null tokens. */
export function isNullToken(s: string, o: ResolvedValueOptions): boolean {
  if (s.length > o.maxTokenLength) return false;
  const c = s.charCodeAt(0);
  if (c < 256 ? o.tokenStarts[c] === 0 : !o.wideTokenStart) return false;
  return o.nullTokens.has(s);
}

/** True if the (trimmed) text is a null in a column that is not text: empty, or a token. */
export function isNullText(s: string, o: ResolvedValueOptions): boolean {
  if (s.length === 0) return o.emptyAsNull;
  return isNullToken(s, o);
}

/** True if the (trimmed) text is a null in a column of `type` (a token is text in text). */
export function isNullIn(s: string, type: ColumnType, o: ResolvedValueOptions): boolean {
  if (s.length === 0) return o.emptyAsNull;
  return type !== "string" && isNullToken(s, o);
}

/** What a value of a text column is: 0 a value, 1 a null, {@link TOKEN} a null token. */
function textColumnKind(v: unknown, o: ResolvedValueOptions): number {
  if (typeof v !== "string") return v === null || v === undefined ? 1 : 0;
  const s = o.trim ? trimFast(v) : v;
  if (s.length === 0) return o.emptyAsNull ? 1 : 0;
  return isNullToken(s, o) ? TOKEN : 0;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Classifies a trimmed, non-null string. */
function classifyText(s: string, thousands: boolean): Code {
  const c0 = s.charCodeAt(0);
  if (isDigit(c0) || c0 === 45 || c0 === 43 || c0 === 46) return classifyNumeric(s, thousands);
  if (s.length <= 5) return classifyBoolean(s);
  return T.string;
}

function classifyBoolean(s: string): Code {
  switch (s.length) {
    case 2:
      return s.toLowerCase() === "no" ? T.boolean : T.string;
    case 3:
      return s.toLowerCase() === "yes" ? T.boolean : T.string;
    case 4:
      return s.toLowerCase() === "true" ? T.boolean : T.string;
    case 5:
      return s.toLowerCase() === "false" ? T.boolean : T.string;
    default:
      return T.string;
  }
}

/** Numbers, dates and datetimes (all start with a digit, sign or dot). */
function classifyNumeric(s: string, thousands: boolean): Code {
  const n = s.length;
  const c0 = s.charCodeAt(0);
  const signed = c0 === 45 || c0 === 43;
  let i = signed ? 1 : 0;
  const intStart = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  const intDigits = i - intStart;
  if (intDigits > 1 && s.charCodeAt(intStart) === 48) return T.string; // leading zero
  if (i === n) return intDigits > 0 && isSafeIntegerText(s, intDigits) ? T.integer : T.string;
  const c = s.charCodeAt(i);
  if (c === 45 && intDigits === 4 && !signed) return classifyDate(s);
  if (c === 44) return thousands ? classifyThousands(s) : T.string;
  return classifyFloat(s, i, intDigits);
}

function isSafeIntegerText(s: string, digits: number): boolean {
  return digits < 16 || Number.isSafeInteger(Number(s));
}

/** Tail of a float after the integer digits: `[.digits][(e|E)[+-]digits]`. */
function classifyFloat(s: string, i: number, intDigits: number): Code {
  const n = s.length;
  let frac = 0;
  if (s.charCodeAt(i) === 46) {
    i++;
    const start = i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    frac = i - start;
  }
  if (intDigits + frac === 0) return T.string;
  if (i === n) return intDigits + frac > 300 && !inFloatRange(s) ? T.string : T.float;
  const e = s.charCodeAt(i);
  if (e !== 101 && e !== 69) return T.string;
  i++;
  const sign = s.charCodeAt(i);
  if (sign === 43 || sign === 45) i++;
  const start = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  if (i !== n || i === start) return T.string;
  // Only a long exponent can leave a double's range (a short one cannot reach 1e±308).
  return i - start < 3 || inFloatRange(s) ? T.float : T.string;
}

/**
 * Whether PostgreSQL's `double precision` takes the number `s`: not past ±1.8e308, and not so
 * small that it reads as 0 while its digits are not all zeros (PostgreSQL refuses both).
 */
function inFloatRange(s: string): boolean {
  const v = Number(s);
  if (!Number.isFinite(v)) return false;
  return v !== 0 || !/[1-9]/.test(s.replace(/[eE].*$/, ""));
}

const THOUSANDS = /^[+-]?[1-9]\d{0,2}(?:,\d{3})+(\.\d*)?$/;

function classifyThousands(s: string): Code {
  const m = THOUSANDS.exec(s);
  if (m === null) return T.string;
  if (m[1] !== undefined) return T.float;
  return Number.isSafeInteger(Number(s.replaceAll(",", ""))) ? T.integer : T.string;
}

function classifyDate(s: string): Code {
  if (!validDateText(s)) return T.string;
  if (s.length === 10) return T.date;
  return validTimeText(s) ? T.datetime : T.string;
}

function twoDigits(s: string, at: number): number {
  const a = s.charCodeAt(at) - 48;
  const b = s.charCodeAt(at + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/** `[T ]HH:MM[:SS[.fraction]][Z|±HH[[:]MM]]` after a date (hand-rolled: no regex, no allocation). */
function validTimeText(s: string): boolean {
  const n = s.length;
  const sep = s.charCodeAt(10);
  if (n < 16 || (sep !== 84 && sep !== 116 && sep !== 32) || s.charCodeAt(13) !== 58) return false;
  const h = twoDigits(s, 11);
  const m = twoDigits(s, 14);
  if (h < 0 || h > 23 || m < 0 || m > 59) return false;
  let i = 16;
  if (i < n && s.charCodeAt(i) === 58) {
    const sec = twoDigits(s, 17);
    if (sec < 0 || sec > 59) return false;
    i = 19;
    const dot = s.charCodeAt(i);
    if (i < n && (dot === 46 || dot === 44)) {
      const start = ++i;
      while (i < n && isDigit(s.charCodeAt(i))) i++;
      if (i === start || i - start > 9) return false;
    }
  }
  return i === n || validZone(s, i);
}

function validZone(s: string, i: number): boolean {
  const n = s.length;
  const c = s.charCodeAt(i);
  if (c === 90 || c === 122) return i + 1 === n;
  if (c !== 43 && c !== 45) return false;
  const hh = twoDigits(s, i + 1);
  // PostgreSQL takes offsets up to 15:59.
  if (hh < 0 || hh > 15) return false;
  i += 3;
  if (i === n) return true;
  if (s.charCodeAt(i) === 58) i++;
  const mm = twoDigits(s, i);
  return mm >= 0 && mm <= 59 && i + 2 === n;
}

/** `YYYY-MM-DD` at the start of `s`, checked against the calendar. */
function validDateText(s: string): boolean {
  if (s.length < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return false;
  const y1 = twoDigits(s, 0);
  const y2 = twoDigits(s, 2);
  const month = twoDigits(s, 5);
  const day = twoDigits(s, 8);
  if (y1 < 0 || y2 < 0 || month < 1 || month > 12 || day < 1) return false;
  return day <= daysInMonth(y1 * 100 + y2, month);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

function valueCode(value: unknown, o: ResolvedValueOptions): Code {
  if (typeof value === "string") {
    const s = o.trim ? trimFast(value) : value;
    if (s.length === 0) return o.emptyAsNull ? T.null : T.string;
    return isNullToken(s, o) ? TOKEN : classifyText(s, o.thousands);
  }
  if (value === null || value === undefined) return T.null;
  if (typeof value === "number") {
    return Number.isSafeInteger(value) ? T.integer : Number.isFinite(value) ? T.float : T.null;
  }
  if (typeof value === "boolean") return T.boolean;
  if (typeof value === "object") return T.json;
  return T.string;
}

/**
 * Type of one value (strings are trimmed and checked for null tokens first, per `options`). A
 * null token is `null` here: alone, it says nothing of its column.
 */
export function inferValue(
  value: unknown,
  options?: ValueOptions | ResolvedValueOptions,
): ColumnType {
  return NAMES[valueCode(value, resolved(options))]!;
}

/** Accepts resolved or raw options. */
export function resolved(options?: ValueOptions | ResolvedValueOptions): ResolvedValueOptions {
  if (options !== undefined && options.nullTokens instanceof Set) {
    return options as ResolvedValueOptions;
  }
  return resolveValueOptions(options as ValueOptions | undefined);
}

/** What inference learnt about a column. */
export interface ColumnStats {
  type: ColumnType;
  /** Values seen (nulls included). */
  count: number;
  /**
   * Null values (empty / JSON null / missing, and null tokens unless the column is `string`).
   */
  nulls: number;
}

/**
 * Accumulates column types over rows; feed it every chunk's rows (or merge per-chunk results
 * with {@link mergeStats}). Columns already at `string` skip classification. Null tokens are
 * counted apart: they are nulls unless the column ends up `string`.
 */
export class TypeInference {
  private readonly codes: Uint8Array;
  private readonly nulls: Float64Array;
  private readonly tokens: Float64Array;
  private count = 0;
  private readonly options: ResolvedValueOptions;
  /** How many times a column's type has widened so far (the types changed when it moves). */
  widenings = 0;

  constructor(readonly width: number, options?: ValueOptions | ResolvedValueOptions) {
    this.codes = new Uint8Array(width);
    this.nulls = new Float64Array(width);
    this.tokens = new Float64Array(width);
    this.options = resolved(options);
  }

  /** Adds rows (arrays aligned with the header; missing cells count as null). */
  add(rows: readonly (readonly unknown[])[]): void {
    const o = this.options;
    const codes = this.codes;
    const nulls = this.nulls;
    const tokens = this.tokens;
    const width = this.width;
    for (const row of rows) {
      for (let c = 0; c < width; c++) {
        const cur = codes[c]! as Code;
        if (cur === T.string) {
          // Type settled: only count nulls and tokens.
          const kind = textColumnKind(row[c], o);
          if (kind === 1) nulls[c]!++;
          else if (kind === TOKEN) tokens[c]!++;
          continue;
        }
        const code = valueCode(row[c], o);
        if (code === T.null) nulls[c]!++;
        else if (code === TOKEN) tokens[c]!++;
        else if (cur !== code) {
          const joined = joinCodes(cur, code);
          if (joined !== cur) {
            codes[c] = joined;
            this.widenings++;
          }
        }
      }
    }
    this.count += rows.length;
  }

  /** Current statistics per column. */
  stats(): ColumnStats[] {
    return Array.from(this.codes, (code, c) => ({
      type: NAMES[code]!,
      count: this.count,
      nulls: this.nulls[c]! + (code === T.string ? 0 : this.tokens[c]!),
    }));
  }
}

/** Infers column statistics of rows in one go. */
export function inferColumns(
  rows: readonly (readonly unknown[])[],
  width: number,
  options?: ValueOptions,
): ColumnStats[] {
  const inference = new TypeInference(width, options);
  inference.add(rows);
  return inference.stats();
}

/**
 * Merges per-chunk statistics (column i of `a` with column i of `b`; a column present in
 * only one side was missing, i.e. null, in the other's rows).
 */
export function mergeStats(a: readonly ColumnStats[], b: readonly ColumnStats[]): ColumnStats[] {
  const countA = a[0]?.count ?? 0;
  const countB = b[0]?.count ?? 0;
  const width = Math.max(a.length, b.length);
  const out: ColumnStats[] = [];
  for (let c = 0; c < width; c++) {
    const x = a[c] ?? { type: "null", count: countA, nulls: countA };
    const y = b[c] ?? { type: "null", count: countB, nulls: countB };
    out.push({
      type: joinTypes(x.type, y.type),
      count: x.count + y.count,
      nulls: x.nulls + y.nulls,
    });
  }
  return out;
}
