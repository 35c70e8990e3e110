/**
 * Streaming splitter: cuts an uploaded file into chunks of about `targetChunkBytes` at record
 * boundaries only, in one pass, keeping only scanner state (a few booleans and counters).
 *
 * - CSV/TSV: quote-aware per RFC 4180 (`""` escapes, a quote opens a quoted field only at the
 *   start of a field, as csv-parse does). A newline inside quotes never ends a record; records
 *   end at LF (CRLF included: the CR stays with its record). Leading blank lines never form a
 *   chunk of their own, so chunk 0 always holds the first real record (the header). Without
 *   a quote character (`quote: ""`, TSV's default) every LF ends a record. A quoted field
 *   spanning many lines is told to {@link SplitOptions.onWarning}.
 * - NDJSON: every LF ends a record.
 * - JSON array: a chunk ends right after a comma at depth 1 (outside strings), so each chunk
 *   holds whole top-level elements; chunk 0 holds the `[`, the last chunk the `]`. Anything
 *   but an array at the top level raises {@link NotJsonArrayError}.
 *
 * UTF-16: the splitter works on 16-bit code units (LE or BE, per the declared or detected
 * encoding) rather than transcoding: every character that matters to the scanners (quote,
 * delimiter, CR, LF, brackets, commas, backslash) is a BMP ASCII code unit, and surrogate
 * halves can never be mistaken for one, so scanning code units is exact. Boundaries therefore
 * stay byte offsets of the original file (always even) and chunks can be read back by range.
 * UTF-8 and Latin-1 are scanned byte by byte: in UTF-8 every byte of a multi-byte character
 * is >= 0x80, so it cannot be mistaken for an ASCII syntax character either.
 *
 * A leading BOM of the file's encoding is skipped by the scanners but stays inside chunk 0.
 */
import { concatBytes, detectEncoding, type Encoding, unitWidth } from "./encoding.ts";
import { NotJsonArrayError, SplitError } from "./errors.ts";

/**
 * How records are delimited in the file. CSV `quote`: one character (default `"`), or `""`
 * for none (TSV: a quote is a character like any other).
 */
export type SplitFormat =
  | { kind: "csv"; delimiter?: string; quote?: string }
  | { kind: "ndjson" }
  | { kind: "json-array" };

/** Options of {@link splitStream} / {@link chunkStream}. */
export interface SplitOptions {
  format: SplitFormat;
  /** Encoding of the file (default: from the BOM, else UTF-8). Selects byte vs 16-bit units. */
  encoding?: Encoding;
  /** Cut the first record boundary at or after this many bytes (default 4 MiB). */
  targetChunkBytes?: number;
  /**
   * Refuse a chunk that grows beyond this many bytes without reaching a record boundary, e.g.
   * an unbalanced quote swallowing the rest of the file (default max(64 MiB, 4 × target)).
   */
  maxChunkBytes?: number;
  /**
   * Go on from a boundary an earlier run yielded: the stream starts at byte `start` of the
   * file, the next chunk is number `index` and starts at `firstLine` / `firstRecord` (a JSON
   * array's: inside the array, after an element's comma); `encoding` must be given.
   */
  resume?: { start: number; index: number; firstLine: number; firstRecord: number };
  /**
   * Told of each quoted field spanning more than {@link LONG_QUOTED_LINES} lines or
   * {@link LONG_QUOTED_BYTES} bytes (CSV): most often a stray quote swallowing the records
   * after it, which no parser can tell from a real multi-line field.
   */
  onWarning?: (warning: SplitWarning) => void;
}

/** Something the splitter found worth a look, not an error. */
export interface SplitWarning {
  /** 1-based physical line where it starts. */
  line: number;
  message: string;
}

/** A quoted field spanning more lines than this is reported ({@link SplitOptions.onWarning}). */
export const LONG_QUOTED_LINES = 10;
/** A quoted field longer than this many bytes is reported. */
export const LONG_QUOTED_BYTES = 64 * 1024;

