import assert from "node:assert/strict";
import ExcelJS from "exceljs";
import {
  columnOf,
  isDateFormat,
  isTimeFormat,
  serialDate,
  timeOfDay,
  XlsxError,
  xlsxToNdjson,
} from "./xlsx.ts";
import { memoryAccess, ZipError } from "./zip.ts";
import { handWorkbook, salesWorkbook, storedZip, zipBomb } from "./xlsx_fixtures.ts";

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
  assert.equal(timeOfDay(0.75), "18:00:00");
  assert.equal(timeOfDay(45323.5), "12:00:00");
  assert.equal(serialDate(0, true), "1904-01-01");
  assert.equal(serialDate(1e12, false), null, "past JavaScript's dates");
  assert.ok(isTimeFormat("h:mm:ss AM/PM"));
  assert.ok(!isDateFormat("[h]:mm"), "a duration");
  assert.ok(!isTimeFormat("yyyy-mm-dd hh:mm"));
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

Deno.test("xlsxToNdjson() reads workbooks as other writers lay them out", async () => {
  const book = await handWorkbook({
    prefix: "x:",
    workbookPr: 'date1904="1"',
    states: { Hidden: "hidden" },
    styles: `<styleSheet><numFmts><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/>` +
      `<numFmt numFmtId="165" formatCode="0.0&quot;d&quot;"/></numFmts>` +
      `<cellStyleXfs><xf numFmtId="14"/></cellStyleXfs>` +
      `<cellXfs><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="22"/></cellXfs>` +
      `</styleSheet>`,
    sharedStrings:
      `<sst><si><t>name</t></si><si><r><t>Ka</t></r><r><t xml:space="preserve">na </t></r>` +
      `<rPh><t>カナ</t></rPh></si><si><t>A &amp; B</t></si></sst>`,
    sheets: [
      ["Hidden", "<worksheet><sheetData><row><c><v>1</v></c></row></sheetData></worksheet>"],
      [
        "Visible",
        // Rows and cells without references, an empty header cell, a repeated header, a cell
        // right of the header, a formula's string, an error, an ISO date cell, styled numbers.
        `<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">` +
        `<x:sheetData><x:row><x:c t="s"><x:v>0</x:v></x:c><x:c/><x:c t="inlineStr"><x:is>` +
        `<x:t>name</x:t></x:is></x:c><x:c t="str"><x:v>n</x:v></x:c></x:row>` +
        `<x:row r="3"><x:c r="A3" t="s"><x:v>1</x:v></x:c><x:c r="B3" s="1"><x:v>0</x:v></x:c>` +
        `<x:c r="C3" s="2"><x:v>1.5</x:v></x:c><x:c r="D3" t="e"><x:f>1/0</x:f><x:v>#DIV/0!</x:v></x:c>` +
        `<x:c r="F3" t="str"><x:f>"a"&amp;"b"</x:f><x:v>ab</x:v></x:c></x:row>` +
        `<x:row><x:c t="s"><x:v>2</x:v></x:c><x:c t="d"><x:v>2024-05-06</x:v></x:c>` +
        `<x:c s="3"><x:v>366.25</x:v></x:c><x:c t="b"><x:v>1</x:v></x:c></x:row>` +
        `<x:row><x:c t="s"><x:v>0</x:v></x:c><x:c s="1"><x:v>1e12</x:v></x:c></x:row>` +
        `</x:sheetData><x:mergeCells count="1"><x:mergeCell ref="A1:B1"/></x:mergeCells></x:worksheet>`,
      ],
    ],
  });
  const sheet = await xlsxToNdjson(memoryAccess(book));
  assert.equal(sheet.sheet, "Visible", "a hidden first sheet is not the default");
  const rows = (await new Response(sheet.rows).text()).trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(rows, [
    { name: "Kana ", column_2: "1904-01-01", name_2: 1.5, n: null, column_6: "ab" },
    { name: "A & B", column_2: "2024-05-06", name_2: "1905-01-01T06:00:00", n: true },
    { name: "name", column_2: 1e12, name_2: null, n: null },
  ]);
});

Deno.test("xlsxToNdjson() refuses an entry that inflates past its declared size", async () => {
  const book = await salesWorkbook();
  // Shrink the sheet's declared size in the central directory: the data says otherwise.
  const view = new DataView(book.buffer);
  const name = new TextEncoder().encode("xl/worksheets/sheet1.xml");
  for (let i = book.length - 22; i > 0; i--) {
    if (view.getUint32(i, true) !== 0x02014b50) continue;
    const n = view.getUint16(i + 28, true);
    if (n === name.length && book.subarray(i + 46, i + 46 + n).every((b, j) => b === name[j])) {
      view.setUint32(i + 24, 100, true);
    }
  }
  const err = await refusal(
    xlsxToNdjson(memoryAccess(book)).then((s) => new Response(s.rows).text()),
  );
  assert.equal(err.code, "bad_zip");
  assert.match(err.message, /declared size/);
});

Deno.test("xlsxToNdjson() answers damaged workbooks with its own errors only", async () => {
  const book = await salesWorkbook();
  // A seeded generator: the same damage on every run.
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const codes = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const hurt = book.slice(0, i % 3 === 0 ? Math.floor(random() * book.length) : book.length);
    for (let k = 0; k < 1 + (i % 5); k++) {
      hurt[Math.floor(random() * hurt.length)] = Math.floor(random() * 256);
    }
    let code = "read";
    try {
      await new Response((await xlsxToNdjson(memoryAccess(hurt))).rows).text();
    } catch (err) {
      assert.ok(err instanceof XlsxError || err instanceof ZipError, `damage ${i}: ${err}`);
      code = err.code;
    }
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  assert.ok((codes.get("bad_zip") ?? 0) > 0, JSON.stringify([...codes]));
});

Deno.test("xlsxToNdjson() caps the shared strings it holds in memory", async () => {
  const strings = Array.from({ length: 50_000 }, (_, i) => `<si><t>string number ${i}</t></si>`);
  const book = await handWorkbook({
    sharedStrings: `<sst>${strings.join("")}</sst>`,
    sheets: [[
      "S",
      `<worksheet><sheetData><row><c t="s"><v>0</v></c></row></sheetData></worksheet>`,
    ]],
  });
  const err = await refusal(xlsxToNdjson(memoryAccess(book), { maxSharedStringsBytes: 1 << 20 }));
  assert.equal(err.code, "inflated_too_large");
  const ok = await xlsxToNdjson(memoryAccess(book), { header: false });
  assert.equal(await new Response(ok.rows).text(), '{"column_1":"string number 0"}\n');
});
