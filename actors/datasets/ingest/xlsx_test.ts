import assert from "node:assert/strict";
import ExcelJS from "exceljs";
import { columnOf, isDateFormat, serialDate, XlsxError, xlsxToNdjson } from "./xlsx.ts";
import { memoryAccess, ZipError } from "./zip.ts";
import { salesWorkbook, storedZip, zipBomb } from "./xlsx_fixtures.ts";

async function lines(bytes: Uint8Array, o = {}): Promise<Record<string, unknown>[]> {
  const sheet = await xlsxToNdjson(memoryAccess(bytes), o);
  const text = await new Response(sheet.rows).text();
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

async function refusal(p: Promise<unknown>): Promise<XlsxError | ZipError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof XlsxError || err instanceof ZipError) return err;
    throw err;
  }
  throw new Error("no error");
}

Deno.test("xlsxToNdjson() keeps numbers, dates, booleans, formulas' results and rich text", async () => {
  const rows = await lines(await salesWorkbook());
  assert.deepEqual(rows, [
    {
      id: 1,
      city: "Paris",
      amount: 10.5,
      day: "2024-02-01",
      active: true,
      total: 21,
      note: "bold",
    },
    { id: 2, city: "Lyon", amount: null, day: "2024-02-02", active: false, total: 0, note: null },
    {
      id: 3,
      city: "Paris",
      amount: 3,
      day: "2024-02-03T12:30:00",
      active: true,
      total: 6,
      note: "plain",
    },
  ]);
});

Deno.test("xlsxToNdjson() picks a sheet by name or 1-based position, and lists them", async () => {
  const book = await salesWorkbook();
  const byName = await xlsxToNdjson(memoryAccess(book), { sheet: "Cities" });
  assert.equal(byName.sheet, "Cities");
  assert.equal(byName.index, 2);
  assert.deepEqual(byName.sheets, ["Sales", "Cities"]);
  assert.deepEqual(await lines(book, { sheet: "2" }), [{ city: "Paris", pop: 2100000 }, {
    city: "Lyon",
    pop: 520000,
  }]);
  const missing = await refusal(xlsxToNdjson(memoryAccess(book), { sheet: "Nope" }));
  assert.equal(missing.code, "sheet_not_found");
  assert.deepEqual((missing as XlsxError).details.sheets, ["Sales", "Cities"]);
});

Deno.test("xlsxToNdjson() names columns column_<n> without a header row", async () => {
  const rows = await lines(await salesWorkbook(), { sheet: "Cities", header: false });
  assert.deepEqual(rows[0], { column_1: "city", column_2: "pop" });
  assert.equal(rows.length, 3);
});

Deno.test("xlsxToNdjson() refuses a sheet wider than maxColumns", async () => {
  const err = await refusal(
    xlsxToNdjson(memoryAccess(await salesWorkbook()), { maxColumns: 5 }).then((s) =>
      new Response(s.rows).text()
    ),
  );
  assert.equal(err.code, "too_many_columns");
});

Deno.test("xlsxToNdjson() refuses a ZIP that is not a workbook, and a corrupt one", async () => {
  const docx = storedZip({ "word/document.xml": "<w:document/>", "[Content_Types].xml": "<x/>" });
  assert.equal((await refusal(xlsxToNdjson(memoryAccess(docx)))).code, "not_xlsx");
  const book = await salesWorkbook();
  assert.equal((await refusal(xlsxToNdjson(memoryAccess(book.slice(0, 2000))))).code, "bad_zip");
  // Flip bytes inside the compressed sheet: it no longer inflates, or not to its size.
  const hurt = book.slice();
  for (let i = 200; i < hurt.length - 400; i += 97) hurt[i] = hurt[i]! ^ 0x5a;
  const err = await refusal(
    xlsxToNdjson(memoryAccess(hurt)).then((s) => new Response(s.rows).text()),
  );
  assert.ok(["bad_zip", "bad_xlsx"].includes(err.code), err.message);
});

Deno.test("xlsxToNdjson() stops a sheet that inflates past the ratio (a zip bomb)", async () => {
  const err = await refusal(
    xlsxToNdjson(memoryAccess(await zipBomb(64 << 20))).then((s) => new Response(s.rows).text()),
  );
  assert.equal(err.code, "inflate_ratio");
});

Deno.test("serialDate() reads both epochs; isDateFormat() tells dates from numbers", () => {
  assert.equal(serialDate(45323, false), "2024-02-01");
  assert.equal(serialDate(45323.5, false), "2024-02-01T12:00:00");
  assert.equal(serialDate(43861, true), "2024-02-01");
  assert.equal(serialDate(1, false), "1900-01-01");
  assert.equal(serialDate(0.75, false), "18:00:00");
  assert.ok(isDateFormat("yyyy-mm-dd"));
  assert.ok(isDateFormat("[$-409]d/m/yy h:mm AM/PM;@"));
  assert.ok(!isDateFormat('#,##0.00 "days"'));
  assert.ok(!isDateFormat("0.00E+00"));
  assert.ok(!isDateFormat("[Red]0.00"));
  assert.equal(columnOf("A1"), 0);
  assert.equal(columnOf("AB12"), 27);
  assert.equal(columnOf("XFD1"), 16383);
});

Deno.test("xlsxToNdjson() reads a sheet written by exceljs's streaming writer", async () => {
  const path = await Deno.makeTempFile({ suffix: ".xlsx" });
  try {
    const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ filename: path, useSharedStrings: true });
    const ws = wb.addWorksheet("Big");
    ws.addRow(["n", "label", "when"]).commit();
    for (let i = 0; i < 3000; i++) {
      ws.addRow([i, `label ${i % 10}`, new Date(Date.UTC(2024, 0, 1 + (i % 30)))]).commit();
    }
    ws.commit();
    await wb.commit();
    const rows = await lines(await Deno.readFile(path));
    assert.equal(rows.length, 3000);
    assert.deepEqual(rows[2999], { n: 2999, label: "label 9", when: "2024-01-30" });
  } finally {
    await Deno.remove(path);
  }
});