/** One chunk of the file: a byte range holding whole records. */
export interface ChunkBoundary {
  /** 0-based chunk number. */
  index: number;
  /** Byte offset of the first byte (inclusive). */
  start: number;
  /** Byte offset after the last byte (exclusive). */
  end: number;
  /**
   * 1-based number of the chunk's first record in the file. CSV/NDJSON: counts every line
   * terminator outside quotes, so the header row is record 1 and blank lines count; JSON
   * array: the element index + 1.
   */
  firstRecord: number;
  /** 1-based physical line (LF count + 1) at which the chunk starts. */
  firstLine: number;
}

/** A chunk boundary together with its bytes (see {@link chunkStream}). */
export interface Chunk {
  boundary: ChunkBoundary;
  bytes: Uint8Array;
}

/** Default target chunk size: 4 MiB. */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

/** Code units: bytes for UTF-8 / Latin-1, 16-bit units for UTF-16. */
export type Units = Uint8Array | Uint16Array;

const LF = 10;
const CR = 13;

/** Index of `unit` in `units[from, n)`, or `n`. */
function indexOr(units: Units, unit: number, from: number, n: number): number {
  const at = units.indexOf(unit, from);
  return at < 0 ? n : at;
}

/** A resumable record scanner over code units. */
export interface RecordScanner {
  /** LF count so far. */
  readonly lines: number;
  /** Record terminators (CSV/NDJSON) or top-level commas (JSON) so far. */
  readonly records: number;
  /**
   * Scans `units[from..]`, updating state; returns the index just after the first record
   * boundary at an index >= `stopAt`, or -1 when the units run out first.
   */
  scan(units: Units, from: number, stopAt: number): number;
  /** Called at end of input with the absolute unit offset; throws if the input is malformed. */
  finish(unitOffset: number): void;
  /**
   * Sets the state at a record boundary after `lines` LFs and `records` records (for
   * {@link SplitOptions.resume}).
   */
  resumeAt(lines: number, records: number): void;
}

/** Quote-aware CSV scanner (state machine; see the module doc for the rules). */
export class CsvScanner implements RecordScanner {
  lines = 0;
  records = 0;
  private inQuotes = false;
  private afterClose = false;
  private fieldStart = true;
  private content = false; // seen a non-blank record yet (chunk 0 must hold the header)
  private readonly delimiter: number;
  private readonly quote: number;
  /** Absolute unit offset of `units[0]` in the current {@link scan}. */
  private base = 0;
  /** The open quoted field: the LF count and absolute unit offset at its quote. */
  private openLines = 0;
  private openAt = 0;
  private reported = false;
  private readonly onWarning: ((warning: SplitWarning) => void) | undefined;
  private readonly width: number;

  /**
   * @param delimiter single ASCII character
   * @param quote single ASCII character, or `""`: no quoting
   */
  constructor(
    delimiter = ",",
    quote = '"',
    { onWarning, unitWidth = 1 }: {
      onWarning?: (warning: SplitWarning) => void;
      unitWidth?: 1 | 2;
    } = {},
  ) {
    this.delimiter = asciiCode(delimiter, "delimiter");
    // -1 is no unit: quotes are never seen.
    this.quote = quote === "" ? -1 : asciiCode(quote, "quote");
    this.onWarning = onWarning;
    this.width = unitWidth;
  }

  /** Sets the absolute unit offset of `units[0]` for the next {@link scan}. */
  setBase(base: number): void {
    this.base = base;
  }

  /** A quote opens a field at unit `at`, after `lines` LFs. */
  private open(lines: number, at: number): void {
    this.openLines = lines;
    this.openAt = this.base + at;
    this.reported = false;
  }

