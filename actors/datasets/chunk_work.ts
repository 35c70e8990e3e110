/**
 * The CPU part of a dataset chunk, as one pure function: parse, infer types, clean, write the
 * rows as COPY text (ids `idx × 2^32 + position`) and profile them. It runs in a worker
 * ({@link ChunkProcessor}) or in the calling thread; the handler keeps the I/O (blob read,
 * COPY, the message's transaction). Everything in and out is structured-cloneable, and
 * ingest errors come back as a value, not a throw, so they keep their code across threads.
 */
import { copyText } from "../runtime/ports.ts";
import { WorkerPool } from "../runtime/worker_pool.ts";
import { IngestError, parseChunk, type ParseOptions, RowError } from "./ingest/mod.ts";
import { type CleaningRules, cleanRows, planColumns } from "./ingest/clean.ts";
import { type ColumnType, TypeInference } from "./ingest/infer.ts";
import { TableProfile, type TableProfileJSON, type Value, type ValueType } from "./profile/mod.ts";

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

export type ChunkOutcome =
  | { kind: "failed"; failure: ChunkFailure }
  | {
    kind: "done";
    /** Cleaned header (kept and renamed columns), the order of the COPY text's fields. */
    header: string[];
    types: ColumnType[];
    rowCount: number;
    /** Bad rows dropped plus in-chunk duplicates. */
    skipped: number;
    errors: { line: number; message: string }[];
    /** `_row` then the columns, tab-separated, one line a row: UTF-8 bytes (they move from a
     * worker without a copy, and V8 frees them sooner than a large string). */
    copy: Uint8Array;
    profile: TableProfileJSON;
  };

/** An ingest library error as the dataset's failure, or null for anything else. */
export function ingestFailure(err: unknown): ChunkFailure | null {
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

/** A chunk parsed, typed and cleaned, for the insert path (duplicate-row removal). */
export type CleanOutcome =
  | { kind: "failed"; failure: ChunkFailure }
  | {
    kind: "rows";
    header: string[];
    types: ColumnType[];
    rows: unknown[][];
    /** Row hashes (aligned with `rows`) with duplicate-row removal. */
    hashes?: string[];
    rowCount: number;
    skipped: number;
    errors: { line: number; message: string }[];
  };

/** Parses, infers types and cleans a chunk. */
export function cleanChunk(bytes: Uint8Array, job: ChunkJob): CleanOutcome {
  let parsed;
  try {
    parsed = parseChunk(bytes, job.parse);
  } catch (err) {
    const failure = ingestFailure(err);
    if (!failure) throw err;
    return { kind: "failed", failure };
  }
  const inference = new TypeInference(parsed.header.length, job.cleaning);
  inference.add(parsed.rows);
  const types = inference.stats().map((s) => s.type);
  const cleaned = cleanRows(parsed.header, parsed.rows, job.cleaning, types);
  const plan = planColumns(parsed.header, job.cleaning);
  return {
    kind: "rows",
    header: cleaned.header,
    types: plan.keep.map((i) => types[i] ?? "string"),
    rows: cleaned.rows,
    ...(cleaned.hashes ? { hashes: cleaned.hashes } : {}),
    rowCount: cleaned.rows.length,
    skipped: parsed.skipped + cleaned.duplicates,
    errors: parsed.errors,
  };
}

/** COPY text of a chunk's rows: `_row` (`idx × 2^32 + position`) then the values. */
export function copyLines(idx: number, rows: readonly (readonly unknown[])[]): string {
  if (!rows.length) return "";
  const base = idx * ROW_ID_BASE;
  const lines: string[] = new Array(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    let line = String(base + r);
    for (let k = 0; k < row.length; k++) line += "\t" + copyText(cellText(row[k]));
    lines[r] = line;
  }
  return lines.join("\n") + "\n";
}

/**
 * Parses, cleans, profiles a chunk and writes its COPY text, in one pass over the cleaned
 * rows: each value's text is made once and serves both the COPY line and the profile.
 */
export function processChunk(bytes: Uint8Array, job: ChunkJob): ChunkOutcome {
  const out = cleanChunk(bytes, job);
  if (out.kind === "failed") return out;
  const { header, types, rows } = out;
  const width = header.length;
  const profile = new TableProfile(header);
  const valueTypes = types as readonly ValueType[];
  const values: Value[] = new Array(width);
  const texts: (string | null)[] = new Array(width);
  const base = job.idx * ROW_ID_BASE;
  const lines: string[] = new Array(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    let line = String(base + r);
    for (let k = 0; k < width; k++) {
      const v = row[k];
      if (v === null || v === undefined) {
        values[k] = null;
        texts[k] = null;
        line += "\t\\N";
      } else if (typeof v === "number") {
        const t = String(v);
        values[k] = v;
        texts[k] = t;
        line += "\t" + t;
      } else if (typeof v === "boolean") {
        values[k] = v;
        texts[k] = null;
        line += v ? "\ttrue" : "\tfalse";
      } else {
        const t = typeof v === "string" ? v : JSON.stringify(v);
        values[k] = t;
        texts[k] = null;
        line += "\t" + copyText(t);
      }
    }
    lines[r] = line;
    profile.addRow(values, valueTypes, texts);
  }
  return {
    kind: "done",
    header,
    types,
    rowCount: rows.length,
    skipped: out.skipped,
    errors: out.errors,
    copy: rows.length ? encoder.encode(lines.join("\n") + "\n") : new Uint8Array(0),
    profile: profile.toJSON(),
  };
}

/** Where chunks are processed: a pool of `workers`, or this thread when 0. */
export class ChunkProcessor {
  readonly #pool: WorkerPool | null;

  constructor(workers: number) {
    this.#pool = workers > 0 && typeof Worker !== "undefined"
      ? new WorkerPool(new URL("./chunk_worker.ts", import.meta.url), workers)
      : null;
  }

  get workers(): number {
    return this.#pool?.size ?? 0;
  }

  process(bytes: Uint8Array, job: ChunkJob): Promise<ChunkOutcome> {
    if (!this.#pool) return Promise.resolve().then(() => processChunk(bytes, job));
    // The chunk's bytes are this call's own: move them instead of copying.
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    return this.#pool.run<ChunkOutcome>(
      "process",
      [bytes, job],
      own ? [bytes.buffer as ArrayBuffer] : [],
    );
  }

  close(): void {
    this.#pool?.close();
  }
}
