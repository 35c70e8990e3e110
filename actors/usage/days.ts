/**
 * The calendar day an instant falls on in a tenant's time zone (IANA name, default UTC).
 * Usage days, daily aggregates and statements follow it.
 */
import { ValidationError } from "@troupe/runtime";

const formats = new Map<string, Intl.DateTimeFormat>();

function format(timeZone: string): Intl.DateTimeFormat {
  let f = formats.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat("en-CA", {
        timeZone,
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
      });
    } catch {
      throw new ValidationError("time zone is not a known IANA name", { timeZone });
    }
    formats.set(timeZone, f);
  }
  return f;
}

/** Throws a {@link ValidationError} unless `timeZone` is an IANA zone name this runtime knows. */
export function checkTimeZone(timeZone: string): string {
  format(timeZone);
  return timeZone;
}

/** `YYYY-MM-DD` of `instant` in `timeZone`. */
export function localDay(instant: Date, timeZone: string): string {
  const parts = format(timeZone).formatToParts(instant);
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}
