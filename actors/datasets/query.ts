/**
 * Row queries over a dataset's table, built from whitelisted parts only: a column is named by
 * its user-facing name and mapped to its SQL key (`c_...`, never user text); operators come
 * from a fixed list; every value is a bind parameter cast to the column's type. Anything else
 * is a `ValidationError` naming the bad column or operator.
 *
 * Pagination is keyset (`WHERE (sort, _row) > (...)`), so page 1,000 costs what page 1 does.
 */
import { ValidationError } from "../runtime/errors.ts";
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
  return { column, op, value: text.slice(second + 1) };
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

/** Checks a value against the column's type so that the database never sees a bad cast. */
function typed(col: ColumnInfo, value: string): string {
  const bad = () =>
    new ValidationError(`${JSON.stringify(value)} is not a valid ${col.type} for ${col.name}`, {
      column: col.name,
      type: col.type,
    });
  switch (col.type) {
    case "integer":
      if (!/^-?\d{1,18}$/.test(value)) throw bad();
      return value;
    case "float":
      if (value.trim() === "" || !Number.isFinite(Number(value))) throw bad();
      return value;
    case "boolean":
      if (!/^(true|false)$/i.test(value)) throw bad();
      return value.toLowerCase();
    case "date":
    case "datetime":
      if (Number.isNaN(Date.parse(value))) throw bad();
      return value;
    default:
      return value;
  }
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
    const escaped = value.replace(/[\\%_]/g, (ch) => `\\${ch}`);
    const pattern = f.op === "contains" ? `%${escaped}%` : `${escaped}%`;
    return `${ref}::text ILIKE ${p.add(pattern, "text")}`;
  }
  if (f.op === "in") {
    const items = value.split(",").slice(0, 100).map((v) => typed(col, v));
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

function decodeCursor(text: string): CursorState {
  try {
    const c = JSON.parse(atob(text.replaceAll("-", "+").replaceAll("_", "/"))) as CursorState;
    if (typeof c.r !== "number") throw new Error("no row");
    return c;
  } catch {
    throw new ValidationError("the cursor is not valid");
  }
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
        const v = p.add(String(c.v), sqlType(sortCol.type));
        where.push(
          `(${ref} ${
            desc ? "<" : ">"
          } ${v} OR ${ref} IS NULL OR (${ref} = ${v} AND _row > ${row}))`,
        );
      }
    }
  } else if (q.cursor) {
    where.push(`_row > ${p.add(decodeCursor(q.cursor).r, "bigint")}`);
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
