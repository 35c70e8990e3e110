/**
 * The read side of usage, per tenant: pages of snapshots (offset or keyset) and their total
 * (the per day and per report figures: aggregates.ts).
 *
 * Every sort of a page walks an index of migration 0017 that ends in the snapshot's unique key
 * (ts, source, message), so a keyset page is one index range and an offset page stays cheap for
 * the first pages. Totals come from the maintained daily and per-report counts where they can;
 * an instant bound that cuts a day in two counts only that day's edge through the ts index.
 */
import { type SqlExecutor, ValidationError } from "@troupe/runtime";
import { centsNumber } from "./money.ts";
import { localDay } from "./days.ts";

export const SORTS = ["timestamp", "credits_used", "report_name"] as const;
export type UsageSort = typeof SORTS[number];
export type SortOrder = "asc" | "desc";

/** The sort key's SQL, per sort; the rest of the order is (ts, source_id, message_id). */
const SORT_KEY: Record<UsageSort, string | null> = {
  timestamp: null,
  credits_used: "credits_cents",
  report_name: "coalesce(report_name, '')",
};

/** A bound of a range: an instant, or a day of the tenant's calendar. */
export type Bound = { instant: Date } | { day: string };

export interface UsageFilter {
  /** Inclusive: an instant, or the start of a day. */
  from?: Bound;
  /** An instant is exclusive; a day is inclusive (up to the start of the next day). */
  to?: Bound;
  sourceId?: string;
  reportId?: string;
}

export interface UsageItem {
  sourceId: string;
  messageId: string;
  timestamp: string;
  day: string;
  creditsUsed: number;
  reportId: string | null;
  reportName: string | null;
}

interface SnapshotRow {
  source_id: string;
  message_id: string;
  ts: Date | string;
  day: string;
  credits_cents: string | number | bigint;
  report_id: string | null;
  report_name: string | null;
  k: unknown;
}

/** Instants that bound a filter: `from` inclusive, `to` exclusive, null when open. */
export interface Range {
  from: Date | null;
  to: Date | null;
}

/** The tenant's time zone (IANA name). */
export async function tenantTimeZone(db: SqlExecutor, tenantId: string): Promise<string> {
  const rows = await db.query<{ time_zone: string }>(
    "SELECT time_zone FROM troupe_tenants WHERE id = $1",
    [tenantId],
  );
  return rows[0]?.time_zone ?? "UTC";
}

/** The first instant of `day` in `timeZone`. */
async function startOfDay(db: SqlExecutor, day: string, timeZone: string): Promise<Date> {
  const rows = await db.query<{ t: Date | string }>(
    "SELECT ($1::date::timestamp AT TIME ZONE $2) AS t",
    [day, timeZone],
  );
  return new Date(rows[0]!.t);
}

/** `day` plus `n` days (calendar arithmetic, no zone). */
export function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** The instants a filter's bounds stand for in `timeZone`. */
export async function rangeOf(db: SqlExecutor, f: UsageFilter, timeZone: string): Promise<Range> {
  const from = !f.from
    ? null
    : "instant" in f.from
    ? f.from.instant
    : await startOfDay(db, f.from.day, timeZone);
  const to = !f.to
    ? null
    : "instant" in f.to
    ? f.to.instant
    : await startOfDay(db, addDays(f.to.day, 1), timeZone);
  if (from && to && from >= to) {
    throw new ValidationError("invalid query parameter: from", [
      { path: "from", message: "is not before `to`" },
    ]);
  }
  return { from, to };
}

/** The WHERE clause of a filter over snapshots, its parameters appended to `params`. */
function where(tenantId: string, f: UsageFilter, range: Range, params: unknown[]): string {
  params.push(tenantId);
  const parts = [`tenant_id = $${params.length}`];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    parts.push(sql.replace("?", `$${params.length}`));
  };
  if (f.sourceId !== undefined) add("source_id = ?", f.sourceId);
  if (f.reportId !== undefined) add("report_id = ?", f.reportId);
  if (range.from) add("ts >= ?::timestamptz", range.from.toISOString());
  if (range.to) add("ts < ?::timestamptz", range.to.toISOString());
  return parts.join(" AND ");
}

function present(r: SnapshotRow): UsageItem {
  return {
    sourceId: r.source_id,
    messageId: r.message_id,
    timestamp: new Date(r.ts).toISOString(),
    day: r.day,
    creditsUsed: centsNumber(BigInt(String(r.credits_cents))),
    reportId: r.report_id,
    reportName: r.report_name,
  };
}

/** Where a keyset page starts: after this row, in this sort. */
interface Cursor {
  sortBy: UsageSort;
  sortOrder: SortOrder;
  key: string | null;
  ts: string;
  sourceId: string;
  messageId: string;
}

export function encodeCursor(c: Cursor): string {
  const json = JSON.stringify([c.sortBy, c.sortOrder, c.key, c.ts, c.sourceId, c.messageId]);
  return btoa(String.fromCharCode(...new TextEncoder().encode(json)))
    .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A cursor this module made, or a 400 naming `cursor`. */
export function decodeCursor(text: string): Cursor {
  const bad = () =>
    new ValidationError("invalid query parameter: cursor", [
      { path: "cursor", message: "is not a cursor of this list" },
    ]);
  let v: unknown;
  try {
    const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    v = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (ch) => ch.charCodeAt(0))));
  } catch {
    throw bad();
  }
  if (!Array.isArray(v) || v.length !== 6) throw bad();
  const [sortBy, sortOrder, key, ts, sourceId, messageId] = v;
  const str = (x: unknown) => typeof x === "string";
  if (
    !SORTS.includes(sortBy) || (sortOrder !== "asc" && sortOrder !== "desc") ||
    !(key === null || str(key)) || !str(ts) || Number.isNaN(Date.parse(ts)) ||
    !str(sourceId) || !str(messageId) || (sortBy === "credits_used" && !/^-?\d{1,19}$/.test(key))
  ) throw bad();
  return { sortBy, sortOrder, key, ts, sourceId, messageId };
}

