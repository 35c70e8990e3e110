/**
 * Spreadsheets for tests: a small typed workbook made with exceljs, a minimal ZIP writer (for
 * archives that are not workbooks), and a zip bomb: a valid workbook whose sheet inflates
 * about a thousand times its size.
 */
import ExcelJS from "exceljs";

/**
 * Two sheets. `Sales`: numbers, shared strings, a date column (one with a time of day),
 * booleans, a formula with its cached result, rich text, an empty cell, an empty row, a merged
 * range. `Cities`: two columns.
 */
export async function salesWorkbook(): Promise<Uint8Array<ArrayBuffer>> {
  const wb = new ExcelJS.Workbook();
  const sales = wb.addWorksheet("Sales");
  sales.addRow(["id", "city", "amount", "day", "active", "total", "note"]);
  sales.addRow([1, "Paris", 10.5, new Date(Date.UTC(2024, 1, 1)), true, {
    formula: "C2*2",
    result: 21,
  }, { richText: [{ text: "bo", font: { bold: true } }, { text: "ld" }] }]);
  sales.addRow([2, "Lyon", null, new Date(Date.UTC(2024, 1, 2)), false, {
    formula: "N(C3)*2",
    result: 0,
  }, null]);
  sales.addRow([]);
  sales.addRow([3, "Paris", 3, new Date(Date.UTC(2024, 1, 3, 12, 30)), true, {
    formula: "C5*2",
    result: 6,
  }, "plain"]);
  sales.mergeCells("G5:H5");
  sales.getColumn(4).numFmt = "yyyy-mm-dd";
  sales.getCell("D5").numFmt = "yyyy-mm-dd hh:mm";
  const cities = wb.addWorksheet("Cities");
  cities.addRow(["city", "pop"]);
  cities.addRow(["Paris", 2100000]);
  cities.addRow(["Lyon", 520000]);
  return new Uint8Array(await wb.xlsx.writeBuffer() as ArrayBuffer);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(crc: number, bytes: Uint8Array): number {
  let c = ~crc >>> 0;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

interface Packed {
  name: string;
  data: Uint8Array;
  method: 0 | 8;
  size: number;
  crc: number;
}

/** An archive of `entries` (deflated ones given as their compressed bytes, size and CRC). */
function zipOf(entries: Packed[]): Uint8Array<ArrayBuffer> {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, e.method, true);
    lv.setUint32(14, e.crc, true);
    lv.setUint32(18, e.data.length, true);
    lv.setUint32(22, e.size, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const central = new Uint8Array(46 + name.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(10, e.method, true);
    cv.setUint32(16, e.crc, true);
    cv.setUint32(20, e.data.length, true);
    cv.setUint32(24, e.size, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    central.set(name, 46);
    locals.push(local, e.data);
    centrals.push(central);
    offset += local.length + e.data.length;
  }
  const dirSize = centrals.reduce((n, c) => n + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, dirSize, true);
  ev.setUint32(16, offset, true);
  const all = [...locals, ...centrals, end];
  const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of all) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A ZIP of text files, stored uncompressed (a `.docx`'s shape, say). */
export function storedZip(files: Record<string, string>): Uint8Array<ArrayBuffer> {
  const enc = new TextEncoder();
  return zipOf(
    Object.entries(files).map(([name, text]) => {
      const data = enc.encode(text);
      return { name, data, method: 0, size: data.length, crc: crc32(0, data) };
    }),
  );
}

/** `pieces` deflated as they are made (never all in memory), with their size and CRC. */
async function deflated(name: string, pieces: Iterable<Uint8Array>): Promise<Packed> {
  let size = 0;
  let crc = 0;
  const it = pieces[Symbol.iterator]();
  const source = new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(c) {
      const r = it.next();
      if (r.done) return c.close();
      size += r.value.length;
      crc = crc32(crc, r.value);
      c.enqueue(r.value as Uint8Array<ArrayBuffer>);
    },
  });
  const data = new Uint8Array(
    await new Response(source.pipeThrough(new CompressionStream("deflate-raw"))).arrayBuffer(),
  );
  return { name, data, method: 8, size, crc };
}

function* texts(...parts: (string | Iterable<string>)[]): Iterable<Uint8Array> {
  const enc = new TextEncoder();
  for (const p of parts) {
    if (typeof p === "string") yield enc.encode(p);
    else for (const s of p) yield enc.encode(s);
  }
}

/** The parts of a workbook of one sheet, `sheet` being its XML. */
async function oneSheetBook(sheet: Iterable<string>): Promise<Uint8Array<ArrayBuffer>> {
  return await handWorkbook({ sheets: [["S", sheet]] });
}

const RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

/** Parts of a workbook written by hand, as other writers than Excel lay them out. */
export interface HandWorkbook {
  /** Each sheet's name and XML, in order. */
  sheets: [string, Iterable<string> | string][];
  /** `<workbookPr>` attributes (`date1904="1"`) and sheets' states, by name. */
  workbookPr?: string;
  states?: Record<string, string>;
  /** `xl/styles.xml` and `xl/sharedStrings.xml`, when there are some. */
  styles?: string;
  sharedStrings?: string;
  /** Element prefix of the workbook's XML (`x:` as some writers use), none by default. */
  prefix?: string;
}

/** A workbook of `o`'s parts (the package relationships say where the workbook is). */
export async function handWorkbook(o: HandWorkbook): Promise<Uint8Array<ArrayBuffer>> {
  const x = o.prefix ?? "";
  const ns = x
    ? ` xmlns:${x.slice(0, -1)}="http://schemas.openxmlformats.org/spreadsheetml/2006/main"`
    : "";
  const sheets = o.sheets.map(([name], i) =>
    `<${x}sheet name="${name}" sheetId="${i + 1}" r:id="rId${i + 1}"${
      o.states?.[name] ? ` state="${o.states[name]}"` : ""
    }/>`
  ).join("");
  const rels = o.sheets.map((_, i) =>
    `<Relationship Id="rId${i + 1}" Type="${RELS}/worksheet" Target="/xl/worksheets/sheet${
      i + 1
    }.xml"/>`
  );
  if (o.styles) rels.push(`<Relationship Id="rS" Type="${RELS}/styles" Target="styles.xml"/>`);
  if (o.sharedStrings) {
    rels.push(`<Relationship Id="rT" Type="${RELS}/sharedStrings" Target="sharedStrings.xml"/>`);
  }
  const parts: Packed[] = [
    await deflated(
      "_rels/.rels",
      texts(
        `<Relationships><Relationship Id="r1" Type="${RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
      ),
    ),
  ];
  for (const [i, [, xml]] of o.sheets.entries()) {
    parts.push(await deflated(`xl/worksheets/sheet${i + 1}.xml`, texts(xml)));
  }
  parts.push(
    await deflated(
      "xl/workbook.xml",
      texts(
        `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><${x}workbook${ns} xmlns:r="${RELS}">` +
          `<${x}workbookPr ${
            o.workbookPr ?? ""
          }/><${x}sheets>${sheets}</${x}sheets></${x}workbook>`,
      ),
    ),
    await deflated(
      "xl/_rels/workbook.xml.rels",
      texts(`<Relationships>${rels.join("")}</Relationships>`),
    ),
  );
  if (o.styles) parts.push(await deflated("xl/styles.xml", texts(o.styles)));
  if (o.sharedStrings) parts.push(await deflated("xl/sharedStrings.xml", texts(o.sharedStrings)));
  return zipOf(parts);
}

/** A workbook whose sheet holds one text cell of `bytes` letters: it inflates ~1,000:1. */
export async function zipBomb(bytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const block = "x".repeat(1 << 20);
  return await oneSheetBook(
    (function* () {
      yield '<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>';
      for (let n = 0; n < bytes; n += block.length) yield block;
      yield "</t></is></c></row></sheetData></worksheet>";
    })(),
  );
}

/** A workbook of `rows` × `columns` numbers and text made as it is deflated (inline strings). */
export async function bigWorkbook(rows: number, columns: number): Promise<Uint8Array<ArrayBuffer>> {
  return await oneSheetBook(
    (function* () {
      yield "<worksheet><sheetData><row>";
      for (let c = 0; c < columns; c++) yield `<c t="inlineStr"><is><t>col${c}</t></is></c>`;
      yield "</row>";
      for (let r = 0; r < rows; r++) {
        let row = "<row>";
        for (let c = 0; c < columns; c++) {
          row += c % 2
            ? `<c t="inlineStr"><is><t>text ${r}-${c}</t></is></c>`
            : `<c><v>${r * c}.5</v></c>`;
        }
        yield row + "</row>";
      }
      yield "</sheetData></worksheet>";
    })(),
  );
}
