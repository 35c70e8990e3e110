/**
 * The check an untrusted PDF passes before anything reads it for real (the fast path or
 * pdf.js, which inflates streams and follows references without bounds, and recurses): a
 * budget for what its streams decompress to, and bounds on how deep and cyclic its structures
 * are. A file over them throws {@link TooComplex}, in seconds and in bounded memory: the
 * streams are inflated only to count their bytes, in 64 KB pieces.
 *
 * The file is read as pdf.js reads a damaged one: every `n g obj` in the bytes (and in its
 * object streams) is an object, whatever the cross-reference table says, so a table pointing
 * elsewhere hides nothing. What is checked:
 *
 * - Streams a text reader decodes (all but images and attachments, see {@link isImage}): what
 *   each inflates to,
 *   summed over the file, at most `maxInflateBytes`; a stream that inflates past 1 MB, at most
 *   `maxInflateRatio` times its encoded size. A chain of filters is decoded stage by stage
 *   within the same budget; a filter meant for images (DCT, JPX, JBIG2, CCITT) on such a stream
 *   is refused, as no honest file puts one there and pdf.js would decode it without limit.
 * - `/First` (an outline item's children) and `/Kids` (page, name and field trees): no path
 *   through them longer than `maxDepth`, counted over every object that could be meant (so a
 *   loop, which would be endless, is refused too). `/Next` loops end where they repeat, as both
 *   readers already stop there.
 * - Arrays and dictionaries nested at most {@link MAX_NESTING} deep.
 * - Encryption: an encrypted file's streams cannot be checked without its key, so it is refused
 *   (`encrypted: true` in the result, for the caller to name).
 */
import { inflateSync } from "node:zlib";
import { Lexer, PdfName, PdfOp, PdfRef, type PdfValue, TooComplex } from "./pdf_objects.ts";

export { TooComplex };

/** Bounds an untrusted PDF must keep (see the module doc). */
export interface PdfLimits {
  /** Bytes all the streams of a file may decompress to, together. @default 256 MiB */
  maxInflateBytes?: number;
  /** Largest decompressed:compressed ratio of a stream that decompresses past 1 MiB. @default 200 */
  maxInflateRatio?: number;
  /** Longest path through `/First` (outline levels) or `/Kids` (tree levels). @default 64 */
  maxDepth?: number;
}

export const DEFAULT_PDF_LIMITS: Required<PdfLimits> = {
  maxInflateBytes: 256 << 20,
  maxInflateRatio: 200,
  maxDepth: 64,
};

/** Streams up to this size out are not held to the ratio (small streams compress well). */
const RATIO_FLOOR = 1 << 20;
/** Streams are counted with zlib up to this size out, then in pieces (pako) past it. */
const WHOLE_INFLATE = 4 << 20;
const PIECE = 64 << 10;
/** Input inflated at once: up to ~8 MB out, tens of milliseconds. */
const INPUT_PIECE = 8 << 10;
/** The longest the check runs without giving way to other work on its thread. */
const SLICE_MS = 50;

/** What the check saw. */
export interface PreflightResult {
  /** Bytes the checked streams decompress to, together. */
  inflatedBytes: number;
  /** The file is encrypted: its streams could not be checked. */
  encrypted: boolean;
}

/** A stream's place in the file and its dictionary. */
interface StreamAt {
  num: number;
  dict: Map<string, PdfValue>;
  start: number;
  /** Where its data ends at the latest (the further of `/Length` and the first `endstream`). */
  end: number;
}

/**
 * Checks `bytes` against `limits`; throws {@link TooComplex} when they are broken. The caller
 * refuses an `encrypted` file (see the module doc).
 */
