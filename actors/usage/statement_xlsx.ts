/**
 * The monthly statement as an `.xlsx` workbook, written by exceljs's streaming writer: a
 * Summary sheet, the Daily sheet (one row per day of the month) and the Reports sheet, with
 * typed cells: days are dates (`yyyy-mm-dd`), credits are numbers shown with two places
 * (`0.00`), counts are integers (`0`). Totals are sums of integer cents, written as numbers:
 * a spreadsheet's own sum of the cells gives the same figure to the cent.
 */
import ExcelJS from "exceljs";
import { PassThrough } from "node:stream";
import { centsNumber } from "./money.ts";
import type { StatementData } from "./statement_data.ts";
import { reportLabel } from "./statement_pdf.ts";

export const XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

const DATE = "yyyy-mm-dd";
const CREDITS = "0.00";
const INTEGER = "0";

/** A local day `YYYY-MM-DD` as the date cell of that calendar day (spreadsheets have no zone). */
const dateCell = (day: string) => new Date(`${day}T00:00:00Z`);

/** The statement's workbook bytes. */
export async function buildStatementXlsx(data: StatementData): Promise<Uint8Array<ArrayBuffer>> {
  const out = new PassThrough();
  const chunks: Uint8Array[] = [];
  out.on("data", (c: Uint8Array) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    out.on("end", resolve);
    out.on("error", reject);
  });
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({
    stream: out,
    useStyles: true,
    useSharedStrings: false,
  });
  wb.creator = "Troupe";
  wb.created = data.generatedAt;

  const summary = wb.addWorksheet("Summary");
  summary.columns = [{ width: 18 }, { width: 36 }];
  const facts: [string, ExcelJS.CellValue, string?][] = [
    ["Tenant", data.tenantName],
    ["Month", data.month],
    ["Time zone", data.timeZone],
    ["Total credits", centsNumber(data.total.creditsCents), CREDITS],
    ["Messages", data.total.messages, INTEGER],
    ["Reports", data.reports.length, INTEGER],
    ["Generated", data.generatedAt, "yyyy-mm-dd hh:mm:ss"],
  ];
  for (const [label, value, fmt] of facts) {
    const row = summary.addRow([label, value]);
    row.getCell(1).font = { bold: true };
    if (fmt) row.getCell(2).numFmt = fmt;
    row.commit();
  }
  summary.commit();

  const daily = wb.addWorksheet("Daily", { views: [{ state: "frozen", ySplit: 1 }] });
  daily.columns = [
    { header: "Day", width: 12, style: { numFmt: DATE } },
    { header: "Messages", width: 12, style: { numFmt: INTEGER } },
    { header: "Credits", width: 14, style: { numFmt: CREDITS } },
  ];
  daily.getRow(1).font = { bold: true };
  for (const d of data.days) {
    daily.addRow([dateCell(d.day), d.messages, centsNumber(d.creditsCents)]).commit();
  }
  const dailyTotal = daily.addRow([
    "Total",
    data.total.messages,
    centsNumber(data.total.creditsCents),
  ]);
  dailyTotal.font = { bold: true };
  dailyTotal.commit();
  daily.commit();

  const reports = wb.addWorksheet("Reports", { views: [{ state: "frozen", ySplit: 1 }] });
  reports.columns = [
    { header: "Report", width: 40 },
    { header: "Report id", width: 16 },
    { header: "Messages", width: 12, style: { numFmt: INTEGER } },
    { header: "Credits", width: 14, style: { numFmt: CREDITS } },
  ];
  reports.getRow(1).font = { bold: true };
  for (const r of data.reports) {
    reports.addRow([reportLabel(r), r.reportId, r.messages, centsNumber(r.creditsCents)]).commit();
  }
  const reportsTotal = reports.addRow([
    "Total",
    null,
    data.total.messages,
    centsNumber(data.total.creditsCents),
  ]);
  reportsTotal.font = { bold: true };
  reportsTotal.commit();
  reports.commit();

  await wb.commit();
  await ended;
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}
