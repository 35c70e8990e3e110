/**
 * The monthly statement as a PDF (actors/documents/pdf_writer.ts, so any script in a report's
 * name prints): a summary, the daily credits as a bar chart drawn with pdf-lib's rectangles
 * and lines, the credits per report with their total, and the days as a table. Every figure
 * is printed from integer cents.
 */
import { rgb } from "pdf-lib";
import { PdfWriter } from "../documents/pdf_writer.ts";
import { centsText } from "./money.ts";
import type { StatementData, StatementReport } from "./statement_data.ts";

const MARGIN = 50;
const INK = rgb(0.12, 0.14, 0.18);
const MUTED = rgb(0.42, 0.45, 0.5);
const ACCENT = rgb(0.16, 0.42, 0.75);
const GRID = rgb(0.88, 0.9, 0.93);

/** Cents with thousands separators and two places: `123456789n` → `"1,234,567.89"`. */
export function creditsText(cents: bigint): string {
  const [whole, frac] = centsText(cents).split(".");
  const sign = whole!.startsWith("-") ? "-" : "";
  const digits = whole!.replace("-", "").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}${digits}.${frac}`;
}

const count = (n: number) => n.toLocaleString("en-US");

/** `2026-05` → `May 2026`. */
export function monthTitle(month: string): string {
  const [y, m] = month.split("-").map(Number);
  return new Date(Date.UTC(y!, m! - 1, 1)).toLocaleString("en-US", {
    month: "long",
    year: "numeric",
    timeZone: "UTC",
  });
}

/** A report's label: its name, else its id, else "(no report)". */
export function reportLabel(r: Pick<StatementReport, "reportId" | "name">): string {
  if (r.reportId === null) return "(no report)";
  return r.name ?? `report ${r.reportId} (not found)`;
}

/** The statement's PDF bytes. */
export async function buildStatementPdf(data: StatementData): Promise<Uint8Array<ArrayBuffer>> {
  const w = await PdfWriter.create({
    title: `Usage statement ${data.month}: ${data.tenantName}`,
    margin: MARGIN,
    ink: INK,
    creationDate: data.generatedAt,
    onPage: async (w, page) => {
      await w.draw(`${data.tenantName} · ${data.month} · page ${w.pageCount}`, {
        page,
        x: MARGIN,
        y: 28,
        size: 7.5,
        color: MUTED,
      });
    },
  });
  await w.newPage();
  await w.line("Usage statement", { size: 22, bold: true, gap: 8 });
  await w.line(data.tenantName, { size: 14 });
  await w.line(`${monthTitle(data.month)} · days in ${data.timeZone}`, {
    size: 10,
    color: MUTED,
  });
  await w.line(`Generated ${data.generatedAt.toISOString().slice(0, 16).replace("T", " ")} UTC`, {
    size: 8.5,
    color: MUTED,
    gap: 14,
  });
  const active = data.days.filter((d) => d.messages > 0).length;
  for (
    const [k, v] of [
      ["Total credits", creditsText(data.total.creditsCents)],
      ["Messages", count(data.total.messages)],
      ["Days with usage", `${active} of ${data.days.length}`],
      ["Reports", count(data.reports.length)],
    ]
  ) {
    await w.line(`${k}: ${v}`, { size: 11, gap: 5 });
  }
  w.y -= 10;
  await w.line("Daily credits", { size: 14, bold: true, gap: 8 });
  await dailyChart(w, data);
  await w.draw("Credits per day; the scale's top is the month's largest day.", {
    x: MARGIN,
    y: w.y - 9,
    size: 7.5,
    color: MUTED,
  });
  w.y -= 24;

  await w.line("Credits per report", { size: 14, bold: true, gap: 6 });
  const width = w.contentWidth;
  const share = (c: bigint) =>
    data.total.creditsCents === 0n
      ? "-"
      : `${(Number((c * 10000n) / data.total.creditsCents) / 100).toFixed(2)}%`;
  await w.table(
    [
      { head: "Report", width: width - 265 },
      { head: "Report id", width: 80 },
      { head: "Messages", width: 55, align: "right" },
      { head: "Credits", width: 70, align: "right" },
      { head: "Share", width: 60, align: "right" },
    ],
    data.reports.map((r) => [
      reportLabel(r),
      r.reportId ?? "-",
      count(r.messages),
      creditsText(r.creditsCents),
      share(r.creditsCents),
    ]),
    {
      foot: [
        "Total",
        "",
        count(data.total.messages),
        creditsText(data.total.creditsCents),
        data.total.creditsCents === 0n ? "-" : "100.00%",
      ],
    },
  );
  if (data.reports.length === 0) await w.line("No usage this month.", { color: MUTED });

  await w.newPage();
  await w.line("Days", { size: 14, bold: true, gap: 6 });
  await w.table(
    [
      { head: "Day", width: 90 },
      { head: "Messages", width: 80, align: "right" },
      { head: "Credits", width: 100, align: "right" },
    ],
    data.days.map((d) => [d.day, count(d.messages), creditsText(d.creditsCents)]),
    { foot: ["Total", count(data.total.messages), creditsText(data.total.creditsCents)] },
  );
  return await w.save();
}

/** Vertical bars, one per day, under the month's largest day; axes and a light grid. */
async function dailyChart(w: PdfWriter, data: StatementData): Promise<void> {
  const height = 150;
  const left = MARGIN + 4;
  const width = w.contentWidth - 4;
  const top = w.y - 4;
  const base = top - height;
  const max = data.days.reduce((m, d) => (d.creditsCents > m ? d.creditsCents : m), 0n);
  for (let i = 1; i <= 4; i++) {
    const y = base + (height * i) / 4;
    w.page.drawLine({
      start: { x: left, y },
      end: { x: left + width, y },
      thickness: 0.4,
      color: GRID,
    });
  }
  const slot = width / data.days.length;
  data.days.forEach((d, i) => {
    if (max <= 0n || d.creditsCents <= 0n) return;
    // Heights from cents: exact ratio, then one rounding to points.
    const h = (Number((d.creditsCents * 1_000_000n) / max) / 1_000_000) * (height - 2);
    w.page.drawRectangle({
      x: left + i * slot + slot * 0.15,
      y: base,
      width: slot * 0.7,
      height: Math.max(0.5, h),
      color: ACCENT,
    });
  });
  w.page.drawLine({
    start: { x: left, y: base },
    end: { x: left + width, y: base },
    thickness: 0.8,
    color: MUTED,
  });
  w.page.drawLine({
    start: { x: left, y: base },
    end: { x: left, y: top },
    thickness: 0.8,
    color: MUTED,
  });
  await w.draw(creditsText(max), { x: left + 3, y: top - 8, size: 7, color: MUTED });
  // Day numbers under the first day, every fifth, and the last.
  for (const [i, d] of data.days.entries()) {
    const n = i + 1;
    if (n !== 1 && n % 5 !== 0 && n !== data.days.length) continue;
    const label = String(Number(d.day.slice(8)));
    const lw = await w.measure(label, { size: 7 });
    await w.draw(label, {
      x: left + (i + 0.5) * slot - lw / 2,
      y: base - 10,
      size: 7,
      color: MUTED,
    });
  }
  w.y = base - 12;
}
