/**
 * The dataset report as a PDF (`actors/documents/pdf_writer.ts`, vector graphics): a title
 * page, a summary, a table of column profiles, then one chart per column: a histogram for
 * numeric columns, the top values for the others. Names and values in any script the
 * shipped fonts cover are printed as they are.
 */
import { rgb } from "pdf-lib";
import { PdfWriter } from "../documents/pdf_writer.ts";

export interface ReportColumn {
  name: string;
  type: string;
  profile: ColumnSummary | null;
}

/** The subset of a column profile the report draws. */
export interface ColumnSummary {
  count?: number;
  nulls?: number;
  min?: unknown;
  max?: unknown;
  mean?: number | null;
  stddev?: number | null;
  distinct?: number;
  topValues?: { value: unknown; count: number }[];
  quantiles?: Record<string, number | null> | null;
  histogram?: { edges: number[]; counts: number[] } | null;
}

export interface ReportInput {
  name: string;
  id: string;
  format: string;
  sizeBytes: number;
  rowCount: number;
  skippedRows: number;
  createdAt: string;
  columns: ReportColumn[];
  generatedAt?: Date;
}

const MARGIN = 50;
const INK = rgb(0.13, 0.15, 0.2);
const MUTED = rgb(0.42, 0.45, 0.5);
const ACCENT = rgb(0.16, 0.42, 0.75);
const WHITE = rgb(1, 1, 1);

function fmt(v: unknown): string {
  if (v === null || v === undefined) return "-";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString("en-US");
    return Math.abs(v) >= 1e6 || (Math.abs(v) < 1e-3 && v !== 0)
      ? v.toExponential(3)
      : v.toLocaleString("en-US", { maximumFractionDigits: 3 });
  }
  return String(v);
}

/** Builds the report; returns the PDF bytes. */
export async function datasetReport(input: ReportInput): Promise<Uint8Array<ArrayBuffer>> {
  const w = await PdfWriter.create({
    title: `Dataset report: ${input.name}`,
    margin: MARGIN,
    ink: INK,
    creationDate: input.generatedAt ?? new Date(),
  });
  await titlePage(w, input);
  await summary(w, input);
  await profileTable(w, input.columns);
  for (const col of input.columns) await chart(w, col);
  return await w.save();
}

async function titlePage(w: PdfWriter, input: ReportInput): Promise<void> {
  const [width, height] = w.pageSize;
  await w.newPage();
  w.page.drawRectangle({ x: 0, y: height - 220, width, height: 220, color: ACCENT });
  await w.draw("Dataset report", {
    x: MARGIN,
    y: height - 110,
    size: 30,
    bold: true,
    color: WHITE,
  });
  await w.draw(await w.clip(input.name, w.contentWidth, { size: 18 }), {
    x: MARGIN,
    y: height - 150,
    size: 18,
    color: WHITE,
  });
  w.y = height - 270;
  const when = (input.generatedAt ?? new Date()).toISOString().slice(0, 16).replace("T", " ");
  for (
    const [k, v] of [
      ["Rows", fmt(input.rowCount)],
      ["Columns", fmt(input.columns.length)],
      ["File", `${input.format.toUpperCase()}, ${fmt(Math.round(input.sizeBytes / 1024))} KiB`],
      ["Uploaded", input.createdAt.slice(0, 16).replace("T", " ") + " UTC"],
      ["Generated", `${when} UTC`],
      ["Dataset id", input.id],
    ]
  ) {
    await w.line(k!, { size: 9, color: MUTED });
    await w.line(v!, { size: 13 });
    w.y -= 6;
  }
}

async function summary(w: PdfWriter, input: ReportInput): Promise<void> {
  await w.newPage();
  await w.line("Summary", { size: 18, bold: true });
  w.y -= 6;
  const numeric = input.columns.filter((c) => c.type === "integer" || c.type === "float").length;
  const withNulls = input.columns.filter((c) => (c.profile?.nulls ?? 0) > 0).length;
  const lines = [
    `${fmt(input.rowCount)} rows and ${input.columns.length} columns (${numeric} numeric).`,
    `${fmt(input.skippedRows)} rows were skipped (bad rows or duplicates).`,
    `${withNulls} columns have missing values.`,
  ];
  for (const l of lines) await w.line(l, { size: 11 });
  w.y -= 12;
  const types = new Map<string, number>();
  for (const c of input.columns) types.set(c.type, (types.get(c.type) ?? 0) + 1);
  await w.line("Column types", { size: 12, bold: true });
  await barChart(w, [...types].map(([label, value]) => ({ label, value })), 140);
}

