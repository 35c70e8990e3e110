/**
 * Hostile PDFs, built byte by byte (no tools, nothing on disk): a Flate bomb, an outline nested
 * 100,000 deep, cyclic outlines, a page tree that loops, an object that refers to itself. Each
 * is a well-formed file apart from its trap (a correct cross-reference table), so a reader
 * cannot refuse it for being damaged: it has to survive the trap.
 */
import { constants, deflateRawSync } from "node:zlib";

/** An object's body: text and raw bytes (a stream's data), in order. */
export type PdfBody = (string | Uint8Array)[];

function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * A PDF of `objects` (object n is `objects[n - 1]`), with a cross-reference table and a
 * trailer whose `/Root` is object 1.
 */
export function buildPdf(objects: (string | PdfBody)[]): Uint8Array {
  const parts: Uint8Array[] = [latin1("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")];
  let size = parts[0]!.length;
  const push = (p: string | Uint8Array) => {
    const bytes = typeof p === "string" ? latin1(p) : p;
    parts.push(bytes);
    size += bytes.length;
  };
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(size);
    push(`${i + 1} 0 obj\n`);
    for (const p of typeof body === "string" ? [body] : body) push(p);
    push("\nendobj\n");
  });
  const xref = size;
  const rows = offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`);
  push(`xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${rows.join("")}`);
  push(`trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A stream object's body: `dict` entries (without `/Length`) and the data. */
export function streamBody(dict: string, data: Uint8Array): PdfBody {
  return [`<< ${dict} /Length ${data.length} >>\nstream\n`, data, "\nendstream"];
}

const TEXT = "BT /F1 12 Tf 72 720 Td (Hostile file) Tj ET\n";
const FONT = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";

/** Catalog, page tree and one page (objects 1-3), its contents (4) and font (5). */
function onePage(contents: string | PdfBody, catalogExtra = ""): (string | PdfBody)[] {
  return [
    `<< /Type /Catalog /Pages 2 0 R ${catalogExtra}>>`,
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R " +
    "/Resources << /Font << /F1 5 0 R >> >> >>",
    contents,
    FONT,
  ];
}

/**
 * A one-page PDF whose content stream inflates to `inflatedMb` MB (a line of text, then zero
 * bytes, which PDF reads as white space): about 1 KB of file a MB. The default, 4 GB out of a
 * 4 MB file, is the bomb. `disguise`: the stream also claims to be an image (which
 * text readers skip, but pdf.js decodes page contents whatever they claim), or is hex-encoded
 * on top (`/ASCIIHexDecode` first, then `/FlateDecode`).
 */
export function flateBomb(
  { inflatedMb = 4096, disguise }: { inflatedMb?: number; disguise?: "image" | "hex" } = {},
): Uint8Array {
  const sync = { finishFlush: constants.Z_SYNC_FLUSH, level: 9 };
  const head = new Uint8Array(deflateRawSync(latin1(TEXT), sync));
  const zeros = new Uint8Array(deflateRawSync(new Uint8Array(1 << 20), sync));
  const data = new Uint8Array(2 + head.length + zeros.length * inflatedMb + 2 + 4);
  data.set([0x78, 0xda]); // zlib header, best compression
  data.set(head, 2);
  let at = 2 + head.length;
  for (let i = 0; i < inflatedMb; i++, at += zeros.length) data.set(zeros, at);
  data.set([0x03, 0x00], at); // a final, empty, fixed-Huffman block
  // Adler-32 of the output: the text, then the zeros (which add `a` to `b` each).
  let a = 1;
  let b = 0;
  for (const c of latin1(TEXT)) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  b = (b + Number((BigInt(a) * BigInt(inflatedMb) * BigInt(1 << 20)) % 65521n)) % 65521;
  new DataView(data.buffer).setUint32(at + 2, ((b << 16) | a) >>> 0);
  if (disguise === "hex") {
    const hex = latin1(Array.from(data, (x) => x.toString(16).padStart(2, "0")).join("") + ">");
    return buildPdf(onePage(streamBody("/Filter [/ASCIIHexDecode /FlateDecode]", hex)));
  }
  const image = disguise === "image" ? "/Subtype /Image /Width 1 /Height 1 " : "";
  return buildPdf(onePage(streamBody(`${image}/Filter /FlateDecode`, data)));
}