export async function preflight(
  bytes: Uint8Array,
  limits: PdfLimits = {},
): Promise<PreflightResult> {
  const { maxInflateBytes, maxInflateRatio, maxDepth } = { ...DEFAULT_PDF_LIMITS, ...limits };
  const tick = slices();
  const objects = new Map<number, PdfValue[]>();
  const streams: StreamAt[] = [];
  let encrypted = false;
  const add = (num: number, value: PdfValue) => {
    const list = objects.get(num);
    if (list) list.push(value);
    else objects.set(num, [value]);
  };
  const read = (lx: Lexer): PdfValue | undefined => {
    try {
      return lx.value(true);
    } catch (err) {
      if (err instanceof TooComplex) throw err;
      if (err instanceof RangeError) throw new TooComplex("an object nested too deep to read");
      return undefined; // not an object after all (bytes inside a stream, say)
    }
  };

  for (const at of keywords(bytes, "obj")) {
    await tick();
    const num = objectNumber(bytes, at);
    if (num === null) continue;
    const lx = new Lexer(bytes, at + 3);
    const value = read(lx);
    if (value === undefined) continue;
    add(num, value);
    if (!(value instanceof Map)) continue;
    if (value.get("Type") === PdfName.of("XRef") && value.has("Encrypt")) encrypted = true;
    const save = lx.pos;
    let t;
    try {
      t = lx.next();
    } catch {
      t = null;
    }
    if (!(t instanceof PdfOp && t.op === "stream")) {
      lx.pos = save;
      continue;
    }
    let start = lx.pos;
    if (bytes[start] === 13) start++;
    if (bytes[start] === 10) start++;
    streams.push({ num, dict: value, start, end: endOfStream(bytes, start) });
  }
  for (const at of keywords(bytes, "trailer")) {
    const trailer = read(new Lexer(bytes, at + 7));
    if (trailer instanceof Map && trailer.has("Encrypt")) encrypted = true;
  }
  if (encrypted) return { inflatedBytes: 0, encrypted };

  const resolve = (v: PdfValue | undefined): PdfValue | undefined => {
    if (!(v instanceof PdfRef)) return v;
    const list = objects.get(v.num);
    return list?.[list.length - 1];
  };
  // A `/Length` may name another object: the longest any of its objects gives counts.
  for (const s of streams) {
    const length = s.dict.get("Length");
    const values = length instanceof PdfRef ? objects.get(length.num) ?? [] : [length];
    for (const v of values) {
      if (typeof v === "number" && v >= 0 && s.start + v <= bytes.length) {
        s.end = Math.max(s.end, s.start + v);
      }
    }
  }

  const decoded = decodedByText(objects);
  let total = 0;
  const budget: Budget = {
    left: () => maxInflateBytes - total,
    spend: (n) => {
      total += n;
      if (total > maxInflateBytes) {
        throw new TooComplex(`its streams decompress to more than ${maxInflateBytes} bytes`);
      }
    },
  };
  // Object streams first: the objects in them are part of the structure checked below.
  const order = [...streams].sort((a, b) => Number(isObjStm(b)) - Number(isObjStm(a)));
  for (const s of order) {
    await tick();
    if (isImage(s.dict, resolve) && !decoded.has(s.num)) continue;
    const raw = bytes.subarray(s.start, s.end);
    const filters = filtersOf(s.dict, resolve);
    const keep = isObjStm(s);
    const allowance = Math.min(
      budget.left(),
      Math.max(RATIO_FLOOR, maxInflateRatio * Math.max(1, raw.length)),
    );
    const out = await decodeStream(raw, filters, allowance, budget, keep, tick);
    if (out.size > allowance) {
      throw allowance < budget.left()
        ? new TooComplex(
          `a stream of ${raw.length} bytes decompresses more than ${maxInflateRatio}:1`,
        )
        : new TooComplex(`its streams decompress to more than ${maxInflateBytes} bytes`);
    }
    if (keep && out.bytes) {
      for (const [num, value] of objectStream(out.bytes, s.dict, read)) add(num, value);
    }
  }
  await checkDepth(objects, maxDepth, tick);
  return { inflatedBytes: total, encrypted };
}

