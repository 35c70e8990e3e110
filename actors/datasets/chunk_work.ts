/**
 * The CPU part of a dataset chunk, as one pure function: parse, infer types, clean, write the
 * rows as COPY text (ids `idx × 2^32 + position`) and profile them. It runs in a worker
 * ({@link ChunkProcessor}) or in the calling thread; the handler keeps the I/O (blob read,
 * COPY, the message's transaction). Everything in and out is structured-cloneable, and
 * ingest errors come back as a value, not a throw, so they keep their code across threads.
 */
// Chunk workers load this module: the runtime's leaf modules, not its whole graph (~5 MB of
// heap a worker).
import { InputError } from "@troupe/runtime/errors";
import { copyText } from "@troupe/runtime/ports";
import {
  COMPUTE_STALL_MS,
  type SpawnerOption,
  WorkerCrashedError,
  WorkerLimitError,
  WorkerPool,
} from "@troupe/runtime/workers";
import {
  IngestError,
  parseChunk,
  type ParseOptions,
  RowError,
  type RowIssue,
} from "./ingest/mod.ts";
import {
  type CleaningRules,
  cleanRows,
  normalizeFitted,
  numberOf,
  plainNumber,
  planColumns,
} from "./ingest/clean.ts";
import {
  type ColumnType,
  isNullText,
  resolved,
  type ResolvedValueOptions,
  trimFast,
  TypeInference,
} from "./ingest/infer.ts";
import { csvBatches, NEEDS_CSV_PARSE } from "./ingest/parse.ts";
import { type ColumnProfile, TableProfile, type ValueType, valueType } from "./profile/mod.ts";

const encoder = new TextEncoder();

/** Row ids: chunk index × 2^32 + position in the chunk. */
export const ROW_ID_BASE = 2 ** 32;

export interface ChunkFailure {
  code: string;
  message: string;
  line?: number;
}

export interface ChunkJob {
  idx: number;
  parse: ParseOptions;
  cleaning: CleaningRules;
}

/** What a chunk came to, on either path. */
interface ChunkRows {
  /** Cleaned header (kept and renamed columns), the order of the rows' values. */
  header: string[];
  types: ColumnType[];
  rowCount: number;
  /** Bad rows dropped plus in-chunk duplicates. */
  skipped: number;
  errors: RowIssue[];
}

export type ChunkOutcome =
  | { kind: "failed"; failure: ChunkFailure }
  | ChunkRows & {
    kind: "done";
    /** `_row` then the columns, tab-separated, one line a row: UTF-8 bytes in segments, in
     * order (they move from a worker without a copy, and V8 frees them sooner than a large
     * string). */
    copy: Uint8Array[];
    /**
     * The chunk's profile (`TableProfileJSON`) as JSON text: one string crosses from a
     * worker, not an object graph of thousands of strings (the exact counts' keys) to clone
     * and collect in the main thread, and it is stored as it is.
     */
    profileJson: string;
  };

/**
 * An ingest library error (or an `InputError`) as the dataset's failure, or null for anything
 * else. Failures travel as values: an error thrown in a worker reaches the main thread as a
 * plain `Error`, without its class or code.
 */
export function ingestFailure(err: unknown): ChunkFailure | null {
  if (err instanceof InputError) return { code: err.code, message: err.message };
  if (err instanceof RowError) {
    return { code: "BAD_ROW", message: err.message, line: err.line };
  }
  if (err instanceof IngestError) {
    const code = "code" in err && typeof err.code === "string"
      ? err.code.toUpperCase()
      : "BAD_FILE";
    return {
      code,
      message: err.message,
      ...("line" in err && typeof err.line === "number" ? { line: err.line } : {}),
    };
  }
  return null;
}

/** The text stored for a cleaned value (the typed conversion happens at merge). */
export function cellText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

/** A chunk parsed, typed and cleaned (the insert path; the split's look at chunk 0). */
export type CleanOutcome =
  | { kind: "failed"; failure: ChunkFailure }
  | ChunkRows & {
    kind: "rows";
    /** The header as parsed, before cleaning drops or renames columns. */
    sourceHeader: string[];
    rows: unknown[][];
    /** Row hashes (aligned with `rows`) with duplicate-row removal. */
    hashes?: string[];
  };