export interface ListUsage {
  filter: UsageFilter;
  sortBy: UsageSort;
  sortOrder: SortOrder;
  pageSize: number;
  /** Offset pages (1-based); ignored when `cursor` is given. */
  page?: number;
  cursor?: string;
}

export interface UsagePage {
  items: UsageItem[];
  /** The cursor of the page after this one, or null at the end. */
  nextCursor: string | null;
}

/** One page of the tenant's snapshots, in `sortBy` order then (ts, source, message). */
export async function listUsage(
  db: SqlExecutor,
  tenantId: string,
  range: Range,
  q: ListUsage,
): Promise<UsagePage> {
  const params: unknown[] = [];
  let sql = where(tenantId, q.filter, range, params);
  const keyExpr = SORT_KEY[q.sortBy];
  const dir = q.sortOrder === "asc" ? "ASC" : "DESC";
  const cols = [...(keyExpr ? [keyExpr] : []), "ts", "source_id", "message_id"];
  let offset = 0;
  if (q.cursor !== undefined) {
    const c = decodeCursor(q.cursor);
    if (c.sortBy !== q.sortBy || c.sortOrder !== q.sortOrder) {
      throw new ValidationError("invalid query parameter: cursor", [
        { path: "cursor", message: "was made for another sortBy or sortOrder" },
      ]);
    }
    const values = [...(keyExpr ? [c.key ?? ""] : []), c.ts, c.sourceId, c.messageId];
    const marks = values.map((v, i) => {
      params.push(v);
      const cast = cols[i] === "ts" ? "::timestamptz" : keyExpr && i === 0 && q.sortBy ===
          "credits_used"
        ? "::bigint"
        : "";
      return `$${params.length}${cast}`;
    });
    sql += ` AND (${cols.join(", ")}) ${dir === "ASC" ? ">" : "<"} (${marks.join(", ")})`;
  } else {
    offset = ((q.page ?? 1) - 1) * q.pageSize;
  }
  params.push(q.pageSize + 1, offset);
  const rows = await db.query<SnapshotRow>(
    `SELECT source_id, message_id, ts, day::text AS day, credits_cents, report_id, report_name,
            ${keyExpr ? `(${keyExpr})::text` : "NULL"} AS k
       FROM troupe_usage_snapshots
      WHERE ${sql}
      ORDER BY ${cols.map((c) => `${c} ${dir}`).join(", ")}
      LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
  const more = rows.length > q.pageSize;
  const page = rows.slice(0, q.pageSize);
  const last = page.at(-1);
  return {
    items: page.map(present),
    nextCursor: more && last
      ? encodeCursor({
        sortBy: q.sortBy,
        sortOrder: q.sortOrder,
        key: last.k === null ? null : String(last.k),
        ts: new Date(last.ts).toISOString(),
        sourceId: last.source_id,
        messageId: last.message_id,
      })
      : null,
  };
}

/**
 * How many snapshots a filter holds. Without `reportId`: the maintained daily counts of the
 * days the range touches, less the snapshots of its first and last day that fall outside it.
 * With `reportId` and no range: the maintained per-report counts; with a range: an index count.
 */
export async function countUsage(
  db: SqlExecutor,
  tenantId: string,
  f: UsageFilter,
  range: Range,
  timeZone: string,
): Promise<number> {
  const source = f.sourceId ?? null;
  if (f.reportId !== undefined) {
    if (!range.from && !range.to) {
      const rows = await db.query<{ n: string | null }>(
        `SELECT sum(messages)::text AS n FROM troupe_usage_report_totals
          WHERE tenant_id = $1 AND report_key = $2 AND ($3::text IS NULL OR source_id = $3)`,
        [tenantId, f.reportId, source],
      );
      return Number(rows[0]?.n ?? 0);
    }
    const params: unknown[] = [];
    const rows = await db.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM troupe_usage_snapshots WHERE ${
        where(tenantId, f, range, params)
      }`,
      params,
    );
    return Number(rows[0]!.n);
  }
  const firstDay = range.from ? localDay(range.from, timeZone) : null;
  const lastDay = range.to ? localDay(range.to, timeZone) : null;
  const rows = await db.query<{ n: string }>(
    `SELECT ((SELECT coalesce(sum(messages), 0) FROM troupe_usage_daily
               WHERE tenant_id = $1 AND ($2::text IS NULL OR source_id = $2)
                 AND ($3::date IS NULL OR day >= $3::date)
                 AND ($4::date IS NULL OR day <= $4::date))
           - (SELECT count(*) FROM troupe_usage_snapshots
               WHERE $3::date IS NOT NULL AND tenant_id = $1
                 AND ($2::text IS NULL OR source_id = $2)
                 AND ts >= ($3::date::timestamp AT TIME ZONE $5) AND ts < $6::timestamptz)
           - (SELECT count(*) FROM troupe_usage_snapshots
               WHERE $4::date IS NOT NULL AND tenant_id = $1
                 AND ($2::text IS NULL OR source_id = $2)
                 AND ts >= $7::timestamptz
                 AND ts < (($4::date + 1)::timestamp AT TIME ZONE $5)))::text AS n`,
    [
      tenantId,
      source,
      firstDay,
      lastDay,
      timeZone,
      range.from?.toISOString() ?? null,
      range.to?.toISOString() ?? null,
    ],
  );
  return Number(rows[0]!.n);
}