/** Yields to the event loop when the current slice of work has run its time. */
type Tick = () => Promise<void> | void;

/**
 * Slices of at most `ms`: where there is no worker (the edge), a hostile file's check shares
 * the thread with every request, so it gives way between slices instead of holding it.
 */
function slices(ms = SLICE_MS): Tick {
  let since = performance.now();
  return () => {
    if (performance.now() - since < ms) return;
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        since = performance.now();
        resolve();
      }, 0)
    );
  };
}

interface Budget {
  left(): number;
  /** Counts `n` bytes out; throws once the file's total is over. */
  spend(n: number): void;
}

const isObjStm = (s: StreamAt) => s.dict.get("Type") === PdfName.of("ObjStm");

/**
 * An image or an attached file: a text reader never decodes it (pdf.js's text content skips
 * image XObjects, and attachments are not text), unless the same object is also a page's
 * contents or a font's data ({@link decodedByText}), whatever it says it is.
 */
function isImage(
  dict: Map<string, PdfValue>,
  resolve: (v: PdfValue | undefined) => PdfValue | undefined,
): boolean {
  if (resolve(dict.get("Subtype")) === PdfName.of("Image")) return true;
  if (resolve(dict.get("Type")) === PdfName.of("EmbeddedFile")) return true;
  return typeof resolve(dict.get("Width")) === "number" &&
    typeof resolve(dict.get("Height")) === "number" && !dict.has("Type");
}

/** Keys whose streams text extraction decodes whatever the stream says it is. */
const TEXT_KEYS = ["Contents", "FontFile", "FontFile2", "FontFile3", "ToUnicode", "Encoding"];

/** Objects referred to as page contents, font data or CMaps (directly, or in an array). */
function decodedByText(objects: Map<number, PdfValue[]>): Set<number> {
  const out = new Set<number>();
  const note = (v: PdfValue | undefined) => {
    if (v instanceof PdfRef) out.add(v.num);
    else if (Array.isArray(v)) { for (const x of v) if (x instanceof PdfRef) out.add(x.num); }
  };
  for (const list of objects.values()) {
    for (const value of list) {
      if (!(value instanceof Map)) continue;
      for (const key of TEXT_KEYS) note(value.get(key));
      const procs = value.get("CharProcs");
      if (procs instanceof Map) { for (const v of procs.values()) note(v); }
    }
  }
  // An array of contents may itself be an object: its members count too.
  for (const num of [...out]) {
    for (const v of objects.get(num) ?? []) if (Array.isArray(v)) note(v);
  }
  return out;
}

/** A stage's output: its size (`limit + 1` when over), and its bytes when they were kept. */
type Decoded = { size: number; bytes?: Uint8Array };

type Filter = "flate" | "lzw" | "runlength" | "hex" | "a85";

const FILTERS: Record<string, Filter> = {
  FlateDecode: "flate",
  Fl: "flate",
  LZWDecode: "lzw",
  LZW: "lzw",
  RunLengthDecode: "runlength",
  RL: "runlength",
  ASCIIHexDecode: "hex",
  AHx: "hex",
  ASCII85Decode: "a85",
  A85: "a85",
};

/** A stream's filters, with the one parameter the check needs (LZW's `/EarlyChange`). */
function filtersOf(
  dict: Map<string, PdfValue>,
  resolve: (v: PdfValue | undefined) => PdfValue | undefined,
): { filter: Filter; earlyChange: number }[] {
  const f = resolve(dict.get("Filter") ?? dict.get("F"));
  const list = f === undefined || f === null ? [] : Array.isArray(f) ? f.map(resolve) : [f];
  const p = resolve(dict.get("DecodeParms") ?? dict.get("DP"));
  const parms = Array.isArray(p) ? p.map(resolve) : [p];
  return list.map((x, i) => {
    const name = x instanceof PdfName ? x.name : "?";
    const filter = FILTERS[name];
    if (!filter) {
      throw new TooComplex(`a content or font stream with the filter ${name} cannot be checked`);
    }
    const parm = parms[i];
    const early = parm instanceof Map ? resolve(parm.get("EarlyChange")) : undefined;
    return { filter, earlyChange: typeof early === "number" ? early : 1 };
  });
}

