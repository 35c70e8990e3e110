/**
 * The blob port: uploaded files, content-addressed by SHA-256 (the same file twice is stored
 * once). Adapters: a directory on disk (embedded), PostgreSQL in parts (production: the
 * edge has no disk) and an S3-compatible bucket (db/blobs/s3.ts).
 *
 * Invariants every adapter keeps:
 * - `put` streams: memory stays bounded whatever the size; it resolves only once the blob is
 *   durable; past `maxBytes` it rejects with `PayloadTooLargeError` and keeps nothing; an
 *   aborted or failed upload keeps nothing visible.
 * - `read` streams the bytes `[start, end)` of a stored blob.
 * - A `put` of bytes already stored refreshes their time of storing, atomically with respect
 *   to `collect`: either the put keeps the blob (the collect then declines), or the collect
 *   removed it first and the put stores it anew. Either way the bytes are there afterwards.
 * - Nothing but `collect` removes a blob, and only the collector of unheld blobs
 *   (db/blobs/refs.ts) calls it: content is shared by every holder of the same bytes.
 */
import type { SqlExecutor } from "@troupe/runtime";

export interface BlobInfo {
  sha256: string;
  size: number;
}

export interface PutResult extends BlobInfo {
  /** False when the same content was stored already. */
  created: boolean;
}

export interface PutOptions {
  /** Reject beyond this many bytes. @default no limit */
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface BlobStore {
  readonly kind: "fs" | "postgres" | "s3";
  put(body: ReadableStream<Uint8Array>, options?: PutOptions): Promise<PutResult>;
  /** `tx`: as for `collect`, a transaction of the store's database to read through. */
  stat(sha256: string, options?: { tx?: SqlExecutor }): Promise<BlobInfo | null>;
  /** Throws `NotFoundError` for an unknown blob. `end` is exclusive. */
  read(
    sha256: string,
    range?: { start?: number; end?: number },
  ): Promise<ReadableStream<Uint8Array>>;
  /**
   * The bytes of a blob, or of `range`, in one buffer sized up front (a whole PDF, a dataset
   * chunk): no chunks gathered and joined on the caller's thread. `into`, when given, is that
   * buffer (of exactly the range's length, else `RangeError`). Throws `NotFoundError` for an
   * unknown blob.
   */
  bytes(
    sha256: string,
    range?: { start?: number; end?: number },
    into?: Uint8Array,
  ): Promise<Uint8Array>;
  /**
   * Removes a blob unless an upload stored it within the last `graceMs`; true when it was
   * removed. `tx`, for a store in the database, is the collector's transaction (its work
   * commits with it); other stores ignore it.
   */
  collect(sha256: string, options: { graceMs: number; tx?: SqlExecutor }): Promise<boolean>;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Reads `stream` into a buffer of exactly `size` bytes (`into` when given); throws when it
 * holds another amount.
 */
export async function readExactly(
  stream: ReadableStream<Uint8Array>,
  size: number,
  what: string,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const out = bufferFor(size, into);
  let at = 0;
  for await (const chunk of stream) {
    if (at + chunk.byteLength > size) throw new Error(`${what} holds more than ${size} bytes`);
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  if (at !== size) throw new Error(`${what} ended after ${at} of ${size} bytes`);
  return out;
}

/** `into` when it is `size` bytes long (else `RangeError`), or a new buffer of `size` bytes. */
export function bufferFor(size: number, into?: Uint8Array): Uint8Array {
  if (!into) return new Uint8Array(size);
  if (into.length !== size) {
    throw new RangeError(`the buffer holds ${into.length} bytes, the range ${size}`);
  }
  return into;
}
