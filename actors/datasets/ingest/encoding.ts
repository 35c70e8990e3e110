/**
 * Text encodings of uploaded datasets: BOM detection, streaming decoding, and exact location of
 * invalid bytes.
 *
 * Supported: UTF-8 (with or without BOM), UTF-16LE / UTF-16BE (BOM expected, but the encoding
 * can also be declared), Latin-1 and Windows-1252. "latin1" here is ISO-8859-1 proper — every
 * byte maps to the code point of the same value — not WHATWG's "latin1" label, which is
 * windows-1252 (Latin-1 with printable characters such as € and ’ in 0x80–0x9F).
 */
import { Buffer } from "node:buffer";
import { EncodingError } from "./errors.ts";

/** An encoding the ingest library can read. */
export type Encoding = "utf-8" | "utf-16le" | "utf-16be" | "latin1" | "windows-1252";

/** Result of {@link detectEncoding}. */
export interface DetectedEncoding {
  /** The encoding named by the BOM, or the fallback when there is none. */
  encoding: Encoding;
  /** Length in bytes of the BOM found at the start (0 when none). */
  bomLength: number;
}

/**
 * Detects a byte-order mark at the start of a file. Give it at least the first 3 bytes (fewer
 * is fine for short files). Without a BOM, returns `fallback` (default UTF-8) with length 0.
 */
export function detectEncoding(
  firstBytes: Uint8Array,
  fallback: Encoding = "utf-8",
): DetectedEncoding {
  const [a, b, c] = firstBytes;
  if (a === 0xef && b === 0xbb && c === 0xbf) return { encoding: "utf-8", bomLength: 3 };
  if (a === 0xff && b === 0xfe) return { encoding: "utf-16le", bomLength: 2 };
  if (a === 0xfe && b === 0xff) return { encoding: "utf-16be", bomLength: 2 };
  return { encoding: fallback, bomLength: 0 };
}

/** Bytes of a file {@link sniffEncoding} looks at: the first megabyte. */
export const SNIFF_BYTES = 1 << 20;

/**
 * The encoding of a file without a declared one, from its first bytes (up to
 * {@link SNIFF_BYTES}; `complete`: they are the whole file): the encoding of a BOM; else
 * UTF-8 if they are valid UTF-8 (a sequence cut at the end of an incomplete sample is not
 * invalid); else Windows-1252, which reads every byte (Latin-1 text included) to a character
 * and never to U+FFFD.
 */
export function sniffEncoding(sample: Uint8Array, complete: boolean): Encoding {
  const bom = detectEncoding(sample);
  if (bom.bomLength > 0) return bom.encoding;
  const end = complete ? sample.length : sample.length - incompleteTail("utf-8", sample);
  return findInvalidUtf8(sample, 0, end) < 0 ? "utf-8" : "windows-1252";
}

/** Whether `encoding` has one byte a character (bytes below 0x80 are ASCII). */
export function singleByte(encoding: Encoding): boolean {
  return encoding === "latin1" || encoding === "windows-1252";
}

/** Length of the BOM of `encoding` at the start of `bytes` (0 when absent; 0 for single-byte). */
export function bomLength(encoding: Encoding, bytes: Uint8Array): number {
  if (singleByte(encoding)) return 0;
  const found = detectEncoding(bytes);
  return found.bomLength > 0 && found.encoding === encoding ? found.bomLength : 0;
}

/** Bytes per code unit: 2 for UTF-16, 1 otherwise. */
export function unitWidth(encoding: Encoding): 1 | 2 {
  return encoding === "utf-16le" || encoding === "utf-16be" ? 2 : 1;
}

/**
 * Index of the lead byte of the first invalid or truncated UTF-8 sequence in
 * `bytes[from, end)`, or -1 when the range is valid. Uses the same well-formedness rules as
 * the WHATWG decoder (no overlongs, no surrogates, nothing above U+10FFFF).
 */
