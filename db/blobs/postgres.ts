/**
 * Blobs in PostgreSQL (PGlite, node-postgres or Neon), as 1 MiB parts. An upload writes its
 * parts under a fresh upload id as it streams (memory: one part), a bounded number of parts of
 * all uploads at a time, then one statement adds the blob rows of the uploads that end
 * together, or, when the same content exists already, refreshes it, and the new parts are
 * dropped. Parts of an upload that never finished are invisible (no blob row points at them) and are removed by
 * `sweepOrphans` (the cleanup actor calls it).
 */
import { Buffer } from "node:buffer";
import {
  NotFoundError,
  PayloadTooLargeError,
  type SqlDatabase,
  type SqlExecutor,
  uuidv7,
} from "@troupe/runtime";
import type { CopyOut } from "@troupe/runtime/postgres";
import {
  type BlobInfo,
  type BlobStore,
  bufferFor,
  type PutOptions,
  type PutResult,
  SHA256_HEX,
} from "./port.ts";
import { streamHash } from "./hashing.ts";
import { GroupCommit } from "../group_commit.ts";

export const PART_SIZE = 1 << 20;
/** Parts written at once by default: a pool of 10 (the default) keeps 2 for the rest. */
export const PART_WRITERS = 8;

/** Part buffers kept for reuse. */
const SPARE_PARTS = 16;

