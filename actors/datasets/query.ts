/**
 * Row queries over a dataset's table, built from whitelisted parts only: a column is named by
 * its user-facing name and mapped to its SQL key (`c_...`, never user text); operators come
 * from a fixed list; every value is a bind parameter cast to the column's type. Anything else
 * is a `ValidationError` naming the bad column or operator.
 *
 * Values are checked against PostgreSQL's own ranges before they are bound (a date JavaScript
 * parses may be none to PostgreSQL), cursors are checked like filter values, and lists are
 * capped ({@link QUERY_LIMITS}): a bad query is a 400 with details, never the database's error.
 *
 * Pagination is keyset (`WHERE (sort, _row) > (...)`), so page 1,000 costs what page 1 does.
 */
import { ValidationError } from "@troupe/runtime";
import type { ColumnInfo } from "./store.ts";

export const FILTER_OPS = [
  "eq",
  "ne",
  "lt",
  "lte",
  "gt",
  "gte",
  "contains",
  "startswith",
  "in",
  "isnull",
  "notnull",
] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

export const METRICS = ["count", "sum", "avg", "min", "max"] as const;
export type Metric = (typeof METRICS)[number];

/** The most a query may ask for: lists are capped, values are bounded. */
export const QUERY_LIMITS = {
  /** `filter` parameters of one query. */
  filters: 20,
  /** Metrics of one aggregate. */
  metrics: 50,
  /** `groupBy` columns of one aggregate. */
  groupBy: 5,
  /** Values of one `in` filter. */
  inValues: 100,
  /** Characters of one filter value. */
  valueLength: 4096,
} as const;

/** A list over its cap, as a 400 naming the parameter. */
function tooMany(what: keyof typeof QUERY_LIMITS, count: number, parameter: string): never {
  throw new ValidationError(`at most ${QUERY_LIMITS[what]} ${parameter} values, got ${count}`, {
    parameter,
    max: QUERY_LIMITS[what],
    count,
  });
}

/** Parses the `filter` parameters of a query (at most {@link QUERY_LIMITS}.filters). */
export function parseFilters(texts: readonly string[] | undefined): Filter[] {
  if (!texts) return [];
  if (texts.length > QUERY_LIMITS.filters) tooMany("filters", texts.length, "filter");
  return texts.map(parseFilter);
}

/** Parses a comma-separated `metrics` parameter (at most {@link QUERY_LIMITS}.metrics). */
export function parseMetrics(text: string): { metric: Metric; column?: string }[] {
  const items = text.split(",").map((s) => s.trim()).filter(Boolean);
  if (items.length > QUERY_LIMITS.metrics) tooMany("metrics", items.length, "metrics");
  return items.map(parseMetric);
}

/** Checks a `groupBy` list against {@link QUERY_LIMITS}.groupBy. */
export function checkGroupBy(columns: readonly string[]): string[] {
  if (columns.length > QUERY_LIMITS.groupBy) tooMany("groupBy", columns.length, "groupBy");
  return [...columns];
}

const SQL_TYPES: Record<string, string> = {
  integer: "bigint",
  float: "double precision",
  boolean: "boolean",
  date: "date",
  datetime: "timestamptz",
};

/** The SQL type a column ends up with. */
export function sqlType(type: string): string {
  return SQL_TYPES[type] ?? "text";
}

const NUMERIC = new Set(["integer", "float"]);

export interface Filter {
  column: string;
  op: FilterOp;
  value?: string;
}

export interface Sort {
  column: string;
  direction: "asc" | "desc";
}

export interface RowQuery {
  filters: Filter[];
  sort?: Sort;
  limit: number;
  cursor?: string;
}

/** Parses `name:op:value` (the value may contain `:`); `isnull` and `notnull` take none. */
export function parseFilter(text: string): Filter {
  const first = text.indexOf(":");
  const second = first < 0 ? -1 : text.indexOf(":", first + 1);
  const column = first < 0 ? text : text.slice(0, first);
  const op = (second < 0 ? text.slice(first + 1) : text.slice(first + 1, second)) as FilterOp;
  if (first < 0 || !FILTER_OPS.includes(op)) {
    throw new ValidationError(`unknown filter operator in ${JSON.stringify(text)}`, {
      filter: text,
      operators: FILTER_OPS,
    });
  }
  if (op === "isnull" || op === "notnull") return { column, op };
  if (second < 0) throw new ValidationError(`filter ${JSON.stringify(text)} needs a value`);
  const value = text.slice(second + 1);
  if (value.length > QUERY_LIMITS.valueLength) {
    throw new ValidationError(`a filter value is longer than ${QUERY_LIMITS.valueLength}`, {
      column,
      maxLength: QUERY_LIMITS.valueLength,
    });
  }
  return { column, op, value };
}

