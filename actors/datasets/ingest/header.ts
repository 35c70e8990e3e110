/**
 * Limits on a CSV file's first record (its header, or its first row when it has none), checked
 * as its bytes arrive: a column cap, and a cap on the record's length so that a header of a
 * million columns is refused after `maxBytes`, without being held (only scanner state is kept).
 *
 * The record is found by the splitter's rules (`split.ts`): leading blank lines are skipped, a
 * quote opens a quoted field only at the start of a field, `""` inside quotes is a quote, a
 * newline inside quotes does not end the record. Fields are counted as csv-parse cuts them. A
 * leading byte-order mark is not part of the record.
 */
import { bomLength, concatBytes, detectEncoding, type Encoding, unitWidth } from "./encoding.ts";
import { LimitError } from "./errors.ts";

/** Limits of {@link HeaderScanner}. */
export interface HeaderLimits {
  /** Most columns (fields of the first record). */
  maxColumns: number;
  /** Most bytes of the first record (blank lines before it do not count). */
  maxBytes: number;
}

/** Options of {@link HeaderScanner}. */
export interface HeaderScanOptions extends HeaderLimits {
  /** @default "," */
  delimiter?: string;
  /** @default '"' */
  quote?: string;
  /** Bytes per code unit of the units given to {@link HeaderScanner.scan}. @default 1 */
  unitWidth?: 1 | 2;
}

const LF = 10;
const CR = 13;

/** Counts the fields of a CSV file's first record, throwing {@link LimitError} past a limit. */
export class HeaderScanner {
  readonly #d: number;
  readonly #q: number;
  readonly #width: 1 | 2;
  readonly #maxColumns: number;
  readonly #maxUnits: number;
  readonly #maxBytes: number;
  #content = false;
  #inQ = false;
  #after = false;
  #fieldStart = true;
  #fields = 1;
  #units = 0;
  #done = false;

  constructor(o: HeaderScanOptions) {
    this.#d = (o.delimiter ?? ",").charCodeAt(0);
    this.#q = (o.quote ?? '"').charCodeAt(0);
    this.#width = o.unitWidth ?? 1;
    this.#maxColumns = o.maxColumns;
    this.#maxUnits = Math.floor(o.maxBytes / this.#width);
    this.#maxBytes = o.maxBytes;
  }

  /** Whether the first record has ended (nothing more to check). */
  get done(): boolean {
    return this.#done;
  }

  /** Fields of the first record so far (1 before any content). */
  get columns(): number {
    return this.#fields;
  }

