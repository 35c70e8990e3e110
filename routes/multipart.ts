/**
 * A streaming `multipart/form-data` reader: parts come one after another, each with its body as
 * a stream, so a file of any size passes through in bounded memory (Hono's `parseBody` holds
 * the whole request). Read each part's body to its end (or cancel it) before asking for the
 * next part.
 *
 * Form limits ({@link MultipartLimits}) are enforced as the bytes arrive: a field value, a part's
 * headers or a count of parts past its limit fails with 413 before any more of the body is read,
 * so a field that never ends costs its limit in memory, not its size.
 */
import { TroupeError, ValidationError } from "@troupe/runtime";

export interface Part {
  /** The form field name. */
  name: string;
  /** Set for file fields. */
  filename: string | null;
  contentType: string | null;
  body: ReadableStream<Uint8Array>;
}

/** How much of a form is accepted besides its files. */
export interface MultipartLimits {
  /** Largest value of a field that is not a file, in bytes. @default 64 KiB */
  maxFieldBytes?: number;
  /** Most parts in one form, fields and files together. @default 100 */
  maxParts?: number;
  /** Largest header block of one part, in bytes. @default 16 KiB */
  maxHeaderBytes?: number;
}

export const MULTIPART_DEFAULTS: Required<MultipartLimits> = {
  maxFieldBytes: 64 * 1024,
  maxParts: 100,
  maxHeaderBytes: 16 * 1024,
};

/** The boundary of a `multipart/form-data` content type, or null when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/form-data\s*;/i.test(contentType)) return null;
  const m = /boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]!) : null;
}

const encoder = new TextEncoder();
/** The end of a part's headers (one array, so its search table is made once). */
const HEADERS_END = encoder.encode("\r\n\r\n");

/**
 * Yields the parts of a multipart body. Malformed input throws `ValidationError`; a form past
 * one of `limits` throws a 413 `PAYLOAD_TOO_LARGE` naming the limit (from the generator, or from
 * a field's body as it is read or cancelled).
 */
export async function* readMultipart(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  limits: MultipartLimits = {},
): AsyncGenerator<Part> {
  const { maxFieldBytes, maxParts, maxHeaderBytes } = { ...MULTIPART_DEFAULTS, ...limits };
  const reader = new BufferedReader(body.getReader(), maxHeaderBytes);
  const dash = encoder.encode(`--${boundary}`);
  const delimiter = encoder.encode(`\r\n--${boundary}`);
  // Preamble up to the first boundary line.
  if (!await reader.skipPast(dash)) throw bad("no multipart boundary in the body");
  for (let index = 0;; index++) {
    const after = await reader.take(2);
    if (after === "--") return; // closing boundary
    if (after !== "\r\n") throw bad("malformed boundary line");
    if (index >= maxParts) {
      throw tooLarge(`the form has more than ${maxParts} parts`, { maxParts });
    }
    const headers = await reader.readHeaders(index);
    const disposition = headers.get("content-disposition") ?? "";
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1];
    if (name === undefined) throw bad("a part has no form field name");
    const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1] ?? null;
    // A file's size is its reader's to limit (it streams to storage); a field's value is held
    // whole by whoever reads it, so it is cut off here, skipped or not.
    const limit = filename === null ? maxFieldBytes : Infinity;
    let size = 0;
    let done = false;
    const next = async (): Promise<Uint8Array> => {
      const chunk = await reader.readUntil(delimiter);
      size += chunk.data.byteLength;
      if (size > limit) {
        const field = name.slice(0, 100);
        throw tooLarge(`form field ${JSON.stringify(field)} is larger than ${limit} bytes`, {
          field,
          limitBytes: limit,
        });
      }
      done = chunk.found;
      return chunk.data;
    };
    const part: Part = {
      name,
      filename,
      contentType: headers.get("content-type") ?? null,
      body: new ReadableStream<Uint8Array>({
        async pull(controller) {
          const data = await next();
          if (data.byteLength) controller.enqueue(data);
          if (done) controller.close();
        },
        async cancel() {
          while (!done) await next();
        },
      }),
    };
    yield part;
    if (!done) throw new Error("read or cancel a part's body before asking for the next part");
  }
}

/** The text of a field's value (its size was limited while it was read). */
export async function fieldText(part: Part): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of part.body) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

function bad(message: string): ValidationError {
  return new ValidationError(`malformed multipart body: ${message}`);
}

function tooLarge(message: string, details: Record<string, unknown>): TroupeError {
  return new TroupeError("PAYLOAD_TOO_LARGE", message, { details });
}

/** Byte reader with search across chunk boundaries. */
class BufferedReader {
  #buf: Uint8Array = new Uint8Array(0);
  #eof = false;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #maxHeaderBytes: number;

