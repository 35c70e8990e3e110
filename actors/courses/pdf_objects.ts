/**
 * A small PDF object reader for the fast text path ({@link ./pdf_text.ts}): the cross-reference
 * table or stream (with `/Prev` updates and object streams), indirect objects, Flate streams
 * (with PNG predictors) and the page tree with inherited attributes.
 *
 * It reads well-formed files only. Anything else (encryption, a filter other than Flate, an
 * offset that does not land on its object, a stream whose length is wrong, a page count that
 * disagrees with the tree) throws {@link Unsupported}, and the caller reads the file with
 * pdf.js instead, which repairs what can be repaired and reports what cannot.
 */
import { inflateSync } from "node:zlib";

/** The largest decoded stream the fast path reads (a content stream is rarely over 1 MB). */
export const MAX_STREAM_BYTES = 64 << 20;

/** Arrays and dictionaries nested deeper than this are hostile, not a layout (see {@link TooComplex}). */
export const MAX_NESTING = 256;

/**
 * A structure too deep, cyclic or large to read safely (a decompression bomb, an outline
 * nested thousands deep): the file is refused, not handed to pdf.js, whose recursion and
 * inflation have no bounds.
 */
export class TooComplex extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TooComplex";
  }
}

/** The fast path does not handle this file or page: read it with pdf.js. */
export class Unsupported extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Unsupported";
  }
}

export class PdfName {
  static readonly #names = new Map<string, PdfName>();
  private constructor(readonly name: string) {}
  /** The one instance of a name (names compare by identity). */
  static of(name: string): PdfName {
    let n = PdfName.#names.get(name);
    if (!n) PdfName.#names.set(name, n = new PdfName(name));
    return n;
  }
}

export class PdfRef {
  constructor(readonly num: number, readonly gen: number) {}
}

/** An operator of a content stream (`Tj`, `BT`, ...). */
export class PdfOp {
  constructor(readonly op: string) {}
}

export class PdfStream {
  constructor(readonly dict: PdfDict, readonly raw: Uint8Array) {}
}

export type PdfDict = Map<string, PdfValue>;
/** Strings are byte strings (one char per byte, as pdf.js keeps them). */
export type PdfValue =
  | number
  | string
  | boolean
  | null
  | PdfName
  | PdfRef
  | PdfValue[]
  | PdfDict
  | PdfStream;

const WS = new Uint8Array(256);
for (const c of [0, 9, 10, 12, 13, 32]) WS[c] = 1;
const DELIM = new Uint8Array(256);
for (const c of "()<>[]{}/%") DELIM[c.charCodeAt(0)] = 1;
const isRegular = (c: number) => !WS[c] && !DELIM[c];

const hexValue = (c: number) =>
  c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;

const OPS_BY_KEY = new Map<number, PdfOp>();
const END = Symbol("end");
const ARRAY_END = Symbol("]");
const DICT_END = Symbol(">>");
type Token = PdfValue | PdfOp | typeof END | typeof ARRAY_END | typeof DICT_END;

/** Tokens and objects of PDF syntax over a byte array. */
export class Lexer {
  pos: number;
  /** Arrays and dictionaries open around the current token. */
  #nesting = 0;
  constructor(readonly bytes: Uint8Array, pos = 0, readonly end = bytes.length) {
    this.pos = pos;
  }

  skipSpace(): void {
    const b = this.bytes;
    while (this.pos < this.end) {
      const c = b[this.pos]!;
      if (WS[c]) this.pos++;
      else if (c === 37) { // % comment to the end of the line
        while (this.pos < this.end && b[this.pos] !== 10 && b[this.pos] !== 13) this.pos++;
      } else break;
    }
  }