  /** The open field's quote closes at unit `at`, after `lines` LFs: a long field is told. */
  private close(lines: number, at: number): void {
    if (this.reported || !this.onWarning) return;
    const spanLines = lines - this.openLines + 1;
    const bytes = (this.base + at - this.openAt) * this.width;
    if (spanLines <= LONG_QUOTED_LINES && bytes <= LONG_QUOTED_BYTES) return;
    this.reported = true;
    const line = this.openLines + 1;
    this.onWarning({
      line,
      message: `a quoted field from line ${line} spans ${spanLines} lines (${bytes} bytes): ` +
        "a stray quote may have joined the records after it (set the quote option to read " +
        "quotes as text)",
    });
  }

  /** See {@link RecordScanner.resumeAt}: outside quotes, at a field start, header seen. */
  resumeAt(lines: number, records: number): void {
    this.lines = lines;
    this.records = records;
    this.inQuotes = false;
    this.afterClose = false;
    this.fieldStart = true;
    this.content = true;
  }

  /**
   * See {@link RecordScanner.scan}. Once the first real record has begun, the scanner jumps
   * from one line feed or quote to the next with the arrays' native `indexOf` instead of
   * looking at every unit: between them there are only delimiters and other characters,
   * and of those only the last (CRs aside) decides whether a field starts.
   */
  scan(units: Units, from: number, stopAt: number): number {
    const d = this.delimiter;
    const q = this.quote;
    const n = units.length;
    let inQ = this.inQuotes;
    let after = this.afterClose;
    let fs = this.fieldStart;
    let lines = this.lines;
    let records = this.records;
    let content = this.content;
    let cut = -1;
    // The next LF and quote at or after `i` (n when none); found again once `i` passes them.
    let nlAt = -1;
    let qAt = -1;
    let i = from;
    while (i < n) {
      if (!content) {
        // Before the first real record: one unit at a time (blank lines are no boundary).
        const c = units[i++]!;
        if (inQ) {
          if (c === q) {
            inQ = false;
            after = true;
            this.close(lines, i - 1);
          } else if (c === LF) lines++;
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
          lines++;
          records++;
          fs = true;
        } else if (c === d) fs = content = true;
        else if (c === q && fs) {
          inQ = content = true;
          fs = false;
          this.open(lines, i - 1);
        } else if (c !== CR) {
          fs = false;
          content = true;
        }
        continue;
      }
      if (inQ) {
        // Inside quotes: to the next quote, counting the LFs on the way.
        if (qAt < i) qAt = indexOr(units, q, i, n);
        for (;;) {
          if (nlAt < i) nlAt = indexOr(units, LF, i, n);
          if (nlAt >= qAt) break;
          lines++;
          i = nlAt + 1;
        }
        if (qAt === n) {
          i = n;
          break;
        }
        inQ = false;
        after = true;
        this.close(lines, qAt);
        i = qAt + 1;
        continue;
      }
      if (after) {
        after = false;
        if (units[i] === q) {
          inQ = true; // "" escape
          i++;
          continue;
        }
      }
      if (nlAt < i) nlAt = indexOr(units, LF, i, n);
      if (qAt < i) qAt = indexOr(units, q, i, n);
      const stop = nlAt < qAt ? nlAt : qAt;
      if (stop > i) {
        // Units [i, stop) are delimiters and other characters: the last one that is not a
        // CR says whether a field starts at `stop`.
        let j = stop - 1;
        while (j >= i && units[j] === CR) j--;
        if (j >= i) fs = units[j] === d;
      }
      if (stop === n) {
        i = n;
        break;
      }
      i = stop + 1;
      if (stop === nlAt) {
        lines++;
        records++;
        fs = true;
        if (stop >= stopAt) {
          cut = i;
          break;
        }
      } else if (fs) {
        inQ = true;
        fs = false;
        this.open(lines, stop);
      } // else: a quote inside an unquoted field is a character like any other (fs is false)
    }
    this.content = content;
    this.inQuotes = inQ;
    this.afterClose = after;
    this.fieldStart = fs;
    this.lines = lines;
    this.records = records;
    return cut;
  }

  /** CSV input never fails here; an unclosed quote is reported by the parser. */
  finish(): void {}

