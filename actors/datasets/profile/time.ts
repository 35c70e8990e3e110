/**
 * Fast parsing of the normalized date/datetime texts produced by the ingest cleaner into a
 * time key (milliseconds since the Unix epoch, fractional below the millisecond), without
 * allocating. Used to order dates and datetimes by time.
 *
 * Accepted: `YYYY-MM-DD`, optionally followed by `T` or space, `HH:MM`, `:SS`, `.fraction`,
 * and a zone `Z` / `±HH` / `±HH:MM` / `±HHMM`. Naive datetimes (no zone) are read as UTC, so
 * their order among themselves is correct; comparing naive and zoned values is only as
 * meaningful as that assumption.
 * @module
 */

const MS_PER_DAY = 86_400_000;

/** Epoch milliseconds of a date/datetime text, or `NaN` when it does not parse. */
export function parseTime(s: string): number {
  const n = s.length;
  if (n < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return NaN;
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31) return NaN;
  const day = daysFromCivil(y, mo, d) * MS_PER_DAY;
  if (n === 10) return day;
  const sep = s.charCodeAt(10);
  if ((sep !== 84 && sep !== 32) || n < 16 || s.charCodeAt(13) !== 58) return NaN;
  const hh = digits(s, 11, 2);
  const mm = digits(s, 14, 2);
  if (hh < 0 || hh > 23 || mm < 0 || mm > 59) return NaN;
  let ms = (hh * 60 + mm) * 60_000;
  let i = 16;
  if (i < n && s.charCodeAt(i) === 58) {
    const ss = digits(s, i + 1, 2);
    if (ss < 0 || ss > 60) return NaN;
    ms += ss * 1000;
    i += 3;
    if (i < n && s.charCodeAt(i) === 46) {
      let scale = 100;
      i++;
      const start = i;
      for (; i < n; i++) {
        const c = s.charCodeAt(i) - 48;
        if (c < 0 || c > 9) break;
        ms += c * scale;
        scale /= 10;
      }
      if (i === start) return NaN;
    }
  }
  const zone = zoneOffset(s, i);
  return zone !== zone ? NaN : day + ms - zone;
}

/** Offset in ms of the zone suffix starting at `i` (0 for none or `Z`), `NaN` if malformed. */
function zoneOffset(s: string, i: number): number {
  const n = s.length;
  if (i === n) return 0;
  const c = s.charCodeAt(i);
  if (c === 90 || c === 122) return i + 1 === n ? 0 : NaN;
  if (c !== 43 && c !== 45) return NaN;
  const hh = digits(s, i + 1, 2);
  let mm = 0;
  const rest = n - i - 3;
  if (rest === 3 && s.charCodeAt(i + 3) === 58) mm = digits(s, i + 4, 2);
  else if (rest === 2) mm = digits(s, i + 3, 2);
  else if (rest !== 0) return NaN;
  if (hh < 0 || hh > 23 || mm < 0 || mm > 59) return NaN;
  const off = (hh * 60 + mm) * 60_000;
  return c === 45 ? -off : off;
}

/** Value of `count` decimal digits at `at`, or −1. */
function digits(s: string, at: number, count: number): number {
  if (at + count > s.length) return -1;
  let v = 0;
  for (let i = at; i < at + count; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
function daysFromCivil(y: number, m: number, d: number): number {
  if (m <= 2) y -= 1;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