/** Parses `name` or `name:asc|desc`. */
export function parseSort(text: string): Sort {
  const at = text.lastIndexOf(":");
  const tail = at < 0 ? "" : text.slice(at + 1);
  if (tail === "asc" || tail === "desc") return { column: text.slice(0, at), direction: tail };
  return { column: text, direction: "asc" };
}

class Params {
  readonly values: unknown[] = [];
  add(value: unknown, cast: string): string {
    this.values.push(value);
    return `$${this.values.length}::${cast}`;
  }
}

function columnOf(columns: readonly ColumnInfo[], name: string, what: string): ColumnInfo {
  const col = columns.find((c) => c.name === name);
  if (!col) {
    throw new ValidationError(`unknown column ${JSON.stringify(name)} in ${what}`, {
      column: name,
      columns: columns.map((c) => c.name),
    });
  }
  return col;
}

/**
 * Checks a value against the column's type, in PostgreSQL's ranges, so that the database never
 * sees a bad cast; returns the text to bind. `what`: where the value came from (for details).
 */
function typed(col: ColumnInfo, value: string, what = "filter"): string {
  const bad = (why: string) =>
    new ValidationError(
      `${JSON.stringify(value.slice(0, 100))} is not a valid ${col.type} for ${col.name}: ${why}`,
      { column: col.name, type: col.type, parameter: what },
    );
  if (value.includes("\u0000")) throw bad("it holds a NUL character");
  switch (col.type) {
    case "integer": {
      if (!/^[+-]?\d{1,19}$/.test(value)) throw bad("not a whole number");
      const n = BigInt(value);
      if (n < INT8_MIN || n > INT8_MAX) throw bad("outside a 64-bit integer's range");
      return value;
    }
    case "float":
      if (/^[+-]?(nan|infinity|inf)$/i.test(value)) return value;
      if (!FLOAT.test(value)) throw bad("not a decimal number");
      if (!inDoubleRange(value)) throw bad("outside double precision's range");
      return value;
    case "boolean":
      if (!/^(true|false)$/i.test(value)) throw bad("not true or false");
      return value.toLowerCase();
    case "date":
    case "datetime": {
      const t = isoDateTime(value);
      if (!t) {
        throw bad("not an ISO 8601 date (YYYY-MM-DD, years 1-9999) or date-time");
      }
      // Naive date-times were stored as UTC: compared as UTC, whatever the session's zone.
      if (col.type === "date") return t.date;
      return `${t.date}T${t.time ?? "00:00:00"}${t.zone ?? "Z"}`;
    }
    default:
      return value;
  }
}

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,5})?$/;

/** Whether PostgreSQL's `double precision` takes `s`: finite, and not a non-zero read as 0. */
function inDoubleRange(s: string): boolean {
  const v = Number(s);
  if (!Number.isFinite(v)) return false;
  return v !== 0 || !/[1-9]/.test(s.replace(/[eE].*$/, ""));
}

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/**
 * An ISO 8601 date or date-time in ranges PostgreSQL takes (years 1-9999, real calendar
 * days, offsets up to ±15:59), split into its parts; `null` for anything else.
 */
export function isoDateTime(
  text: string,
): { date: string; time?: string; zone?: string } | null {
  const m = ISO.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, sec, frac, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (year < 1 || month < 1 || month > 12 || day < 1) return null;
  if (day > new Date(Date.UTC(2000, month, 0)).getUTCDate()) return null; // 29 Feb: below
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  if (month === 2 && day === 29 && !leap) return null;
  const date = `${y}-${mo}-${d}`;
  if (h === undefined) return { date };
  if (Number(h) > 23 || Number(mi) > 59 || (sec !== undefined && Number(sec) > 59)) return null;
  let offset: string | undefined;
  if (zone !== undefined) {
    if (zone === "Z" || zone === "z") offset = "Z";
    else {
      const hours = Number(zone.slice(1, 3));
      const minutes = zone.length > 3 ? Number(zone.slice(-2)) : 0;
      if (hours > 15 || minutes > 59) return null;
      offset = `${zone[0]}${zone.slice(1, 3)}:${String(minutes).padStart(2, "0")}`;
    }
  }
  const time = `${h}:${mi}:${sec ?? "00"}${frac !== undefined ? `.${frac}` : ""}`;
  return { date, time, ...(offset ? { zone: offset } : {}) };
}