/**
 * Decodes `raw` through `filters`, counting each stage's output against `budget`; stops once a
 * stage gives more than `allowance`. Only a stage another follows (or `keep`) holds its bytes.
 */
async function decodeStream(
  raw: Uint8Array,
  filters: { filter: Filter; earlyChange: number }[],
  allowance: number,
  budget: Budget,
  keep: boolean,
  tick: Tick,
): Promise<Decoded> {
  let data = raw;
  for (let i = 0; i < filters.length; i++) {
    const last = i === filters.length - 1;
    const { filter, earlyChange } = filters[i]!;
    if (filter === "hex" || filter === "a85") {
      data = filter === "hex" ? asciiHex(data) : ascii85(data); // never longer than their input
      continue;
    }
    const hold = !last || keep;
    const out = filter === "flate"
      ? await inflate(data, allowance, hold, tick)
      : filter === "runlength"
      ? runLength(data, allowance, hold)
      : lzw(data, allowance, hold, earlyChange);
    budget.spend(Math.min(out.size, allowance + 1));
    if (out.size > allowance || !out.bytes) return out;
    data = out.bytes;
  }
  return { size: data.length, bytes: data };
}

/** Inflates `data`, or counts what it inflates to; past `limit` it stops (size `limit + 1`). */
async function inflate(
  data: Uint8Array,
  limit: number,
  hold: boolean,
  tick: Tick,
): Promise<Decoded> {
  try {
    const out = inflateSync(data, { maxOutputLength: Math.min(limit, WHOLE_INFLATE) });
    return { size: out.length, ...(hold ? { bytes: new Uint8Array(out) } : {}) };
  } catch {
    // Larger, or damaged: counted in pieces, to the limit or to where it breaks (as pdf.js
    // reads a damaged stream: up to the damage).
  }
  let size = 0;
  const pieces: Uint8Array[] = [];
  // Loaded with the first such stream, not with the app.
  const pako = (await import("pako")).default;
  const inflater = new pako.Inflate({ chunkSize: PIECE });
  inflater.onData = (piece: Uint8Array) => {
    size += piece.length;
    if (size > limit) throw new Over();
    if (hold) pieces.push(piece);
  };
  try {
    // Input a piece at a time (at most ~1,000 times its size out each), yielding between.
    for (let at = 0; at < data.length && !inflater.ended; at += INPUT_PIECE) {
      inflater.push(data.subarray(at, at + INPUT_PIECE), false);
      await tick();
    }
    if (!inflater.ended) inflater.push(new Uint8Array(0), true);
  } catch (err) {
    if (!(err instanceof Over)) throw err;
    return { size: limit + 1 };
  }
  return { size, ...(hold ? { bytes: concat(pieces, size) } : {}) };
}

class Over extends Error {}