/** Parses, infers types and cleans a chunk; an ingest error is the outcome, not a throw. */
export function cleanChunk(bytes: Uint8Array, job: ChunkJob): CleanOutcome {
  try {
    return cleanParsed(parseChunk(bytes, job.parse), job);
  } catch (err) {
    const failure = ingestFailure(err);
    if (!failure) throw err;
    return { kind: "failed", failure };
  }
}

/** A chunk's header and types, as `cleanChunk` gives them, without its rows. */
export type ChunkTypes =
  | { kind: "failed"; failure: ChunkFailure }
  | { kind: "types"; sourceHeader: string[]; header: string[]; types: ColumnType[] };

/** `cleanChunk`'s header and types (the split's look at chunk 0): the rows stay here. */
export function chunkTypes(bytes: Uint8Array, job: ChunkJob): ChunkTypes {
  const out = cleanChunk(bytes, job);
  if (out.kind === "failed") return out;
  return { kind: "types", sourceHeader: out.sourceHeader, header: out.header, types: out.types };
}

function cleanParsed(parsed: ReturnType<typeof parseChunk>, job: ChunkJob): CleanOutcome {
  const inference = new TypeInference(parsed.header.length, job.cleaning);
  inference.add(parsed.rows);
  const types = inference.stats().map((s) => s.type);
  const cleaned = cleanRows(parsed.header, parsed.rows, job.cleaning, types, { fitted: true });
  const plan = planColumns(parsed.header, job.cleaning);
  return {
    kind: "rows",
    sourceHeader: parsed.header,
    header: cleaned.header,
    types: plan.keep.map((i) => types[i] ?? "string"),
    rows: cleaned.rows,
    ...(cleaned.hashes ? { hashes: cleaned.hashes } : {}),
    rowCount: cleaned.rows.length,
    skipped: parsed.skipped + cleaned.duplicates,
    errors: parsed.errors,
  };
}

/** Rows a batch holds in {@link processChunk} (the rest of the chunk is not parsed yet). */
export const BATCH_ROWS = 1024;

/**
 * Parses, cleans, profiles a chunk and writes its COPY text, in one pass over the cleaned
 * rows: each value's text is made once and serves both the COPY line and the profile.
 *
 * Well-formed UTF-8 CSV (nearly every chunk) goes a batch of rows at a time, so that only a
 * batch is alive at once, never the chunk's rows (young-generation garbage, not promoted
 * data: the worker's heap stays small). Types are still the chunk's own: each batch's values
 * are classified before it is cleaned, and a batch that widens a column once rows were
 * written starts the chunk over with the wider types. A column only widens a few times (null
 * → integer → float → string), so that is rare and bounded; the result is the same as
 * typing the whole chunk first. Other chunks are parsed whole.
 */
export function processChunk(
  bytes: Uint8Array,
  job: ChunkJob,
  { batchRows = BATCH_ROWS }: { batchRows?: number } = {},
): ChunkOutcome {
  let batched;
  try {
    batched = processBatches(bytes, job, batchRows);
  } catch (err) {
    const failure = ingestFailure(err);
    if (!failure) throw err;
    return { kind: "failed", failure };
  }
  if (batched) return batched;
  const out = cleanChunk(bytes, job);
  if (out.kind === "failed") return out;
  const writer = new ChunkWriter(out.header, out.types, job.idx);
  writer.add(out.rows);
  return {
    kind: "done",
    header: out.header,
    types: out.types,
    skipped: out.skipped,
    errors: out.errors,
    ...writer.finish(),
  };
}