  /**
   * The next object; `refs` reads `n g R` as a reference (not in content streams, where
   * bare keywords are operators).
   */
  next(refs = false): Token {
    this.skipSpace();
    if (this.pos >= this.end) return END;
    const b = this.bytes;
    const c = b[this.pos]!;
    if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46) {
      const n = this.#number();
      if (refs && Number.isInteger(n) && n >= 0) {
        const save = this.pos;
        this.skipSpace();
        const d = b[this.pos];
        if (d !== undefined && d >= 48 && d <= 57) {
          const gen = this.#number();
          this.skipSpace();
          if (
            Number.isInteger(gen) && b[this.pos] === 82 &&
            (this.pos + 1 >= this.end || !isRegular(b[this.pos + 1]!))
          ) {
            this.pos++;
            return new PdfRef(n, gen);
          }
        }
        this.pos = save;
      }
      return n;
    }
    switch (c) {
      case 47: { // /Name
        let i = ++this.pos;
        while (i < this.end && isRegular(b[i]!)) i++;
        let s = latin1(b, this.pos, i);
        if (s.includes("#")) {
          s = s.replace(/#([0-9a-fA-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
        }
        this.pos = i;
        return PdfName.of(s);
      }
      case 40:
        return this.#literal();
      case 60:
        if (b[this.pos + 1] === 60) {
          this.pos += 2;
          this.#enter();
          try {
            return this.#dict(refs);
          } finally {
            this.#nesting--;
          }
        }
        return this.#hex();
      case 62:
        if (b[this.pos + 1] === 62) {
          this.pos += 2;
          return DICT_END;
        }
        throw new Unsupported("stray >");
      case 91: {
        this.pos++;
        this.#enter();
        try {
          const arr: PdfValue[] = [];
          while (true) {
            const t = this.next(refs);
            if (t === ARRAY_END) return arr;
            if (t === END || t === DICT_END || t instanceof PdfOp) {
              throw new Unsupported("bad array");
            }
            arr.push(t);
          }
        } finally {
          this.#nesting--;
        }
      }
      case 93:
        this.pos++;
        return ARRAY_END;
      case 123:
      case 125:
        this.pos++;
        return new PdfOp(String.fromCharCode(c));
    }
    let i = this.pos;
    let key = 0;
    while (i < this.end && isRegular(b[i]!)) key = key * 256 + b[i++]!;
    if (i === this.pos) throw new Unsupported(`unexpected byte ${c}`);
    if (i - this.pos <= 3) { // operators are short: one instance each
      let op = OPS_BY_KEY.get(key);
      if (!op) OPS_BY_KEY.set(key, op = new PdfOp(latin1(b, this.pos, i)));
      this.pos = i;
      return op;
    }
    const word = latin1(b, this.pos, i);
    this.pos = i;
    if (word === "true") return true;
    if (word === "false") return false;
    if (word === "null") return null;
    return new PdfOp(word);
  }

