/**
 * Who holds a blob, and the collection of blobs nobody holds.
 *
 * Blobs are content-addressed: tenant A's dataset and tenant B's course may be the same bytes,
 * stored once. So no owner removes a blob itself. An owner holds its blobs in the transaction
 * that creates it ({@linkcode holdBlobs}) and releases them in the one that deletes it
 * ({@linkcode releaseBlobs}); `system.cleanup` calls {@linkcode collectBlobs}, which removes a
 * blob only when no owner of any kind or tenant holds it and it was neither stored nor
 * released within the grace period.
 *
 * Why the grace period: an upload stores its bytes before the transaction holding them
 * commits (a course stores every file first). Until then the blob is held by nobody, and
 * collecting it would lose an accepted upload.
 *
 * Why the lock: holding and collecting take the same per-blob advisory lock (shared to hold,
 * exclusive to collect), and the holder checks that the blob is still there under it. A
 * collection and a hold of one blob are thus in some order: either the collector sees the
 * hold, or the holder sees the blob gone and fails the upload (a 503: send it again) instead
 * of keeping a reference to nothing.
 */
import { type SqlDatabase, type SqlExecutor, TroupeError } from "@troupe/runtime";
import type { BlobStore } from "./port.ts";

/** The first key of the per-blob advisory locks (the second is the blob's hash). */
const LOCK_CLASS = 7_316_009;

/** What holds a blob. */
export interface BlobOwner {
  kind: "dataset" | "course" | "document";
  id: string;
  tenantId: string | null;
}

/** A blob an upload stored was collected before the upload's reference committed. */
export class BlobGoneError extends TroupeError {
  constructor(sha256: string) {
    super(
      "UPLOAD_LOST",
      `the uploaded file ${sha256} was removed before it was saved: send it again`,
    );
  }
}

/**
 * Records that an upload stored `sha256` now: unless something holds it by the end of the
 * grace period, it is collected (an upload that failed after storing its file leaves nothing).
 */
export async function noteStored(db: SqlExecutor, sha256: string): Promise<void> {
  await noteAllStored(db, [sha256]);
}

/** {@linkcode noteStored} for several blobs, in one statement. */
export async function noteAllStored(db: SqlExecutor, sha256s: readonly string[]): Promise<void> {
  if (sha256s.length === 0) return;
  await db.query(
    `INSERT INTO troupe_blob_candidates (sha256, since)
     SELECT DISTINCT s, now() FROM unnest($1::text[]) AS s
     ON CONFLICT (sha256) DO UPDATE SET since = now()`,
    [[...sha256s]],
  );
}

/**
 * Holds `sha256s` for `owner`, in `tx` (the owner's creating transaction). Throws
 * {@linkcode BlobGoneError} when one of them is no longer stored.
 */
export async function holdBlobs(
  tx: SqlExecutor,
  blobs: BlobStore,
  owner: BlobOwner,
  sha256s: readonly string[],
): Promise<void> {
  await holdAllBlobs(tx, blobs, [{ owner, sha256s }]);
}

/**
 * {@linkcode holdBlobs} for several owners in one transaction: every blob locked (in one
 * statement), checked, then every reference inserted in one statement.
 */
export async function holdAllBlobs(
  tx: SqlExecutor,
  blobs: BlobStore,
  holds: readonly { owner: BlobOwner; sha256s: readonly string[] }[],
): Promise<void> {
  // In one order, so two holders of the same blobs cannot wait on each other.
  const all = [...new Set(holds.flatMap((h) => h.sha256s))].sort();
  if (all.length === 0) return;
  await tx.query(
    "SELECT pg_advisory_xact_lock_shared($1, hashtext(s)) FROM unnest($2::text[]) AS s",
    [LOCK_CLASS, all],
  );
  for (const sha256 of all) {
    if (!await blobs.stat(sha256, { tx })) throw new BlobGoneError(sha256);
  }
  const refs = holds.flatMap(({ owner, sha256s }) =>
    [...new Set(sha256s)].map((sha256) => [sha256, owner.kind, owner.id, owner.tenantId])
  );
  await tx.query(
    `INSERT INTO troupe_blob_refs (sha256, owner_kind, owner_id, tenant_id)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
     ON CONFLICT DO NOTHING`,
    [0, 1, 2, 3].map((c) => refs.map((r) => r[c])),
  );
}