  constructor(reader: ReadableStreamDefaultReader<Uint8Array>, maxHeaderBytes: number) {
    this.#reader = reader;
    this.#maxHeaderBytes = maxHeaderBytes;
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const { value, done } = await this.#reader.read();
    if (done) {
      this.#eof = true;
      return false;
    }
    if (this.#buf.byteLength === 0) {
      this.#buf = value;
      return true;
    }
    const next = new Uint8Array(this.#buf.byteLength + value.byteLength);
    next.set(this.#buf);
    next.set(value, this.#buf.byteLength);
    this.#buf = next;
    return true;
  }

  async take(n: number): Promise<string> {
    while (this.#buf.byteLength < n) if (!await this.#fill()) break;
    const out = new TextDecoder().decode(this.#buf.subarray(0, n));
    this.#buf = this.#buf.subarray(Math.min(n, this.#buf.byteLength));
    return out;
  }

  async skipPast(needle: Uint8Array): Promise<boolean> {
    while (true) {
      const at = indexOf(this.#buf, needle);
      if (at >= 0) {
        this.#buf = this.#buf.subarray(at + needle.byteLength);
        return true;
      }
      if (this.#buf.byteLength > this.#maxHeaderBytes) {
        this.#buf = this.#buf.subarray(this.#buf.byteLength - needle.byteLength);
      }
      if (!await this.#fill()) return false;
    }
  }

  async readHeaders(index: number): Promise<Map<string, string>> {
    let at: number;
    while ((at = indexOf(this.#buf, HEADERS_END)) < 0) {
      if (this.#buf.byteLength > this.#maxHeaderBytes) {
        throw tooLarge(
          `the headers of part ${index + 1} are larger than ${this.#maxHeaderBytes} bytes`,
          { part: index + 1, limitBytes: this.#maxHeaderBytes },
        );
      }
      if (!await this.#fill()) throw bad("the body ends inside part headers");
    }
    if (at > this.#maxHeaderBytes) {
      throw tooLarge(
        `the headers of part ${index + 1} are larger than ${this.#maxHeaderBytes} bytes`,
        { part: index + 1, limitBytes: this.#maxHeaderBytes },
      );
    }
    const text = new TextDecoder().decode(this.#buf.subarray(0, at));
    this.#buf = this.#buf.subarray(at + HEADERS_END.byteLength);
    const headers = new Map<string, string>();
    for (const line of text.split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) {
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
    }
    return headers;
  }

  /**
   * Returns the bytes before `needle` (consuming the needle) or, when it is not in sight, the
   * bytes that cannot be the start of it; throws at the end of the body without it. The bytes
   * are views of what the body gave (never written to): a part's data is not copied here.
   * What is kept between reads is only a tail that may begin the needle (rarely any: it must
   * start with the needle's first bytes), so the next chunk is seldom joined to anything (a
   * joined copy of every 64 KB chunk would be fresh memory to fault in).
   */
  async readUntil(needle: Uint8Array): Promise<{ data: Uint8Array; found: boolean }> {
    while (true) {
      const at = indexOf(this.#buf, needle);
      if (at >= 0) {
        const data = this.#buf.subarray(0, at);
        this.#buf = this.#buf.subarray(at + needle.byteLength);
        return { data, found: true };
      }
      const safe = this.#buf.byteLength - needlePrefixAtEnd(this.#buf, needle);
      if (safe > 0) {
        const data = this.#buf.subarray(0, safe);
        this.#buf = this.#buf.subarray(safe);
        return { data, found: false };
      }
      if (!await this.#fill()) throw bad("the body ends inside a part");
    }
  }
}

/**
 * First index of `needle` in `hay`, or -1: Boyer-Moore-Horspool, which looks at about one
 * byte in `needle.length` (a multipart delimiter is 40-70 bytes), where a scan for the first
 * byte stopped at every CR of a binary file.
 */
function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  const m = needle.byteLength;
  const last = m - 1;
  if (m === 0) return 0;
  const skip = skipTable(needle);
  const end = hay.byteLength - m;
  let i = 0;
  while (i <= end) {
    let j = last;
    while (hay[i + j] === needle[j]) {
      if (j === 0) return i;
      j--;
    }
    i += skip[hay[i + last]!]!;
  }
  return -1;
}

const skipTables = new WeakMap<Uint8Array, Uint8Array | Uint32Array>();

/** Horspool's shift per byte value for `needle`, made once per needle. */
function skipTable(needle: Uint8Array): Uint8Array | Uint32Array {
  let table = skipTables.get(needle);
  if (!table) {
    const m = needle.byteLength;
    table = m < 256 ? new Uint8Array(256) : new Uint32Array(256);
    table.fill(m);
    for (let k = 0; k < m - 1; k++) table[needle[k]!] = m - 1 - k;
    skipTables.set(needle, table);
  }
  return table;
}

/** How many bytes at the end of `hay` are the start of `needle` (the longest such tail). */
function needlePrefixAtEnd(hay: Uint8Array, needle: Uint8Array): number {
  const from = Math.max(0, hay.byteLength - (needle.byteLength - 1));
  for (let i = hay.indexOf(needle[0]!, from); i >= 0; i = hay.indexOf(needle[0]!, i + 1)) {
    let j = 1;
    while (i + j < hay.byteLength && hay[i + j] === needle[j]) j++;
    if (i + j === hay.byteLength) return j;
  }
  return 0;
}
