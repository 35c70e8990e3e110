/**
 * Cleaning: column drop/rename, trim, nulls, normalisation of values to their column type,
 * in-chunk duplicate removal and a stable row hash for cross-chunk deduplication.
 *
 * Normalised representations: `integer`/`float` → JS number (thousands separators removed,
 * `+` dropped); `boolean` → true/false; `date` → `"YYYY-MM-DD"`; `datetime` with a zone →
 * UTC ISO string (`2024-01-02T03:04:05.000Z`), without a zone → naive
 * `"YYYY-MM-DDTHH:MM:SS[.fff…]"` (no zone is invented); `string` → the trimmed text (numbers
 * or booleans found in a string column of a JSON upload become their text); `json` → kept.
 * A value that does not fit the given column type (e.g. types inferred on other chunks) is
 * kept as its trimmed text rather than guessed at. A null token is null unless the column type
 * is `string`, where it is text (see `infer.ts`).
 */
import { ColumnRuleError } from "./errors.ts";
import {
  type ColumnType,
  inferValue,
  isNullIn,
  isNullText,
  joinTypes,
  resolved,
  type ResolvedValueOptions,
  trimFast,
  type ValueOptions,
} from "./infer.ts";

/** Cleaning rules chosen at upload. */
export interface CleaningRules extends ValueOptions {
  /** Columns to remove (by name, after header de-duplication). */
  dropColumns?: readonly string[];
  /** Old name → new name. */
  renameColumns?: Readonly<Record<string, string>>;
  /** Remove rows equal (after cleaning) to an earlier row of the same chunk, return hashes. */
  dropDuplicateRows?: boolean;
}

/** Which input columns survive, and their output names. */
export interface ColumnPlan {
  header: string[];
  /** Input positions of the output columns. */
  keep: number[];
}

/**
 * Applies `dropColumns` and `renameColumns` to a header. Unknown names are ignored; a rename
 * producing a duplicate name throws {@link ColumnRuleError}.
 */
export function planColumns(header: readonly string[], rules: CleaningRules = {}): ColumnPlan {
  const drop = new Set(rules.dropColumns ?? []);
  const rename = rules.renameColumns ?? {};
  const out: string[] = [];
  const keep: number[] = [];
  header.forEach((name, i) => {
    if (drop.has(name)) return;
    out.push(Object.hasOwn(rename, name) ? rename[name]! : name);
    keep.push(i);
  });
  const seen = new Set<string>();
  for (const name of out) {
    if (seen.has(name)) throw new ColumnRuleError(name);
    seen.add(name);
  }
  return { header: out, keep };
}

/**
 * Trims (if enabled) and maps empty / null tokens to null; other values unchanged. For a value
 * whose column type is not known: {@link normalizeValue} keeps tokens of text columns.
 */
export function cleanValue(value: unknown, options?: ValueOptions | ResolvedValueOptions): unknown {
  const o = resolved(options);
  if (typeof value !== "string") return value === undefined ? null : value;
  const s = o.trim ? trimFast(value) : value;
  return isNullText(s, o) ? null : s;
}

/**
 * Converts a value to the normalised representation of `type` (see the module doc). Applies
 * {@link cleanValue} first.
 */
export function normalizeValue(
  value: unknown,
  type: ColumnType,
  options?: ValueOptions | ResolvedValueOptions,
): unknown {
  const o = resolved(options);
  if (type === "string" && typeof value === "string") {
    const s = o.trim ? trimFast(value) : value;
    return isNullIn(s, type, o) ? null : s;
  }
  const v = cleanValue(value, o);
  if (v === null) return null;
  const own = inferValue(v, o);
  if (own === type) return convert(v, type);
  if (joinTypes(own, type) !== type || type === "string") return asText(v);
  return convert(v, type);
}

/** A numeric text's number (thousands separators dropped), as {@link normalizeValue} makes it. */
export function numberOf(text: string): number {
  return Number(text.includes(",") ? text.replaceAll(",", "") : text);
}