/**
 * Releases every blob `owner` holds, in `tx` (the owner's deleting transaction). The blobs
 * stay stored: those no other owner holds are collected after the grace period.
 */
export async function releaseBlobs(
  tx: SqlExecutor,
  owner: Pick<BlobOwner, "kind" | "id">,
): Promise<void> {
  await tx.query(
    `WITH gone AS (
       DELETE FROM troupe_blob_refs WHERE owner_kind = $1 AND owner_id = $2 RETURNING sha256)
     INSERT INTO troupe_blob_candidates (sha256, since) SELECT DISTINCT sha256, now() FROM gone
     ON CONFLICT (sha256) DO UPDATE SET since = now()`,
    [owner.kind, owner.id],
  );
}

/** Options of {@linkcode collectBlobs}. */
export interface CollectOptions {
  /** A blob stored or released more recently than this is kept. */
  graceMs: number;
  /** Most blobs looked at in one call. @default 1000 */
  limit?: number;
  signal?: AbortSignal;
}

/**
 * Removes the blobs that no owner holds and that were not stored or released within the
 * grace period, with what was derived from their bytes alone (extracted PDF pages). Returns
 * how many candidates were looked at (at most `limit`; fewer: none are due any more) and how
 * many blobs were removed.
 */
export async function collectBlobs(
  db: SqlDatabase,
  blobs: BlobStore,
  { graceMs, limit = 1000, signal }: CollectOptions,
): Promise<{ examined: number; removed: number }> {
  const secs = graceMs / 1000;
  const due = await db.query<{ sha256: string }>(
    `SELECT sha256 FROM troupe_blob_candidates
     WHERE since <= now() - make_interval(secs => $1) ORDER BY since LIMIT $2`,
    [secs, limit],
  );
  let removed = 0;
  for (const { sha256 } of due) {
    if (signal?.aborted) break;
    if (await collectOne(db, blobs, sha256, graceMs)) removed++;
  }
  return { examined: due.length, removed };
}

/**
 * Removes those of `sha256s` that no owner holds now, whenever they were released (an
 * operator's deletion of a tenant); one stored by an upload within `graceMs` is kept (an
 * upload of the same bytes by someone else may be about to hold it) and left to
 * {@linkcode collectBlobs}. Returns how many were removed.
 */
export async function collectUnheld(
  db: SqlDatabase,
  blobs: BlobStore,
  sha256s: readonly string[],
  { graceMs }: { graceMs: number },
): Promise<number> {
  let removed = 0;
  for (const sha256 of sha256s) {
    if (await collectOne(db, blobs, sha256, graceMs, 0)) removed++;
  }
  return removed;
}

/**
 * Collects one candidate blob in its own transaction: true when it was removed. A candidate
 * noted less than `candidateGraceMs` ago, a held blob, or one stored within `graceMs` stays.
 */
async function collectOne(
  db: SqlDatabase,
  blobs: BlobStore,
  sha256: string,
  graceMs: number,
  candidateGraceMs = graceMs,
): Promise<boolean> {
  return await db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [LOCK_CLASS, sha256]);
    // Statements from here see every hold that committed before the lock was granted.
    const picked = await tx.query(
      `DELETE FROM troupe_blob_candidates
       WHERE sha256 = $1 AND since <= now() - make_interval(secs => $2) RETURNING 1`,
      [sha256, candidateGraceMs / 1000],
    );
    if (!picked[0]) return false;
    const held = await tx.query("SELECT 1 FROM troupe_blob_refs WHERE sha256 = $1 LIMIT 1", [
      sha256,
    ]);
    if (held[0]) return false;
    if (await blobs.stat(sha256, { tx }) === null) {
      await tx.query("DELETE FROM troupe_pdf_pages WHERE sha256 = $1", [sha256]);
      return false;
    }
    if (!await blobs.collect(sha256, { graceMs, tx })) {
      // Stored again meanwhile by an upload that has not noted it yet: look again later.
      await noteStored(tx, sha256);
      return false;
    }
    await tx.query("DELETE FROM troupe_pdf_pages WHERE sha256 = $1", [sha256]);
    return true;
  });
}