export function findInvalidUtf8(bytes: Uint8Array, from = 0, end = bytes.length): number {
  let i = from;
  while (i < end) {
    const c = bytes[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    const len = utf8SequenceLength(bytes, i, end);
    if (len === 0) return i;
    i += len;
  }
  return -1;
}

/** Length of the valid UTF-8 sequence starting at `i` (a non-ASCII lead byte), or 0. */
function utf8SequenceLength(bytes: Uint8Array, i: number, end: number): number {
  const c = bytes[i]!;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) need = 1;
  else if (c >= 0xe0 && c <= 0xef) {
    need = 2;
    if (c === 0xe0) lo = 0xa0;
    else if (c === 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 3;
    if (c === 0xf0) lo = 0x90;
    else if (c === 0xf4) hi = 0x8f;
  } else return 0;
  if (i + need >= end) return 0;
  const b1 = bytes[i + 1]!;
  if (b1 < lo || b1 > hi) return 0;
  for (let k = 2; k <= need; k++) {
    const b = bytes[i + k]!;
    if (b < 0x80 || b > 0xbf) return 0;
  }
  return need + 1;
}

/**
 * Byte index (relative to `bytes`) of the first unpaired surrogate or dangling odd byte in
 * UTF-16 data, or -1 when valid.
 */
export function findInvalidUtf16(bytes: Uint8Array, littleEndian: boolean): number {
  const units = bytes.length >> 1;
  for (let k = 0; k < units; k++) {
    const u = readUnit(bytes, k * 2, littleEndian);
    if (u < 0xd800 || u > 0xdfff) continue;
    if (u >= 0xdc00) return k * 2;
    if (k + 1 >= units) return k * 2;
    const next = readUnit(bytes, k * 2 + 2, littleEndian);
    if (next < 0xdc00 || next > 0xdfff) return k * 2;
    k++;
  }
  return bytes.length % 2 === 1 ? bytes.length - 1 : -1;
}

function readUnit(bytes: Uint8Array, at: number, littleEndian: boolean): number {
  const a = bytes[at]!;
  const b = bytes[at + 1]!;
  return littleEndian ? a | (b << 8) : (a << 8) | b;
}

/** Byte offset (relative to `bytes`) of the first invalid data for `encoding`, or -1. */
export function findInvalid(encoding: Encoding, bytes: Uint8Array): number {
  switch (encoding) {
    case "utf-8":
      return findInvalidUtf8(bytes);
    case "utf-16le":
      return findInvalidUtf16(bytes, true);
    case "utf-16be":
      return findInvalidUtf16(bytes, false);
    case "latin1":
    case "windows-1252":
      return -1;
  }
}

/**
 * Number of trailing bytes of `bytes` that start a sequence not yet complete (0–3 for UTF-8,
 * 0–3 for UTF-16: an odd byte and/or a high surrogate waiting for its pair).
 */
export function incompleteTail(encoding: Encoding, bytes: Uint8Array): number {
  const n = bytes.length;
  if (singleByte(encoding)) return 0;
  if (encoding === "utf-8") {
    for (let back = 1; back <= Math.min(3, n); back++) {
      const c = bytes[n - back]!;
      if ((c & 0xc0) === 0x80) continue; // continuation byte
      const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
      return need > back ? back : 0;
    }
    return 0;
  }
  const odd = n % 2;
  const le = encoding === "utf-16le";
  const lastUnitAt = n - odd - 2;
  if (lastUnitAt < 0) return odd;
  const u = readUnit(bytes, lastUnitAt, le);
  return u >= 0xd800 && u <= 0xdbff ? odd + 2 : odd;
}

/** Decodes a whole Latin-1 byte range (ISO-8859-1: byte value = code point). */
export function decodeLatin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** Options of {@link decodeText} and {@link decodeStream}. */
export interface DecodeOptions {
  /** Throw {@link EncodingError} on invalid bytes instead of substituting U+FFFD. */
  fatal?: boolean;
}

/**
 * Decodes one complete range of bytes (e.g. a chunk). A BOM at the start is removed only when
 * `stripBom` is set (chunk 0); `fileOffset` is added to the offset of an {@link EncodingError}.
 */
export function decodeText(
  bytes: Uint8Array,
  encoding: Encoding,
  options: DecodeOptions & { stripBom?: boolean; fileOffset?: number } = {},
): string {
  const skip = options.stripBom ? bomLength(encoding, bytes) : 0;
  const body = skip > 0 ? bytes.subarray(skip) : bytes;
  if (encoding === "latin1") return decodeLatin1(body);
  const fatal = options.fatal ?? false;
  try {
    return new TextDecoder(encoding, { fatal, ignoreBOM: true }).decode(body);
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    const at = findInvalid(encoding, body);
    throw new EncodingError(encoding, (options.fileOffset ?? 0) + skip + Math.max(at, 0));
  }
}

/**
 * A TransformStream decoding bytes of `encoding` to strings, removing a leading BOM of that
 * encoding. With `fatal`, invalid bytes raise an {@link EncodingError} whose `offset` is the
 * exact byte offset (from the start of the stream) of the first invalid or truncated sequence.
 */
export function decodeStream(
  encoding: Encoding,
  options: DecodeOptions = {},
): TransformStream<Uint8Array, string> {
  if (encoding === "latin1") {
    return new TransformStream({
      transform(bytes, controller) {
        if (bytes.length > 0) controller.enqueue(decodeLatin1(bytes));
      },
    });
  }
  const fatal = options.fatal ?? false;
  const decoder = new TextDecoder(encoding, { fatal });
  let consumed = 0; // bytes received before the current chunk
  let tail: Uint8Array = new Uint8Array(0); // incomplete sequence carried inside the decoder
  const locate = (bytes: Uint8Array): EncodingError => {
    const joined = concatBytes(tail, bytes);
    const at = findInvalid(encoding, joined);
    return new EncodingError(encoding, consumed - tail.length + Math.max(at, 0));
  };
  return new TransformStream({
    transform(bytes, controller) {
      let text: string;
      try {
        text = decoder.decode(bytes, { stream: true });
      } catch (e) {
        if (e instanceof TypeError && fatal) throw locate(bytes);
        throw e;
      }
      tail = carriedTail(encoding, tail, bytes, consumed + bytes.length);
      consumed += bytes.length;
      if (text.length > 0) controller.enqueue(text);
    },
    flush(controller) {
      let text: string;
      try {
        text = decoder.decode();
      } catch (e) {
        if (e instanceof TypeError && fatal) {
          throw new EncodingError(encoding, consumed - tail.length);
        }
        throw e;
      }
      if (text.length > 0) controller.enqueue(text);
    },
  });
}

/**
 * The incomplete sequence left at the end of the stream after `bytes` (absolute end offset
 * `total`), given the one carried before. Looks only at a small window, so it is O(1).
 */
function carriedTail(
  encoding: Encoding,
  tail: Uint8Array,
  bytes: Uint8Array,
  total: number,
): Uint8Array {
  const span = 8 + (total % 2); // window starting on a code-unit boundary
  const window = bytes.length >= span
    ? bytes.subarray(bytes.length - span)
    : concatBytes(tail, bytes);
  const keep = incompleteTail(encoding, window);
  return window.slice(window.length - keep);
}

/** Concatenates two byte arrays (returns `b` itself when `a` is empty). */
export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