/** The batched path of {@link processChunk}; `null` when the chunk must be parsed whole. */
function processBatches(bytes: Uint8Array, job: ChunkJob, batchRows: number): ChunkOutcome | null {
  const source = csvBatches(bytes, job.parse, batchRows);
  if (!source) return null;
  const plan = planColumns(source.header, job.cleaning);
  const options = resolved(job.cleaning);
  const inference = new TypeInference(source.header.length, job.cleaning);
  let typed = -1; // the inference's widenings the writer's types stand for
  let types: ColumnType[] = [];
  let writer: ChunkWriter | null = null;
  for (;;) {
    const batch = source.next();
    if (batch === NEEDS_CSV_PARSE) return null;
    if (batch === null) break;
    inference.add(batch);
    if (inference.widenings !== typed) {
      typed = inference.widenings;
      if (writer) {
        // Rows were written with narrower types: again from the first row, typed wider.
        source.rewind();
        writer = null;
        continue;
      }
    }
    if (!writer) {
      types = inference.stats().map((s) => s.type);
      writer = new ChunkWriter(plan.header, plan.keep.map((i) => types[i] ?? "string"), job.idx);
    }
    if (job.cleaning.dropDuplicateRows) {
      writer.add(cleanRows(source.header, batch, job.cleaning, types, { fitted: true }).rows);
    } else {
      writer.addSource(batch, plan.keep, options);
    }
  }
  types = inference.stats().map((s) => s.type);
  const outTypes = plan.keep.map((i) => types[i] ?? "string");
  writer ??= new ChunkWriter(plan.header, outTypes, job.idx);
  return {
    kind: "done",
    header: plan.header,
    types: outTypes,
    skipped: source.skipped,
    errors: source.errors,
    ...writer.finish(),
  };
}

/**
 * A chunk's cleaned rows, as they come, into COPY text (row ids `idx × 2^32 + position`) and
 * the chunk's profile.
 */
class ChunkWriter {
  readonly #width: number;
  readonly #types: readonly ValueType[];
  readonly #profile: TableProfile;
  /** The profile's columns: each value goes to its column as it is written. */
  readonly #columns: readonly ColumnProfile[];
  readonly #w: CopyWriter;
  readonly #id: DecimalCounter;
  #rows = 0;

  constructor(header: readonly string[], types: readonly ColumnType[], idx: number) {
    this.#width = header.length;
    this.#types = types as readonly ValueType[];
    this.#profile = new TableProfile(header);
    this.#columns = this.#profile.positional;
    this.#w = new CopyWriter();
    this.#id = new DecimalCounter(idx * ROW_ID_BASE);
  }

  /** Cleaned rows (values in the header's order, normalised to the types). */
  add(rows: readonly (readonly unknown[])[]): void {
    const width = this.#width;
    const id = this.#id;
    for (let r = 0; r < rows.length; r++, id.increment()) {
      const row = rows[r]!;
      this.#w.digits(id);
      for (let k = 0; k < width; k++) this.#put(k, row[k]);
      this.#w.newline();
    }
    this.#rows += rows.length;
    this.#profile.countRows(rows.length);
  }

  /**
   * Rows as parsed (source columns, text values typed by the chunk's inference), cleaned as
   * `cleanRows(…, types, { fitted: true })` cleans them (`keep`: the plan's source columns),
   * without making the cleaned rows. A number whose text is already `String(number)` is
   * written as it came ({@link plainNumber}), not made again from the number.
   */
  addSource(
    rows: readonly (readonly unknown[])[],
    keep: readonly number[],
    o: ResolvedValueOptions,
  ): void {
    const width = this.#width;
    const id = this.#id;
    const types = this.#types;
    for (let r = 0; r < rows.length; r++, id.increment()) {
      const row = rows[r]!;
      this.#w.digits(id);
      for (let k = 0; k < width; k++) {
        const raw = row[keep[k]!];
        const type = types[k]!;
        if (typeof raw !== "string" || (type !== "integer" && type !== "float")) {
          this.#put(k, normalizeFitted(raw, type as ColumnType, o));
          continue;
        }
        const s = o.trim ? trimFast(raw) : raw;
        if (isNullText(s, o)) {
          this.#put(k, null);
          continue;
        }
        const v = plainNumber(s);
        if (v === v) this.#number(k, v, s); // written as it came
        else this.#number(k, numberOf(s));
      }
      this.#w.newline();
    }
    this.#rows += rows.length;
    this.#profile.countRows(rows.length);
  }

  /** Column `k`'s cleaned value of the row being written. */
  #put(k: number, v: unknown): void {
    // COPY bytes are written straight into a buffer: no line strings to join and encode.
    const w = this.#w;
    const column = this.#columns[k]!;
    if (v === null || v === undefined) {
      column.add(null, "null");
      w.asciiField("\\N");
    } else if (typeof v === "number") {
      this.#number(k, v);
    } else if (typeof v === "boolean") {
      column.add(v, "boolean");
      w.asciiField(v ? "true" : "false");
    } else {
      const t = typeof v === "string" ? v : JSON.stringify(v);
      column.add(t, valueType(t, this.#types[k]));
      w.textField(t);
    }
  }

  /** A number of column `k`; `text`: its `String()` when known. */
  #number(k: number, v: number, text?: string): void {
    const t = text ?? String(v);
    this.#columns[k]!.add(v, valueType(v, this.#types[k]), t);
    this.#w.asciiField(t);
  }

