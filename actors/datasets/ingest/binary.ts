/**
 * Telling data from binary files by their bytes, and reading gzip-compressed data.
 *
 * - {@link sniffContent}: what a file's first bytes look like (a PDF, a ZIP such as an `.xlsx`,
 *   gzip, an image, or text); a NUL byte marks a binary file unless the text is UTF-16, where
 *   NULs are the high bytes of ASCII characters.
 * - {@link sniffedStream}: an upload as it passes, refused by its head when it is binary, and
 *   decompressed when it is gzip (size bounded against gzip bombs by a ratio).
 * - {@link findNul}: a NUL byte anywhere in a chunk, with its line (PostgreSQL text cannot hold
 *   one, and a file with one is not text).
 */
import { detectEncoding, type Encoding } from "./encoding.ts";
import { IngestError } from "./errors.ts";

/** What a file looked like: `text`, `gzip`, or a kind of binary file. */
export type ContentKind =
  | "text"
  | "gzip"
  | "pdf"
  | "zip"
  | "png"
  | "jpeg"
  | "gif"
  | "binary";

/** Bytes of a file's head {@link sniffContent} looks at (as git looks at its first 8,000). */
export const SNIFF_HEAD_BYTES = 8 * 1024;

const MAGIC: [Exclude<ContentKind, "text" | "binary">, number[]][] = [
  ["pdf", [0x25, 0x50, 0x44, 0x46, 0x2d]], // %PDF-
  ["zip", [0x50, 0x4b, 0x03, 0x04]], // xlsx, ods, docx, jar...
  ["zip", [0x50, 0x4b, 0x05, 0x06]], // an empty zip
  ["gzip", [0x1f, 0x8b]],
  ["png", [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ["jpeg", [0xff, 0xd8, 0xff]],
  ["gif", [0x47, 0x49, 0x46, 0x38]], // GIF8
];

/**
 * What `head` (a file's first bytes) looks like: a magic number's kind, else `binary` when it
 * holds a NUL byte outside UTF-16 text (declared by `encoding` or a UTF-16 byte-order mark),
 * else `text`.
 */
export function sniffContent(head: Uint8Array, encoding: Encoding | "auto" = "auto"): ContentKind {
  for (const [kind, magic] of MAGIC) {
    if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return kind;
  }
  const utf16 = encoding === "utf-16le" || encoding === "utf-16be" ||
    (encoding === "auto" && detectEncoding(head).encoding.startsWith("utf-16"));
  if (!utf16 && head.indexOf(0) >= 0) return "binary";
  return "text";
}

/** A file that is not text data: a PDF, a spreadsheet, an image, bytes with NULs. */
export class BinaryContentError extends IngestError {
  override name = "BinaryContentError";
  readonly code = "binary_content";
  /**
   * @param detected what the file looked like
   * @param line 1-based line of a NUL found in the file, when it was found past the head
   */
  constructor(readonly detected: Exclude<ContentKind, "text">, readonly line?: number) {
    super(
      line === undefined
        ? `the file looks like ${describe(detected)}, not text data`
        : `line ${line} holds a NUL byte: the file is binary, not text data`,
    );
  }
}

/** Why a gzip upload was refused. */
export type GzipErrorCode = "bad_gzip" | "inflate_ratio";

/** A gzip body that does not decompress, or inflates past the allowed ratio (a gzip bomb). */
export class GzipError extends IngestError {
  override name = "GzipError";
  constructor(readonly code: GzipErrorCode, message: string, readonly limit?: number) {
    super(message);
  }
}

function describe(kind: Exclude<ContentKind, "text">): string {
  switch (kind) {
    case "pdf":
      return "a PDF document";
    case "zip":
      return "a ZIP archive (an .xlsx, .ods or .docx file is one)";
    case "gzip":
      return "gzip inside gzip";
    case "binary":
      return "a binary file (it holds NUL bytes)";
    default:
      return `a ${kind.toUpperCase()} image`;
  }
}

/** Options of {@link sniffedStream}. */
export interface SniffOptions {
  /** The file's declared encoding (`auto`: UTF-16 only with a byte-order mark). */
  encoding?: Encoding | "auto";
  /** The body is gzip whatever its bytes say (`Content-Encoding: gzip`). @default false */
  gzip?: boolean;
  /**
   * Most decompressed bytes per compressed byte read, judged once more than
   * {@link INFLATE_RATIO_FLOOR} bytes came out (a small file may compress at any ratio).
   * @default 200
   */
  maxInflateRatio?: number;
  /**
   * Called when the file is a ZIP (an `.xlsx` upload): the stream then passes it through as it
   * is instead of refusing it. A ZIP inside gzip is refused still.
   */
  onZip?: () => void;
}

/** Decompressed bytes before the inflate ratio is judged. */
export const INFLATE_RATIO_FLOOR = 1 << 20;
/**
 * Compressed bytes given to the decompressor at a time: it inflates each piece whole, so a
 * piece of a gzip bomb (up to ~1,032:1) comes out as at most ~4 MiB.
 */
const INFLATE_PIECE = 4 * 1024;

/**
 * What `reader` holds, in pieces of at most {@link INFLATE_PIECE} bytes, for a decompressor:
 * `onBytes` counts each piece given (the compressed side of an inflate ratio), `onError` sees an
 * error of `reader` itself before it passes on.
 */
export function compressedPieces(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  { onBytes, onError }: { onBytes: (n: number) => void; onError?: (err: unknown) => void },
): ReadableStream<Uint8Array> {
  let pending: Uint8Array = new Uint8Array(0);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pending.length === 0) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (err) {
          onError?.(err);
          throw err;
        }
        if (r.done) {
          controller.close();
          return;
        }
        pending = r.value;
      }
      const piece = pending.subarray(0, INFLATE_PIECE);
      pending = pending.subarray(piece.length);
      onBytes(piece.length);
      controller.enqueue(piece);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/**
 * `stream` as a file of text data: its head ({@link SNIFF_HEAD_BYTES}) is read first and the
 * stream errors with {@link BinaryContentError} when it looks binary (the source is then
 * cancelled, nothing more read). Gzip (by its magic bytes, or `gzip`) is decompressed as it
 * passes, and its decompressed head sniffed in turn; it errors with {@link GzipError} when it
 * is not valid gzip or inflates past `maxInflateRatio`. Memory: the head, and one inflated
 * piece. Errors go through `refuse` (an HTTP answer for a route).
 */
export function sniffedStream(
  stream: ReadableStream<Uint8Array>,
  o: SniffOptions = {},
  refuse: (err: IngestError) => unknown = (err) => err,
): ReadableStream<Uint8Array> {
  const maxRatio = o.maxInflateRatio ?? 200;
  let out: Source | null = null;
  let source: ReadableStreamDefaultReader<Uint8Array> | null = stream.getReader();

  const start = async (
    reader: ReadableStreamDefaultReader<Uint8Array>,
    forceGzip: boolean,
    inner: boolean,
  ): Promise<Source> => {
    const head = await readHead(reader);
    // The head alone, however large the chunks it came in: the same file is judged the same.
    const kind = sniffContent(head.subarray(0, SNIFF_HEAD_BYTES), o.encoding);
    if (kind === "gzip" && inner) throw new BinaryContentError("gzip");
    if (kind === "gzip" || (forceGzip && !inner)) {
      return await start(inflated(prepended(head, reader), maxRatio).getReader(), false, true);
    }
    if (kind === "zip" && !inner && o.onZip) {
      o.onZip();
      return headFirst(head, reader);
    }
    if (kind !== "text") throw new BinaryContentError(kind);
    return headFirst(head, reader);
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        out ??= await start(source!, o.gzip ?? false, false);
        const r = await out.read();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (err) {
        await (out ?? source)?.cancel(err).catch(() => {});
        out = source = null;
        throw err instanceof IngestError ? refuse(err) : err;
      }
    },
    async cancel(reason) {
      await (out ?? source)?.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** The first {@link SNIFF_HEAD_BYTES} (or fewer, at the end) of a stream, read from `reader`. */
async function readHead(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  while (n < SNIFF_HEAD_BYTES) {
    const r = await reader.read();
    if (r.done) break;
    parts.push(r.value);
    n += r.value.length;
  }
  if (parts.length === 1) return parts[0]!;
  const head = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    head.set(p, at);
    at += p.length;
  }
  return head;
}

/** What the sniffed stream reads from: a reader, or the head and then a reader. */
type Source = Pick<ReadableStreamDefaultReader<Uint8Array>, "read" | "cancel">;

/**
 * `head`, then what `reader` holds, read straight from `reader` (no stream between: each chunk
 * of an upload passes here).
 */
function headFirst(head: Uint8Array, reader: ReadableStreamDefaultReader<Uint8Array>): Source {
  let first: Uint8Array | null = head.length ? head : null;
  return {
    read() {
      if (!first) return reader.read();
      const value = first;
      first = null;
      return Promise.resolve({ done: false, value });
    },
    cancel: (reason) => reader.cancel(reason),
  };
}

/** `head`, then what `reader` holds. */
function prepended(
  head: Uint8Array,
  reader: ReadableStreamDefaultReader<Uint8Array>,
): ReadableStream<Uint8Array> {
  let first: Uint8Array | null = head.length ? head : null;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (first) {
        controller.enqueue(first);
        first = null;
        return;
      }
      const r = await reader.read();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/** `compressed` decompressed, in pieces, refused past `maxRatio` or when it is not gzip. */
function inflated(
  compressed: ReadableStream<Uint8Array>,
  maxRatio: number,
): ReadableStream<Uint8Array> {
  let inBytes = 0;
  let outBytes = 0;
  // An error of the body itself (a slow client, a size limit) passes as it is; any other
  // error of the decompressor means the bytes are not gzip.
  let upstream: unknown = undefined;
  const pieces = compressedPieces(compressed.getReader(), {
    onBytes: (n) => (inBytes += n),
    onError: (err) => (upstream = err),
  });
  const plain = pieces.pipeThrough(
    new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
  ).getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await plain.read();
      } catch (err) {
        if (err === upstream || err instanceof IngestError) throw err;
        throw new GzipError("bad_gzip", `the file is not valid gzip (${String(err)})`);
      }
      if (r.done) {
        controller.close();
        return;
      }
      outBytes += r.value.length;
      if (outBytes > INFLATE_RATIO_FLOOR && outBytes > maxRatio * inBytes) {
        throw new GzipError(
          "inflate_ratio",
          `the gzip file inflates more than ${maxRatio} times its size (a gzip bomb?)`,
          maxRatio,
        );
      }
      controller.enqueue(r.value);
    },
    cancel: (reason) => plain.cancel(reason),
  }, { highWaterMark: 0 });
}

/**
 * The first NUL character of `bytes` (a chunk of a file in `encoding`), as its 1-based line
 * (`firstLine` is the chunk's first), or -1. In UTF-16, a NUL is a zero code unit.
 */
export function findNul(bytes: Uint8Array, encoding: Encoding, firstLine: number): number {
  let at = -1;
  if (encoding === "utf-16le" || encoding === "utf-16be") {
    for (let i = bytes.indexOf(0); i >= 0 && i + 1 < bytes.length; i = bytes.indexOf(0, i + 1)) {
      if (i % 2 === 0 && bytes[i + 1] === 0) {
        at = i;
        break;
      }
    }
  } else {
    at = bytes.indexOf(0);
  }
  if (at < 0) return -1;
  let line = firstLine;
  if (encoding === "utf-16le" || encoding === "utf-16be") {
    const lo = encoding === "utf-16le" ? 0 : 1;
    for (let i = 0; i + 1 < at; i += 2) {
      if (bytes[i + lo] === 10 && bytes[i + 1 - lo] === 0) line++;
    }
    return line;
  }
  for (let i = bytes.indexOf(10); i >= 0 && i < at; i = bytes.indexOf(10, i + 1)) line++;
  return line;
}
