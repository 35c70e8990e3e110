import assert from "node:assert/strict";
import { decodePDFRawStream, PDFArray, PDFDocument, PDFRawStream } from "pdf-lib";
import { pdfLayoutText, pdfText } from "../documents/testing.ts";
import { sampleStatement } from "./statement_fixture.ts";
import { buildStatementPdf, creditsText, monthTitle, reportLabel } from "./statement_pdf.ts";

Deno.test("creditsText() groups thousands and keeps two places from cents", () => {
  assert.equal(creditsText(0n), "0.00");
  assert.equal(creditsText(7n), "0.07");
  assert.equal(creditsText(123456789n), "1,234,567.89");
  assert.equal(creditsText(-100000n), "-1,000.00");
  assert.equal(monthTitle("2026-06"), "June 2026");
});

Deno.test(
  "statement PDF: summary, chart, per-report and daily totals",
  async () => {
    const data = sampleStatement();
    const pdf = await buildStatementPdf(data);
    const doc = await PDFDocument.load(pdf);
    assert.equal(doc.getTitle(), "Usage statement 2026-06: Acme Ελλάς");
    const text = await pdfLayoutText(pdf);
    assert.ok((await pdfText(pdf)).includes("Ημερήσια αναφορά"), "Greek drawn as text");
    const total = creditsText(data.total.creditsCents);
    assert.ok(text.includes(`Total credits: ${total}`), text.slice(0, 400));
    assert.ok(text.includes("June 2026 · days in Europe/Athens"));
    assert.ok(text.includes("Acme Ελλάς"));
    for (const r of data.reports) {
      assert.ok(text.includes(reportLabel(r)), `report ${reportLabel(r)} is listed`);
      assert.ok(text.includes(creditsText(r.creditsCents)), `its credits ${r.creditsCents}`);
    }
    // Totals rows: the per-report table and the days table both end on the month's total.
    const totals = [...text.matchAll(/Total\s+([\d,]+)\s+([\d,.]+)/g)].map((m) => [m[1], m[2]]);
    assert.ok(totals.length >= 2, JSON.stringify(totals));
    for (const [messages, credits] of totals) {
      assert.equal(messages, data.total.messages.toLocaleString("en-US"));
      assert.equal(credits, total);
    }
    // The days table, read back: each day's printed credits, added as cents, give the total.
    let cents = 0n;
    let messages = 0;
    for (const d of data.days) {
      const m = new RegExp(`${d.day}\\s+([\\d,]+)\\s+([\\d,]+)\\.(\\d\\d)`).exec(text);
      assert.ok(m, `day ${d.day} is a row`);
      messages += Number(m[1]!.replaceAll(",", ""));
      cents += BigInt(m[2]!.replaceAll(",", "")) * 100n + BigInt(m[3]!);
    }
    assert.equal(creditsText(cents), total);
    assert.equal(messages, data.total.messages);
    assert.ok(text.includes("12,345.67"), "the largest day, on the chart's scale and in the table");
  },
);

Deno.test(
  "statement PDF: the chart's bars are drawn, one per day of usage",
  async () => {
    const data = sampleStatement();
    const pdf = await buildStatementPdf(data);
    const doc = await PDFDocument.load(pdf);
    const page = doc.getPage(0);
    const contents = page.node.Contents();
    assert.ok(contents);
    const streams = contents instanceof PDFArray
      ? contents.asArray().map((r) => doc.context.lookup(r))
      : [contents];
    let ops = "";
    for (const s of streams) {
      if (s instanceof PDFRawStream) {
        ops += new TextDecoder().decode(decodePDFRawStream(s).decode());
      }
    }
    // pdf-lib draws a rectangle as a path of four lines filled with `f`; bars are in the accent.
    const fills = ops.match(/0\.16 0\.42 0\.75 rg[\s\S]*?\bf\b/g) ?? [];
    const withUsage = data.days.filter((d) => d.creditsCents > 0n).length;
    assert.equal(fills.length, withUsage);
  },
);

Deno.test("statement PDF: a month without usage", async () => {
  const data = sampleStatement();
  const empty = {
    ...data,
    days: data.days.map((d) => ({ ...d, creditsCents: 0n, messages: 0 })),
    reports: [],
    total: { creditsCents: 0n, messages: 0 },
  };
  const text = await pdfText(await buildStatementPdf(empty));
  assert.ok(text.includes("Total credits: 0.00"));
  assert.ok(text.includes("No usage this month."));
});
