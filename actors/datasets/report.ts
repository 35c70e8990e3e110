/**
 * The dataset report as a PDF (pdf-lib, vector graphics): a title page, a summary, a table of
 * column profiles, then one chart per column: a histogram for numeric columns, the top values
 * for the others.
 *
 * Text uses the standard Helvetica fonts (WinAnsi): characters outside it are shown as `?`.
 */
import { PDFDocument, type PDFFont, type PDFPage, rgb, StandardFonts } from "pdf-lib";

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

const A4: [number, number] = [595.28, 841.89];
const MARGIN = 50;
const INK = rgb(0.13, 0.15, 0.2);
const MUTED = rgb(0.42, 0.45, 0.5);
const ACCENT = rgb(0.16, 0.42, 0.75);
const RULE = rgb(0.85, 0.87, 0.9);

let charset: Set<number> | null = null;

/** Characters Helvetica (WinAnsi) can show; others become `?`. */
export function printable(text: string, font?: PDFFont): string {
  if (font && !charset) charset = new Set(font.getCharacterSet());
  let out = "";
  for (const ch of text.replace(/[\r\n\t]+/g, " ")) {
    const cp = ch.codePointAt(0)!;
    out += charset ? (charset.has(cp) ? ch : "?") : cp >= 0x20 && cp <= 0xff ? ch : "?";
  }
  return out;
}

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

function clip(font: PDFFont, text: string, size: number, width: number): string {
  let t = printable(text, font);
  if (font.widthOfTextAtSize(t, size) <= width) return t;
  while (t.length > 1 && font.widthOfTextAtSize(t + "...", size) > width) t = t.slice(0, -1);
  return t + "...";
}

class Writer {
  page!: PDFPage;
  y = 0;
  constructor(readonly doc: PDFDocument, readonly font: PDFFont, readonly bold: PDFFont) {}

  newPage(): void {
    this.page = this.doc.addPage(A4);
    this.y = A4[1] - MARGIN;
  }

  ensure(height: number): void {
    if (this.y - height < MARGIN) this.newPage();
  }

  text(
    t: string,
    { size = 10, font = this.font, color = INK, x = MARGIN, width = A4[0] - 2 * MARGIN } = {},
  ): void {
    this.ensure(size + 4);
    this.page.drawText(clip(font, t, size, width), { x, y: this.y - size, size, font, color });
    this.y -= size + 4;
  }

  rule(): void {
    this.page.drawLine({
      start: { x: MARGIN, y: this.y },
      end: { x: A4[0] - MARGIN, y: this.y },
      thickness: 0.5,
      color: RULE,
    });
    this.y -= 6;
  }
}

/** Builds the report; returns the PDF bytes. */
export async function datasetReport(input: ReportInput): Promise<Uint8Array<ArrayBuffer>> {
  const doc = await PDFDocument.create();
  doc.setTitle(printable(`Dataset report: ${input.name}`));
  doc.setProducer("Troupe");
  doc.setCreationDate(input.generatedAt ?? new Date());
  const w = new Writer(
    doc,
    await doc.embedFont(StandardFonts.Helvetica),
    await doc.embedFont(StandardFonts.HelveticaBold),
  );
  titlePage(w, input);
  summary(w, input);
  profileTable(w, input.columns);
  for (const col of input.columns) chart(w, col);
  return new Uint8Array(await doc.save());
}

function titlePage(w: Writer, input: ReportInput): void {
  w.newPage();
  w.page.drawRectangle({ x: 0, y: A4[1] - 220, width: A4[0], height: 220, color: ACCENT });
  w.page.drawText("Dataset report", {
    x: MARGIN,
    y: A4[1] - 110,
    size: 30,
    font: w.bold,
    color: rgb(1, 1, 1),
  });
  w.page.drawText(clip(w.font, input.name, 18, A4[0] - 2 * MARGIN), {
    x: MARGIN,
    y: A4[1] - 150,
    size: 18,
    font: w.font,
    color: rgb(1, 1, 1),
  });
  w.y = A4[1] - 270;
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
    w.text(k!, { size: 9, color: MUTED });
    w.text(v!, { size: 13 });
    w.y -= 6;
  }
}