  /** One level deeper into an array or dictionary; the reading is recursive, so bounded. */
  #enter(): void {
    if (++this.#nesting > MAX_NESTING) {
      this.#nesting--; // the levels outside undo theirs as the error passes
      throw new TooComplex(`arrays or dictionaries nested over ${MAX_NESTING} deep`);
    }
  }

  /** The next object, which must be a value (not an operator or a closing bracket). */
  value(refs = true): PdfValue {
    const t = this.next(refs);
    if (t === END || t === ARRAY_END || t === DICT_END || t instanceof PdfOp) {
      throw new Unsupported("expected a value");
    }
    return t;
  }

  /** Skips whitespace and checks that `word` comes next. */
  expect(word: string): void {
    const t = this.next();
    if (!(t instanceof PdfOp) || t.op !== word) throw new Unsupported(`expected ${word}`);
  }

  /** A number, computed the way pdf.js's lexer computes it (digits, then one division). */
  #number(): number {
    const b = this.bytes;
    let i = this.pos;
    let sign = 1;
    if (b[i] === 45) {
      sign = -1;
      i++;
    } else if (b[i] === 43) i++;
    let divideBy = 0;
    if (b[i] === 46) {
      divideBy = 10;
      i++;
    }
    let c = b[i];
    if (c === undefined || c < 48 || c > 57) {
      this.pos = i;
      // "-" or "." alone: pdf.js reads 0.
      if (c === undefined || !isRegular(c)) return 0;
      throw new Unsupported("bad number");
    }
    let value = c - 48;
    while (++i < this.end) {
      c = b[i]!;
      if (c >= 48 && c <= 57) {
        if (divideBy !== 0) divideBy *= 10;
        value = value * 10 + c - 48;
      } else if (c === 46 && divideBy === 0) divideBy = 1;
      else break;
    }
    this.pos = i;
    if (i < this.end && isRegular(b[i]!)) throw new Unsupported("bad number");
    if (divideBy !== 0) value /= divideBy;
    return sign * value;
  }

  #literal(): string {
    const b = this.bytes;
    let i = this.pos + 1;
    let depth = 1;
    let out = "";
    let run = i;
    while (true) {
      if (i >= this.end) throw new Unsupported("unterminated string");
      const c = b[i]!;
      if (c === 41 && --depth === 0) break;
      if (c === 40) depth++;
      if (c === 92 || c === 13) {
        out += latin1(b, run, i);
        if (c === 13) { // an EOL inside a string reads as \n
          i += b[i + 1] === 10 ? 2 : 1;
          out += "\n";
          run = i;
          continue;
        }
        const e = b[++i];
        i++;
        switch (e) {
          case 110:
            out += "\n";
            break;
          case 114:
            out += "\r";
            break;
          case 116:
            out += "\t";
            break;
          case 98:
            out += "\b";
            break;
          case 102:
            out += "\f";
            break;
          case 13:
            if (b[i] === 10) i++;
            break;
          case 10:
            break;
          default:
            if (e !== undefined && e >= 48 && e <= 55) {
              let v = e - 48;
              for (let k = 0; k < 2 && b[i]! >= 48 && b[i]! <= 55; k++) v = v * 8 + b[i++]! - 48;
              out += String.fromCharCode(v & 0xff);
            } else if (e !== undefined) out += String.fromCharCode(e);
        }
        run = i;
        continue;
      }
      i++;
    }
    out += latin1(b, run, i);
    this.pos = i + 1;
    return out;
  }

  #hex(): string {
    const b = this.bytes;
    let i = this.pos + 1;
    let out = "";
    let hi = -1;
    while (true) {
      if (i >= this.end) throw new Unsupported("unterminated hex string");
      const c = b[i++]!;
      if (c === 62) break;
      if (WS[c]) continue;
      const v = hexValue(c);
      if (v < 0) throw new Unsupported("bad hex string");
      if (hi < 0) hi = v;
      else {
        out += String.fromCharCode(hi * 16 + v);
        hi = -1;
      }
    }
    if (hi >= 0) out += String.fromCharCode(hi * 16);
    this.pos = i;
    return out;
  }

  #dict(refs: boolean): PdfDict {
    const dict: PdfDict = new Map();
    while (true) {
      const k = this.next(refs);
      if (k === DICT_END) return dict;
      if (!(k instanceof PdfName)) throw new Unsupported("bad dictionary key");
      const v = this.next(refs);
      if (v === END || v === ARRAY_END || v === DICT_END || v instanceof PdfOp) {
        throw new Unsupported("bad dictionary value");
      }
      dict.set(k.name, v);
    }
  }
}

function latin1(b: Uint8Array, from: number, to: number): string {
  let s = "";
  for (let i = from; i < to; i += 8192) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(to, i + 8192)) as never);
  }
  return s;
}

type XrefEntry = { offset: number } | { stream: number; index: number };

/** The page attributes a text reader needs, inheritance resolved. */
export interface PdfPage {
  dict: PdfDict;
  resources: PdfDict;
  /** `[x0, y0, x1, y1]`: the crop box within the media box, as pdf.js computes its view. */
  view: [number, number, number, number];
}

/** A PDF's objects and pages; the constructor throws {@link Unsupported} for what it cannot read. */
export class PdfFile {
  readonly #xref = new Map<number, XrefEntry>();
  readonly #cache = new Map<number, PdfValue>();
  readonly #objStreams = new Map<number, { offsets: number[]; lexer: Lexer }>();
  /** Objects being read: one met again while it is read refers to itself (a `/Length` of its own). */
  readonly #reading = new Set<number>();
  readonly pages: PdfPage[] = [];
  /** The document catalog (the trailer's `/Root`). */
  readonly catalog: PdfDict;