/** At most `n` calls of `run` at once; the others wait their turn, in order. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(n: number) {
    this.#free = Math.max(1, n);
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((go) => this.#waiting.push(go));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

export class PostgresBlobStore implements BlobStore {
  readonly kind = "postgres" as const;
  readonly #db: SqlDatabase;
  readonly #partSize: number;

  /**
   * Blob rows of uploads that end together, in one statement (db/group_commit.ts): one commit,
   * which waits for its flush, for all of them. Stored again when present: its time of
   * storing is refreshed under the row's lock, so `collect` (which deletes only rows stored
   * before its grace) keeps it; a row that `collect` deleted first is inserted anew, with this
   * upload's parts. Of two uploads of the same content in one batch, the first one's row is
   * stored and the second is told its content was there.
   */
  readonly #rows: GroupCommit<NewBlobRow, boolean>;

  /** Parts being written, by every upload together, and the writes waiting for a turn. */
  readonly #writers: Slots;
  /** Buffers of parts that were sent, to be filled again (fresh memory costs). */
  readonly #spare: Uint8Array[] = [];

  /**
   * `writers`: parts written at once by all uploads together (a connection each). Under the
   * pool's size, so that the statements that end an upload (its blob's row, its dataset) and
   * everything else find a connection without waiting behind every upload's parts.
   */
  constructor(
    db: SqlDatabase,
    { partSize = PART_SIZE, writers = PART_WRITERS }: { partSize?: number; writers?: number } = {},
  ) {
    this.#db = db;
    this.#partSize = partSize;
    this.#writers = new Slots(writers);
    this.#rows = new GroupCommit({
      write: (rows) => insertBlobRows(db, rows),
      parallel: db.shared ? 2 : 1,
    });
  }

  async put(body: ReadableStream<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const uploadId = uuidv7();
    // Hashed a part at a time, in the hashing worker (./hashing.ts).
    const hash = streamHash();
    // Taken as the body's bytes come; each part's buffer goes with its insert, and is given
    // back once the part is sent.
    let part: Uint8Array | null = null;
    let filled = 0;
    let parts = 0;
    let size = 0;
    // Parts go as bytes: node-postgres sends a byte array as a binary parameter. Neon's
    // driver, a fork of it that no benchmark here measures, gets base64 (native in V8,
    // decoded by the server in C). Two inserts may be in flight while the body is read on.
    // Parts are stored uncompressed (migration 0007).
    const inflight = new Set<Promise<void>>();
    let failed: unknown = null;
    const base64 = this.#db.dialect === "neon";
    const flush = async () => {
      if (filled === 0) return;
      const bytes = part!.subarray(0, filled);
      await hash.update(bytes);
      const param = base64 ? toBase64(bytes) : bytes;
      const sent = part!;
      if (!base64) part = null;
      filled = 0;
      // A part's commit does not wait for its flush to disk (`synchronous_commit` off for
      // its own transaction): nothing reads a part before its blob's row commits, and that
      // commit, which waits for its flush, flushes the log up to it, the parts' records
      // with it.
      const p: Promise<void> = this.#writers.run(() =>
        this.#db.query(
          `WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
         INSERT INTO troupe_blob_parts (upload_id, part, data)
         SELECT $1, $2, ${base64 ? "decode($3, 'base64')" : "$3::bytea"} FROM async`,
          [uploadId, parts++, param],
        )
      ).then(() => {
        inflight.delete(p);
        // Sent: its buffer fills another part, of this upload or another.
        if (!base64 && this.#spare.length < SPARE_PARTS) this.#spare.push(sent);
      }, (err) => {
        inflight.delete(p);
        failed ??= err;
      });
      inflight.add(p);
      if (inflight.size >= 2) await Promise.race(inflight);
      if (failed) throw failed;
    };
    try {
      const reader = body.getReader();
      try {
        while (true) {
          options.signal?.throwIfAborted();
          const { value, done } = await reader.read();
          if (done) break;
          size += value.byteLength;
          if (options.maxBytes !== undefined && size > options.maxBytes) {
            throw new PayloadTooLargeError(options.maxBytes);
          }
          for (let off = 0; off < value.byteLength;) {
            const n = Math.min(this.#partSize - filled, value.byteLength - off);
            part ??= this.#spare.pop() ?? new Uint8Array(this.#partSize);
            part.set(value.subarray(off, off + n), filled);
            filled += n;
            off += n;
            if (filled === this.#partSize) await flush();
          }
        }
      } finally {
        reader.releaseLock();
      }
      await flush();
      const digest = hash.digest();
      digest.catch(() => {}); // awaited below, unless a part's insert fails first
      await Promise.all(inflight);
      if (failed) throw failed;
      const sha256 = await digest;
      // The blob's row, with those of the uploads that end meanwhile (`#rows`); the parts of
      // an upload whose content was there already are dropped after it, or, should that
      // fail, by `sweepOrphans` (no row points at them).
      const created = await this.#rows.add({ sha256, uploadId, size, partSize: this.#partSize });
      if (!created) await dropParts(this.#db, uploadId).catch(() => {});
      return { sha256, size, created };
    } catch (err) {
      hash.drop();
      await Promise.all(inflight);
      await dropParts(this.#db, uploadId).catch(() => {});
      await body.cancel().catch(() => {});
      throw err;
    }
  }

  async stat(sha256: string, { tx }: { tx?: SqlExecutor } = {}): Promise<BlobInfo | null> {
    const row = await this.#row(sha256, tx);
    return row ? { sha256, size: row.size } : null;
  }

  async bytes(
    sha256: string,
    range: { start?: number; end?: number } = {},
    into?: Uint8Array,
  ): Promise<Uint8Array> {
    const r = await this.#range(sha256, range);
    // Sized (and a wrong-sized `into` refused) before any part is read.
    const out = bufferFor(Math.max(0, r.stop - r.start), into);
    // Straight into `out`, a part's range at a time.
    for (let pos = r.start; pos < r.stop;) {
      pos += (await this.#part(sha256, r, pos, out.subarray(pos - r.start))).byteLength;
    }
    return out;
  }

  /**
   * The bytes of range `r` from `pos` to the end of the part holding `pos` (or of `out`, when
   * shorter): into `out` when given (a view of it is returned), else in a buffer of their own. Only the bytes asked for
   * are read: parts are stored uncompressed (migration 0007), so the server reads just their
   * pages, and a chunk of a dataset, which straddles two parts, reads its own size.
   *
   * PGlite gives a bytea as bytes. Over the wire it is read with a binary COPY where the driver
   * has one (node-postgres), else as base64 decoded natively (`setFromBase64`): node-postgres
   * reads a bytea row value as hex, a string twice its size that it decodes in JavaScript.
   */
  async #part(
    sha256: string,
    r: BlobRange,
    pos: number,
    out?: Uint8Array,
  ): Promise<Uint8Array> {
    const index = Math.floor(pos / r.row.part_size);
    const from = pos - index * r.row.part_size;
    const length = Math.min(r.row.part_size - from, r.stop - pos, out?.length ?? Infinity);
    const params = [r.row.upload_id, index, from + 1, length];
    const missing = () => new Error(`blob ${sha256} is missing part ${index}`);
    if (this.#db.dialect === "pglite") {
      const rows = await this.#db.query<{ data: Uint8Array }>(
        `SELECT substring(data FROM $3::int FOR $4::int) AS data FROM troupe_blob_parts
         WHERE upload_id = $1 AND part = $2`,
        params,
      );
      const data = rows[0]?.data;
      if (!data || data.byteLength === 0) throw missing();
      if (out) {
        out.set(data);
        return out.subarray(0, data.byteLength);
      }
      // A view into a pooled or shared buffer is copied: the reader gets bytes of its own.
      const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      return own ? data : new Uint8Array(data);
    }
    const dest = (out ?? new Uint8Array(length)).subarray(0, length);
    const copyOut = (this.#db as SqlDatabase & CopyOut).copyOut;
    if (copyOut && UUID.test(r.row.upload_id)) {
      // COPY's binary format: the part's bytes as they are stored, copied from the driver's
      // read buffer into `dest` (a row result would come as text: base64 1.33× the bytes, and
      // a string of it). COPY takes no parameters: the id is a UUID (checked), the rest are
      // integers.
      // In rows of COPY_PIECE bytes: the driver gathers each row in one buffer, which it
      // grows by doubling, so a part in one row would cost ~4 MB of allocations a read.
      const sink = binaryValues(dest);
      const last = from + length;
      await copyOut.call(
        this.#db,
        `COPY (SELECT substring(p.data FROM g FOR least(${COPY_PIECE}, ${last + 1} - g))
           FROM troupe_blob_parts p, generate_series(${from + 1}, ${last}, ${COPY_PIECE}) g
           WHERE p.upload_id = '${r.row.upload_id}' AND p.part = ${index} ORDER BY g)
         TO STDOUT (FORMAT binary)`,
        sink.write,
      );
      const n = sink.end();
      if (n === 0) throw missing();
      return dest.subarray(0, n);
    }
    const rows = await this.#db.query<{ data: string | null }>(
      `SELECT encode(substring(data FROM $3::int FOR $4::int), 'base64') AS data
       FROM troupe_blob_parts WHERE upload_id = $1 AND part = $2`,
      params,
    );
    const text = rows[0]?.data;
    const n = text ? base64Into(text, dest) : 0;
    if (n === 0) throw missing();
    return dest.subarray(0, n);
  }

  async read(
    sha256: string,
    range: { start?: number; end?: number } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    return this.#stream(sha256, await this.#range(sha256, range));
  }

  /** The blob's row and the range clamped to it; `NotFoundError` for an unknown blob. */
  async #range(
    sha256: string,
    { start = 0, end }: { start?: number; end?: number },
  ): Promise<BlobRange> {
    const row = await this.#row(sha256);
    if (!row) throw new NotFoundError("blob", sha256);
    return { row, start: Math.max(0, start), stop: Math.min(end ?? row.size, row.size) };
  }

  /**
   * The bytes of range `r`, a part's worth at a time. A byte stream: a reader that brings its
   * own buffer (the dataset splitter does, and uses it again) is read into, up to the end of
   * the part, instead of a fresh buffer for every part; a default reader gets a part (or what
   * is left of it) in a buffer of its own each read.
   */
  #stream(sha256: string, r: BlobRange): ReadableStream<Uint8Array> {
    let pos = r.start;
    return new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: r.row.part_size,
      pull: async (controller) => {
        const request = controller.byobRequest!;
        if (pos >= r.stop) {
          controller.close();
          request.respond(0);
          return;
        }
        const view = request.view!;
        const into = new Uint8Array(
          view.buffer,
          view.byteOffset,
          Math.min(view.byteLength, r.stop - pos),
        );
        const n = (await this.#part(sha256, r, pos, into)).byteLength;
        pos += n;
        request.respond(n);
      },
    });
  }

  async collect(
    sha256: string,
    { graceMs, tx }: { graceMs: number; tx?: SqlExecutor },
  ): Promise<boolean> {
    const run = async (tx: SqlExecutor) => {
      const rows = await tx.query<{ upload_id: string }>(
        `DELETE FROM troupe_blobs
         WHERE sha256 = $1 AND touched_at <= now() - make_interval(secs => $2)
         RETURNING upload_id`,
        [sha256, graceMs / 1000],
      );
      if (!rows[0]) return false;
      await dropParts(tx, rows[0].upload_id);
      return true;
    };
    return tx ? await run(tx) : await this.#db.transaction(run);
  }

  async #row(sha256: string, db: SqlExecutor = this.#db): Promise<BlobRow | null> {
    if (!SHA256_HEX.test(sha256)) return null;
    const rows = await db.query<BlobRow>(
      "SELECT upload_id, size::float8 AS size, part_size FROM troupe_blobs WHERE sha256 = $1",
      [sha256],
    );
    return rows[0] ?? null;
  }
}