  /** True while inside a quoted field (after the last scanned unit). */
  get quoting(): boolean {
    return this.inQuotes;
  }
}

/** NDJSON scanner: every LF ends a record. */
export class NdjsonScanner implements RecordScanner {
  lines = 0;
  records = 0;

  /** See {@link RecordScanner.resumeAt}. */
  resumeAt(lines: number, records: number): void {
    this.lines = lines;
    this.records = records;
  }

  /** See {@link RecordScanner.scan}. */
  scan(units: Units, from: number, stopAt: number): number {
    let i = from;
    for (;;) {
      const at = units.indexOf(LF, i);
      if (at < 0) return -1;
      this.lines++;
      this.records++;
      i = at + 1;
      if (at >= stopAt) return i;
    }
  }

  /** NDJSON input never fails here. */
  finish(): void {}
}

/** Phases of the JSON array scanner. */
const JsonPhase = { Before: 0, Inside: 1, After: 2 } as const;

/** Streaming scanner of a top-level JSON array: tracks strings, escapes and depth. */
export class JsonArrayScanner implements RecordScanner {
  lines = 0;
  records = 0;
  private phase: number = JsonPhase.Before;
  private depth = 0;
  private inString = false;
  private escaped = false;

  /** @param unitWidth bytes per code unit, to report byte offsets */
  constructor(private readonly unitWidth: 1 | 2 = 1, private base = 0) {}

  /** Sets the absolute unit offset of `units[0]` for the next {@link scan} (error offsets). */
  setBase(base: number): void {
    this.base = base;
  }

  /**
   * See {@link RecordScanner.resumeAt}: a boundary is just after a comma at depth 1, outside
   * strings, inside the array.
   */
  resumeAt(lines: number, records: number): void {
    this.lines = lines;
    this.records = records;
    this.phase = JsonPhase.Inside;
    this.depth = 1;
    this.inString = false;
    this.escaped = false;
  }

  /** See {@link RecordScanner.scan}. */
  scan(units: Units, from: number, stopAt: number): number {
    const n = units.length;
    let depth = this.depth;
    let inStr = this.inString;
    let esc = this.escaped;
    let cut = -1;
    let i = from;
    for (; i < n; i++) {
      const c = units[i]!;
      if (inStr) {
        if (esc) esc = false;
        else if (c === 0x5c) esc = true;
        else if (c === 0x22) inStr = false;
        else if (c === LF) this.lines++;
        continue;
      }
      if (c === LF) {
        this.lines++;
        continue;
      }
      if (c === 0x20 || c === 0x09 || c === CR) continue;
      if (depth === 0) this.topLevel(c, i);
      if (c === 0x22) inStr = true;
      else if (c === 0x5b || c === 0x7b) depth++;
      else if (c === 0x5d || c === 0x7d) {
        depth--;
        if (depth === 0) this.phase = JsonPhase.After;
      } else if (c === 0x2c && depth === 1) {
        this.records++;
        if (i >= stopAt) {
          cut = i + 1;
          break;
        }
      }
    }
    this.depth = depth;
    this.inString = inStr;
    this.escaped = esc;
    return cut;
  }

  /** Handles a non-blank unit at depth 0: the opening `[`, or an error. */
  private topLevel(c: number, i: number): void {
    const offset = (this.base + i) * this.unitWidth;
    if (this.phase === JsonPhase.Before) {
      if (c === 0x5b) {
        this.phase = JsonPhase.Inside;
        return;
      }
      throw new NotJsonArrayError(offset, this.lines + 1, describeJsonStart(c));
    }
    throw new SplitError(
      "json_trailing_data",
      offset,
      this.lines + 1,
      `unexpected data after the top-level JSON array at line ${this.lines + 1}`,
    );
  }