  constructor(readonly bytes: Uint8Array) {
    const trailer = this.#readXref();
    if (trailer.has("Encrypt")) throw new Unsupported("encrypted");
    this.catalog = this.dict(trailer.get("Root"));
    const tree = this.dict(this.catalog.get("Pages"));
    this.#walk(tree, new Map(), new Set(), 0);
    const count = this.get(tree.get("Count"));
    if (count !== this.pages.length || count === 0) throw new Unsupported("page count");
  }

  /** Resolves a reference (other values pass through). */
  get(v: PdfValue | undefined): PdfValue | undefined {
    if (!(v instanceof PdfRef)) return v;
    if (this.#cache.has(v.num)) return this.#cache.get(v.num);
    if (this.#reading.has(v.num)) throw new Unsupported("circular reference");
    this.#reading.add(v.num);
    try {
      const obj = this.#fetch(v);
      this.#cache.set(v.num, obj);
      return obj;
    } finally {
      this.#reading.delete(v.num);
    }
  }

  /** A dictionary (a stream's dictionary too), or throws. */
  dict(v: PdfValue | undefined): PdfDict {
    const d = this.get(v);
    if (d instanceof Map) return d;
    if (d instanceof PdfStream) return d.dict;
    throw new Unsupported("expected a dictionary");
  }

  /** A dictionary, or undefined when absent or of another type. */
  optDict(v: PdfValue | undefined): PdfDict | undefined {
    const d = this.get(v);
    return d instanceof Map ? d : undefined;
  }

  /** The decoded bytes of a stream. */
  decode(stream: PdfStream): Uint8Array {
    let data = stream.raw;
    const filter = this.get(stream.dict.get("Filter"));
    const filters = filter === undefined || filter === null
      ? []
      : Array.isArray(filter)
      ? filter.map((f) => this.get(f))
      : [filter];
    const parms = this.get(stream.dict.get("DecodeParms"));
    const parmList = Array.isArray(parms) ? parms.map((p) => this.get(p)) : [parms];
    filters.forEach((f, i) => {
      if (!(f instanceof PdfName) || (f.name !== "FlateDecode" && f.name !== "Fl")) {
        throw new Unsupported(`filter ${f instanceof PdfName ? f.name : "?"}`);
      }
      try {
        // A bounded inflate: a small stream that inflates to gigabytes (a zip bomb) is
        // pdf.js's to deal with, not a reason to hold it all here.
        data = new Uint8Array(inflateSync(data, { maxOutputLength: MAX_STREAM_BYTES }));
      } catch (err) {
        throw new Unsupported(`inflate: ${(err as Error).message}`);
      }
      const p = parmList[i];
      if (p instanceof Map) data = unpredict(data, p, this);
    });
    return data;
  }

  #walk(node: PdfDict, inherited: Map<string, PdfValue>, seen: Set<PdfDict>, depth: number) {
    if (seen.has(node) || depth > 64) throw new Unsupported("page tree loop");
    seen.add(node);
    const attrs = new Map(inherited);
    for (const k of ["Resources", "MediaBox", "CropBox"]) {
      if (node.has(k)) attrs.set(k, node.get(k)!);
    }
    const type = this.get(node.get("Type"));
    const kids = this.get(node.get("Kids"));
    if (Array.isArray(kids) && (type === PdfName.of("Pages") || type === undefined)) {
      for (const kid of kids) this.#walk(this.dict(kid), attrs, seen, depth + 1);
      return;
    }
    if (type !== PdfName.of("Page")) throw new Unsupported("page tree node");
    const media = box(this, attrs.get("MediaBox")) ?? [0, 0, 612, 792];
    const crop = box(this, attrs.get("CropBox"));
    let view = media;
    if (crop && crop.some((v, i) => v !== media[i])) {
      const x0 = Math.max(crop[0], media[0]);
      const y0 = Math.max(crop[1], media[1]);
      const x1 = Math.min(crop[2], media[2]);
      const y1 = Math.min(crop[3], media[3]);
      if (x1 - x0 > 0 && y1 - y0 > 0) view = [x0, y0, x1, y1];
    }
    this.pages.push({
      dict: node,
      resources: this.optDict(attrs.get("Resources")) ?? new Map(),
      view,
    });
  }

  #readXref(): PdfDict {
    const b = this.bytes;
    const tail = latin1(b, Math.max(0, b.length - 1024), b.length);
    const at = tail.lastIndexOf("startxref");
    if (at < 0) throw new Unsupported("no startxref");
    const lx = new Lexer(b, Math.max(0, b.length - 1024) + at + 9);
    let offset = lx.value(false);
    let trailer: PdfDict | undefined;
    const seen = new Set<number>();
    while (typeof offset === "number") {
      if (seen.has(offset) || offset < 0 || offset >= b.length) throw new Unsupported("xref");
      seen.add(offset);
      const section = this.#section(offset);
      trailer ??= section;
      const stm = section.get("XRefStm");
      if (typeof stm === "number") this.#section(stm);
      offset = section.get("Prev") as number;
    }
    if (!trailer) throw new Unsupported("no trailer");
    return trailer;
  }