function filterSql(col: ColumnInfo, f: Filter, p: Params): string {
  const ref = `"${col.key}"`;
  const cast = sqlType(col.type);
  const cmp: Partial<Record<FilterOp, string>> = {
    eq: "=",
    ne: "<>",
    lt: "<",
    lte: "<=",
    gt: ">",
    gte: ">=",
  };
  if (f.op === "isnull") return `${ref} IS NULL`;
  if (f.op === "notnull") return `${ref} IS NOT NULL`;
  const value = f.value ?? "";
  if (f.op === "contains" || f.op === "startswith") {
    if (value.includes("\u0000")) {
      throw new ValidationError("a filter value holds a NUL character", { column: col.name });
    }
    const escaped = value.replace(/[\\%_]/g, (ch) => `\\${ch}`);
    const pattern = f.op === "contains" ? `%${escaped}%` : `${escaped}%`;
    return `${ref}::text ILIKE ${p.add(pattern, "text")}`;
  }
  if (f.op === "in") {
    const values = value.split(",");
    if (values.length > QUERY_LIMITS.inValues) tooMany("inValues", values.length, "in");
    const items = values.map((v) => typed(col, v));
    return `${ref} = ANY(${p.add(items, `${cast}[]`)})`;
  }
  return `${ref} ${cmp[f.op]} ${p.add(typed(col, value), cast)}`;
}

interface CursorState {
  v: unknown;
  r: number;
}