/** Powers of ten that are exact doubles (10^0 … 10^22). */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * `Number(text)` when `String(Number(text)) === text`, NaN otherwise. Such a text has an
 * optional `-`, no leading zero, at most 15 significant digits, a fraction (if any) without a
 * trailing zero, no exponent, and no more than 5 zeros after the point before the first digit
 * of a number below 1 (`0.0000001` is written `1e-7`). Decimals of up to 15 significant digits
 * map to distinct doubles (DBL_DIG), so the shortest text that reads back as the same double is
 * this one. Its digits m (< 2^53) over 10^f (f ≤ 20) are both exact doubles, so one division
 * gives the correctly rounded number (Clinger's fast path). The chunk writer keeps such a text
 * as it came instead of reading it with `Number` and writing it out again with `String`.
 */
export function plainNumber(text: string): number {
  const n = text.length;
  const sign = text.charCodeAt(0) === 45 ? 1 : 0;
  let i = sign;
  const first = text.charCodeAt(i);
  if (!isDigit(first)) return NaN; // also "" and "-"
  let m = 0;
  let digits = 0; // significant digits in m
  if (first === 48) {
    i++;
  } else {
    for (let c = first; i < n && isDigit(c = text.charCodeAt(i)); i++) {
      m = m * 10 + (c - 48);
      digits++;
    }
  }
  if (i === n) {
    if (digits > 15 || (first === 48 && sign === 1)) return NaN; // "-0" is written "0"
    return sign ? -m : m;
  }
  if (text.charCodeAt(i) !== 46) return NaN;
  const point = ++i;
  let zeros = 0; // of a number below 1, before its first digit
  for (let c; i < n && isDigit(c = text.charCodeAt(i)); i++) {
    if (m === 0 && c === 48) zeros++;
    else digits++;
    m = m * 10 + (c - 48);
  }
  if (i !== n || i === point || text.charCodeAt(n - 1) === 48) return NaN;
  if (digits > 15 || zeros > 5) return NaN;
  const v = m / POW10[n - point]!;
  return sign ? -v : v;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function convert(v: unknown, type: ColumnType): unknown {
  if (typeof v !== "string") return v;
  switch (type) {
    case "integer":
    case "float":
      return numberOf(v);
    case "boolean": {
      const l = v.toLowerCase();
      return l === "true" || l === "yes";
    }
    case "datetime":
      return normalizeDatetime(v);
    default:
      return v;
  }
}

function asText(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

const ZONE = /(Z|[+-]\d{2}(?::?\d{2})?)$/i;

/** Datetime text → UTC ISO (zoned) or naive `YYYY-MM-DDTHH:MM:SS[.f]` (no zone). */
export function normalizeDatetime(text: string): string {
  let s = text.charCodeAt(10) === 32 ? `${text.slice(0, 10)}T${text.slice(11)}` : text;
  s = s.replace(",", ".");
  const zone = ZONE.exec(s.slice(16));
  if (zone === null) return s.length === 16 ? `${s}:00` : s;
  const local = s.slice(0, s.length - zone[0].length);
  const withSeconds = local.length === 16 ? `${local}:00` : local;
  const z = zone[0].toUpperCase();
  const offset = z === "Z" ? "Z" : normalizeOffset(z);
  const ms = Date.parse(withSeconds.slice(0, 23) + offset);
  return Number.isNaN(ms) ? text : new Date(ms).toISOString();
}

function normalizeOffset(z: string): string {
  const digits = z.slice(1).replace(":", "");
  const hh = digits.slice(0, 2);
  const mm = digits.length >= 4 ? digits.slice(2, 4) : "00";
  return `${z[0]}${hh}:${mm}`;
}

/** Output of {@link cleanRows}. */
export interface CleanResult {
  header: string[];
  rows: unknown[][];
  /** Row hashes (aligned with `rows`) when `dropDuplicateRows` is on. */
  hashes?: string[];
  /** Rows removed as duplicates inside this chunk. */
  duplicates: number;
}

/**
 * {@link normalizeValue} for a value known to fit `type` (its own type joins into it, as when
 * `type` was inferred from the very values being cleaned): converted without being
 * classified again, with the same result.
 */
export function normalizeFitted(
  value: unknown,
  type: ColumnType,
  o: ResolvedValueOptions,
): unknown {
  if (typeof value !== "string") {
    if (value === null || value === undefined) return null;
    return type === "string" ? asText(value) : value;
  }
  const s = o.trim ? trimFast(value) : value;
  if (isNullIn(s, type, o)) return null;
  return type === "string" ? s : convert(s, type);
}

/**
 * Cleans a chunk's rows: keeps/renames columns per the rules, trims and nulls values, and
 * normalises them to `types` (column types of the input header, e.g. from merged
 * {@link ColumnStats}) when given. `fitted`: `types` were inferred from these very rows, so
 * every value fits its column's type and is converted without being classified again.
 * With `dropDuplicateRows`, removes in-chunk duplicates and returns each kept row's
 * {@link rowHash} for the pipeline's cross-chunk check.
 */
export function cleanRows(
  header: readonly string[],
  rows: readonly (readonly unknown[])[],
  rules: CleaningRules = {},
  types?: readonly ColumnType[],
  { fitted = false }: { fitted?: boolean } = {},
): CleanResult {
  const plan = planColumns(header, rules);
  const o = resolved(rules);
  const keep = plan.keep;
  const colTypes = types === undefined ? undefined : keep.map((i) => types[i] ?? "string");
  const out: unknown[][] = [];
  const hashes: string[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  for (const row of rows) {
    const cleaned = new Array<unknown>(keep.length);
    for (let k = 0; k < keep.length; k++) {
      const v = row[keep[k]!];
      cleaned[k] = colTypes === undefined
        ? cleanValue(v, o)
        : fitted
        ? normalizeFitted(v, colTypes[k]!, o)
        : normalizeValue(v, colTypes[k]!, o);
    }
    if (rules.dropDuplicateRows) {
      const h = rowHash(cleaned);
      if (seen.has(h)) {
        duplicates++;
        continue;
      }
      seen.add(h);
      hashes.push(h);
    }
    out.push(cleaned);
  }
  const result: CleanResult = { header: plan.header, rows: out, duplicates };
  if (rules.dropDuplicateRows) result.hashes = hashes;
  return result;
}

/**
 * Stable 64-bit hash of a row, as 16 hex digits: equal for rows with equal values (same types
 * and order), across chunks, processes and runs. Each value is framed by a type tag and its
 * length, so `["a,b"]` and `["a", "b"]` or `1` and `"1"` differ. Two independent 32-bit
 * lanes (Murmur3-style mixing): collisions become likely only around 2^32 distinct rows, so
 * confirm a hash hit by comparing rows when exactness matters.
 */
export function rowHash(values: readonly unknown[]): string {
  let h1 = 0x9747b28c ^ values.length;
  let h2 = 0x85ebca6b ^ values.length;
  for (const v of values) {
    const [tag, text] = frame(v);
    h1 = mix(h1, tag);
    h2 = mix(h2, tag ^ 0x5bd1e995);
    h1 = mix(h1, text.length);
    h2 = mix(h2, text.length);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      h1 = mix(h1, c);
      h2 = mix(h2, c + 0x27d4eb2d);
    }
  }
  return hex(fmix(h1)) + hex(fmix(h2));
}

function frame(v: unknown): [number, string] {
  if (v === null || v === undefined) return [0, ""];
  switch (typeof v) {
    case "string":
      return [1, v];
    case "number":
      return [2, String(v)];
    case "boolean":
      return [3, v ? "1" : "0"];
    default:
      return [4, JSON.stringify(v) ?? String(v)];
  }
}

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}
