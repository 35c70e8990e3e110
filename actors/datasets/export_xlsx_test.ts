import assert from "node:assert/strict";
import ExcelJS from "exceljs";
import { cellValue, sheetName, xlsxStream } from "./export_xlsx.ts";
import type { ColumnInfo } from "./store.ts";

const columns: ColumnInfo[] = Array.from({ length: 10 }, (_, c) => ({
  name: `col${c}`,
  key: `c${c}`,
  type: c % 2 ? "string" : "integer",
}));

/** `pages` pages of 2,000 rows, counting the pages fetched. */
function source(pages: number) {
  const counter = { fetched: 0 };
  let at = 0;
  const next = () => {
    if (counter.fetched++ >= pages) return Promise.resolve([]);
    const page: Record<string, unknown>[] = [];
    for (let i = 0; i < 2000; i++, at++) {
      page.push(Object.fromEntries(columns.map((c, j) => [c.key, j % 2 ? `text ${at} ${j}` : at])));
    }
    return Promise.resolve(page);
  };
  return { counter, next };
}

Deno.test("xlsxStream() fetches rows only as its bytes are read", async () => {
  const { counter, next } = source(100);
  const reader = xlsxStream("Data", columns, next).getReader();
  // About 150 KB of zipped XML a page: 1 MB read needs some 7 pages, not the 100.
  let bytes = 0;
  while (bytes < 1 << 20) {
    const r = await reader.read();
    assert.ok(!r.done);
    bytes += r.value.length;
  }
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(counter.fetched <= 20, `${counter.fetched} of 100 pages fetched for ${bytes} bytes`);
  await reader.cancel();
});

Deno.test("xlsxStream() writes every row, readable by exceljs", async () => {
  const { next } = source(3);
  const bytes = await new Response(xlsxStream("a/b:c", columns, next)).arrayBuffer();
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.load(bytes);
  const ws = wb.worksheets[0]!;
  assert.equal(ws.name, "a b c");
  assert.equal(ws.rowCount, 6001);
  assert.equal(ws.getCell("A6001").value, 5999);
  assert.equal(ws.getCell("B6001").value, "text 5999 1");
});

Deno.test("cellValue() types cells by column type; sheetName() follows Excel's rules", () => {
  assert.equal(cellValue("12", "integer"), 12);
  assert.equal(cellValue(null, "float"), null);
  assert.equal(cellValue(false, "boolean"), false);
  assert.deepEqual(cellValue("2024-02-01", "date"), new Date("2024-02-01T00:00:00Z"));
  assert.deepEqual(cellValue("2024-02-01 10:00:00", "datetime"), new Date("2024-02-01T10:00:00Z"));
  assert.deepEqual(
    cellValue("2024-02-01T10:00:00+02:00", "datetime"),
    new Date("2024-02-01T08:00:00Z"),
  );
  assert.equal(cellValue({ a: 1 }, "json"), '{"a":1}');
  assert.equal(cellValue("not a date", "date"), "not a date");
  assert.equal(sheetName("x".repeat(40)).length, 31);
  assert.equal(sheetName("[]"), "Data");
});