  /** See {@link RecordScanner.finish}. */
  finish(unitOffset: number): void {
    const offset = unitOffset * this.unitWidth;
    if (this.phase === JsonPhase.Before) {
      throw new NotJsonArrayError(offset, this.lines + 1, "an empty file");
    }
    if (this.phase === JsonPhase.Inside) {
      throw new SplitError(
        "json_unterminated",
        offset,
        this.lines + 1,
        "the JSON array is not closed at the end of the file",
      );
    }
  }
}

function describeJsonStart(c: number): string {
  if (c === 0x7b) return "an object";
  if (c === 0x22) return "a string";
  return `'${String.fromCharCode(c)}'`;
}

function asciiCode(ch: string, what: string): number {
  if (ch.length !== 1 || ch.charCodeAt(0) > 0x7f) {
    throw new RangeError(`${what} must be a single ASCII character, got ${JSON.stringify(ch)}`);
  }
  return ch.charCodeAt(0);
}

/** Creates the scanner for a format. */
export function createScanner(
  format: SplitFormat,
  width: 1 | 2 = 1,
  onWarning?: (warning: SplitWarning) => void,
): RecordScanner {
  switch (format.kind) {
    case "csv":
      return new CsvScanner(format.delimiter ?? ",", format.quote ?? '"', {
        unitWidth: width,
        ...(onWarning ? { onWarning } : {}),
      });
    case "ndjson":
      return new NdjsonScanner();
    case "json-array":
      return new JsonArrayScanner(width);
  }
}

/** Converts bytes to code units (UTF-16), carrying an odd trailing byte. */
class UnitDecoder {
  private carry: number | null = null;
  constructor(private readonly width: 1 | 2, private readonly littleEndian: boolean) {}

  /** Code units of `bytes` (the same array for 1-byte encodings). */
  units(bytes: Uint8Array): Units {
    if (this.width === 1) return bytes;
    const src = this.carry === null ? bytes : concatBytes(Uint8Array.of(this.carry), bytes);
    const count = src.length >> 1;
    this.carry = src.length % 2 === 1 ? src[src.length - 1]! : null;
    const out = new Uint16Array(count);
    const [hi, lo] = this.littleEndian ? [1, 0] : [0, 1];
    for (let k = 0, j = 0; k < count; k++, j += 2) out[k] = (src[j + hi]! << 8) | src[j + lo]!;
    return out;
  }
}

/** Holds the bytes of the chunk being built (only used by {@link chunkStream}). */
class ByteQueue {
  private parts: Uint8Array[] = [];
  /**
   * @param startOffset absolute offset of parts[0][0]
   * @param done told of each part whose bytes have all been taken or dropped
   */
  constructor(private startOffset = 0, private readonly done?: (part: Uint8Array) => void) {}

  #shift(): void {
    const part = this.parts.shift()!;
    this.done?.(part);
  }

  push(bytes: Uint8Array): void {
    if (bytes.length > 0) this.parts.push(bytes);
  }

  /**
   * Removes and returns the bytes [start, end) (absolute); start must be the queue start.
   * `alloc` gives the buffer to fill (of exactly the length asked for).
   */
  take(end: number, alloc?: (size: number) => Uint8Array): Uint8Array {
    const want = end - this.startOffset;
    const out = alloc ? alloc(want) : new Uint8Array(want);
    if (out.length !== want) throw new RangeError(`alloc gave ${out.length} bytes for ${want}`);
    let filled = 0;
    while (filled < want) {
      const part = this.parts[0]!;
      const n = Math.min(part.length, want - filled);
      out.set(n === part.length ? part : part.subarray(0, n), filled);
      filled += n;
      if (n === part.length) this.#shift();
      else this.parts[0] = part.subarray(n);
    }
    this.startOffset = end;
    return out;
  }

  /** Removes the bytes [start, end) without copying them anywhere. */
  drop(end: number): void {
    let left = end - this.startOffset;
    while (left > 0) {
      const part = this.parts[0]!;
      if (part.length <= left) {
        this.#shift();
        left -= part.length;
      } else {
        this.parts[0] = part.subarray(left);
        left = 0;
      }
    }
    this.startOffset = end;
  }
}