function concat(pieces: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** pdf.js's RunLengthDecode, or its output size. */
function runLength(
  data: Uint8Array,
  limit: number,
  hold: boolean,
): Decoded {
  let size = 0;
  for (let i = 0; i < data.length;) {
    const n = data[i]!;
    if (n === 128) break;
    size += n < 128 ? n + 1 : 257 - n;
    i += n < 128 ? n + 2 : 2;
    if (size > limit) return { size: limit + 1 };
  }
  if (!hold) return { size };
  const out = new Uint8Array(size);
  let at = 0;
  for (let i = 0; i < data.length && at < size;) {
    const n = data[i]!;
    if (n < 128) {
      out.set(data.subarray(i + 1, i + 2 + n), at);
      at += n + 1;
      i += n + 2;
    } else {
      out.fill(data[i + 1] ?? 0, at, at + 257 - n);
      at += 257 - n;
      i += 2;
    }
  }
  return { size, bytes: out };
}

/**
 * The size of pdf.js's LZWDecode output, computed as pdf.js decodes (codes it would not expect
 * included: each past the table adds one to the last sequence, which makes a few KB of codes
 * give gigabytes). Never kept.
 */
function lzw(data: Uint8Array, limit: number, hold: boolean, earlyChange: number): Decoded {
  if (hold) throw new TooComplex("an LZW stream inside a chain of filters cannot be checked");
  const lengths = new Uint16Array(4097); // pdf.js's table, wrapping as its lengths do
  lengths.fill(1, 0, 256);
  let next = 258;
  let bits = 9;
  let prev = 0;
  let sequence = 0;
  let size = 0;
  let acc = 0;
  let have = 0;
  let i = 0;
  while (true) {
    while (have < bits) {
      if (i >= data.length) return { size };
      acc = ((acc << 8) | data[i++]!) & 0xfffff;
      have += 8;
    }
    have -= bits;
    const code = (acc >>> have) & ((1 << bits) - 1);
    const hadSequence = sequence > 0;
    if (code < 256) sequence = 1;
    else if (code >= 258) sequence = code < next ? lengths[code]! : sequence + 1;
    else if (code === 256) {
      bits = 9;
      next = 258;
      sequence = 0;
      continue;
    } else return { size };
    if (hadSequence) {
      if (next < lengths.length) lengths[next] = lengths[prev]! + 1;
      next++;
      const n = next + earlyChange;
      if ((n & (n - 1)) === 0) bits = Math.min(Math.log2(n) + 1, 12) | 0;
    }
    prev = code;
    size += sequence;
    if (size > limit) return { size: limit + 1 };
  }
}

function asciiHex(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 2));
  let n = 0;
  let hi = -1;
  for (const c of data) {
    if (c === 62) break;
    const v = c >= 48 && c <= 57 ? c - 48 : (c | 32) >= 97 && (c | 32) <= 102 ? (c | 32) - 87 : -1;
    if (v < 0) continue;
    if (hi < 0) hi = v;
    else {
      out[n++] = hi * 16 + v;
      hi = -1;
    }
  }
  if (hi >= 0) out[n++] = hi * 16;
  return out.subarray(0, n);
}

function ascii85(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length * 4 + 4); // at most 4 bytes a character ("z")
  let n = 0;
  const group: number[] = [];
  const flush = (count: number) => {
    while (group.length < 5) group.push(84);
    let v = 0;
    for (const d of group) v = v * 85 + d;
    for (let k = 0; k < count; k++) out[n++] = (v >>> (24 - 8 * k)) & 0xff;
    group.length = 0;
  };
  for (let i = 0; i < data.length; i++) {
    const c = data[i]!;
    if (c === 126) break; // ~>
    if (c === 122 && group.length === 0) {
      n += 4; // "z": four zero bytes
      continue;
    }
    if (c < 33 || c > 117) continue;
    group.push(c - 33);
    if (group.length === 5) flush(4);
  }
  if (group.length > 1) flush(group.length - 1);
  return out.subarray(0, n);
}

/** The objects of an object stream (pdf.js reads them by the offsets in its header). */
function objectStream(
  data: Uint8Array,
  dict: Map<string, PdfValue>,
  read: (lx: Lexer) => PdfValue | undefined,
): [number, PdfValue][] {
  const n = dict.get("N");
  const first = dict.get("First");
  if (typeof n !== "number" || typeof first !== "number") return [];
  const lx = new Lexer(data);
  const heads: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const num = read(lx);
    const off = read(lx);
    if (typeof num !== "number" || typeof off !== "number") break;
    heads.push([num, off]);
  }
  const out: [number, PdfValue][] = [];
  for (const [num, off] of heads) {
    const value = read(new Lexer(data, first + off));
    if (value !== undefined) out.push([num, value]);
  }
  return out;
}