  finish(): { rowCount: number; copy: Uint8Array[]; profileJson: string } {
    const profileJson = JSON.stringify(this.#profile.toJSON());
    this.#profile.release(); // its buffers serve the next chunk's profile
    return { rowCount: this.#rows, copy: this.#w.segments(), profileJson };
  }
}

/**
 * The ASCII decimal digits of a non-negative safe integer that counts up by one: row ids
 * (`idx × 2^32 + position` is beyond V8's small integers, and `String()` of it per row cost
 * more than this carry).
 */
export class DecimalCounter {
  readonly digits = new Uint8Array(20);
  /** Where the digits start in {@link DecimalCounter.digits} (they end at its end). */
  start: number;

  constructor(value: number) {
    const s = String(value);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(value)) {
      throw new RangeError(`not a safe non-negative integer: ${s}`);
    }
    this.start = this.digits.length - s.length;
    for (let i = 0; i < s.length; i++) this.digits[this.start + i] = s.charCodeAt(i);
  }

  increment(): void {
    const d = this.digits;
    let i = d.length - 1;
    while (d[i] === 57) d[i--] = 48; // 9 → 0, carry
    if (i < this.start) {
      this.start = i;
      d[i] = 49;
    } else {
      d[i]!++;
    }
  }

  toString(): string {
    return String.fromCharCode(...this.digits.subarray(this.start));
  }
}

/**
 * Bytes a COPY segment holds (a longer value gets a segment of its own size). Below glibc's
 * mmap threshold, which `deno task start` fixes at 128 KiB: a buffer above it is mapped fresh
 * each time, and faulting its pages in costs more than writing them.
 */
export const COPY_SEGMENT_BYTES = 64 * 1024;

/**
 * Segments given back once their bytes were stored ({@link recycleSegments}), for this
 * thread's next chunks: memory already mapped, not new memory from malloc arenas, which grow
 * (and stay grown) while the main thread holds segments until its collector runs.
 */
const spare: ArrayBuffer[] = [];
/** Most spare segments a thread keeps (4 MiB). */
const MAX_SPARE = 64;

function segment(size: number): Uint8Array {
  const reused = size === COPY_SEGMENT_BYTES ? spare.pop() : undefined;
  return reused ? new Uint8Array(reused) : new Uint8Array(size);
}

/** Whether a buffer can serve as a COPY segment again (of the segment size, not moved away). */
function reusable(buffer: ArrayBuffer): boolean {
  return buffer.byteLength === COPY_SEGMENT_BYTES && !buffer.detached;
}

/** Takes back COPY segments whose bytes are stored (others, and any beyond the cap, are dropped). */
export function recycleSegments(buffers: readonly ArrayBuffer[]): void {
  for (const b of buffers) if (reusable(b) && spare.length < MAX_SPARE) spare.push(b);
}

/** Spare segments of this thread (tests). */
export function spareSegments(): number {
  return spare.length;
}

/**
 * COPY text as bytes, in segments of {@link COPY_SEGMENT_BYTES} (a value never spans two):
 * escapes as {@link copyText}, UTF-8 as TextEncoder.
 */
class CopyWriter {
  readonly #done: Uint8Array[] = [];
  #buf = segment(COPY_SEGMENT_BYTES);
  #pos = 0;

  /** Makes room for `n` more bytes in the current segment, starting a new one if need be. */
  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    if (this.#pos > 0) this.#done.push(this.#buf.subarray(0, this.#pos));
    this.#buf = segment(Math.max(COPY_SEGMENT_BYTES, n));
    this.#pos = 0;
  }

  newline(): void {
    this.#room(1);
    this.#buf[this.#pos++] = 10;
  }

  /** A counter's digits. */
  digits(counter: DecimalCounter): void {
    const d = counter.digits;
    this.#room(d.length - counter.start);
    const buf = this.#buf;
    let pos = this.#pos;
    for (let i = counter.start; i < d.length; i++) buf[pos++] = d[i]!;
    this.#pos = pos;
  }

