/**
 * One sheet of an `.xlsx` workbook as NDJSON, streamed: the form a spreadsheet upload is stored
 * in, so the dataset pipeline splits and parses it as any NDJSON file.
 *
 * The archive is read by random access ({@link RandomAccess}: a stored blob), since Excel writes
 * a sheet before the shared strings and styles it needs: the workbook, its relationships, the
 * styles and the shared strings are read first (the shared strings are held in memory, under a
 * cap), then the sheet's XML is inflated and parsed as it streams, one line of NDJSON a row.
 *
 * What a row becomes:
 * - an object keyed by the header row's names (the first non-empty row, names made unique as
 *   for CSV: an empty one is `column_<n>`, a repeated one gets `_2`); with `header: false`, or
 *   for a cell right of the header, `column_<n>` (1-based column);
 * - a number cell is a JSON number; a number cell styled as a date is `YYYY-MM-DD`, or
 *   `YYYY-MM-DDTHH:MM:SS[.mmm]` with a time of day (`HH:MM:SS` text when its format shows a
 *   time alone; an elapsed time such as `[h]:mm` stays a number of days); a boolean is
 *   `true`/`false`; a shared, inline or rich-text string is its plain text (phonetic runs left
 *   out); a formula is its cached result (none cached: null); an error (`#DIV/0!`) is null; an
 *   empty cell is null;
 * - a merged range holds its value in its top-left cell only (the others are empty), as pandas
 *   and openpyxl read it; rows with no value are left out.
 */
import { SaxesParser, type SaxesTagPlain } from "saxes";
import { IngestError } from "./errors.ts";
import { uniqueNames } from "./parse.ts";
import { entryStream, type RandomAccess, zipEntries, type ZipEntry } from "./zip.ts";

/** Why a spreadsheet could not be read (ZIP troubles are {@link ZipError}s). */
export type XlsxErrorCode = "not_xlsx" | "bad_xlsx" | "sheet_not_found" | "too_many_columns";