/** What an upload's end writes: its blob's row. */
interface NewBlobRow {
  sha256: string;
  uploadId: string;
  size: number;
  partSize: number;
}

/**
 * Inserts `rows` (or refreshes those present) in one statement; for each, whether its upload's
 * parts are the blob's.
 */
async function insertBlobRows(db: SqlExecutor, rows: readonly NewBlobRow[]): Promise<boolean[]> {
  // One row a content: a statement may not touch a row twice.
  const first = new Map<string, NewBlobRow>();
  for (const r of rows) if (!first.has(r.sha256)) first.set(r.sha256, r);
  const unique = [...first.values()];
  const stored = await db.query<{ sha256: string; upload_id: string }>(
    `INSERT INTO troupe_blobs (sha256, upload_id, size, part_size)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[])
     ON CONFLICT (sha256) DO UPDATE SET touched_at = now() RETURNING sha256, upload_id`,
    [
      unique.map((r) => r.sha256),
      unique.map((r) => r.uploadId),
      unique.map((r) => r.size),
      unique.map((r) => r.partSize),
    ],
  );
  const owner = new Map(stored.map((r) => [r.sha256, r.upload_id]));
  return rows.map((r) => owner.get(r.sha256) === r.uploadId);
}

interface BlobRow {
  upload_id: string;
  size: number;
  part_size: number;
}