  /**
   * A tab, then text known to be ASCII without tab, newline or CR (numbers, booleans, `\N`):
   * the field's separator and value with one check for room.
   */
  asciiField(s: string): void {
    const n = s.length;
    this.#room(n + 1);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = 9;
    for (let i = 0; i < n; i++) buf[pos++] = s.charCodeAt(i);
    this.#pos = pos;
  }

  /** A tab, then any text, escaped for COPY. */
  textField(s: string): void {
    const n = s.length;
    this.#room(2 * n + 1);
    const buf = this.#buf;
    buf[this.#pos++] = 9;
    const start = this.#pos;
    let pos = start;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        // Non-ASCII: the whole value through the escaper and the encoder.
        this.#pos = start;
        const escaped = copyText(s);
        this.#room(3 * escaped.length);
        this.#pos += encoder.encodeInto(escaped, this.#buf.subarray(this.#pos)).written;
        return;
      }
      if (c === 9 || c === 10 || c === 13 || c === 92) {
        buf[pos++] = 92;
        buf[pos++] = c === 9 ? 116 : c === 10 ? 110 : c === 13 ? 114 : 92;
      } else {
        buf[pos++] = c;
      }
    }
    this.#pos = pos;
  }

  /** The segments written, in order (the writer is done). */
  segments(): Uint8Array[] {
    if (this.#pos > 0) this.#done.push(this.#buf.subarray(0, this.#pos));
    this.#pos = 0;
    return this.#done;
  }
}

/**
 * A chunk worker's young generation, in MB. A chunk keeps one batch of rows alive, so a few
 * MB hold it: V8's default (up to ~64 MB) makes each worker's resident set larger without
 * making it faster, and a smaller one slows the worker down; 8 trades a few MB a worker for
 * speed (compare with `bench/profile_file.ts` on the 200 MB file, runs interleaved).
 */
export const CHUNK_WORKER_YOUNG_MB = 8;

/**
 * A chunk worker stops after this long without a chunk, so its heap is not held through a
 * dataset's merge (which follows its last chunk) or between uploads; starting one again takes
 * ~0.1 s.
 */
export const CHUNK_WORKER_IDLE_MS = 1000;

/**
 * Chunks a worker is given at once: the next one waits in the worker as it finishes one, so
 * the worker does not sit idle while its result and the next chunk go through the main
 * thread, which shares the cores with the workers.
 */
export const CHUNK_WORKER_DEPTH = 2;

/** Input buffers a {@link ChunkProcessor} keeps for later chunks. */
const INPUT_SPARE = 4;
/** Input buffers are made in multiples of this, so one fits the chunks of about its size. */
const INPUT_GRAIN = 64 * 1024;

/** Where chunks are processed: a pool of `workers`, or this thread when 0. */
export class ChunkProcessor {
  #pool: WorkerPool | null;
  #worked = false;
  /** Input buffers given back, for {@link ChunkProcessor.input}. */
  readonly #spare: ArrayBuffer[] = [];
  /** Buffers handed out by {@link ChunkProcessor.input}: wholly the caller's, so moved. */
  readonly #inputs = new WeakSet<ArrayBuffer>();

  /**
   * `url`: the worker module (tests). A chunk that takes its worker past `workerHeapMb` or
   * `taskTimeoutMs` fails with `DATASET_TOO_COMPLEX` (an {@link InputError}: not retried); in
   * this thread, a chunk's size is its bound.
   */
  constructor(
    workers: number,
    { url, workerHeapMb = 1024, taskTimeoutMs = 120_000, spawner }: {
      url?: URL;
      /** Starts the workers in another thread. @default this thread */
      spawner?: SpawnerOption;
      /** A worker's heap limit, in MB. @default 1024 */
      workerHeapMb?: number;
      /** A chunk's time limit in a worker, in ms. @default 120000 */
      taskTimeoutMs?: number;
    } = {},
  ) {
    this.#pool = workers > 0 && typeof Worker !== "undefined"
      ? new WorkerPool(url ?? new URL("./chunk_worker.ts", import.meta.url), workers, {
        youngGenerationMb: CHUNK_WORKER_YOUNG_MB,
        heapMb: workerHeapMb,
        taskTimeoutMs,
        stallMs: COMPUTE_STALL_MS, // parsing a chunk is computation only
        idleMs: CHUNK_WORKER_IDLE_MS,
        depth: CHUNK_WORKER_DEPTH,
        ...(spawner ? { spawner } : {}),
      })
      : null;
  }