/** What {@link chunkStream} does with each chunk's bytes. */
export interface ChunkBytesOptions {
  /** Whether chunk `index`'s bytes are wanted (default: all); others come as empty arrays. */
  keep?: (index: number) => boolean;
  /** The buffer to copy a chunk's bytes into, of exactly `size` bytes (default: a new one). */
  alloc?: (size: number) => Uint8Array;
}

/** Resolves options to the values the splitter runs with. */
function resolveOptions(options: SplitOptions, first: Uint8Array) {
  const detected = detectEncoding(first, options.encoding ?? "utf-8");
  const encoding = options.encoding ?? detected.encoding;
  const bom = detected.encoding === encoding ? detected.bomLength : 0;
  const target = Math.max(1, options.targetChunkBytes ?? DEFAULT_CHUNK_BYTES);
  const max = options.maxChunkBytes ?? Math.max(64 * 1024 * 1024, target * 4);
  return { encoding, bom, target, max, width: unitWidth(encoding) };
}

/**
 * Core loop shared by {@link splitStream} and {@link chunkStream}: yields boundaries, and the
 * bytes when `keepBytes` is set.
 */
async function* run(
  stream: ReadableStream<Uint8Array>,
  options: SplitOptions,
  keepBytes: boolean,
  { keep, alloc }: ChunkBytesOptions = {},
): AsyncGenerator<Chunk> {
  const resume = options.resume;
  if (resume && !options.encoding) throw new TypeError("split: resume needs the encoding");
  const reader = new RecyclingReader(stream);
  let head = await readAtLeast(reader, 4);
  const { bom, target, max, width, encoding } = resolveOptions(options, head.bytes);
  const scanner = createScanner(options.format, width, options.onWarning);
  if (resume) scanner.resumeAt(resume.firstLine - 1, resume.firstRecord - 1);
  const queue = new ByteQueue(resume?.start ?? 0, (part) => reader.release(part));
  const units = new UnitDecoder(width, encoding !== "utf-16be");
  const targetUnits = Math.max(1, Math.ceil(target / width));
  let unitBase = resume ? resume.start / width : 0; // absolute unit offset of the current buffer
  let chunkStart = unitBase; // absolute unit offset of the current chunk
  let index = resume?.index ?? 0;
  let firstLine = resume?.firstLine ?? 1;
  let firstRecord = resume?.firstRecord ?? 1;
  let skip = resume ? 0 : Math.floor(bom / width);
  const emit = (endUnit: number): Chunk => {
    const boundary: ChunkBoundary = {
      index: index++,
      start: chunkStart * width,
      end: endUnit * width,
      firstRecord,
      firstLine,
    };
    firstLine = scanner.lines + 1;
    firstRecord = scanner.records + 1;
    chunkStart = endUnit;
    if (!keepBytes) return { boundary, bytes: EMPTY };
    if (keep && !keep(boundary.index)) {
      queue.drop(boundary.end);
      return { boundary, bytes: EMPTY };
    }
    return { boundary, bytes: queue.take(boundary.end, alloc) };
  };
  try {
    for (;;) {
      const bytes = head.bytes.length > 0 ? head.bytes : null;
      if (bytes !== null) {
        if (keepBytes) queue.push(bytes); // given back to the reader once taken or dropped
        const u = units.units(bytes);
        if (scanner instanceof JsonArrayScanner || scanner instanceof CsvScanner) {
          scanner.setBase(unitBase);
        }
        let pos = Math.min(skip, u.length);
        skip -= pos;
        for (;;) {
          const stopAt = Math.max(pos, chunkStart + targetUnits - 1 - unitBase);
          const cut = scanner.scan(u, pos, stopAt);
          if (cut < 0) break;
          yield emit(unitBase + cut);
          pos = cut;
        }
        unitBase += u.length;
        if (!keepBytes) reader.release(bytes);
        if ((unitBase - chunkStart) * width > max) {
          throw new SplitError(
            "record_too_large",
            chunkStart * width,
            firstLine,
            `no record boundary within ${max} bytes after line ${firstLine} ` +
              "(unbalanced quote or a record larger than the limit)",
          );
        }
      }
      if (head.done) break;
      head = await readAtLeast(reader, 1);
    }
    scanner.finish(unitBase);
    if (unitBase > chunkStart) yield emit(unitBase);
  } finally {
    reader.releaseLock();
  }
}

