import assert from "node:assert/strict";
import { lastSlot, parseCron, parseSchedule, ScheduleError } from "./cron.ts";

const at = (iso: string) => new Date(iso);
const next = (expr: string, after: string) => parseCron(expr)(at(after)).toISOString();

/** The oracle: minute by minute from `after`, the first minute every field matches. */
function bruteNext(expr: string, after: Date): string {
  const [mi, ho, dom, mo, dow] = expr.split(" ");
  const set = (f: string, min: number, max: number) => {
    const out = new Set<number>();
    for (const item of f.split(",")) {
      const [r, s] = item.split("/");
      const step = s ? Number(s) : 1;
      const [lo, hi] = r === "*"
        ? [min, max]
        : r!.includes("-")
        ? r!.split("-").map(Number) as [number, number]
        : [Number(r), s ? max : Number(r)];
      for (let v = lo; v <= hi; v += step) out.add(v);
    }
    return out;
  };
  const sets = [
    set(mi!, 0, 59),
    set(ho!, 0, 23),
    set(dom!, 1, 31),
    set(mo!, 1, 12),
    set(dow!, 0, 7),
  ];
  if (sets[4]!.has(7)) sets[4]!.add(0);
  const domR = dom !== "*" && !dom!.startsWith("*/"), dowR = dow !== "*" && !dow!.startsWith("*/");
  let t = Math.floor(after.getTime() / 60_000) * 60_000 + 60_000;
  for (let i = 0; i < 60 * 24 * 800; i++, t += 60_000) {
    const d = new Date(t);
    const a = sets[2]!.has(d.getUTCDate()), b = sets[4]!.has(d.getUTCDay());
    const day = domR && dowR ? a || b : a && b;
    if (
      sets[0]!.has(d.getUTCMinutes()) && sets[1]!.has(d.getUTCHours()) &&
      sets[3]!.has(d.getUTCMonth() + 1) && day
    ) return d.toISOString();
  }
  return "none";
}

Deno.test("parseCron finds the next slot strictly after the moment, in UTC", () => {
  assert.equal(next("*/30 * * * *", "2026-12-05T10:00:00Z"), "2026-12-05T10:30:00.000Z");
  assert.equal(next("*/30 * * * *", "2026-12-05T10:29:59.999Z"), "2026-12-05T10:30:00.000Z");
  assert.equal(next("0 0 * * *", "2026-12-31T23:59:00Z"), "2027-01-01T00:00:00.000Z");
  assert.equal(next("0 9 * * MON-FRI", "2026-12-05T12:00:00Z"), "2026-12-07T09:00:00.000Z");
  assert.equal(next("0 0 29 2 *", "2026-03-01T00:00:00Z"), "2028-02-29T00:00:00.000Z");
  assert.equal(next("@monthly", "2026-12-05T00:00:00Z"), "2027-01-01T00:00:00.000Z");
  assert.equal(next("15 14 1 * 7", "2026-12-05T00:00:00Z"), "2026-12-06T14:15:00.000Z");
  assert.equal(next("0 12 * JAN,jul *", "2026-12-05T00:00:00Z"), "2027-01-01T12:00:00.000Z");
});

Deno.test("parseCron agrees with a minute-by-minute oracle on varied expressions", () => {
  const exprs = [
    "* * * * *",
    "5 4 * * *",
    "0 22 * * 1-5",
    "23 0-20/2 * * *",
    "0 0,12 1 */2 *",
    "0 4 8-14 * 3",
    "10-20/5 */6 * * 6,0",
    "59 23 31 * *",
    "0 0 1 1 *",
    "30 2 15 * 5",
  ];
  const starts = ["2026-12-05T00:00:00Z", "2027-02-27T23:59:30Z", "2028-02-28T11:11:00Z"];
  for (const e of exprs) {
    for (const s of starts) assert.equal(next(e, s), bruteNext(e, at(s)), `${e} after ${s}`);
  }
});

Deno.test("parseCron refuses malformed expressions with the field named", () => {
  const bad: [string, RegExp][] = [
    ["* * * *", /5 fields, got 4/],
    ["60 * * * *", /minute: "60"/],
    ["* 24 * * *", /hour/],
    ["* * 0 * *", /day of month/],
    ["* * * 13 *", /month/],
    ["* * * FOO *", /month: "FOO"/],
    ["* * * * 8", /day of week/],
    ["*/0 * * * *", /bad step/],
    ["5-1 * * * *", /backwards/],
    ["1-2-3 * * * *", /bad range/],
    ["0 0 31 2 *", /never occurs/],
  ];
  for (const [expr, message] of bad) {
    assert.throws(
      () => parseCron(expr),
      (e: Error) => e instanceof ScheduleError && message.test(e.message),
      expr,
    );
  }
});

Deno.test("parseSchedule takes minutes or a cron expression", () => {
  const every = parseSchedule(30);
  assert.equal(every.kind, "interval");
  assert.equal(every.next(at("2026-12-05T10:07:42Z")).toISOString(), "2026-12-05T10:37:00.000Z");
  assert.equal(parseSchedule("45").kind, "interval");
  const cron = parseSchedule("0 * * * *");
  assert.equal(cron.kind, "cron");
  assert.equal(cron.next(at("2026-12-05T10:07:00Z")).toISOString(), "2026-12-05T11:00:00.000Z");
  assert.throws(() => parseSchedule(0), ScheduleError);
  assert.throws(() => parseSchedule(600_000), ScheduleError);
  assert.throws(() => parseSchedule("soon"), ScheduleError);
});

Deno.test("lastSlot finds the latest slot at or before a moment", () => {
  const slot = (expr: string | number, iso: string) =>
    lastSlot(parseSchedule(expr), at(iso))?.toISOString() ?? null;
  assert.equal(slot("*/30 * * * *", "2026-12-05T10:45:10Z"), "2026-12-05T10:30:00.000Z");
  assert.equal(slot("*/30 * * * *", "2026-12-05T10:30:59Z"), "2026-12-05T10:30:00.000Z");
  assert.equal(slot("17 3 * * *", "2026-12-05T02:00:00Z"), "2026-12-04T03:17:00.000Z");
  assert.equal(slot("0 0 1 * *", "2026-12-05T00:00:00Z"), "2026-12-01T00:00:00.000Z");
  assert.equal(slot("0 0 1 1 *", "2026-12-05T00:00:00Z"), "2026-01-01T00:00:00.000Z");
  assert.equal(slot("0 0 29 2 *", "2026-12-05T00:00:00Z"), null, "no Feb 29 within a year");
  assert.equal(slot(15, "2026-12-05T10:07:30Z"), null, "an interval has no fixed slots");
});
