/**
 * Memory of spreadsheet import and export, each in a process of its own:
 *
 *   deno run -A bench/xlsx_memory.ts make 200000 10   # writes the workbook (exceljs, streamed)
 *   deno run -A bench/xlsx_memory.ts import           # .xlsx blob → NDJSON blob, as an upload
 *   deno run -A bench/xlsx_memory.ts export 200000 10 # rows → .xlsx stream, as an export
 *   deno run -A bench/xlsx_memory.ts idle             # the same modules loaded, nothing done
 *
 * The workbook has numbers, shared strings (1,000 distinct; `--unique`: every one distinct),
 * dates and booleans, with its
 * sheet before its shared strings (as Excel and exceljs write it). Import goes through the
 * file blob store (the embedded adapter) as the upload route does; peak RSS is sampled every
 * 20 ms. Run with the flags of `deno task start` (GLIBC_TUNABLES, --v8-flags) for the figures
 * of a server. Results go to bench/results/xlsx_memory.json.
 */
import ExcelJS from "exceljs";
import { FsBlobStore } from "../db/blobs/fs.ts";
import { blobAccess } from "../actors/datasets/spreadsheet.ts";
import { xlsxToNdjson } from "../actors/datasets/ingest/xlsx.ts";
import { xlsxStream } from "../actors/datasets/export_xlsx.ts";
import type { ColumnInfo } from "../actors/datasets/store.ts";

const unique = Deno.args.includes("--unique");
const [mode = "idle", rowsArg = "200000", colsArg = "10"] = Deno.args.filter((a) =>
  !a.startsWith("--")
);
const rows = Number(rowsArg);
const cols = Number(colsArg);
const dir = ".data/bench-xlsx";
const file = `${dir}/sheet.xlsx`;

let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, Deno.memoryUsage().rss)), 20);
const mb = (n: number) => Math.round(n / 1e5) / 10;

function value(r: number, c: number): unknown {
  switch (c % 5) {
    case 0:
      return r;
    case 1:
      return r * 1.25;
    case 2:
      return unique ? `name ${r} ${c}` : `name ${r % 1000}`;
    case 3:
      return new Date(Date.UTC(2020, 0, 1 + (r % 1500)));
    default:
      return r % 3 === 0;
  }
}

const t0 = performance.now();
let result: Record<string, unknown> = {};
if (mode === "make") {
  await Deno.mkdir(dir, { recursive: true });
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({
    filename: file,
    useSharedStrings: true,
    useStyles: true,
  });
  const ws = wb.addWorksheet("Data");
  ws.addRow(Array.from({ length: cols }, (_, c) => `col${c}`)).commit();
  for (let r = 0; r < rows; r++) {
    ws.addRow(Array.from({ length: cols }, (_, c) => value(r, c))).commit();
  }
  ws.commit();
  await wb.commit();
  result = { bytes: (await Deno.stat(file)).size };
} else if (mode === "import") {
  const blobs = new FsBlobStore(`${dir}/blobs`);
  const before = Deno.memoryUsage().rss;
  const src = await Deno.open(file);
  const put = await blobs.put(src.readable);
  const stored = Deno.memoryUsage().rss;
  const sheet = await xlsxToNdjson(blobAccess(blobs, put.sha256, put.size), {
    maxColumns: 1000,
  });
  let lines = 0;
  const counted = sheet.rows.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
        c.enqueue(chunk);
      },
    }),
  );
  const ndjson = await blobs.put(counted);
  result = {
    rowsRead: lines,
    xlsxBytes: put.size,
    ndjsonBytes: ndjson.size,
    rssBeforeMb: mb(before),
    rssAfterStoreMb: mb(stored),
  };
} else if (mode === "export") {
  const columns: ColumnInfo[] = Array.from({ length: cols }, (_, c) => ({
    name: `col${c}`,
    key: `c${c}`,
    type: ["integer", "float", "string", "date", "boolean"][c % 5]!,
  }));
  let at = 0;
  const next = () => {
    const page: Record<string, unknown>[] = [];
    for (; at < rows && page.length < 2000; at++) {
      page.push(Object.fromEntries(columns.map((col, c) => [col.key, value(at, c)])));
    }
    return Promise.resolve(page);
  };
  let bytes = 0;
  for await (const chunk of xlsxStream("Data", columns, next)) bytes += chunk.length;
  result = { xlsxBytes: bytes };
}
clearInterval(sampler);
peak = Math.max(peak, Deno.memoryUsage().rss);
const out = {
  mode,
  rows,
  cols,
  ms: Math.round(performance.now() - t0),
  peakRssMb: mb(peak),
  ...result,
};
console.log(JSON.stringify(out));
await Deno.mkdir("bench/results", { recursive: true });
const path = "bench/results/xlsx_memory.json";
let all: Record<string, unknown> = {};
try {
  all = JSON.parse(await Deno.readTextFile(path));
} catch { /* first run */ }
all[unique ? `${mode}-unique` : mode] = out;
await Deno.writeTextFile(path, JSON.stringify(all, null, 2) + "\n");