const EMPTY: Uint8Array = new Uint8Array(0);

/** Bytes a read asks for from a byte stream. */
const READ_BYTES = 256 * 1024;
/** Read buffers kept for later reads. */
const READ_SPARE = 4;

/**
 * Reads a stream. From a byte stream (a file's, say) it reads into buffers of its own that
 * are given back ({@link RecyclingReader.release}) once their bytes are used, instead of
 * taking a fresh 64 KiB buffer from the stream for every read, whose memory would be faulted
 * in anew each time.
 */
class RecyclingReader {
  readonly #byob: ReadableStreamBYOBReader | null;
  readonly #plain: ReadableStreamDefaultReader<Uint8Array> | null;
  readonly #spare: ArrayBuffer[] = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    let byob: ReadableStreamBYOBReader | null = null;
    try {
      byob = stream.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream: its own buffers.
    }
    this.#byob = byob;
    this.#plain = byob ? null : stream.getReader();
  }

  /** The next bytes (never empty), or `null` at the end. */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      if (this.#byob) {
        const buffer = this.#spare.pop() ?? new ArrayBuffer(READ_BYTES);
        r = await this.#byob.read(new Uint8Array(buffer));
      } else {
        r = await this.#plain!.read();
      }
      if (r.done) return null;
      if (r.value.length > 0) return r.value;
    }
  }

  /** Gives back bytes of an earlier read, all used (others are ignored). */
  release(bytes: Uint8Array): void {
    const buffer = bytes.buffer;
    if (
      this.#byob && buffer instanceof ArrayBuffer && buffer.byteLength === READ_BYTES &&
      !buffer.detached && this.#spare.length < READ_SPARE
    ) {
      this.#spare.push(buffer);
    }
  }

  releaseLock(): void {
    (this.#byob ?? this.#plain)!.releaseLock();
  }
}

/** Reads until at least `min` bytes or the end of the stream. */
async function readAtLeast(
  reader: RecyclingReader,
  min: number,
): Promise<{ bytes: Uint8Array; done: boolean }> {
  let bytes: Uint8Array = EMPTY;
  while (bytes.length < min) {
    const read = await reader.read();
    if (read === null) return { bytes, done: true };
    if (bytes.length === 0) {
      bytes = read;
    } else {
      bytes = concatBytes(bytes, read);
      reader.release(read);
    }
  }
  return { bytes, done: false };
}

/**
 * Splits a byte stream into chunk boundaries at record boundaries. Memory: scanner state only
 * (plus the stream's own buffers); the bytes are not kept. Chunks are at least
 * `targetChunkBytes` long (except the last) and end at the first record boundary after that.
 * An empty file yields no chunk (CSV, NDJSON) or throws {@link NotJsonArrayError}.
 */
export async function* splitStream(
  stream: ReadableStream<Uint8Array>,
  options: SplitOptions,
): AsyncGenerator<ChunkBoundary> {
  for await (const chunk of run(stream, options, false)) yield chunk.boundary;
}

/**
 * Like {@link splitStream} but also yields each chunk's bytes (those `bytes.keep` wants, in a
 * buffer from `bytes.alloc` when given), holding at most one chunk (plus the current input
 * buffer) in memory. Useful when the bytes cannot be re-read by range.
 */
export function chunkStream(
  stream: ReadableStream<Uint8Array>,
  options: SplitOptions,
  bytes: ChunkBytesOptions = {},
): AsyncGenerator<Chunk> {
  return run(stream, options, true, bytes);
}
