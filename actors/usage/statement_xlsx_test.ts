import assert from "node:assert/strict";
import ExcelJS from "exceljs";
import { centsText } from "./money.ts";
import { sampleStatement } from "./statement_fixture.ts";
import { reportLabel } from "./statement_pdf.ts";
import { buildStatementXlsx } from "./statement_xlsx.ts";

/** A credits cell's value as cents (the cell holds a two-place decimal). */
const cents = (v: unknown) => {
  assert.equal(typeof v, "number");
  const c = Math.round((v as number) * 100);
  assert.equal(c / 100, v, `${v} has at most two places`);
  return BigInt(c);
};

Deno.test("statement xlsx: typed cells, every day, per report, totals to the cent", async () => {
  const data = sampleStatement();
  const bytes = await buildStatementXlsx(data);
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.load(bytes.buffer);
  assert.deepEqual(wb.worksheets.map((s) => s.name), ["Summary", "Daily", "Reports"]);

  const summary = wb.getWorksheet("Summary")!;
  const fact = (label: string) => {
    for (let r = 1; r <= summary.rowCount; r++) {
      if (summary.getCell(r, 1).value === label) return summary.getCell(r, 2);
    }
    throw new Error(`no ${label}`);
  };
  assert.equal(fact("Tenant").value, "Acme Ελλάς");
  assert.equal(fact("Month").value, "2026-06");
  assert.equal(fact("Total credits").type, ExcelJS.ValueType.Number);
  assert.equal(fact("Total credits").numFmt, "0.00");
  assert.equal(centsText(cents(fact("Total credits").value)), centsText(data.total.creditsCents));
  assert.equal(fact("Messages").value, data.total.messages);
  assert.equal(fact("Generated").type, ExcelJS.ValueType.Date);

  const daily = wb.getWorksheet("Daily")!;
  assert.deepEqual((daily.getRow(1).values as unknown[]).slice(1), ["Day", "Messages", "Credits"]);
  let sum = 0n;
  let messages = 0;
  for (const [i, d] of data.days.entries()) {
    const row = daily.getRow(i + 2);
    const day = row.getCell(1);
    assert.equal(day.type, ExcelJS.ValueType.Date, `${d.day} is a date`);
    assert.equal((day.value as Date).toISOString().slice(0, 10), d.day);
    assert.equal(day.numFmt, "yyyy-mm-dd");
    const count = row.getCell(2);
    assert.equal(count.type, ExcelJS.ValueType.Number);
    assert.ok(Number.isInteger(count.value));
    assert.equal(count.numFmt, "0");
    const credits = row.getCell(3);
    assert.equal(credits.type, ExcelJS.ValueType.Number);
    assert.equal(credits.numFmt, "0.00");
    sum += cents(credits.value);
    messages += count.value as number;
  }
  // The total row equals the sum of the day cells, in cents.
  const total = daily.getRow(data.days.length + 2);
  assert.equal(total.getCell(1).value, "Total");
  assert.equal(cents(total.getCell(3).value), sum);
  assert.equal(sum, data.total.creditsCents);
  assert.equal(total.getCell(2).value, messages);

  const reports = wb.getWorksheet("Reports")!;
  let reportSum = 0n;
  for (const [i, r] of data.reports.entries()) {
    const row = reports.getRow(i + 2);
    assert.equal(row.getCell(1).value, reportLabel(r));
    assert.equal(row.getCell(2).value ?? null, r.reportId);
    assert.equal(row.getCell(3).value, r.messages);
    assert.equal(row.getCell(4).type, ExcelJS.ValueType.Number);
    reportSum += cents(row.getCell(4).value);
  }
  const reportsTotal = reports.getRow(data.reports.length + 2);
  assert.equal(reportsTotal.getCell(1).value, "Total");
  assert.equal(cents(reportsTotal.getCell(4).value), reportSum);
  assert.equal(reportSum, sum);
});

Deno.test("statement xlsx: a month without usage has every day at zero", async () => {
  const data = sampleStatement();
  const bytes = await buildStatementXlsx({
    ...data,
    days: data.days.map((d) => ({ ...d, creditsCents: 0n, messages: 0 })),
    reports: [],
    total: { creditsCents: 0n, messages: 0 },
  });
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.load(bytes.buffer);
  const daily = wb.getWorksheet("Daily")!;
  assert.equal(daily.rowCount, data.days.length + 2);
  assert.equal(daily.getRow(data.days.length + 2).getCell(3).value, 0);
  assert.equal(wb.getWorksheet("Reports")!.rowCount, 2);
});
