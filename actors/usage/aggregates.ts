/**
 * The figures the write side keeps (store.ts), read per day and per report: sums of integer
 * cents and counts, over every source of the tenant or one.
 */
import type { SqlExecutor } from "@troupe/runtime";
import { centsNumber } from "./money.ts";
import type { SortOrder } from "./queries.ts";

export interface DayFigures {
  day: string;
  credits: number;
  messages: number;
  /** Credits per message, rounded to the cent (half away from zero). */
  averageCredits: number;
}

/** Credits per message in cents, rounded half away from zero; 0 for no message. */
export function averageCents(cents: bigint, messages: bigint): bigint {
  if (messages === 0n) return 0n;
  const neg = cents < 0n;
  const abs = neg ? -cents : cents;
  const q = (abs * 2n + messages) / (messages * 2n);
  return neg ? -q : q;
}

export const MAX_DAYS = 1000;

/** Per day of [fromDay, toDay] (inclusive, either open): credits, messages, average. */
export async function dailyUsage(
  db: SqlExecutor,
  tenantId: string,
  p: { fromDay: string | null; toDay: string | null; sourceId?: string },
): Promise<{ days: DayFigures[]; truncated: boolean }> {
  const rows = await db.query<{ day: string; credits: string; messages: string }>(
    `SELECT day::text AS day, sum(credits_cents)::text AS credits, sum(messages)::text AS messages
       FROM troupe_usage_daily
      WHERE tenant_id = $1 AND ($2::text IS NULL OR source_id = $2)
        AND ($3::date IS NULL OR day >= $3::date) AND ($4::date IS NULL OR day <= $4::date)
      GROUP BY day HAVING sum(messages) <> 0
      ORDER BY day LIMIT $5`,
    [tenantId, p.sourceId ?? null, p.fromDay, p.toDay, MAX_DAYS + 1],
  );
  const days = rows.slice(0, MAX_DAYS).map((r) => {
    const cents = BigInt(r.credits);
    const messages = BigInt(r.messages);
    return {
      day: r.day,
      credits: centsNumber(cents),
      messages: Number(messages),
      averageCredits: centsNumber(averageCents(cents, messages)),
    };
  });
  return { days, truncated: rows.length > MAX_DAYS };
}

export const REPORT_SORTS = ["credits_used", "messages", "report_name"] as const;
export type ReportSort = typeof REPORT_SORTS[number];

const REPORT_ORDER: Record<ReportSort, string> = {
  credits_used: "sum(credits_cents)",
  messages: "sum(messages)",
  report_name: "coalesce(max(report_name), '')",
};

export interface ReportFigures {
  /** null: the messages that refer to no report. */
  reportId: string | null;
  reportName: string | null;
  credits: number;
  messages: number;
}

/** Per report totals (over every source, or one), one page in the asked order. */
export async function reportUsage(
  db: SqlExecutor,
  tenantId: string,
  p: {
    sourceId?: string;
    sortBy: ReportSort;
    sortOrder: SortOrder;
    page: number;
    pageSize: number;
  },
): Promise<{ items: ReportFigures[]; total: number }> {
  const dir = p.sortOrder === "asc" ? "ASC" : "DESC";
  const rows = await db.query<
    { report_key: string; name: string | null; credits: string; messages: string; total: string }
  >(
    `SELECT report_key, max(report_name) AS name, sum(credits_cents)::text AS credits,
            sum(messages)::text AS messages, (count(*) OVER ())::text AS total
       FROM troupe_usage_report_totals
      WHERE tenant_id = $1 AND ($2::text IS NULL OR source_id = $2)
      GROUP BY report_key HAVING sum(messages) <> 0
      ORDER BY ${REPORT_ORDER[p.sortBy]} ${dir}, report_key ${dir}
      LIMIT $3 OFFSET $4`,
    [tenantId, p.sourceId ?? null, p.pageSize, (p.page - 1) * p.pageSize],
  );
  let total = Number(rows[0]?.total ?? 0);
  if (rows.length === 0 && p.page > 1) {
    const all = await db.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM (SELECT 1 FROM troupe_usage_report_totals
        WHERE tenant_id = $1 AND ($2::text IS NULL OR source_id = $2)
        GROUP BY report_key HAVING sum(messages) <> 0) r`,
      [tenantId, p.sourceId ?? null],
    );
    total = Number(all[0]!.n);
  }
  return {
    total,
    items: rows.map((r) => ({
      reportId: r.report_key === "" ? null : r.report_key,
      reportName: r.name,
      credits: centsNumber(BigInt(r.credits)),
      messages: Number(r.messages),
    })),
  };
}