  /** Reads one xref section (table or stream) at `offset`; entries already known win. */
  #section(offset: number): PdfDict {
    const lx = new Lexer(this.bytes, offset);
    const first = lx.next();
    if (first instanceof PdfOp && first.op === "xref") {
      while (true) {
        const t = lx.next();
        if (t instanceof PdfOp && t.op === "trailer") break;
        const count = lx.value(false);
        if (typeof t !== "number" || typeof count !== "number") throw new Unsupported("xref");
        for (let i = 0; i < count; i++) {
          const off = lx.value(false);
          lx.value(false);
          const kind = lx.next();
          if (!(kind instanceof PdfOp) || typeof off !== "number") throw new Unsupported("xref");
          if (kind.op === "n" && !this.#xref.has(t + i) && t + i > 0) {
            this.#xref.set(t + i, { offset: off });
          } else if (kind.op !== "n" && kind.op !== "f") throw new Unsupported("xref");
        }
      }
      const trailer = lx.value();
      if (!(trailer instanceof Map)) throw new Unsupported("trailer");
      return trailer;
    }
    // An xref stream: "n g obj << /Type /XRef ... >> stream".
    lx.pos = offset;
    const stream = this.#objectAt(offset, null);
    if (!(stream instanceof PdfStream) || stream.dict.get("Type") !== PdfName.of("XRef")) {
      throw new Unsupported("xref stream");
    }
    const d = stream.dict;
    const w = d.get("W");
    const size = d.get("Size");
    if (!Array.isArray(w) || w.length < 3 || typeof size !== "number") {
      throw new Unsupported("xref stream");
    }
    const [w0, w1, w2] = w as number[];
    const index = (d.get("Index") as number[] | undefined) ?? [0, size];
    const data = this.decode(stream);
    const field = (at: number, n: number) => {
      let v = 0;
      for (let i = 0; i < n; i++) v = v * 256 + data[at + i]!;
      return v;
    };
    const rec = w0! + w1! + w2!;
    let at = 0;
    for (let s = 0; s + 1 < index.length; s += 2) {
      const start = index[s]!;
      const count = index[s + 1]!;
      for (let i = 0; i < count; i++, at += rec) {
        if (at + rec > data.length) throw new Unsupported("xref stream data");
        const type = w0 ? field(at, w0) : 1;
        const f1 = field(at + w0!, w1!);
        const f2 = field(at + w0! + w1!, w2!);
        const num = start + i;
        if (this.#xref.has(num) || num === 0) continue;
        if (type === 1) this.#xref.set(num, { offset: f1 });
        else if (type === 2) this.#xref.set(num, { stream: f1, index: f2 });
      }
    }
    return d;
  }

