/**
 * Reading a ZIP archive by random access (its central directory, then one entry at a time),
 * for the parts of an `.xlsx`. Entries inflate as streams under two bounds, as gzip uploads do:
 * a ratio of inflated to compressed bytes (judged past {@link ZIP_RATIO_FLOOR}) and an absolute
 * cap; an entry that inflates past its declared size is corrupt. Memory: the central directory
 * and one inflated piece.
 */
import { compressedPieces } from "./binary.ts";
import { IngestError } from "./errors.ts";

/** Where an archive's bytes are read from (a stored blob, or bytes in memory for tests). */
export interface RandomAccess {
  size: number;
  /** The bytes `[start, end)` in one buffer. */
  bytes(start: number, end: number): Promise<Uint8Array>;
  /** The bytes `[start, end)` as a stream. */
  stream(start: number, end: number): Promise<ReadableStream<Uint8Array>>;
}

/** Bytes in memory as a {@link RandomAccess}. */
export function memoryAccess(bytes: Uint8Array): RandomAccess {
  return {
    size: bytes.length,
    bytes: (start, end) => Promise.resolve(bytes.subarray(start, end)),
    stream: (start, end) =>
      Promise.resolve(
        new ReadableStream<Uint8Array>({
          start(c) {
            for (let i = start; i < end; i += 64 * 1024) {
              c.enqueue(bytes.slice(i, Math.min(end, i + 64 * 1024)));
            }
            c.close();
          },
        }),
      ),
  };
}

/** Why an archive could not be read. */
export type ZipErrorCode = "bad_zip" | "inflate_ratio" | "inflated_too_large";

/** A ZIP that is corrupt, or an entry that inflates past a bound (a zip bomb). */
export class ZipError extends IngestError {
  override name = "ZipError";
  constructor(readonly code: ZipErrorCode, message: string, readonly limit?: number) {
    super(message);
  }
}

/** One file of an archive, as its central directory describes it. */
export interface ZipEntry {
  name: string;
  /** 0: stored, 8: deflate (the only two an `.xlsx` uses). */
  method: number;
  compressedSize: number;
  /** As declared: an entry inflating past it is corrupt. */
  size: number;
  /** Offset of its local header. */
  offset: number;
}

/** Inflated bytes of an entry before its ratio is judged. */
export const ZIP_RATIO_FLOOR = 1 << 20;
/** Largest central directory read (an `.xlsx` has tens of entries; 64 KiB holds hundreds). */
const MAX_DIRECTORY_BYTES = 16 << 20;

/** The entries of the archive in `src`, by name. Throws {@link ZipError} `bad_zip`. */
export async function zipEntries(src: RandomAccess): Promise<Map<string, ZipEntry>> {
  try {
    return await readDirectory(src);
  } catch (err) {
    // A field pointing past its record reads out of a buffer's bounds.
    if (err instanceof RangeError) throw bad(`a record is cut (${err.message})`);
    throw err;
  }
}

async function readDirectory(src: RandomAccess): Promise<Map<string, ZipEntry>> {
  const tailStart = Math.max(0, src.size - (22 + 0xffff));
  const tail = await src.bytes(tailStart, src.size);
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad("no end of central directory: the archive is truncated or not a ZIP");
  let count = view.getUint16(eocd + 10, true);
  let dirSize = view.getUint32(eocd + 12, true);
  let dirOffset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    // ZIP64: the locator sits just before the end record and points at the ZIP64 end record.
    const at = eocd - 20;
    if (at < 0 || view.getUint32(at, true) !== 0x07064b50) throw bad("a ZIP64 locator is missing");
    const recordAt = Number(view.getBigUint64(at + 8, true));
    const rec = await src.bytes(recordAt, Math.min(src.size, recordAt + 56));
    const rv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
    if (rec.length < 56 || rv.getUint32(0, true) !== 0x06064b50) {
      throw bad("the ZIP64 end record is missing");
    }
    count = Number(rv.getBigUint64(32, true));
    dirSize = Number(rv.getBigUint64(40, true));
    dirOffset = Number(rv.getBigUint64(48, true));
  }
  if (dirSize > MAX_DIRECTORY_BYTES || dirOffset + dirSize > src.size) {
    throw bad("the central directory lies outside the archive");
  }
  const dir = await src.bytes(dirOffset, dirOffset + dirSize);
  const dv = new DataView(dir.buffer, dir.byteOffset, dir.byteLength);
  const entries = new Map<string, ZipEntry>();
  const utf8 = new TextDecoder();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > dir.length || dv.getUint32(p, true) !== 0x02014b50) {
      throw bad("the central directory is corrupt");
    }
    const method = dv.getUint16(p + 10, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let offset = dv.getUint32(p + 42, true);
    const name = utf8.decode(dir.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extra field (0x0001): the 64-bit values of the fields set to 0xffffffff, in order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd && e + 4 <= dir.length) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        const next = () => {
          const v = q + 8 <= e + 4 + len ? Number(dv.getBigUint64(q, true)) : NaN;
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (offset === 0xffffffff) offset = next();
      }
      e += 4 + len;
    }
    if (![compressedSize, size, offset].every(Number.isFinite)) throw bad("a ZIP64 field is cut");
    if (offset + 30 + compressedSize > src.size) throw bad(`the entry ${name} lies past the end`);
    entries.set(name, { name, method, compressedSize, size, offset });
    p = extraEnd + commentLen;
  }
  return entries;
}

