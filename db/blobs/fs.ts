/**
 * Blobs as files under a directory: `<dir>/<ab>/<sha256>`. An upload streams into a temporary
 * file while it is hashed, is flushed to disk, then renamed into place (atomic), so a crash
 * never leaves a partial blob under its final name. Temporary files of crashed uploads are
 * removed when the store opens.
 */
import { dirname, join } from "node:path";
import { NotFoundError, PayloadTooLargeError } from "@troupe/runtime";
import {
  type BlobInfo,
  type BlobStore,
  bufferFor,
  type PutOptions,
  type PutResult,
  SHA256_HEX,
} from "./port.ts";
import { streamHash } from "./hashing.ts";

/** Bytes an upload gathers before it writes them to its file. */
const WRITE_BYTES = 1024 * 1024;

export class FsBlobStore implements BlobStore {
  readonly kind = "fs" as const;
  readonly #dir: string;
  readonly #tmp: string;
  #ready: Promise<void> | null = null;

  constructor(dir: string) {
    this.#dir = dir;
    this.#tmp = join(dir, "tmp");
  }

  #init(): Promise<void> {
    return this.#ready ??= (async () => {
      await Deno.remove(this.#tmp, { recursive: true }).catch(() => {});
      await Deno.mkdir(this.#tmp, { recursive: true });
    })();
  }

  #path(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new NotFoundError("blob", sha256);
    return join(this.#dir, sha256.slice(0, 2), sha256);
  }

  async put(body: ReadableStream<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    await this.#init();
    const tmp = join(this.#tmp, crypto.randomUUID());
    const file = await Deno.open(tmp, { write: true, createNew: true });
    // Hashed a write at a time, in the hashing worker (./hashing.ts).
    const hash = streamHash();
    let done = false;
    try {
      const size = await writeGathered(file, body, {
        seen: (bytes) => hash.update(bytes),
        maxBytes: options.maxBytes,
        signal: options.signal,
      });
      const digest = hash.digest();
      digest.catch(() => {}); // awaited below, unless the sync fails first
      await file.sync();
      file.close();
      done = true;
      const sha256 = await digest;
      const target = this.#path(sha256);
      const created = !await exists(target);
      // Stored again even when present: the same bytes under a fresh modification time,
      // which tells `collect` that an upload wants them (and replaces any it just took away).
      await renameInto(tmp, target);
      return { sha256, size, created };
    } catch (err) {
      hash.drop();
      if (!done) file.close();
      await Deno.remove(tmp).catch(() => {});
      await body.cancel().catch(() => {});
      throw err;
    }
  }

  async stat(sha256: string): Promise<BlobInfo | null> {
    if (!SHA256_HEX.test(sha256)) return null;
    try {
      return { sha256, size: (await Deno.stat(this.#path(sha256))).size };
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
  }

  async bytes(
    sha256: string,
    range: { start?: number; end?: number } = {},
    into?: Uint8Array,
  ): Promise<Uint8Array> {
    const { file, length } = await this.#openRange(sha256, range);
    try {
      // Read straight into the buffer: its pages are first touched by the reading thread,
      // not this one (Deno.readFile would copy the whole file here, into fresh memory).
      const out = bufferFor(length, into);
      for (let at = 0; at < out.length;) {
        const n = await file.read(out.subarray(at));
        if (n === null) throw new Error(`blob ${sha256} ended ${out.length - at} bytes early`);
        at += n;
      }
      return out;
    } finally {
      file.close();
    }
  }

  async read(
    sha256: string,
    range: { start?: number; end?: number } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const { file, length } = await this.#openRange(sha256, range);
    let left = length;
    // A byte stream: a reader that brings its own buffer (the dataset splitter does, and uses
    // it again) is read into, instead of a fresh 256 KiB buffer each read.
    return new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: 256 * 1024,
      async pull(controller) {
        const request = controller.byobRequest!;
        const view = request.view!;
        const into = new Uint8Array(view.buffer, view.byteOffset, Math.min(left, view.byteLength));
        const n = left <= 0 ? null : await file.read(into);
        if (n === null) {
          file.close();
          controller.close();
          request.respond(0);
          return;
        }
        left -= n;
        request.respond(n);
      },
      cancel() {
        file.close();
      },
    });
  }

  /** The blob's file, at `start`, and how many bytes of it the range holds. */
  async #openRange(
    sha256: string,
    { start = 0, end }: { start?: number; end?: number },
  ): Promise<{ file: Deno.FsFile; length: number }> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#path(sha256), { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw new NotFoundError("blob", sha256);
      throw err;
    }
    try {
      const total = (await file.stat()).size;
      const from = Math.max(0, start);
      if (from > 0) await file.seek(from, Deno.SeekMode.Start);
      return { file, length: Math.max(0, Math.min(end ?? total, total) - from) };
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /**
   * Moves the blob aside first, then looks at its time: a put that renamed fresh bytes into
   * place before the move shows a recent time, and the file is linked back; a put after it
   * stores the bytes anew. A file is never removed while its time is within the grace.
   */
  async collect(sha256: string, { graceMs }: { graceMs: number }): Promise<boolean> {
    if (!SHA256_HEX.test(sha256)) return false;
    await this.#init();
    const target = this.#path(sha256);
    const aside = join(this.#tmp, `${crypto.randomUUID()}.collect`);
    try {
      await Deno.rename(target, aside);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
    const stored = (await Deno.stat(aside)).mtime?.getTime() ?? 0;
    if (stored > Date.now() - graceMs) {
      await Deno.link(aside, target).catch((err) => {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      });
      await Deno.remove(aside);
      return false;
    }
    await Deno.remove(aside);
    return true;
  }
}

/**
 * Gathering buffers of WRITE_BYTES, in `SharedArrayBuffer`s (the hashing worker reads them in
 * place), given back when an upload ends and kept for the next ones, up to KEPT_BUFFERS: fresh
 * memory costs this thread a page fault a page, more than the copy into it.
 */
const buffers: Uint8Array[] = [];
const KEPT_BUFFERS = 32;

function takeBuffer(): Uint8Array {
  return buffers.pop() ?? new Uint8Array(new SharedArrayBuffer(WRITE_BYTES));
}

function giveBack(buffer: Uint8Array): void {
  if (buffers.length < KEPT_BUFFERS) buffers.push(buffer);
}

/**
 * Writes `body` into `file` and returns its size. Small reads are gathered into writes of
 * WRITE_BYTES: each write is a trip to a blocking thread, and with 20 uploads at once those
 * trips were most of an upload. Two buffers: one is written while the body fills the other.
 * `seen` is given each write's bytes as the write starts; they stay unchanged until both the
 * write and the promise `seen` returns have ended (a hash may read them in place meanwhile).
 * Over `maxBytes` throws `PayloadTooLargeError`; the file is neither synced nor closed here,
 * and on a failure no write, nor `seen`'s promise, is still running when this throws.
 */
export async function writeGathered(
  file: Deno.FsFile,
  body: ReadableStream<Uint8Array>,
  { seen, maxBytes, signal }: {
    seen?: (bytes: Uint8Array) => void | Promise<void>;
    maxBytes?: number | undefined;
    signal?: AbortSignal | undefined;
  } = {},
): Promise<number> {
  let size = 0;
  let batch = takeBuffer();
  let spare: Uint8Array | null = null;
  let filled = 0;
  /** The last batch's write and `seen`: its buffer is refilled once they end. */
  let writing: Promise<unknown> | null = null;
  const write = async (bytes: Uint8Array) => {
    await writing;
    const seeing = seen?.(bytes);
    writing = seeing ? bothEnded(seeing, writeAll(file, bytes)) : writeAll(file, bytes);
    writing.catch(() => {}); // awaited before the next write, or at the end
  };
  try {
    const reader = body.getReader();
    try {
      while (true) {
        signal?.throwIfAborted();
        const { value, done } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (maxBytes !== undefined && size > maxBytes) throw new PayloadTooLargeError(maxBytes);
        let from = 0;
        while (from < value.byteLength) {
          const n = Math.min(value.byteLength - from, WRITE_BYTES - filled);
          batch.set(value.subarray(from, from + n), filled);
          filled += n;
          from += n;
          if (filled === WRITE_BYTES) {
            const full = batch;
            await write(full);
            batch = spare ?? takeBuffer();
            spare = full;
            filled = 0;
          }
        }
      }
    } finally {
      reader.releaseLock();
    }
    await write(batch.subarray(0, filled));
    await writing;
    return size;
  } catch (err) {
    await (writing as Promise<unknown> | null)?.catch(() => {});
    throw err;
  } finally {
    // Both are free: the last write and its `seen` have ended, whichever way.
    giveBack(batch);
    if (spare) giveBack(spare);
  }
}

/**
 * Renames `tmp` to `target`, making `target`'s directory only when the rename finds it absent
 * (one `mkdir` fewer a file where it is there).
 */
export async function renameInto(tmp: string, target: string): Promise<void> {
  try {
    await Deno.rename(tmp, target);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    await Deno.mkdir(dirname(target), { recursive: true });
    await Deno.rename(tmp, target);
  }
}

/** Resolves once both have ended, or rejects once both have ended and one failed. */
async function bothEnded(a: Promise<void>, b: Promise<void>): Promise<void> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === "rejected") throw x.reason;
  if (y.status === "rejected") throw y.reason;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.byteLength;) off += await file.write(bytes.subarray(off));
}

/** Whether a path exists (other errors, such as permissions, are thrown). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
