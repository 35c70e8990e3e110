/**
 * The month-end projection of a tenant's credits, from the daily aggregates (method in
 * README.md, "Forecast"): what the month's complete days used, today's figure or the trailing
 * mean (whichever is higher, today being under way), and the trailing mean for each day left.
 */
import type { SqlExecutor } from "@troupe/runtime";
import { centsNumber } from "./money.ts";
import { addDays } from "./queries.ts";

/** Complete days the daily mean is taken over. */
export const TRAILING_DAYS = 14;

export interface Forecast {
  month: string;
  timeZone: string;
  /** The tenant's current day the projection was made on. */
  today: string;
  /** `past`: the month is over (the figure is its total); `current`; `future`. */
  status: "past" | "current" | "future";
  daysInMonth: number;
  /** Days of the month before today, complete. */
  daysComplete: number;
  /** Days of the month after today. */
  daysRemaining: number;
  /** The month's complete days. */
  completeCredits: number;
  /** Today so far (0 unless the month is the current one). */
  todayCredits: number;
  /** Every message of the month so far. */
  toDateCredits: number;
  toDateMessages: number;
  trailing: { from: string; to: string; days: number; credits: number; meanCredits: number };
  projectedCredits: number;
}

interface Sums {
  complete: bigint;
  today: bigint;
  toDate: bigint;
  messages: bigint;
  trailing: bigint;
}

/** The projection for `month` (`YYYY-MM`) as of the tenant's day `today`. */
export async function forecast(
  db: SqlExecutor,
  tenantId: string,
  p: { month: string; today: string; timeZone: string },
): Promise<Forecast> {
  const first = `${p.month}-01`;
  const nextMonth = addDays(first, 32).slice(0, 7) + "-01";
  const last = addDays(nextMonth, -1);
  const daysInMonth = Number(last.slice(8, 10));
  const trailingTo = addDays(p.today, -1);
  const trailingFrom = addDays(p.today, -TRAILING_DAYS);
  const rows = await db.query<Record<keyof Sums, string | null>>(
    `SELECT sum(credits_cents) FILTER (WHERE day >= $2::date AND day < $4::date)::text AS complete,
            sum(credits_cents) FILTER (WHERE day = $4::date AND day <= $3::date)::text AS today,
            sum(credits_cents) FILTER (WHERE day >= $2::date AND day <= $3::date
                                         AND day <= $4::date)::text AS "toDate",
            sum(messages) FILTER (WHERE day >= $2::date AND day <= $3::date
                                    AND day <= $4::date)::text AS messages,
            sum(credits_cents) FILTER (WHERE day >= $5::date AND day <= $6::date)::text AS trailing
       FROM troupe_usage_daily
      WHERE tenant_id = $1 AND ((day >= $2::date AND day <= $3::date)
                                OR (day >= $5::date AND day <= $6::date))`,
    [tenantId, first, last, p.today, trailingFrom, trailingTo],
  );
  const r = rows[0]!;
  const big = (v: string | null) => BigInt(v ?? "0");
  const s: Sums = {
    complete: big(r.complete),
    today: big(r.today),
    toDate: big(r.toDate),
    messages: big(r.messages),
    trailing: big(r.trailing),
  };
  const status = last < p.today ? "past" : first > p.today ? "future" : "current";
  const dayOfMonth = Number(p.today.slice(8, 10));
  const daysComplete = status === "past" ? daysInMonth : status === "future" ? 0 : dayOfMonth - 1;
  const daysRemaining = status === "past"
    ? 0
    : status === "future"
    ? daysInMonth
    : daysInMonth - dayOfMonth;
  // The mean in cents, rounded half up; the projection adds whole cents.
  const mean = (s.trailing * 2n + BigInt(TRAILING_DAYS)) / BigInt(2 * TRAILING_DAYS);
  const projected = status === "past"
    ? s.toDate
    : status === "future"
    ? mean * BigInt(daysInMonth)
    : s.complete + (s.today > mean ? s.today : mean) + mean * BigInt(daysRemaining);
  return {
    month: p.month,
    timeZone: p.timeZone,
    today: p.today,
    status,
    daysInMonth,
    daysComplete,
    daysRemaining,
    completeCredits: centsNumber(status === "past" ? s.toDate : s.complete),
    todayCredits: centsNumber(status === "current" ? s.today : 0n),
    toDateCredits: centsNumber(s.toDate),
    toDateMessages: Number(s.messages),
    trailing: {
      from: trailingFrom,
      to: trailingTo,
      days: TRAILING_DAYS,
      credits: centsNumber(s.trailing),
      meanCredits: centsNumber(mean),
    },
    projectedCredits: centsNumber(projected),
  };
}