function summary(w: Writer, input: ReportInput): void {
  w.newPage();
  w.text("Summary", { size: 18, font: w.bold });
  w.y -= 6;
  const numeric = input.columns.filter((c) => c.type === "integer" || c.type === "float").length;
  const withNulls = input.columns.filter((c) => (c.profile?.nulls ?? 0) > 0).length;
  const lines = [
    `${fmt(input.rowCount)} rows and ${input.columns.length} columns (${numeric} numeric).`,
    `${fmt(input.skippedRows)} rows were skipped (bad rows or duplicates).`,
    `${withNulls} columns have missing values.`,
  ];
  for (const l of lines) w.text(l, { size: 11 });
  w.y -= 12;
  const types = new Map<string, number>();
  for (const c of input.columns) types.set(c.type, (types.get(c.type) ?? 0) + 1);
  w.text("Column types", { size: 12, font: w.bold });
  barChart(w, [...types].map(([label, value]) => ({ label, value })), 140);
}

function profileTable(w: Writer, columns: ReportColumn[]): void {
  w.newPage();
  w.text("Column profiles", { size: 18, font: w.bold });
  w.y -= 4;
  const heads = ["column", "type", "count", "nulls", "distinct", "min", "max", "mean"];
  const widths = [120, 55, 50, 45, 50, 60, 60, 55];
  const row = (cells: string[], font: PDFFont, color = INK) => {
    w.ensure(16);
    let x = MARGIN;
    cells.forEach((cell, i) => {
      w.page.drawText(clip(font, cell, 8.5, widths[i]! - 4), {
        x,
        y: w.y - 10,
        size: 8.5,
        font,
        color,
      });
      x += widths[i]!;
    });
    w.y -= 15;
  };
  row(heads, w.bold, MUTED);
  w.rule();
  for (const c of columns) {
    const p = c.profile ?? {};
    row([
      c.name,
      c.type,
      fmt(p.count),
      fmt(p.nulls),
      fmt(p.distinct),
      fmt(p.min),
      fmt(p.max),
      fmt(p.mean),
    ], w.font);
  }
}

function chart(w: Writer, col: ReportColumn): void {
  w.ensure(230);
  w.y -= 10;
  w.text(col.name, { size: 13, font: w.bold });
  w.text(`${col.type}`, { size: 9, color: MUTED });
  const h = col.profile?.histogram;
  if (h && h.counts.length > 0) {
    histogram(w, h);
    return;
  }
  const top = col.profile?.topValues ?? [];
  if (top.length === 0) {
    w.text("no values", { size: 9, color: MUTED });
    return;
  }
  barChart(w, top.slice(0, 10).map((t) => ({ label: fmt(t.value), value: t.count })), 150);
}

/** Horizontal bars with labels and values. */
function barChart(w: Writer, bars: { label: string; value: number }[], labelWidth: number): void {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const barArea = A4[0] - 2 * MARGIN - labelWidth - 60;
  for (const b of bars) {
    w.ensure(16);
    w.page.drawText(clip(w.font, b.label, 8.5, labelWidth - 6), {
      x: MARGIN,
      y: w.y - 10,
      size: 8.5,
      font: w.font,
      color: INK,
    });
    const width = Math.max(1, (b.value / max) * barArea);
    w.page.drawRectangle({ x: MARGIN + labelWidth, y: w.y - 12, width, height: 11, color: ACCENT });
    w.page.drawText(fmt(b.value), {
      x: MARGIN + labelWidth + width + 4,
      y: w.y - 10,
      size: 8,
      font: w.font,
      color: MUTED,
    });
    w.y -= 15;
  }
}

/** Vertical bars over the value range, with axis labels. */
function histogram(w: Writer, h: { edges: number[]; counts: number[] }): void {
  const height = 140;
  const width = A4[0] - 2 * MARGIN - 30;
  w.ensure(height + 30);
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
  w.page.drawText(fmt(max), { x: MARGIN, y: top - 8, size: 7, font: w.font, color: MUTED });
  w.page.drawText("0", { x: MARGIN + 18, y: base, size: 7, font: w.font, color: MUTED });
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
  const first = h.edges[0];
  const last = h.edges.at(-1);
  w.page.drawText(fmt(first), {
    x: MARGIN + 30,
    y: base - 10,
    size: 7,
    font: w.font,
    color: MUTED,
  });
  const lastText = fmt(last);
  w.page.drawText(lastText, {
    x: MARGIN + 30 + width - w.font.widthOfTextAtSize(lastText, 7),
    y: base - 10,
    size: 7,
    font: w.font,
    color: MUTED,
  });
  w.y = base - 16;
}
