/** One CSV record (RFC 4180): fields quoted when they hold a quote, comma or line break. */
export function csvLine(values: unknown[]): string {
  return values.map((v) => {
    if (v === null || v === undefined) return "";
    const s = typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  }).join(",") + "\r\n";
}