function encodeCursor(c: CursorState): string {
  return btoa(JSON.stringify(c)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * A cursor as this module makes them: `r` a row id (a non-negative safe integer), `v` the sort
 * value as text or null. Anything else (a forged or damaged cursor) is a 400.
 */
function decodeCursor(text: string): CursorState {
  let c: unknown;
  try {
    c = JSON.parse(atob(text.replaceAll("-", "+").replaceAll("_", "/")));
  } catch {
    throw new ValidationError("the cursor is not valid", { parameter: "cursor" });
  }
  const { r, v } = (typeof c === "object" && c !== null && !Array.isArray(c) ? c : {}) as {
    r?: unknown;
    v?: unknown;
  };
  if (typeof r !== "number" || !Number.isSafeInteger(r) || r < 0) {
    throw new ValidationError("the cursor is not valid", { parameter: "cursor", field: "r" });
  }
  if (v !== null && typeof v !== "string") {
    throw new ValidationError("the cursor is not valid", { parameter: "cursor", field: "v" });
  }
  return { r, v };
}

export interface BuiltQuery {
  text: string;
  params: unknown[];
  /** Turns the fetched rows into the page (drops the look-ahead row, makes the cursor). */
  page(
    rows: Record<string, unknown>[],
  ): { rows: Record<string, unknown>[]; nextCursor: string | null };
}

/** A page of rows as `{ column name: value }`, filtered, sorted, after the cursor. */
export function buildRowQuery(
  table: string,
  columns: readonly ColumnInfo[],
  q: RowQuery,
): BuiltQuery {
  const p = new Params();
  const where = q.filters.map((f) => filterSql(columnOf(columns, f.column, "filter"), f, p));
  const sortCol = q.sort ? columnOf(columns, q.sort.column, "sort") : null;
  const desc = q.sort?.direction === "desc";
  const order: string[] = [];
  if (sortCol) {
    const ref = `"${sortCol.key}"`;
    order.push(`${ref} ${desc ? "DESC" : "ASC"} NULLS LAST`);
    if (q.cursor) {
      const c = decodeCursor(q.cursor);
      const row = p.add(c.r, "bigint");
      if (c.v === null) {
        where.push(`(${ref} IS NULL AND _row > ${row})`);
      } else {
        const v = p.add(typed(sortCol, c.v as string, "cursor"), sqlType(sortCol.type));
        where.push(
          `(${ref} ${
            desc ? "<" : ">"
          } ${v} OR ${ref} IS NULL OR (${ref} = ${v} AND _row > ${row}))`,
        );
      }
    }
  } else if (q.cursor) {
    const c = decodeCursor(q.cursor);
    // Unsorted pages carry no value: one there is a cursor of another query, or forged.
    if (c.v !== null) {
      throw new ValidationError("the cursor is not valid", { parameter: "cursor", field: "v" });
    }
    where.push(`_row > ${p.add(c.r, "bigint")}`);
  }
  order.push("_row ASC");
  const select = columns.map((c) => `"${c.key}"`).join(", ");
  const text = `SELECT _row${select ? `, ${select}` : ""} FROM ${table}
    ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
    ORDER BY ${order.join(", ")} LIMIT ${p.add(q.limit + 1, "int")}`;
  return {
    text,
    params: p.values,
    page(rows) {
      const shown = rows.slice(0, q.limit);
      const last = shown.at(-1);
      const more = rows.length > q.limit && last !== undefined;
      return {
        rows: shown.map((r) => toRecord(columns, r)),
        nextCursor: more
          ? encodeCursor({
            v: sortCol ? cursorValue(last[sortCol.key]) : null,
            r: Number(last._row),
          })
          : null,
      };
    },
  };
}

function cursorValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

/** A database row as `{ column name: value }` with JSON-friendly values. */
export function toRecord(
  columns: readonly ColumnInfo[],
  row: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of columns) out[c.name] = jsonValue(row[c.key], c.type);
  return out;
}

function jsonValue(v: unknown, type: string): unknown {
  if (v === null || v === undefined) return null;
  if (type === "integer") return Number(v);
  if (type === "float") return Number(v);
  if (type === "date") {
    return v instanceof Date ? v.toISOString().slice(0, 10) : String(v).slice(0, 10);
  }
  if (type === "datetime") return v instanceof Date ? v.toISOString() : String(v);
  return v;
}

export interface AggregateQuery {
  groupBy: string[];
  metrics: { metric: Metric; column?: string }[];
  filters: Filter[];
  limit: number;
}

/** Parses `count` or `sum:col` (also avg, min, max). */
export function parseMetric(text: string): { metric: Metric; column?: string } {
  const at = text.indexOf(":");
  const metric = (at < 0 ? text : text.slice(0, at)) as Metric;
  if (!METRICS.includes(metric)) {
    throw new ValidationError(`unknown metric ${JSON.stringify(text)}`, { metrics: METRICS });
  }
  if (metric === "count") return { metric };
  if (at < 0) throw new ValidationError(`metric ${metric} needs a column: ${metric}:<column>`);
  return { metric, column: text.slice(at + 1) };
}

/** Group-by aggregation; groups ordered by their row count, largest first. */
export function buildAggregateQuery(
  table: string,
  columns: readonly ColumnInfo[],
  q: AggregateQuery,
): BuiltQuery {
  const p = new Params();
  const groups = q.groupBy.map((name) => columnOf(columns, name, "groupBy"));
  const where = q.filters.map((f) => filterSql(columnOf(columns, f.column, "filter"), f, p));
  const metrics = q.metrics.map((m, i) => {
    if (m.metric === "count") {
      return { sql: `count(*)`, alias: `m${i}`, name: "count", type: "integer" };
    }
    const col = columnOf(columns, m.column!, "metric");
    if ((m.metric === "sum" || m.metric === "avg") && !NUMERIC.has(col.type)) {
      throw new ValidationError(`${m.metric} needs a numeric column; ${col.name} is ${col.type}`, {
        column: col.name,
        type: col.type,
      });
    }
    const type = m.metric === "avg"
      ? "float"
      : m.metric === "sum" && col.type === "integer"
      ? "integer"
      : m.metric === "sum"
      ? "float"
      : col.type;
    const expr = m.metric === "sum" && col.type === "integer"
      ? `sum("${col.key}")::float8` // bigint sums are numeric; float8 is exact to 2^53
      : `${m.metric}("${col.key}")`;
    return { sql: expr, alias: `m${i}`, name: `${m.metric}:${col.name}`, type };
  });
  const keys = groups.map((g) => `"${g.key}"`);
  const text = `SELECT ${
    [...keys, ...metrics.map((m) => `${m.sql} AS ${m.alias}`), "count(*) AS _n"].join(", ")
  }
    FROM ${table} ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
    ${keys.length ? `GROUP BY ${keys.join(", ")}` : ""}
    ORDER BY _n DESC${keys.length ? `, ${keys.join(", ")}` : ""} LIMIT ${
    p.add(q.limit + 1, "int")
  }`;
  return {
    text,
    params: p.values,
    page(rows) {
      return {
        rows: rows.slice(0, q.limit).map((r) => {
          const out: Record<string, unknown> = {};
          for (const g of groups) out[g.name] = jsonValue(r[g.key], g.type);
          for (const m of metrics) out[m.name] = jsonValue(r[m.alias], m.type);
          return out;
        }),
        nextCursor: null,
      };
    },
  };
}