/** Bounds on an entry's inflated bytes. */
export interface InflateLimits {
  /** Most inflated bytes per compressed byte, judged past {@link ZIP_RATIO_FLOOR}. */
  maxRatio: number;
  /** Most inflated bytes of the entry. */
  maxBytes: number;
}

/**
 * The inflated bytes of `entry`, as a stream that errors with {@link ZipError} when the entry is
 * corrupt or crosses a bound of `limits` (its declared size is checked before any byte is read).
 */
export async function entryStream(
  src: RandomAccess,
  entry: ZipEntry,
  limits: InflateLimits,
): Promise<ReadableStream<Uint8Array>> {
  if (entry.method !== 0 && entry.method !== 8) {
    throw bad(`the entry ${entry.name} uses compression method ${entry.method}`);
  }
  if (entry.size > limits.maxBytes) throw tooLarge(entry.name, limits.maxBytes);
  if (entry.size > ZIP_RATIO_FLOOR && entry.size > limits.maxRatio * entry.compressedSize) {
    throw tooFar(entry.name, limits.maxRatio);
  }
  const local = await src.bytes(entry.offset, entry.offset + 30);
  const lv = new DataView(local.buffer, local.byteOffset, local.byteLength);
  if (local.length < 30 || lv.getUint32(0, true) !== 0x04034b50) {
    throw bad(`the local header of ${entry.name} is missing`);
  }
  const start = entry.offset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
  if (start + entry.compressedSize > src.size) throw bad(`the entry ${entry.name} is cut`);
  let inBytes = 0;
  const pieces = compressedPieces(
    (await src.stream(start, start + entry.compressedSize)).getReader(),
    { onBytes: (n) => (inBytes += n) },
  );
  const plain = entry.method === 0 ? pieces.getReader() : pieces.pipeThrough(
    new DecompressionStream("deflate-raw") as unknown as TransformStream<Uint8Array, Uint8Array>,
  ).getReader();
  let outBytes = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await plain.read();
      } catch (err) {
        if (err instanceof IngestError) throw err;
        throw bad(`the entry ${entry.name} does not inflate (${String(err)})`);
      }
      if (r.done) {
        if (outBytes !== entry.size) throw bad(`the entry ${entry.name} is not its declared size`);
        controller.close();
        return;
      }
      outBytes += r.value.length;
      if (outBytes > entry.size) {
        await plain.cancel().catch(() => {});
        throw bad(`the entry ${entry.name} inflates past its declared size`);
      }
      if (outBytes > ZIP_RATIO_FLOOR && outBytes > limits.maxRatio * inBytes) {
        await plain.cancel().catch(() => {});
        throw tooFar(entry.name, limits.maxRatio);
      }
      controller.enqueue(r.value);
    },
    cancel: (reason) => plain.cancel(reason),
  }, { highWaterMark: 0 });
}

function bad(message: string): ZipError {
  return new ZipError("bad_zip", `the spreadsheet is not a valid ZIP archive: ${message}`);
}

function tooFar(name: string, ratio: number): ZipError {
  return new ZipError(
    "inflate_ratio",
    `the entry ${name} inflates more than ${ratio} times its size (a zip bomb?)`,
    ratio,
  );
}

function tooLarge(name: string, max: number): ZipError {
  return new ZipError("inflated_too_large", `the entry ${name} inflates past ${max} bytes`, max);
}
