/**
 * Schedules as data: a 5-field cron expression (UTC) or an interval in minutes, and the next
 * slot after a moment. Used where schedules are made at run time (a report source's
 * `schedule`), so a tick claims what is due instead of registering one timer per schedule.
 *
 * Cron fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC), day
 * of week (0-7 or SUN-SAT, 0 and 7 both Sunday). Each field is `*`, a value, a range `a-b`,
 * a list `a,b`, and any of these with a step `/n`. As in Vixie cron, when both the day of
 * month and the day of week are restricted, a day matching either runs. `@hourly`, `@daily`,
 * `@weekly`, `@monthly` and `@yearly` stand for their expressions.
 */

/** A parsed schedule. */
export type Schedule =
  | { kind: "cron"; expression: string; next(after: Date): Date }
  | { kind: "interval"; minutes: number; next(after: Date): Date };

/** A schedule that does not parse; `message` names the field. */
export class ScheduleError extends Error {
  /** The error's name. */
  override readonly name = "ScheduleError";
}

const MACROS: Record<string, string> = {
  "@hourly": "0 * * * *",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@weekly": "0 0 * * 0",
  "@monthly": "0 0 1 * *",
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
};
const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

interface Field {
  name: string;
  min: number;
  max: number;
  names?: string[];
  /** First name's value (JAN = 1, SUN = 0). */
  nameBase?: number;
}
const FIELDS: Field[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTHS, nameBase: 1 },
  { name: "day of week", min: 0, max: 7, names: DAYS, nameBase: 0 },
];

/** Largest interval accepted, in minutes (one year). */
export const MAX_INTERVAL_MINUTES = 525_600;

/**
 * A schedule from its written form: a whole number of minutes (number or digits) or a cron
 * expression. Throws {@link ScheduleError}.
 */
export function parseSchedule(value: string | number): Schedule {
  const text = String(value).trim();
  if (/^\d+$/.test(text)) {
    const minutes = Number(text);
    if (minutes < 1 || minutes > MAX_INTERVAL_MINUTES) {
      throw new ScheduleError(`an interval is 1 to ${MAX_INTERVAL_MINUTES} minutes`);
    }
    return {
      kind: "interval",
      minutes,
      next: (after) => new Date(floorMinute(after.getTime()) + minutes * 60_000),
    };
  }
  const cron = parseCron(text);
  return { kind: "cron", expression: text, next: cron };
}

/** A cron expression's next-slot function; see the module doc. */
export function parseCron(expression: string): (after: Date) => Date {
  const text = MACROS[expression.trim().toLowerCase()] ?? expression.trim();
  const parts = text.split(/\s+/);
  if (parts.length !== 5) {
    throw new ScheduleError(`a cron expression has 5 fields, got ${parts.length}`);
  }
  const [minutes, hours, dom, months, dowRaw] = parts.map((p, i) => parseField(p, FIELDS[i]!));
  const dow = dowRaw!;
  if (dow.has(7)) dow.add(0);
  const domRestricted = parts[2] !== "*" && !parts[2]!.startsWith("*/");
  const dowRestricted = parts[4] !== "*" && !parts[4]!.startsWith("*/");
  const dayMatches = (d: Date) => {
    const byDom = dom!.has(d.getUTCDate());
    const byDow = dow.has(d.getUTCDay());
    if (domRestricted && dowRestricted) return byDom || byDow;
    return byDom && byDow;
  };
  const hourList = [...hours!].sort((a, b) => a - b);
  const minuteList = [...minutes!].sort((a, b) => a - b);
  if (![...dom!].some((d) => [...months!].some((m) => d <= daysIn(m, 2024)))) {
    throw new ScheduleError("the day of month never occurs in the months given");
  }
  return (after: Date) => {
    const start = floorMinute(after.getTime()) + 60_000;
    const first = new Date(start);
    // Day by day from the start's day; within a matching day, the first hour and minute at
    // or after the start. Eight years cover every valid expression (Feb 29 on a weekday).
    let day = Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), first.getUTCDate());
    for (let i = 0; i < 366 * 8; i++, day += 86_400_000) {
      const d = new Date(day);
      if (!months!.has(d.getUTCMonth() + 1) || !dayMatches(d)) continue;
      for (const h of hourList) {
        for (const m of minuteList) {
          const t = day + h * 3_600_000 + m * 60_000;
          if (t >= start) return new Date(t);
        }
      }
    }
    throw new ScheduleError(`the expression ${expression} has no slot in eight years`);
  };
}

function parseField(text: string, f: Field): Set<number> {
  const out = new Set<number>();
  for (const item of text.split(",")) {
    const [range, stepText] = item.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    if (
      !Number.isInteger(step) || step < 1 || (stepText !== undefined && !/^\d+$/.test(stepText))
    ) {
      throw new ScheduleError(`${f.name}: bad step in "${item}"`);
    }
    let lo: number, hi: number;
    if (range === "*") [lo, hi] = [f.min, f.max];
    else {
      const bounds = range!.split("-");
      if (bounds.length > 2) throw new ScheduleError(`${f.name}: bad range "${item}"`);
      lo = value(bounds[0]!, f);
      hi = bounds.length === 2 ? value(bounds[1]!, f) : stepText === undefined ? lo : f.max;
      if (hi < lo) throw new ScheduleError(`${f.name}: range "${item}" runs backwards`);
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

function value(text: string, f: Field): number {
  const named = f.names?.indexOf(text.toUpperCase()) ?? -1;
  const v = named >= 0 ? named + f.nameBase! : /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(v >= f.min && v <= f.max)) {
    throw new ScheduleError(`${f.name}: "${text}" is not in ${f.min}-${f.max}`);
  }
  return v;
}

/**
 * The latest slot of a cron schedule at or before `at` within the past year, or null (also for
 * an interval, whose runs count from the last run, not from fixed slots). Walks forward from
 * windows of an hour, a day, a month and a year back, so a frequent schedule costs few steps.
 */
export function lastSlot(schedule: Schedule, at: Date): Date | null {
  if (schedule.kind === "interval") return null;
  const end = floorMinute(at.getTime());
  for (const window of [3_600_000, 86_400_000, 32 * 86_400_000, 366 * 86_400_000]) {
    let last: Date | null = null;
    let t = new Date(end - window - 60_000);
    for (let step = 0; step < 100_000; step++) {
      const next = schedule.next(t);
      if (next.getTime() > end) break;
      last = next;
      t = next;
    }
    if (last) return last;
  }
  return null;
}

function floorMinute(ms: number): number {
  return Math.floor(ms / 60_000) * 60_000;
}

function daysIn(month: number, year: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}