/**
 * Decodes base64 (PostgreSQL's, with a line feed every 76 characters) into `out`; the bytes
 * written. Native (`Uint8Array.prototype.setFromBase64`, which skips the line feeds) where
 * there is one, else node's Buffer.
 */
function base64Into(text: string, out: Uint8Array): number {
  const native = (out as Uint8Array & {
    setFromBase64?: (s: string) => { read: number; written: number };
  }).setFromBase64;
  if (native) {
    const { read, written } = native.call(out, text);
    if (read !== text.length) throw new Error("blob part: more bytes than its range");
    return written;
  }
  const bytes = Buffer.from(text, "base64");
  if (bytes.length > out.length) throw new Error("blob part: more bytes than its range");
  out.set(bytes);
  return bytes.length;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** `PGCOPY\n\xff\r\n\0`, flags (4 bytes), header extension length (4 bytes). */
const COPY_HEADER = 19;

/** The bytes of a row of a part's binary COPY: under a socket read (64 KiB) with its framing. */
const COPY_PIECE = 65_000;

/**
 * The bytea values of a one-column binary COPY, one after the other, written into `out` as
 * their bytes come (`write`); `end` gives the bytes written (0 for no row or only nulls).
 */
function binaryValues(out: Uint8Array): { write(piece: Uint8Array): void; end(): number } {
  const header = new Uint8Array(COPY_HEADER);
  let h = 0;
  // A row's field count (2 bytes) and its value's length (4 bytes).
  const field = new Uint8Array(6);
  const view = new DataView(field.buffer);
  let f = 0;
  let left = 0;
  let n = 0;
  let ended = false;
  return {
    write(piece) {
      for (let off = 0; off < piece.byteLength;) {
        if (h < COPY_HEADER) {
          const k = Math.min(COPY_HEADER - h, piece.byteLength - off);
          header.set(piece.subarray(off, off + k), h);
          h += k;
          off += k;
          if (h === COPY_HEADER && (header[0] !== 0x50 || header.at(-1) || header.at(-2))) {
            throw new Error("blob part: not a binary COPY without header extension");
          }
        } else if (left > 0) {
          const k = Math.min(left, piece.byteLength - off);
          if (n + k > out.length) throw new Error("blob part: more bytes than its range");
          out.set(piece.subarray(off, off + k), n);
          n += k;
          left -= k;
          off += k;
        } else if (ended) {
          throw new Error("blob part: bytes after the COPY's end");
        } else {
          const k = Math.min((f < 2 ? 2 : 6) - f, piece.byteLength - off);
          field.set(piece.subarray(off, off + k), f);
          f += k;
          off += k;
          if (f === 2 && view.getInt16(0) === -1) [ended, f] = [true, 0];
          else if (f === 2 && view.getInt16(0) !== 1) throw new Error("blob part: not one column");
          else if (f === 6) [left, f] = [Math.max(0, view.getInt32(2)), 0];
        }
      }
    },
    end() {
      if (!ended || left > 0) throw new Error("blob part: the COPY ended early");
      return n;
    },
  };
}

/** A blob's row and a byte range of it, clamped to its size. */
interface BlobRange {
  row: BlobRow;
  start: number;
  stop: number;
}

async function dropParts(db: SqlExecutor, uploadId: string): Promise<void> {
  await db.query("DELETE FROM troupe_blob_parts WHERE upload_id = $1", [uploadId]);
}

/** Deletes parts of uploads that never finished, older than `olderThanMs`. */
export async function sweepOrphans(db: SqlExecutor, olderThanMs = 86_400_000): Promise<number> {
  const rows = await db.query<{ n: number }>(
    `WITH d AS (
       DELETE FROM troupe_blob_parts p
       WHERE p.created_at < now() - make_interval(secs => $1)
         AND NOT EXISTS (SELECT 1 FROM troupe_blobs b WHERE b.upload_id = p.upload_id)
       RETURNING 1)
     SELECT count(*)::int AS n FROM d`,
    [olderThanMs / 1000],
  );
  return rows[0]?.n ?? 0;
}

/** Native base64 (`Uint8Array.prototype.toBase64`, V8 ≥ 13.x), else node's Buffer. */
function toBase64(bytes: Uint8Array): string {
  const native = (bytes as Uint8Array & { toBase64?: () => string }).toBase64;
  return native ? native.call(bytes) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    .toString("base64");
}
