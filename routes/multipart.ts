/**
 * A streaming `multipart/form-data` reader: parts come one after another, each with its body as
 * a stream, so a file of any size passes through in bounded memory (Hono's `parseBody` holds
 * the whole request). Read each part's body to its end (or cancel it) before asking for the
 * next part.
 */
import { ValidationError } from "../actors/runtime/errors.ts";

export interface Part {
  /** The form field name. */
  name: string;
  /** Set for file fields. */
  filename: string | null;
  contentType: string | null;
  body: ReadableStream<Uint8Array>;
}

/** Largest header block of one part. */
const MAX_HEADER_BYTES = 16 * 1024;

/** The boundary of a `multipart/form-data` content type, or null when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/form-data\s*;/i.test(contentType)) return null;
  const m = /boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]!) : null;
}

const encoder = new TextEncoder();

/** Yields the parts of a multipart body. Malformed input throws `ValidationError`. */
export async function* readMultipart(
  body: ReadableStream<Uint8Array>,
  boundary: string,
): AsyncGenerator<Part> {
  const reader = new BufferedReader(body.getReader());
  const dash = encoder.encode(`--${boundary}`);
  const delimiter = encoder.encode(`\r\n--${boundary}`);
  // Preamble up to the first boundary line.
  if (!await reader.skipPast(dash)) throw bad("no multipart boundary in the body");
  while (true) {
    const after = await reader.take(2);
    if (after === "--") return; // closing boundary
    if (after !== "\r\n") throw bad("malformed boundary line");
    const headers = await reader.readHeaders();
    const disposition = headers.get("content-disposition") ?? "";
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1];
    if (name === undefined) throw bad("a part has no form field name");
    const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1] ?? null;
    let done = false;
    const part: Part = {
      name,
      filename,
      contentType: headers.get("content-type") ?? null,
      body: new ReadableStream<Uint8Array>({
        async pull(controller) {
          const chunk = await reader.readUntil(delimiter);
          if (chunk.data.byteLength) controller.enqueue(chunk.data);
          if (chunk.found) {
            done = true;
            controller.close();
          }
        },
        async cancel() {
          while (!done) done = (await reader.readUntil(delimiter)).found;
        },
      }),
    };
    yield part;
    if (!done) throw new Error("read or cancel a part's body before asking for the next part");
  }
}

function bad(message: string): ValidationError {
  return new ValidationError(`malformed multipart body: ${message}`);
}

/** Byte reader with search across chunk boundaries. */
class BufferedReader {
  #buf: Uint8Array = new Uint8Array(0);
  #eof = false;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(reader: ReadableStreamDefaultReader<Uint8Array>) {
    this.#reader = reader;
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
      if (this.#buf.byteLength > MAX_HEADER_BYTES) {
        this.#buf = this.#buf.subarray(this.#buf.byteLength - needle.byteLength);
      }
      if (!await this.#fill()) return false;
    }
  }

  async readHeaders(): Promise<Map<string, string>> {
    const end = encoder.encode("\r\n\r\n");
    while (indexOf(this.#buf, end) < 0) {
      if (this.#buf.byteLength > MAX_HEADER_BYTES) throw bad("part headers are too large");
      if (!await this.#fill()) throw bad("the body ends inside part headers");
    }
    const at = indexOf(this.#buf, end);
    const text = new TextDecoder().decode(this.#buf.subarray(0, at));
    this.#buf = this.#buf.subarray(at + end.byteLength);
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
   * are views of what the body gave (never written to): a part's data is not copied here,
   * and what is kept between reads is at most the needle's length (a buffer that grew to
   * 128 KB and more was fresh memory from the system each time).
   */
  async readUntil(needle: Uint8Array): Promise<{ data: Uint8Array; found: boolean }> {
    while (true) {
      const at = indexOf(this.#buf, needle);
      if (at >= 0) {
        const data = this.#buf.subarray(0, at);
        this.#buf = this.#buf.subarray(at + needle.byteLength);
        return { data, found: true };
      }
      const safe = this.#buf.byteLength - (needle.byteLength - 1);
      if (safe > 0) {
        const data = this.#buf.subarray(0, safe);
        this.#buf = this.#buf.subarray(safe);
        return { data, found: false };
      }
      if (!await this.#fill()) throw bad("the body ends inside a part");
    }
  }
}

/** First index of `needle` in `hay`, or -1. */
function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  const first = needle[0]!;
  const last = hay.byteLength - needle.byteLength;
  for (let i = hay.indexOf(first); i >= 0 && i <= last; i = hay.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.byteLength && hay[i + j] === needle[j]) j++;
    if (j === needle.byteLength) return i;
  }
  return -1;
}