  /**
   * Scans code units of the file, in order; returns true once the first record has ended.
   * Throws {@link LimitError} as soon as a limit is crossed.
   */
  scan(units: Uint8Array | Uint16Array): boolean {
    if (this.#done) return true;
    const d = this.#d;
    const q = this.#q;
    let i = 0;
    const n = units.length;
    if (!this.#content) {
      while (i < n && (units[i] === LF || units[i] === CR)) i++;
      if (i === n) return false;
      this.#content = true;
    }
    let inQ = this.#inQ;
    let after = this.#after;
    let fs = this.#fieldStart;
    let fields = this.#fields;
    // Units this call may scan before the record is too long.
    const room = this.#maxUnits - this.#units;
    const end = Math.min(n, i + Math.max(0, room));
    const start = i;
    for (; i < end; i++) {
      const c = units[i]!;
      if (inQ) {
        if (c === q) {
          inQ = false;
          after = true;
        }
        continue;
      }
      if (after) {
        after = false;
        if (c === q) {
          inQ = true; // "" escape
          continue;
        }
      }
      if (c === LF) {
        this.#done = true;
        break;
      }
      if (c === d) {
        fs = true;
        if (++fields > this.#maxColumns) {
          throw new LimitError("too_many_columns", this.#maxColumns, fields);
        }
      } else if (c === q && fs) {
        inQ = true;
        fs = false;
      } else if (c !== CR) fs = false;
    }
    this.#units += i - start;
    this.#inQ = inQ;
    this.#after = after;
    this.#fieldStart = fs;
    this.#fields = fields;
    if (!this.#done && i < n) throw new LimitError("header_too_long", this.#maxBytes);
    return this.#done;
  }
}

/** Checks the first record of a whole CSV buffer (chunk 0); throws {@link LimitError}. */
export function checkCsvHeader(
  bytes: Uint8Array,
  o: HeaderLimits & { delimiter?: string; quote?: string; encoding?: Encoding },
): void {
  const encoding = o.encoding ?? detectEncoding(bytes).encoding;
  const width = unitWidth(encoding);
  bytes = bytes.subarray(bomLength(encoding, bytes));
  const scanner = new HeaderScanner({ ...o, unitWidth: width });
  if (width === 1) {
    scanner.scan(bytes);
    return;
  }
  // UTF-16: a window of units at a time (the record ends within maxBytes or is refused).
  const little = encoding === "utf-16le";
  const step = 64 * 1024;
  for (let at = 0; at + 1 < bytes.length && !scanner.done; at += step * 2) {
    scanner.scan(toUnits(bytes.subarray(at, Math.min(bytes.length, at + step * 2)), little));
  }
}

/** 16-bit units of an even run of UTF-16 bytes (a trailing odd byte is left out). */
function toUnits(bytes: Uint8Array, little: boolean): Uint16Array {
  const out = new Uint16Array(bytes.length >> 1);
  const [hi, lo] = little ? [1, 0] : [0, 1];
  for (let k = 0, j = 0; k < out.length; k++, j += 2) {
    out[k] = (bytes[j + hi]! << 8) | bytes[j + lo]!;
  }
  return out;
}

/**
 * `stream` as it is, checking the first record as it passes: the stream errors with
 * {@link LimitError} (or what `refuse` makes of it) once a limit is crossed, so a consumer
 * writing it somewhere stops there. Only scanner state is kept, never the record.
 * `encoding`: `auto` reads a byte-order mark (UTF-8 without one).
 */
export function checkedHeaderStream(
  stream: ReadableStream<Uint8Array>,
  o: HeaderLimits & { delimiter?: string; quote?: string; encoding: Encoding | "auto" },
  refuse: (err: LimitError) => unknown = (err) => err,
): ReadableStream<Uint8Array> {
  let scanner: HeaderScanner | null = null;
  let width: 1 | 2 = 1;
  let little = true;
  /** Bytes held back until the encoding is known (up to 2) or a UTF-16 unit is whole (1). */
  let held = new Uint8Array(0);
  const feed = (bytes: Uint8Array, end: boolean) => {
    let b = concatBytes(held, bytes);
    held = new Uint8Array(0);
    if (!scanner) {
      if (b.length < 3 && !end) {
        held = b.slice();
        return;
      }
      const encoding = o.encoding === "auto" ? detectEncoding(b).encoding : o.encoding;
      width = unitWidth(encoding);
      little = encoding !== "utf-16be";
      scanner = new HeaderScanner({ ...o, unitWidth: width });
      b = b.subarray(bomLength(encoding, b));
    }
    if (width === 1) {
      scanner.scan(b);
      return;
    }
    if (b.length % 2 === 1) {
      held = b.slice(b.length - 1);
      b = b.subarray(0, b.length - 1);
    }
    scanner.scan(toUnits(b, little));
  };
  const check = (bytes: Uint8Array, end: boolean) => {
    if (scanner?.done) return;
    try {
      feed(bytes, end);
    } catch (err) {
      throw err instanceof LimitError ? refuse(err) : err;
    }
  };
  // Pulled a chunk at a time from the source (no pipe and queues of a transform between them):
  // each chunk of an upload passes here.
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const r = await reader.read();
      try {
        check(r.done ? new Uint8Array(0) : r.value, r.done);
      } catch (err) {
        await reader.cancel(err).catch(() => {});
        throw err;
      }
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}