/** A ZIP that is not a workbook, a corrupt workbook, a missing sheet, a sheet too wide. */
export class XlsxError extends IngestError {
  override name = "XlsxError";
  constructor(
    readonly code: XlsxErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Options of {@link xlsxToNdjson}. */
export interface XlsxOptions {
  /** The sheet: its name, or its 1-based position. @default the first visible sheet */
  sheet?: string;
  /** The first non-empty row names the columns. @default true */
  header?: boolean;
  /** Most columns: a value right of them fails with `too_many_columns`. @default 1000 */
  maxColumns?: number;
  /** Most inflated bytes per compressed byte of an entry (past 1 MiB). @default 200 */
  maxInflateRatio?: number;
  /** Most inflated bytes of the sheet's XML. @default 16 GiB */
  maxSheetBytes?: number;
  /** Most inflated bytes of the shared strings (held in memory). @default 256 MiB */
  maxSharedStringsBytes?: number;
}

/** A sheet picked for reading, and its rows as NDJSON. */
export interface XlsxSheet {
  /** Its name. */
  sheet: string;
  /** Its 1-based position in the workbook. */
  index: number;
  /** Every sheet's name, in workbook order. */
  sheets: string[];
  /** One JSON object a line; errors with {@link XlsxError} or `ZipError` as it is read. */
  rows: ReadableStream<Uint8Array>;
}

/** Most inflated bytes of a workbook's small parts (workbook, relationships, styles). */
const MAX_PART_BYTES = 16 << 20;
/** Excel's own widest sheet (`XFD`). */
const EXCEL_COLUMNS = 16384;
const MS_PER_DAY = 86_400_000;
/** Longest cell text read (Excel's own limit is 32,767 characters). */
const MAX_CELL_CHARS = 1 << 20;

interface SheetRef {
  name: string;
  path: string;
  hidden: boolean;
}

/**
 * Opens the workbook in `src` and picks its sheet: throws {@link XlsxError} (`not_xlsx` for a
 * ZIP that holds no workbook, such as a `.docx`, `.ods` or `.jar`; `bad_xlsx`;
 * `sheet_not_found` with the sheets' names) or `ZipError` before any row is read.
 */
export async function xlsxToNdjson(src: RandomAccess, o: XlsxOptions = {}): Promise<XlsxSheet> {
  const limits = { maxRatio: o.maxInflateRatio ?? 200, maxBytes: MAX_PART_BYTES };
  const entries = await zipEntries(src);
  const part = (path: string) => entries.get(path.replace(/^\//, ""));

  // The workbook: where the package's relationships say, else where Excel puts it.
  let workbookPath = "xl/workbook.xml";
  const rootRels = part("_rels/.rels");
  if (rootRels) {
    const rels = await relationships(src, rootRels, "", limits);
    workbookPath = rels.find((r) => r.type.endsWith("/officeDocument"))?.target ?? workbookPath;
  }
  const workbook = part(workbookPath);
  if (!workbook) {
    throw new XlsxError(
      "not_xlsx",
      "the ZIP archive holds no Excel workbook (xl/workbook.xml): it is not an .xlsx file",
      { entries: [...entries.keys()].slice(0, 5) },
    );
  }
  const base = workbookPath.includes("/")
    ? workbookPath.slice(0, workbookPath.lastIndexOf("/") + 1)
    : "";
  const relsPart = part(`${base}_rels/${workbookPath.slice(base.length)}.rels`);
  const rels = relsPart ? await relationships(src, relsPart, base, limits) : [];
  const byId = new Map(rels.map((r) => [r.id, r]));

  const sheets: SheetRef[] = [];
  let date1904 = false;
  await readXml(await entryStream(src, workbook, limits), {
    open(tag) {
      if (tag.local === "workbookPr") {
        date1904 = tag.attr("date1904") === "1" || tag.attr("date1904") === "true";
      } else if (tag.local === "sheet") {
        const target = byId.get(tag.attr("r:id") ?? tag.attrEnding(":id") ?? "")?.target;
        sheets.push({
          name: tag.attr("name") ?? `Sheet${sheets.length + 1}`,
          path: target ?? `${base}worksheets/sheet${sheets.length + 1}.xml`,
          hidden: (tag.attr("state") ?? "visible") !== "visible",
        });
      }
    },
  });
  const names = sheets.map((s) => s.name);
  if (sheets.length === 0) throw new XlsxError("bad_xlsx", "the workbook has no sheet");
  const index = pickSheet(sheets, o.sheet);
  if (index < 0) {
    throw new XlsxError(
      "sheet_not_found",
      `the workbook has no sheet ${JSON.stringify(o.sheet)}: its sheets are ${
        names.map((n) => JSON.stringify(n)).join(", ")
      } (pass sheet= a name or a 1-based position)`,
      { sheet: o.sheet, sheets: names },
    );
  }
  const chosen = sheets[index]!;
  const sheetEntry = part(chosen.path);
  if (!sheetEntry) {
    throw new XlsxError("bad_xlsx", `the sheet ${JSON.stringify(chosen.name)} has no part`);
  }

  const stylesPart = rels.find((r) => r.type.endsWith("/styles"))?.target;
  const dateStyles = stylesPart && part(stylesPart)
    ? await readDateStyles(src, part(stylesPart)!, limits)
    : new Map<number, DateKind>();
  const stringsPart = rels.find((r) => r.type.endsWith("/sharedStrings"))?.target;
  const strings = stringsPart && part(stringsPart)
    ? await readSharedStrings(src, part(stringsPart)!, {
      maxRatio: limits.maxRatio,
      maxBytes: o.maxSharedStringsBytes ?? 256 << 20,
    })
    : [];

  const rows = await sheetRows(src, sheetEntry, {
    strings,
    dateStyles,
    date1904,
    header: o.header ?? true,
    maxColumns: Math.min(o.maxColumns ?? 1000, EXCEL_COLUMNS),
    limits: { maxRatio: limits.maxRatio, maxBytes: o.maxSheetBytes ?? 16 * 2 ** 30 },
  });
  return { sheet: chosen.name, index: index + 1, sheets: names, rows };
}

/** The position of the sheet `wanted` names (exact, then ignoring case, then 1-based), or -1. */
function pickSheet(sheets: SheetRef[], wanted: string | undefined): number {
  if (wanted === undefined || wanted === "") {
    const visible = sheets.findIndex((s) => !s.hidden);
    return visible >= 0 ? visible : 0;
  }
  const exact = sheets.findIndex((s) => s.name === wanted);
  if (exact >= 0) return exact;
  const folded = sheets.findIndex((s) => s.name.toLowerCase() === wanted.toLowerCase());
  if (folded >= 0) return folded;
  if (/^[1-9][0-9]{0,5}$/.test(wanted) && Number(wanted) <= sheets.length) {
    return Number(wanted) - 1;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// XML

/** An open tag: its local name (no prefix) and attributes. */
interface Tag {
  local: string;
  attr(name: string): string | undefined;
  /** The first attribute whose name ends with `suffix` (a relationship id under any prefix). */
  attrEnding(suffix: string): string | undefined;
}

interface XmlHandlers {
  open?(tag: Tag): void;
  close?(local: string): void;
  text?(text: string): void;
}

function localName(name: string): string {
  const colon = name.indexOf(":");
  return colon < 0 ? name : name.slice(colon + 1);
}

/** A SAX parser calling `h`; errors become `bad_xlsx`. */
function parser(h: XmlHandlers, what: string): SaxesParser {
  const p = new SaxesParser();
  p.on("opentag", (t: SaxesTagPlain) => {
    h.open?.({
      local: localName(t.name),
      attr: (name) => t.attributes[name],
      attrEnding: (suffix) => {
        for (const [k, v] of Object.entries(t.attributes)) if (k.endsWith(suffix)) return v;
        return undefined;
      },
    });
  });
  if (h.close) p.on("closetag", (t) => h.close!(localName(t.name)));
  if (h.text) {
    p.on("text", h.text);
    p.on("cdata", h.text);
  }
  p.on("error", (err) => {
    throw new XlsxError("bad_xlsx", `${what} is not well-formed XML: ${err.message}`);
  });
  return p;
}

/** Feeds a whole entry to a SAX parser. */
async function readXml(stream: ReadableStream<Uint8Array>, h: XmlHandlers, what = "a part") {
  const p = parser(h, what);
  const text = stream.pipeThrough(new TextDecoderStream());
  for await (const chunk of text) p.write(chunk);
  p.close();
}

interface Relationship {
  id: string;
  type: string;
  /** The target's path in the archive. */
  target: string;
}

async function relationships(
  src: RandomAccess,
  entry: ZipEntry,
  base: string,
  limits: { maxRatio: number; maxBytes: number },
): Promise<Relationship[]> {
  const out: Relationship[] = [];
  await readXml(await entryStream(src, entry, limits), {
    open(tag) {
      if (tag.local !== "Relationship" || tag.attr("TargetMode") === "External") return;
      const target = tag.attr("Target") ?? "";
      out.push({
        id: tag.attr("Id") ?? "",
        type: tag.attr("Type") ?? "",
        target: resolvePath(base, target),
      });
    },
  }, entry.name);
  return out;
}

/** `target` relative to the folder `base` (or from the root when it starts with `/`). */
function resolvePath(base: string, target: string): string {
  const parts = (target.startsWith("/") ? target.slice(1) : base + target).split("/");
  const out: string[] = [];
  for (const p of parts) {
    if (p === "..") out.pop();
    else if (p !== "." && p !== "") out.push(p);
  }
  return out.join("/");
}

// ---------------------------------------------------------------------------------------------
// Styles and shared strings

/** What a number styled as a date becomes. */
type DateKind = "date" | "time";

/** Built-in number formats that show a time of day alone. */
const TIME_FORMAT_IDS = new Set([18, 19, 20, 21, 45, 46, 47]);

/** Built-in number formats that show dates or times. */
const DATE_FORMAT_IDS = new Set([
  14,
  15,
  16,
  17,
  18,
  19,
  20,
  21,
  22,
  27,
  28,
  29,
  30,
  31,
  32,
  33,
  34,
  35,
  36,
  45,
  46,
  47,
  50,
  51,
  52,
  53,
  54,
  55,
  56,
  57,
  58,
]);

/**
 * Whether a custom number format shows a date or a time (`yyyy-mm-dd`, `h:mm`, `d/m/yy`); an
 * elapsed time (`[h]:mm`) is a duration, not one.
 */
export function isDateFormat(code: string): boolean {
  // `[h]:mm` shows a duration (elapsed hours), not a date: the number of days is kept.
  if (/\[(h+|m+|s+)\]/i.test(code.split(";")[0] ?? "")) return false;
  return /[dmyhs]/i.test(bareFormat(code));
}

/** Whether a date format shows a time of day alone (`h:mm:ss`, `mm:ss`): no year, no day. */
export function isTimeFormat(code: string): boolean {
  const bare = bareFormat(code);
  return /[hs]/i.test(bare) && !/[dy]/i.test(bare);
}

/** A number format's first section without its literal text, colours and conditions. */
function bareFormat(code: string): string {
  const bare = code
    .replace(/"[^"]*"/g, "") // quoted text
    .replace(/\\./g, "") // escaped characters
    .replace(/[_*]./g, "") // padding and fill
    .replace(/\[[^\]]*\]/g, "") // colours, conditions, locales, elapsed times
    .replace(/General/gi, "");
  // The first section (positive numbers) decides.
  return bare.split(";")[0] ?? "";
}

/** The cell style indexes (`s`) that show a date or a time. */
async function readDateStyles(
  src: RandomAccess,
  entry: ZipEntry,
  limits: { maxRatio: number; maxBytes: number },
): Promise<Map<number, DateKind>> {
  const custom = new Map<number, string>();
  const xfFormats: number[] = [];
  let inCellXfs = false;
  await readXml(await entryStream(src, entry, limits), {
    open(tag) {
      if (tag.local === "numFmt") {
        custom.set(Number(tag.attr("numFmtId")), tag.attr("formatCode") ?? "");
      } else if (tag.local === "cellXfs") inCellXfs = true;
      else if (tag.local === "xf" && inCellXfs) xfFormats.push(Number(tag.attr("numFmtId") ?? 0));
    },
    close(local) {
      if (local === "cellXfs") inCellXfs = false;
    },
  }, "the styles");
  const out = new Map<number, DateKind>();
  xfFormats.forEach((id, i) => {
    const code = custom.get(id);
    if (code !== undefined ? isDateFormat(code) : DATE_FORMAT_IDS.has(id)) {
      const time = code !== undefined ? isTimeFormat(code) : TIME_FORMAT_IDS.has(id);
      out.set(i, time ? "time" : "date");
    }
  });
  return out;
}

/** The shared strings, as plain text (rich runs joined, phonetic runs left out). */
async function readSharedStrings(
  src: RandomAccess,
  entry: ZipEntry,
  limits: { maxRatio: number; maxBytes: number },
): Promise<string[]> {
  const out: string[] = [];
  let current: string[] | null = null;
  let inT = false;
  let phonetic = 0;
  await readXml(await entryStream(src, entry, limits), {
    open(tag) {
      if (tag.local === "si") current = [];
      else if (tag.local === "rPh") phonetic++;
      else if (tag.local === "t" && phonetic === 0) inT = true;
    },
    close(local) {
      if (local === "si") {
        out.push(current?.join("") ?? "");
        current = null;
      } else if (local === "rPh") phonetic--;
      else if (local === "t") inT = false;
    },
    text(text) {
      if (inT && current) current.push(text);
    },
  }, "the shared strings");
  return out;
}

// ---------------------------------------------------------------------------------------------
// The sheet

interface SheetContext {
  strings: string[];
  dateStyles: Map<number, DateKind>;
  date1904: boolean;
  header: boolean;
  maxColumns: number;
  limits: { maxRatio: number; maxBytes: number };
}

/** The 0-based column of a cell reference (`AB12` → 27), or -1. */
export function columnOf(ref: string): number {
  let col = 0;
  let i = 0;
  for (; i < ref.length; i++) {
    const c = ref.charCodeAt(i);
    if (c >= 65 && c <= 90) col = col * 26 + (c - 64);
    else if (c >= 97 && c <= 122) col = col * 26 + (c - 96);
    else break;
  }
  return i === 0 ? -1 : col - 1;
}

/** The time of day of an Excel serial, `HH:MM:SS`. */
export function timeOfDay(serial: number): string {
  const frac = serial - Math.floor(serial);
  return new Date(Math.round(frac * MS_PER_DAY)).toISOString().slice(11, 19);
}

/**
 * An Excel date serial as ISO text (`date1904`: the Mac epoch), or null past the years
 * JavaScript dates reach (a number styled as a date is then kept as a number).
 */
export function serialDate(serial: number, date1904: boolean): string | null {
  // 1900 system: serial 1 is 1900-01-01, and 60 the 1900-02-29 Excel believes in.
  const days = date1904 ? serial + 1462 : serial < 60 ? serial + 1 : serial;
  const ms = Math.round((days - 25569) * MS_PER_DAY);
  if (!(Math.abs(ms) <= 8.64e15)) return null;
  const iso = new Date(ms).toISOString();
  if (ms % MS_PER_DAY === 0) return iso.slice(0, 10);
  return iso.endsWith(".000Z") ? iso.slice(0, 19) : iso.slice(0, 23);
}

/** The sheet's rows as NDJSON lines, parsed as the sheet's XML inflates. */
async function sheetRows(
  src: RandomAccess,
  entry: ZipEntry,
  ctx: SheetContext,
): Promise<ReadableStream<Uint8Array>> {
  const xml = (await entryStream(src, entry, ctx.limits)).pipeThrough(new TextDecoderStream())
    .getReader();
  const encoder = new TextEncoder();
  let lines: string[] = [];
  let rawHeader: string[] | null = ctx.header ? null : [];
  let names: string[] = [];
  let cells: unknown[] = [];
  let col = -1;
  let type = "n";
  let style = -1;
  let value = "";
  let capture = false;
  let inInline = false;
  let phonetic = 0;
  let hasValue = false;
  let done = false;

  const nameOf = (i: number): string => {
    if (i >= names.length) {
      const raw = [...rawHeader!];
      while (raw.length <= i) raw.push("");
      names = uniqueNames(raw);
    }
    return names[i]!;
  };
  const convert = (): unknown => {
    switch (type) {
      case "s": {
        const s = ctx.strings[Number(value)];
        if (s === undefined) {
          throw new XlsxError("bad_xlsx", `a cell names shared string ${value}, which is missing`);
        }
        return s;
      }
      case "str":
      case "inlineStr":
        return value;
      case "b":
        return value.trim() === "1" || value.trim() === "true";
      case "e":
        return null;
      case "d":
        return value.trim() || null;
      default: {
        if (value.trim() === "") return null;
        const n = Number(value);
        if (!Number.isFinite(n)) return null;
        const kind = ctx.dateStyles.get(style);
        if (kind === "time") return timeOfDay(n);
        return kind === "date" ? serialDate(n, ctx.date1904) ?? n : n;
      }
    }
  };
  const endRow = () => {
    if (!cells.some((v) => v !== null && v !== undefined)) return;
    if (rawHeader === null) {
      // `cells` is sparse where the row skips columns: `Array.from` visits the holes.
      rawHeader = Array.from(cells, (v) => v === null || v === undefined ? "" : String(v));
      names = uniqueNames(rawHeader);
      return;
    }
    // The header's columns always; a column right of it only where it has a value.
    const headerWidth = rawHeader.length;
    const width = Math.max(headerWidth, cells.length);
    const row: Record<string, unknown> = {};
    for (let i = 0; i < width; i++) {
      const v = cells[i] ?? null;
      if (i < headerWidth || v !== null) row[nameOf(i)] = v;
    }
    lines.push(JSON.stringify(row));
  };

  const p = parser({
    open(tag) {
      switch (tag.local) {
        case "row":
          cells = [];
          col = -1;
          break;
        case "c": {
          const ref = tag.attr("r");
          col = ref ? columnOf(ref) : col + 1;
          if (col < 0) throw new XlsxError("bad_xlsx", `a cell has the reference ${ref}`);
          type = tag.attr("t") ?? "n";
          style = Number(tag.attr("s") ?? -1);
          value = "";
          hasValue = false;
          inInline = false;
          break;
        }
        case "v":
          capture = true;
          hasValue = true;
          break;
        case "is":
          inInline = true;
          hasValue = true;
          break;
        case "rPh":
          phonetic++;
          break;
        case "t":
          if (inInline && phonetic === 0) capture = true;
          break;
      }
    },
    close(local) {
      switch (local) {
        case "v":
        case "t":
          capture = false;
          break;
        case "rPh":
          phonetic--;
          break;
        case "is":
          inInline = false;
          break;
        case "c": {
          if (!hasValue) break;
          const v = convert();
          if (v === null) break;
          if (col >= ctx.maxColumns) {
            throw new XlsxError(
              "too_many_columns",
              `the sheet has a value in column ${
                col + 1
              }, past the limit of ${ctx.maxColumns} columns`,
              { maxColumns: ctx.maxColumns },
            );
          }
          cells[col] = v;
          break;
        }
        case "row":
          endRow();
          break;
        case "sheetData":
          done = true;
          break;
      }
    },
    text(text) {
      if (!capture) return;
      value += text;
      if (value.length > MAX_CELL_CHARS) {
        throw new XlsxError(
          "bad_xlsx",
          `a cell holds more than ${MAX_CELL_CHARS} characters (Excel's limit is 32,767)`,
        );
      }
    },
  }, "the sheet");

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (lines.length === 0) {
        const r = done ? { done: true as const } : await xml.read();
        if (r.done) {
          if (!done) {
            p.close();
            if (!done) throw new XlsxError("bad_xlsx", "the sheet's XML ends before its data");
          }
          await xml.cancel().catch(() => {});
          controller.close();
          return;
        }
        try {
          p.write(r.value);
        } catch (err) {
          if (err instanceof IngestError) throw err;
          throw new XlsxError("bad_xlsx", `the sheet cannot be read: ${String(err)}`);
        }
      }
      const out = lines.join("\n") + "\n";
      lines = [];
      controller.enqueue(encoder.encode(out));
    },
    cancel: (reason) => xml.cancel(reason),
  }, { highWaterMark: 0 });
}