/**
 * No path through `/First` and `/Kids` longer than `maxDepth` (`/Next` adds no depth), over
 * every object a reference could mean. Levels only rise, each at most `maxDepth` times, so this
 * ends, and a loop through `/First` or `/Kids` rises past the bound.
 */
async function checkDepth(
  objects: Map<number, PdfValue[]>,
  maxDepth: number,
  tick: Tick,
): Promise<void> {
  const edges = new Map<number, [number, number][]>();
  for (const [num, list] of objects) {
    const out: [number, number][] = [];
    for (const value of list) {
      if (!(value instanceof Map)) continue;
      const first = value.get("First");
      if (first instanceof PdfRef) out.push([first.num, 1]);
      const next = value.get("Next");
      if (next instanceof PdfRef) out.push([next.num, 0]);
      let kids = value.get("Kids");
      if (kids instanceof PdfRef) {
        const list = objects.get(kids.num) ?? [];
        kids = list.find(Array.isArray);
      }
      if (Array.isArray(kids)) {
        for (const kid of kids) if (kid instanceof PdfRef) out.push([kid.num, 1]);
      }
    }
    if (out.length) edges.set(num, out);
  }
  const level = new Map<number, number>();
  const work = [...edges.keys()];
  while (work.length) {
    await tick();
    const u = work.pop()!;
    const from = level.get(u) ?? 0;
    for (const [v, w] of edges.get(u) ?? []) {
      const to = from + w;
      if (to <= (level.get(v) ?? 0)) continue;
      if (to > maxDepth) {
        throw new TooComplex(
          `its outline or page tree is over ${maxDepth} levels deep, or loops`,
        );
      }
      level.set(v, to);
      if (edges.has(v)) work.push(v);
    }
  }
}

/** Where `word` occurs as a keyword (not inside a longer word). */
function* keywords(bytes: Uint8Array, word: string): Generator<number> {
  const first = word.charCodeAt(0);
  const len = word.length;
  for (let i = bytes.indexOf(first); i >= 0; i = bytes.indexOf(first, i + 1)) {
    let k = 1;
    while (k < len && bytes[i + k] === word.charCodeAt(k)) k++;
    if (k < len) continue;
    if (i > 0 && isRegular(bytes[i - 1]!)) continue;
    const after = bytes[i + len];
    if (after !== undefined && isRegular(after)) continue;
    yield i;
  }
}

const isRegular = (c: number) => !(c <= 32 || "()<>[]{}/%".includes(String.fromCharCode(c)));

/** The object number of `n g obj` ending at `objAt`, or null when it is not that. */
function objectNumber(bytes: Uint8Array, objAt: number): number | null {
  let i = objAt - 1;
  const spaces = () => {
    const from = i;
    while (i >= 0 && bytes[i]! <= 32) i--;
    return i < from;
  };
  const digits = () => {
    const end = i;
    while (i >= 0 && bytes[i]! >= 48 && bytes[i]! <= 57) i--;
    return end > i ? Number(new TextDecoder().decode(bytes.subarray(i + 1, end + 1))) : null;
  };
  if (!spaces() || digits() === null || !spaces()) return null;
  const num = digits();
  if (num === null || (i >= 0 && isRegular(bytes[i]!))) return null;
  return num;
}

/** Where a stream's data ends at the latest: its first `endstream`, or the file's end. */
function endOfStream(bytes: Uint8Array, start: number): number {
  for (let i = bytes.indexOf(101, start); i >= 0; i = bytes.indexOf(101, i + 1)) {
    if (
      bytes[i + 1] === 110 && bytes[i + 2] === 100 && bytes[i + 3] === 115 &&
      bytes[i + 4] === 116 && bytes[i + 5] === 114 && bytes[i + 6] === 101 &&
      bytes[i + 7] === 97 && bytes[i + 8] === 109
    ) return i;
  }
  return bytes.length;
}
