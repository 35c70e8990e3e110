/**
 * Spreadsheets through the datasets API: `.xlsx` uploads (raw and multipart, `sheet=`) become
 * datasets with their cells' types, bad workbooks are clear 4xx answers that create nothing,
 * and `export?format=xlsx` reads back in exceljs with typed cells. Same drivers as
 * datasets_test.ts (`TEST_API_DRIVERS=production` for the production ones).
 */
import assert from "node:assert/strict";
import ExcelJS from "exceljs";
import { datasetActors } from "../actors/datasets/pipeline.ts";
import { FsBlobStore } from "../db/blobs/fs.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { PostgresBlobStore } from "../db/blobs/postgres.ts";
import { API_DRIVERS, apiCall, type ApiWorld, openApiWorld } from "../tests/api_world.ts";
import { countRows, DATASET_ENDS, settledBody } from "../tests/harness.ts";
import {
  bigWorkbook,
  salesWorkbook,
  storedZip,
  zipBomb,
} from "../actors/datasets/ingest/xlsx_fixtures.ts";
import { localDatasetAdapters } from "../tests/local_adapters.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../tests/shared_world.ts";

const opts = SHARED_WORLD_TEST;
const XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

interface World extends ApiWorld {
  key: string;
}

function openWorld(): Promise<World> {
  return (async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-xlsx-" });
    let blobs!: BlobStore;
    const w = await openApiWorld((tdb) => {
      blobs = API_DRIVERS === "production" ? new PostgresBlobStore(tdb.db) : new FsBlobStore(dir);
      return datasetActors({
        ...localDatasetAdapters(),
        db: tdb.db,
        blobs,
        chunkBytes: 16 * 1024,
        splitStepChunks: 2,
      });
    }, (tdb) => ({
      perIpPerMinute: 1_000_000,
      perKeyPerMinute: 1_000_000,
      datasets: { db: tdb.db, blobs, maxBytes: 2_000_000, maxColumns: 50 },
    }));
    const key = (await w.tenants.createKey((await w.tenants.createTenant("acme")).id)).key;
    const close = w.close;
    return {
      ...w,
      key,
      async close() {
        await close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  })();
}

const shared = sharedWorld(openWorld);
const open = shared.open;

async function call(path: string, init: RequestInit = {}) {
  const w = await open();
  return await apiCall(w.app, w.key, path, init);
}

async function upload(body: Uint8Array<ArrayBuffer>, query: string, contentType = XLSX) {
  return await call(`/api/datasets?${query}`, {
    method: "POST",
    body,
    headers: { "content-type": contentType },
  });
}

async function formUpload(file: File, fields: Record<string, string>, query = "") {
  const form = new FormData();
  form.append("file", file);
  // Fields after the file: a workbook's sheet is picked once it is stored.
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const req = new Request("http://x/", { method: "POST", body: form });
  return await call(`/api/datasets?${query}`, {
    method: "POST",
    body: await req.arrayBuffer(),
    headers: { "content-type": req.headers.get("content-type")! },
  });
}

const settled = (id: string) =>
  settledBody(() => call(`/api/datasets/${id}`), DATASET_ENDS, { what: `dataset ${id}` });

async function rows(id: string): Promise<Record<string, unknown>[]> {
  return (await call(`/api/datasets/${id}/rows?limit=1000`)).body.rows;
}

Deno.test(
  { name: "datasets: an .xlsx upload becomes a dataset with its cells' types", ...opts },
  async () => {
    const up = await upload(await salesWorkbook(), "name=sales");
    assert.equal(up.status, 202, JSON.stringify(up.body));
    const d = await settled(up.body.datasetId);
    assert.equal(d.status, "ready", JSON.stringify(d.error));
    assert.equal(d.format, "xlsx");
    assert.equal(d.rowCount, 3, "the empty row is left out");
    assert.deepEqual(d.options.spreadsheet.sheets, ["Sales", "Cities"]);
    assert.equal(d.options.spreadsheet.sheet, "Sales");
    assert.equal(d.options.spreadsheet.sheetIndex, 1);
    const types = Object.fromEntries(
      d.columns.map((c: { name: string; type: string }) => [c.name, c.type]),
    );
    assert.deepEqual(types, {
      id: "integer",
      city: "string",
      amount: "float",
      day: "datetime",
      active: "boolean",
      total: "integer",
      note: "string",
    });
    const day = d.columns.find((c: { name: string }) => c.name === "day").profile;
    assert.match(String(day.min), /^2024-02-01/);
    assert.match(String(day.max), /^2024-02-03/);
    const amount = d.columns.find((c: { name: string }) => c.name === "amount").profile;
    assert.equal(amount.nulls, 1);
    const got = await rows(d.id);
    assert.deepEqual(got.map((r) => [r.id, r.city, r.amount, r.active, r.total, r.note]), [
      [1, "Paris", 10.5, true, 21, "bold"],
      [2, "Lyon", null, false, 0, null],
      [3, "Paris", 3, true, 6, "plain"],
    ]);
  },
);

Deno.test(
  { name: "datasets: a sheet of thousands of rows is split into chunks and loads", ...opts },
  async () => {
    const up = await upload(await bigWorkbook(3000, 8), "name=big-sheet");
    assert.equal(up.status, 202, JSON.stringify(up.body));
    const d = await settled(up.body.datasetId);
    assert.equal(d.status, "ready", JSON.stringify(d.error));
    assert.equal(d.rowCount, 3000);
    assert.ok(d.progress.chunksTotal > 5, `${d.progress.chunksTotal} chunks`);
    assert.deepEqual(
      d.columns.slice(0, 2).map((c: { name: string; type: string }) => [c.name, c.type]),
      [["col0", "float"], ["col1", "string"]],
    );
    const last = await call(`/api/datasets/${d.id}/rows?filter=col1:eq:text 2999-1`);
    assert.equal(last.body.rows.length, 1);
    assert.equal(last.body.rows[0].col2, 5998.5);
  },
);

Deno.test(
  { name: "datasets: sheet= picks a sheet by name or position, in a form or the query", ...opts },
  async () => {
    const book = await salesWorkbook();
    const byName = await formUpload(
      new File([book], "book.xlsx", { type: "application/octet-stream" }),
      { sheet: "Cities" },
    );
    assert.equal(byName.status, 202, JSON.stringify(byName.body));
    const byIndex = await upload(
      book,
      "sheet=2&options=" + encodeURIComponent(JSON.stringify({ header: true })),
      "application/octet-stream",
    );
    assert.equal(byIndex.status, 202, JSON.stringify(byIndex.body));
    const headless = await upload(
      book,
      "sheet=Cities&options=" + encodeURIComponent(JSON.stringify({ header: false })),
    );
    const h = await settled(headless.body.datasetId);
    assert.equal(h.status, "ready", JSON.stringify(h.error));
    assert.equal(h.rowCount, 3, "the first row is data");
    assert.deepEqual(h.columns.map((c: { name: string }) => c.name), ["column_1", "column_2"]);
    const badOptions = await upload(book, "options=" + encodeURIComponent('{"nope":1}'));
    assert.equal(badOptions.status, 400, JSON.stringify(badOptions.body));
    for (const id of [byName.body.datasetId, byIndex.body.datasetId]) {
      const d = await settled(id);
      assert.equal(d.status, "ready", JSON.stringify(d.error));
      assert.equal(d.options.spreadsheet.sheet, "Cities");
      assert.deepEqual(
        d.columns.map((c: { name: string; type: string }) => [c.name, c.type]),
        [["city", "string"], ["pop", "integer"]],
      );
      assert.deepEqual((await rows(id)).map((r) => r.pop), [2100000, 520000]);
    }
  },
);

Deno.test(
  { name: "datasets: bad workbooks are clear 4xx answers and create no dataset", ...opts },
  async () => {
    const w = await open();
    const before = await countRows(w.tdb.db, "troupe_datasets");
    const book = await salesWorkbook();

    const missing = await upload(book, "sheet=Nope");
    assert.equal(missing.status, 422, JSON.stringify(missing.body));
    assert.equal(missing.body.error.code, "SHEET_NOT_FOUND");
    assert.deepEqual(missing.body.error.details.sheets, ["Sales", "Cities"]);

    // A .docx, .ods or .jar is a ZIP too: a 415 naming what the API reads.
    const docx = storedZip({ "[Content_Types].xml": "<Types/>", "word/document.xml": "<w/>" });
    for (const [body, type] of [[docx, "application/octet-stream"], [docx, XLSX]] as const) {
      const res = await upload(body, "", type);
      assert.equal(res.status, 415, JSON.stringify(res.body));
      assert.equal(res.body.error.code, "UNSUPPORTED_MEDIA_TYPE");
      assert.ok(res.body.error.details.supported.includes("xlsx (one sheet)"));
    }
    const ods = storedZip({
      mimetype: "application/vnd.oasis.opendocument.spreadsheet",
      "content.xml": "<office:document-content/>",
    });
    assert.equal((await upload(ods, "format=xlsx")).status, 415);

    const cut = await upload(book.slice(0, book.length - 300), "");
    assert.equal(cut.status, 422, JSON.stringify(cut.body));
    assert.equal(cut.body.error.code, "BAD_XLSX");

    const bomb = await upload(await zipBomb(256 << 20), "");
    assert.equal(bomb.status, 413, JSON.stringify(bomb.body));
    assert.equal(bomb.body.error.code, "PAYLOAD_TOO_LARGE");

    const wide = await upload(await bigWorkbook(3, 60), "");
    assert.equal(wide.status, 422, JSON.stringify(wide.body));
    assert.equal(wide.body.error.code, "TOO_MANY_COLUMNS");
    assert.equal(wide.body.error.details.maxColumns, 50);

    // Text said to be a workbook.
    const text = await upload(new TextEncoder().encode("a,b\n1,2\n"), "format=xlsx", "text/csv");
    assert.equal(text.status, 415, JSON.stringify(text.body));

    assert.equal(await countRows(w.tdb.db, "troupe_datasets"), before);
  },
);

Deno.test(
  { name: "datasets: export?format=xlsx opens with typed cells", ...opts },
  async () => {
    const csv = "id,price,day,at,ok,label,extra\n" +
      "1,2.5,2024-03-01,2024-03-01 10:30:00,true,alpha,\n" +
      "2,,2024-03-02,2024-03-02 00:00:01,false,beta,x\n";
    const up = await upload(new TextEncoder().encode(csv), "name=typed", "text/csv");
    const d = await settled(up.body.datasetId);
    assert.equal(d.status, "ready", JSON.stringify(d.error));
    const res = await call(`/api/datasets/${d.id}/export?format=xlsx`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), XLSX);
    assert.equal(res.headers.get("content-disposition"), `attachment; filename="typed.xlsx"`);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(res.bytes.buffer);
    const ws = wb.worksheets[0]!;
    assert.equal(ws.name, "typed");
    assert.deepEqual((ws.getRow(1).values as unknown[]).slice(1), [
      "id",
      "price",
      "day",
      "at",
      "ok",
      "label",
      "extra",
    ]);
    const r2 = ws.getRow(2).values as unknown[];
    assert.equal(r2[1], 1);
    assert.equal(r2[2], 2.5);
    assert.ok(r2[3] instanceof Date, `day is ${typeof r2[3]}`);
    assert.equal((r2[3] as Date).toISOString(), "2024-03-01T00:00:00.000Z");
    assert.equal((r2[4] as Date).toISOString(), "2024-03-01T10:30:00.000Z");
    assert.equal(r2[5], true);
    assert.equal(r2[6], "alpha");
    assert.equal(r2[7], undefined, "a null is an empty cell");
    const r3 = ws.getRow(3).values as unknown[];
    assert.equal(r3[2], undefined);
    assert.equal(r3[5], false);
    assert.equal(r3[7], "x");
    assert.equal(ws.getCell("C2").numFmt, "yyyy-mm-dd");
    assert.equal(ws.rowCount, 3);

    // Uploaded again, the workbook gives the same column types: a date column is a date.
    const typedBack = await settled((await upload(res.bytes, "name=typed-back")).body.datasetId);
    assert.equal(typedBack.status, "ready", JSON.stringify(typedBack.error));
    const typesOf = (x: { columns: { name: string; type: string }[] }) =>
      x.columns.map((c) => [c.name, c.type]);
    assert.deepEqual(typesOf(typedBack), typesOf(d));
    assert.deepEqual(typesOf(d).slice(2, 4), [["day", "date"], ["at", "datetime"]]);
    assert.deepEqual(await rows(typedBack.id), await rows(d.id));

    // A dataset read from a workbook goes back to one with the same values.
    const sales = await settled((await upload(await salesWorkbook(), "name=sales")).body.datasetId);
    const back = await call(`/api/datasets/${sales.id}/export?format=xlsx`);
    const again = await upload(back.bytes, "name=again");
    const d2 = await settled(again.body.datasetId);
    assert.equal(d2.status, "ready", JSON.stringify(d2.error));
    assert.deepEqual(await rows(d2.id), await rows(sales.id));
  },
);

Deno.test(
  { name: "datasets: a large export is streamed in pages as it is read", ...opts },
  async () => {
    const lines = ["n,label"];
    for (let i = 0; i < 12_000; i++) lines.push(`${i},row ${i}`);
    const d = await settled(
      (await upload(new TextEncoder().encode(lines.join("\n")), "name=big", "text/csv")).body
        .datasetId,
    );
    assert.equal(d.status, "ready", JSON.stringify(d.error));
    const res = await call(`/api/datasets/${d.id}/export?format=xlsx`);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(res.bytes.buffer);
    const ws = wb.worksheets[0]!;
    assert.equal(ws.rowCount, 12_001);
    assert.equal(ws.getCell("A12001").value, 11_999);
    assert.equal(ws.getCell("B12001").value, "row 11999");
  },
);