  get workers(): number {
    return this.#pool?.size ?? 0;
  }

  /**
   * A buffer of `size` bytes for a chunk's input, to fill and give to {@link process}: a view
   * on the buffer of an earlier chunk when one is large enough, else a new one (sized up to
   * {@link INPUT_GRAIN}). An earlier chunk's pages are mapped already; a new 1 MiB buffer is
   * fresh memory whose pages fault in, for every chunk.
   */
  input(size: number): Uint8Array {
    const i = this.#spare.findIndex((b) => b.byteLength >= size);
    const buffer = i >= 0
      ? this.#spare.splice(i, 1)[0]!
      : new ArrayBuffer(Math.ceil((size + 1) / INPUT_GRAIN) * INPUT_GRAIN);
    this.#inputs.add(buffer);
    return new Uint8Array(buffer, 0, size);
  }

  /** Input buffers kept for later chunks (tests). */
  get spareInputs(): number {
    return this.#spare.length;
  }

  /** Keeps an input buffer whose bytes are read, for a later chunk. */
  #giveBack(buffer: ArrayBuffer | undefined): void {
    if (!buffer || buffer.detached || this.#spare.length >= INPUT_SPARE) return;
    if (buffer.byteLength % INPUT_GRAIN === 0) this.#spare.push(buffer);
  }

  process(bytes: Uint8Array, job: ChunkJob): Promise<ChunkOutcome> {
    const pool = this.#pool;
    const input = bytes.buffer as ArrayBuffer;
    if (!pool) {
      return Promise.resolve().then(() => {
        const out = processChunk(bytes, job);
        // Nothing of the outcome refers to the bytes (text is decoded into strings).
        if (this.#inputs.has(input)) this.#giveBack(input);
        return out;
      });
    }
    // The chunk's bytes are this call's own: move them instead of copying. The worker moves
    // them back with the outcome (`input`).
    const own = this.#inputs.has(input) ||
      (bytes.byteOffset === 0 && bytes.byteLength === input.byteLength);
    return pool.run<ChunkOutcome & { input?: ArrayBuffer }>(
      "process",
      [bytes, job],
      own ? [input] : [],
    )
      .then((out) => {
        this.#worked = true;
        this.#giveBack(out.input);
        delete out.input;
        return out;
      }, (err) => this.#failed(pool, err));
  }

  /**
   * A chunk's header and types (`chunkTypes`), worked out where chunks are processed: chunk 0's
   * parse, typing and cleaning never hold this thread when there is a pool. The bytes are
   * copied to the worker, not moved.
   */
  types(bytes: Uint8Array, job: ChunkJob): Promise<ChunkTypes> {
    const pool = this.#pool;
    if (!pool) return Promise.resolve().then(() => chunkTypes(bytes, job));
    return pool.run<ChunkTypes>("types", [bytes, job]).then((out) => {
      this.#worked = true;
      return out;
    }, (err) => this.#failed(pool, err));
  }

  /** What a pool's failure to work a chunk becomes (see `process`). */
  #failed(pool: WorkerPool, err: unknown): never {
    // Workers that never ran a chunk here (no worker support, a module that cannot load)
    // will not start to: this thread takes over. The message is retried as usual.
    if (err instanceof WorkerCrashedError && !this.#worked && this.#pool === pool) {
      this.#pool = null;
      pool.close();
    }
    if (err instanceof WorkerLimitError) {
      throw new InputError(
        "DATASET_TOO_COMPLEX",
        `a chunk of the dataset is too complex to process: ${err.message}`,
        { cause: err },
      );
    }
    throw err;
  }

  /**
   * Gives a chunk's COPY segments back once their bytes are stored: to a worker (moved), or to
   * this thread's spares. The caller must not touch them after.
   */
  recycle(segments: readonly Uint8Array[]): void {
    const buffers = [...new Set(segments.map((s) => s.buffer as ArrayBuffer))].filter(reusable);
    if (!buffers.length) return;
    if (!this.#pool) {
      recycleSegments(buffers);
      return;
    }
    this.#pool.run("recycle", [buffers], buffers).catch(() => {/* a closed pool: dropped */});
  }

  close(): void {
    this.#pool?.close();
  }
}
