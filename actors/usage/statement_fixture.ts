/**
 * Statement data for the builders' tests: a month of usage whose credits, added as floating
 * point numbers, would not come to the exact total (0.1 + 0.2 and friends), reports named in
 * several scripts, a report that was not found and messages with no report.
 */
import type { StatementData, StatementDay, StatementReport } from "./statement_data.ts";

export function sampleStatement(): StatementData {
  const days: StatementDay[] = [];
  for (let d = 1; d <= 30; d++) {
    const active = d % 4 !== 0;
    days.push({
      day: `2026-06-${String(d).padStart(2, "0")}`,
      // 0.10, 0.20, 0.30 ... and one large day.
      creditsCents: active ? BigInt(d === 17 ? 1_234_567 : d * 10 + 7) : 0n,
      messages: active ? d + 2 : 0,
    });
  }
  const total = days.reduce(
    (t, d) => ({
      creditsCents: t.creditsCents + d.creditsCents,
      messages: t.messages + d.messages,
    }),
    { creditsCents: 0n, messages: 0 },
  );
  // The reports split the same total.
  const shares: Omit<StatementReport, "creditsCents" | "messages">[] = [
    { reportId: "r-1", name: "Weekly revenue" },
    { reportId: "r-2", name: "Ημερήσια αναφορά" },
    { reportId: "42", name: "月度报告" },
    { reportId: "r-404", name: null },
    { reportId: null, name: null },
  ];
  let left = total.creditsCents;
  let leftMessages = total.messages;
  const reports = shares.map((s, i) => {
    const last = i === shares.length - 1;
    const creditsCents = last ? left : (total.creditsCents * BigInt(5 - i)) / 16n + 1n;
    const messages = last ? leftMessages : Math.floor(total.messages / 6);
    left -= creditsCents;
    leftMessages -= messages;
    return { ...s, creditsCents, messages };
  }).sort((a, b) => (a.creditsCents > b.creditsCents ? -1 : 1));
  return {
    tenantName: "Acme Ελλάς",
    month: "2026-06",
    timeZone: "Europe/Athens",
    days,
    reports,
    total,
    generatedAt: new Date("2026-07-01T08:00:00Z"),
    version: "Europe/Athens:1:1",
  };
}
