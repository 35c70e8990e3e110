/**
 * What a monthly statement shows, read in one snapshot of the database: the tenant's usage per
 * local day (troupe_usage_daily, kept per day in the tenant's time zone) and per report (the
 * month's snapshots, grouped), every figure a sum of integer cents.
 *
 * The statement's version names the data it was made from: the time zone, and the count and
 * highest `seq` of the month's snapshots (every insert or change of a snapshot takes a new
 * `seq`, and snapshots are never deleted, so any change to the month moves one of them).
 */
import { type SqlDatabase, type SqlExecutor, ValidationError } from "@troupe/runtime";

export const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

export interface StatementDay {
  /** `YYYY-MM-DD`, a local day of the tenant's time zone. */
  day: string;
  creditsCents: bigint;
  messages: number;
}

export interface StatementReport {
  /** Null: messages that refer to no report. */
  reportId: string | null;
  /** Null when the report was not found (or there is none). */
  name: string | null;
  creditsCents: bigint;
  messages: number;
}

export interface StatementData {
  tenantName: string;
  /** `YYYY-MM`. */
  month: string;
  timeZone: string;
  /** Every day of the month in order, days without usage included. */
  days: StatementDay[];
  /** Most credits first. */
  reports: StatementReport[];
  total: { creditsCents: bigint; messages: number };
  generatedAt: Date;
  /** See the module doc. */
  version: string;
}

/** `YYYY-MM-01` of `month`, and of the month after it. */
export function monthBounds(month: string): { first: string; next: string; days: number } {
  const m = MONTH.exec(month);
  if (!m) throw new ValidationError("month must be YYYY-MM", { month });
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  const next = mo === 12 ? `${y + 1}-01` : `${y}-${String(mo + 1).padStart(2, "0")}`;
  return { first: `${month}-01`, next: `${next}-01`, days };
}

/**
 * The month's snapshots: by their stored local day, as the daily aggregates count them, within
 * an instant range two days wider than the month on each side (any zone's offset fits in it)
 * so that the index on (tenant_id, ts) finds them.
 */
const MONTH_SNAPSHOTS = `FROM troupe_usage_snapshots
  WHERE tenant_id = $1 AND ts >= $4::timestamptz AND ts < $5::timestamptz
    AND day >= $2::date AND day < $3::date`;

function snapshotParams(tenantId: string, month: string): unknown[] {
  const { first, next } = monthBounds(month);
  const shift = (day: string, days: number) =>
    new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString();
  return [tenantId, first, next, shift(first, -2), shift(next, 2)];
}

async function tenantOf(db: SqlExecutor, tenantId: string) {
  const [t] = await db.query<{ name: string; time_zone: string }>(
    "SELECT name, time_zone FROM troupe_tenants WHERE id = $1",
    [tenantId],
  );
  if (!t) throw new ValidationError("unknown tenant", { tenantId });
  return t;
}

async function versionIn(
  db: SqlExecutor,
  tenantId: string,
  month: string,
  timeZone: string,
): Promise<string> {
  const [v] = await db.query<{ n: string | number; seq: string | null }>(
    `SELECT count(*) AS n, max(seq)::text AS seq ${MONTH_SNAPSHOTS}`,
    snapshotParams(tenantId, month),
  );
  return `${timeZone}:${v?.n ?? 0}:${v?.seq ?? 0}`;
}

/** The version the statement of `month` would have now (see the module doc). */
export async function statementVersion(
  db: SqlExecutor,
  tenantId: string,
  month: string,
): Promise<string> {
  monthBounds(month);
  return await versionIn(db, tenantId, month, (await tenantOf(db, tenantId)).time_zone);
}

/** The statement's figures, read in one repeatable-read transaction. */
export async function loadStatementData(
  db: SqlDatabase,
  tenantId: string,
  month: string,
  generatedAt: Date = new Date(),
): Promise<StatementData> {
  const { first, next, days } = monthBounds(month);
  return await db.transaction(async (tx) => {
    await tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    const tenant = await tenantOf(tx, tenantId);
    const timeZone = tenant.time_zone;
    const daily = await tx.query<{ day: string; credits: string; messages: string | number }>(
      `SELECT day::text AS day, sum(credits_cents)::text AS credits, sum(messages) AS messages
         FROM troupe_usage_daily
        WHERE tenant_id = $1 AND day >= $2::date AND day < $3::date
        GROUP BY day`,
      [tenantId, first, next],
    );
    const byDay = new Map(daily.map((d) => [d.day, d]));
    const reports = await tx.query<
      { report_id: string | null; name: string | null; credits: string; messages: string | number }
    >(
      `SELECT report_id, max(report_name) AS name, sum(credits_cents)::text AS credits,
              count(*) AS messages
         ${MONTH_SNAPSHOTS}
        GROUP BY report_id`,
      snapshotParams(tenantId, month),
    );
    const version = await versionIn(tx, tenantId, month, timeZone);
    const list: StatementDay[] = [];
    for (let d = 1; d <= days; d++) {
      const day = `${month}-${String(d).padStart(2, "0")}`;
      const row = byDay.get(day);
      list.push({
        day,
        creditsCents: BigInt(row?.credits ?? 0),
        messages: Number(row?.messages ?? 0),
      });
    }
    const total = list.reduce(
      (t, d) => ({
        creditsCents: t.creditsCents + d.creditsCents,
        messages: t.messages + d.messages,
      }),
      { creditsCents: 0n, messages: 0 },
    );
    const byReports = reports.reduce((t, r) => t + BigInt(r.credits), 0n);
    if (byReports !== total.creditsCents) {
      // Both come from one snapshot of the same messages: a difference is a bug, not a race.
      throw new Error(
        `usage of ${month}: ${byReports} cents by report, ${total.creditsCents} cents by day`,
      );
    }
    return {
      tenantName: tenant.name,
      month,
      timeZone,
      days: list,
      reports: reports
        .map((r) => ({
          reportId: r.report_id,
          name: r.name,
          creditsCents: BigInt(r.credits),
          messages: Number(r.messages),
        }))
        .filter((r) => r.messages > 0)
        .sort((a, b) =>
          a.creditsCents === b.creditsCents
            ? (a.reportId ?? "").localeCompare(b.reportId ?? "")
            : a.creditsCents > b.creditsCents
            ? -1
            : 1
        ),
      total,
      generatedAt,
      version,
    };
  });
}
