/**
 * A dataset's rows as an `.xlsx` workbook, streamed with exceljs's streaming writer: one sheet,
 * a header row, typed cells (numbers as numbers, dates and datetimes as dates with a date
 * format, booleans, text; JSON values as their text; nulls as empty cells).
 *
 * The writer zips as rows are committed; the next page of rows is only fetched once what was
 * zipped so far has been read, so memory holds about one page of rows and the deflater's
 * window, whatever the dataset's size.
 */
import ExcelJS from "exceljs";
import { PassThrough } from "node:stream";
import type { ColumnInfo } from "./store.ts";

/** A sheet's column: its header, the key of its value in a row, its type (`cellValue`). */
export type SheetColumn = Pick<ColumnInfo, "name" | "key" | "type">;

/** Where rows come from: pages in order, an empty page at the end. */
export type RowPages = () => Promise<Record<string, unknown>[]>;

/** Excel's rules for a sheet's name: 31 characters, none of `[]:*?/\`. */
export function sheetName(name: string): string {
  const clean = name.replace(/[[\]:*?/\\]/g, " ").replace(/^'+|'+$/g, "").trim().slice(0, 31);
  return clean || "Data";
}

/** A cell's value for its column type, as exceljs writes it. */
export function cellValue(v: unknown, type: string): ExcelJS.CellValue {
  if (v === null || v === undefined) return null;
  switch (type) {
    case "integer":
    case "float":
      return Number(v);
    case "boolean":
      return typeof v === "boolean" ? v : v === "true" || v === "t";
    case "date": {
      const d = v instanceof Date ? v : new Date(`${String(v).slice(0, 10)}T00:00:00Z`);
      return Number.isNaN(d.getTime()) ? String(v) : d;
    }
    case "datetime": {
      if (v instanceof Date) return v;
      const s = String(v);
      // A datetime without an offset is a wall-clock time: written as read, as UTC.
      const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s.replace(" ", "T")}Z`);
      return Number.isNaN(d.getTime()) ? s : d;
    }
    case "json":
      return typeof v === "string" ? v : JSON.stringify(v);
    default:
      return typeof v === "object" ? JSON.stringify(v) : String(v);
  }
}

/** The part of a `readable-stream` 2 writable read here. */
interface LegacyWritable {
  _writableState?: { length: number };
  destroyed?: boolean;
  once(event: string, listener: () => void): unknown;
  removeListener(event: string, listener: () => void): unknown;
}

/** Bytes of sheet XML waiting for the deflater before the next page of rows is fetched. */
const SHEET_BUFFER_BYTES = 256 * 1024;

/**
 * Waits until the deflater has taken the sheet's XML written so far, but for
 * {@link SHEET_BUFFER_BYTES}. exceljs (4.4.0, pinned) writes a sheet into a buffer piped to the
 * zip's entry stream without heeding that stream's backpressure, so without this wait rows
 * pile up in memory while the deflater lags: that entry stream's buffered length (a
 * `readable-stream` 2 stream, archiver's: no `writableLength`) says how far it lags.
 */
async function drained(ws: ExcelJS.Worksheet): Promise<void> {
  const sink = (ws as unknown as { stream?: { pipes?: LegacyWritable[] } }).stream?.pipes?.[0];
  const waiting = () => sink?._writableState?.length ?? 0;
  while (sink && waiting() > SHEET_BUFFER_BYTES && !sink.destroyed) {
    await new Promise<void>((resolve) => {
      const done = () => {
        sink.removeListener("drain", done);
        sink.removeListener("close", done);
        resolve();
      };
      sink.once("drain", done);
      sink.once("close", done);
    });
  }
}

/** The number format a column's cells show in. */
function numFmt(type: string): string | undefined {
  if (type === "date") return "yyyy-mm-dd";
  if (type === "datetime") return "yyyy-mm-dd hh:mm:ss";
  return undefined;
}

/**
 * The workbook of `columns` and the rows `next` returns (SQL rows keyed by column key), as a
 * stream of bytes. Rows are fetched as the stream is read.
 */
export function xlsxStream(
  sheet: string,
  columns: readonly SheetColumn[],
  next: RowPages,
): ReadableStream<Uint8Array> {
  const out = new PassThrough();
  const chunks: Uint8Array[] = [];
  let ended = false;
  let failure: unknown = null;
  let wake: () => void = () => {};
  const woken = () => new Promise<void>((resolve) => (wake = resolve));
  out.on("data", (c: Uint8Array) => {
    chunks.push(c);
    wake();
  });
  out.on("end", () => {
    ended = true;
    wake();
  });
  out.on("error", (err) => {
    failure = err;
    wake();
  });

  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({
    stream: out,
    useStyles: true,
    useSharedStrings: false,
  });
  const ws = wb.addWorksheet(sheetName(sheet));
  ws.columns = columns.map((c) => {
    const fmt = numFmt(c.type);
    return {
      header: c.name,
      width: Math.min(40, Math.max(10, c.name.length + 2)),
      ...(fmt ? { style: { numFmt: fmt } } : {}),
    };
  });
  let rowsDone = false;
  let writing: Promise<void> | null = null;
  const writePage = async () => {
    const rows = await next();
    if (rows.length === 0) {
      rowsDone = true;
      ws.commit();
      await wb.commit();
      return;
    }
    for (const r of rows) {
      ws.addRow(columns.map((c) => cellValue(r[c.key], c.type))).commit();
    }
    await drained(ws);
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (chunks.length === 0 && !ended) {
        if (failure) throw failure;
        const wait = woken();
        if (!writing && !rowsDone) {
          writing = writePage().then(() => {
            writing = null;
            wake();
          }, (err) => {
            failure = err;
            wake();
          });
        }
        await wait;
      }
      if (failure) throw failure;
      if (chunks.length) {
        const all = chunks.splice(0);
        if (all.length === 1) controller.enqueue(all[0]!);
        else {
          const joined = new Uint8Array(all.reduce((n, c) => n + c.length, 0));
          let at = 0;
          for (const c of all) {
            joined.set(c, at);
            at += c.length;
          }
          controller.enqueue(joined);
        }
        return;
      }
      controller.close();
    },
    cancel() {
      rowsDone = true;
      out.destroy();
    },
  }, { highWaterMark: 0 });
}