/** Bits written most significant first (as LZW codes are read). */
class BitWriter {
  readonly bytes: number[] = [];
  #acc = 0;
  #have = 0;
  write(value: number, bits: number): void {
    this.#acc = (this.#acc << bits) | value;
    this.#have += bits;
    while (this.#have >= 8) {
      this.#have -= 8;
      this.bytes.push((this.#acc >>> this.#have) & 0xff);
    }
    this.#acc &= (1 << this.#have) - 1;
  }
  end(): Uint8Array {
    if (this.#have > 0) this.bytes.push((this.#acc << (8 - this.#have)) & 0xff);
    return Uint8Array.from(this.bytes);
  }
}

/**
 * LZW codes as pdf.js reads them (`/EarlyChange 1`): the width grows as the reader's table
 * does, which is one entry behind the writer's; a clear code before the table fills.
 */
class LzwCodes {
  readonly out = new BitWriter();
  #bits = 9;
  #next = 258;
  #first = true;
  emit(code: number): void {
    this.out.write(code, this.#bits);
    if (code === 256) {
      this.#bits = 9;
      this.#next = 258;
      this.#first = true;
      return;
    }
    if (!this.#first) {
      this.#next++;
      const n = this.#next + 1;
      if ((n & (n - 1)) === 0) this.#bits = Math.min(Math.log2(n) + 1, 12);
    }
    this.#first = false;
  }
}

/** `input` LZW-encoded for `/LZWDecode`. */
export function lzwEncode(input: Uint8Array): Uint8Array {
  const codes = new LzwCodes();
  let table = new Map<string, number>();
  let next = 258;
  codes.emit(256);
  let w = "";
  for (const c of input) {
    const wc = w + String.fromCharCode(c);
    if (w === "" || table.has(wc)) {
      w = wc;
      continue;
    }
    codes.emit(w.length === 1 ? w.charCodeAt(0) : table.get(w)!);
    table.set(wc, next++);
    w = String.fromCharCode(c);
    if (next >= 4000) {
      codes.emit(w.charCodeAt(0));
      codes.emit(256);
      table = new Map();
      next = 258;
      w = "";
    }
  }
  if (w) codes.emit(w.length === 1 ? w.charCodeAt(0) : table.get(w)!);
  codes.emit(257);
  return codes.out.end();
}

/**
 * A one-page PDF whose content stream is LZW that decodes to about `inflatedMb` MB: each code
 * is the one the reader is about to add, so each sequence is one byte longer than the last
 * (~1,300 times its size).
 */
export function lzwBomb({ inflatedMb = 1024 }: { inflatedMb?: number } = {}): Uint8Array {
  const codes = new LzwCodes();
  let out = 0;
  while (out < inflatedMb * 2 ** 20) {
    codes.emit(256);
    codes.emit(32); // a space: the stream reads as white space
    for (let code = 258, length = 2; code < 4000; code++, length++) {
      codes.emit(code);
      out += length;
    }
  }
  codes.emit(257);
  return buildPdf(onePage(streamBody("/Filter /LZWDecode", codes.out.end())));
}

/** One page, and an outline (object 6) whose items are objects 7, 8, ... (`items`). */
function withOutline(first: number, items: string[]): Uint8Array {
  const objects = onePage(streamBody("", latin1(TEXT)), "/Outlines 6 0 R ");
  objects.push(`<< /Type /Outlines /First ${first} 0 R /Count ${items.length} >>`);
  objects.push(...items);
  return buildPdf(objects);
}

/**
 * A PDF whose outline is one item inside another, `depth` levels deep (the file has
 * 100,000), each a bookmark to the page.
 */
export function deepOutline({ depth = 100_000 }: { depth?: number } = {}): Uint8Array {
  const items: string[] = [];
  for (let i = 0; i < depth; i++) {
    const num = 7 + i;
    const parent = i === 0 ? 6 : num - 1;
    const child = i + 1 < depth ? `/First ${num + 1} 0 R /Last ${num + 1} 0 R /Count 1 ` : "";
    items.push(`<< /Title (Level ${i + 1}) /Parent ${parent} 0 R ${child}/Dest [3 0 R /Fit] >>`);
  }
  return withOutline(7, items);
}

/**
 * A PDF whose outline loops: through `/Next` (two items, each the other's next: a list with
 * no end) or through `/First` (an item that is its own child's child: a tree with no bottom).
 */
export function cyclicOutline({ via = "First" }: { via?: "First" | "Next" } = {}): Uint8Array {
  const items = via === "Next"
    ? [
      "<< /Title (One) /Parent 6 0 R /Next 8 0 R /Dest [3 0 R /Fit] >>",
      "<< /Title (Two) /Parent 6 0 R /Next 7 0 R /Prev 7 0 R /Dest [3 0 R /Fit] >>",
    ]
    : [
      "<< /Title (Parent) /Parent 6 0 R /First 8 0 R /Last 8 0 R /Count 1 /Dest [3 0 R /Fit] >>",
      "<< /Title (Child) /Parent 7 0 R /First 7 0 R /Last 7 0 R /Count 1 /Dest [3 0 R /Fit] >>",
    ];
  return withOutline(7, items);
}

/** A PDF with an array nested `depth` deep in its catalog (pdf.js reads arrays recursively). */
export function deepArray({ depth = 100_000 }: { depth?: number } = {}): Uint8Array {
  return buildPdf(
    onePage(streamBody("", latin1(TEXT)), `/Deep ${"[".repeat(depth)}${"]".repeat(depth)} `),
  );
}

/** A PDF whose page tree loops: the root's second kid is a node whose kid is the root. */
export function pageTreeLoop(): Uint8Array {
  const objects = onePage(streamBody("", latin1(TEXT)));
  objects[1] = "<< /Type /Pages /Kids [3 0 R 6 0 R] /Count 2 >>";
  objects.push("<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>");
  return buildPdf(objects);
}

/**
 * A PDF with objects that refer to themselves: the content stream's `/Length` is the stream
 * itself, and the page's `/Resources` is a dictionary whose `/Self` is that dictionary.
 */
export function selfReferencing(): Uint8Array {
  const objects = onePage([
    "<< /Length 4 0 R >>\nstream\n",
    latin1(TEXT),
    "\nendstream",
  ]);
  objects[2] = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R " +
    "/Resources 6 0 R >>";
  objects.push("<< /Self 6 0 R /Font << /F1 5 0 R >> >>");
  return buildPdf(objects);
}