  #fetch(ref: PdfRef): PdfValue {
    const entry = this.#xref.get(ref.num);
    if (!entry) return null; // a missing object is null
    if ("offset" in entry) return this.#objectAt(entry.offset, ref);
    if (ref.gen !== 0) throw new Unsupported("generation");
    let os = this.#objStreams.get(entry.stream);
    if (!os) {
      const stream = this.get(new PdfRef(entry.stream, 0));
      if (!(stream instanceof PdfStream)) throw new Unsupported("object stream");
      const n = stream.dict.get("N");
      const first = stream.dict.get("First");
      if (typeof n !== "number" || typeof first !== "number") throw new Unsupported("ObjStm");
      const data = this.decode(stream);
      const lx = new Lexer(data);
      const offsets: number[] = [];
      for (let i = 0; i < n; i++) {
        const num = lx.value(false);
        const off = lx.value(false);
        if (typeof num !== "number" || typeof off !== "number") throw new Unsupported("ObjStm");
        offsets[i] = first + off;
      }
      os = { offsets, lexer: lx };
      this.#objStreams.set(entry.stream, os);
    }
    const off = os.offsets[entry.index];
    if (off === undefined) throw new Unsupported("object stream index");
    os.lexer.pos = off;
    return os.lexer.value(true);
  }

  #objectAt(offset: number, ref: PdfRef | null): PdfValue {
    const lx = new Lexer(this.bytes, offset);
    const num = lx.value(false);
    const gen = lx.value(false);
    lx.expect("obj");
    if (ref && (num !== ref.num || gen !== ref.gen)) throw new Unsupported("xref offset");
    const v = lx.value(true);
    const save = lx.pos;
    const t = lx.next();
    if (!(t instanceof PdfOp && t.op === "stream")) {
      lx.pos = save;
      return v;
    }
    if (!(v instanceof Map)) throw new Unsupported("stream without a dictionary");
    let start = lx.pos;
    if (this.bytes[start] === 13) start++;
    if (this.bytes[start] === 10) start++;
    const length = this.get(v.get("Length"));
    if (typeof length !== "number" || start + length > this.bytes.length) {
      throw new Unsupported("stream length");
    }
    const after = new Lexer(this.bytes, start + length);
    after.expect("endstream");
    return new PdfStream(v, this.bytes.subarray(start, start + length));
  }
}

function box(file: PdfFile, v: PdfValue | undefined): [number, number, number, number] | null {
  const a = file.get(v);
  if (!Array.isArray(a) || a.length !== 4) return null;
  const n = a.map((x) => file.get(x));
  if (!n.every((x) => typeof x === "number")) return null;
  const [x0, y0, x1, y1] = n as number[];
  const r: [number, number, number, number] = [
    Math.min(x0!, x1!),
    Math.min(y0!, y1!),
    Math.max(x0!, x1!),
    Math.max(y0!, y1!),
  ];
  return r[2] - r[0] > 0 && r[3] - r[1] > 0 ? r : null;
}

/** Undoes a PNG predictor (Predictor ≥ 10); other predictors are not handled. */
function unpredict(data: Uint8Array, parms: PdfDict, file: PdfFile): Uint8Array {
  const predictor = file.get(parms.get("Predictor")) ?? 1;
  if (predictor === 1) return data;
  if (typeof predictor !== "number" || predictor < 10) throw new Unsupported("predictor");
  const colors = (file.get(parms.get("Colors")) as number | undefined) ?? 1;
  const bpc = (file.get(parms.get("BitsPerComponent")) as number | undefined) ?? 8;
  const columns = (file.get(parms.get("Columns")) as number | undefined) ?? 1;
  const bpp = Math.max(1, Math.ceil((colors * bpc) / 8));
  const row = Math.ceil((colors * bpc * columns) / 8);
  const rows = Math.floor(data.length / (row + 1));
  const out = new Uint8Array(rows * row);
  for (let r = 0; r < rows; r++) {
    const type = data[r * (row + 1)]!;
    const src = r * (row + 1) + 1;
    const dst = r * row;
    for (let i = 0; i < row; i++) {
      const x = data[src + i]!;
      const left = i >= bpp ? out[dst + i - bpp]! : 0;
      const up = r > 0 ? out[dst - row + i]! : 0;
      const upLeft = r > 0 && i >= bpp ? out[dst - row + i - bpp]! : 0;
      let v: number;
      switch (type) {
        case 0:
          v = x;
          break;
        case 1:
          v = x + left;
          break;
        case 2:
          v = x + up;
          break;
        case 3:
          v = x + ((left + up) >> 1);
          break;
        case 4: {
          const p = left + up - upLeft;
          const pa = Math.abs(p - left), pb = Math.abs(p - up), pc = Math.abs(p - upLeft);
          v = x + (pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft);
          break;
        }
        default:
          throw new Unsupported("PNG filter type");
      }
      out[dst + i] = v & 0xff;
    }
  }
  return out;
}