async function profileTable(w: PdfWriter, columns: ReportColumn[]): Promise<void> {
  await w.newPage();
  await w.line("Column profiles", { size: 18, bold: true });
  w.y -= 4;
  const heads = ["column", "type", "count", "nulls", "distinct", "min", "max", "mean"];
  const widths = [120, 55, 50, 45, 50, 60, 60, 55];
  await w.table(
    heads.map((head, i) => ({ head, width: widths[i]! })),
    columns.map((c) => {
      const p = c.profile ?? {};
      return [
        c.name,
        c.type,
        fmt(p.count),
        fmt(p.nulls),
        fmt(p.distinct),
        fmt(p.min),
        fmt(p.max),
        fmt(p.mean),
      ];
    }),
    { size: 8.5, head: MUTED },
  );
}

async function chart(w: PdfWriter, col: ReportColumn): Promise<void> {
  await w.ensure(230);
  w.y -= 10;
  await w.line(col.name, { size: 13, bold: true });
  await w.line(col.type, { size: 9, color: MUTED });
  const h = col.profile?.histogram;
  if (h && h.counts.length > 0) {
    await histogram(w, h);
    return;
  }
  const top = col.profile?.topValues ?? [];
  if (top.length === 0) {
    await w.line("no values", { size: 9, color: MUTED });
    return;
  }
  await barChart(w, top.slice(0, 10).map((t) => ({ label: fmt(t.value), value: t.count })), 150);
}

/** Horizontal bars with labels and values. */
async function barChart(
  w: PdfWriter,
  bars: { label: string; value: number }[],
  labelWidth: number,
): Promise<void> {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const barArea = w.contentWidth - labelWidth - 60;
  for (const b of bars) {
    await w.ensure(16);
    await w.draw(await w.clip(b.label, labelWidth - 6, { size: 8.5 }), {
      x: MARGIN,
      y: w.y - 10,
      size: 8.5,
    });
    const width = Math.max(1, (b.value / max) * barArea);
    w.page.drawRectangle({ x: MARGIN + labelWidth, y: w.y - 12, width, height: 11, color: ACCENT });
    await w.draw(fmt(b.value), {
      x: MARGIN + labelWidth + width + 4,
      y: w.y - 10,
      size: 8,
      color: MUTED,
    });
    w.y -= 15;
  }
}

/** Vertical bars over the value range, with axis labels. */
async function histogram(w: PdfWriter, h: { edges: number[]; counts: number[] }): Promise<void> {
  const height = 140;
  const width = w.contentWidth - 30;
  await w.ensure(height + 30);
  const top = w.y - 6;
  const base = top - height;
  const max = Math.max(1, ...h.counts);
  const barW = width / h.counts.length;
  w.page.drawLine({
    start: { x: MARGIN + 30, y: base },
    end: { x: MARGIN + 30 + width, y: base },
    thickness: 0.7,
    color: MUTED,
  });
  w.page.drawLine({
    start: { x: MARGIN + 30, y: base },
    end: { x: MARGIN + 30, y: top },
    thickness: 0.7,
    color: MUTED,
  });
  await w.draw(fmt(max), { x: MARGIN, y: top - 8, size: 7, color: MUTED });
  await w.draw("0", { x: MARGIN + 18, y: base, size: 7, color: MUTED });
  h.counts.forEach((count, i) => {
    const bh = (count / max) * (height - 4);
    if (bh > 0) {
      w.page.drawRectangle({
        x: MARGIN + 30 + i * barW + 1,
        y: base,
        width: Math.max(0.5, barW - 2),
        height: bh,
        color: ACCENT,
      });
    }
  });
  await w.draw(fmt(h.edges[0]), { x: MARGIN + 30, y: base - 10, size: 7, color: MUTED });
  const lastText = fmt(h.edges.at(-1));
  await w.draw(lastText, {
    x: MARGIN + 30 + width - await w.measure(lastText, { size: 7 }),
    y: base - 10,
    size: 7,
    color: MUTED,
  });
  w.y = base - 16;
}
