/**
 * Generated documents kept as files: a dataset's report, a monthly statement. The bytes are a
 * blob (content-addressed, db/blobs); a `troupe_documents` row per (tenant, kind, key) names
 * the blob and the version of the data it was made from, and holds it (db/blobs/refs.ts).
 *
 * Invariants:
 * - The row and its hold change in one transaction (the job's commit): a reader sees the old
 *   document or the new one, each with its blob held.
 * - A newer version replaces the row and releases the old blob, which is collected after the
 *   grace period unless something else holds the same bytes.
 * - A version is compared for equality only: the caller says what "current" is.
 */
import type { SqlExecutor } from "@troupe/runtime";
import type { BlobStore } from "../../db/blobs/port.ts";
import { holdBlobs, noteStored, releaseBlobs } from "../../db/blobs/refs.ts";

export type DocumentKind = "dataset_report" | "statement";

export interface StoredDocument {
  tenantId: string;
  kind: DocumentKind;
  key: string;
  version: string;
  sha256: string;
  size: number;
  contentType: string;
  fileName: string;
  jobId: string | null;
}

/** The stored file's facts, as a job's result carries them. */
export type DocumentFile = Pick<StoredDocument, "sha256" | "size" | "contentType" | "fileName">;

const owner = (d: Pick<StoredDocument, "tenantId" | "kind" | "key">) => ({
  kind: "document" as const,
  id: `${d.tenantId}:${d.kind}:${d.key}`,
  tenantId: d.tenantId,
});

interface Row {
  tenant_id: string;
  kind: DocumentKind;
  doc_key: string;
  version: string;
  sha256: string;
  size_bytes: string | number;
  content_type: string;
  file_name: string;
  job_id: string | null;
}

/** The stored document of (tenant, kind, key) at whatever version it is, or null. */
export async function findDocument(
  db: SqlExecutor,
  tenantId: string,
  kind: DocumentKind,
  key: string,
): Promise<StoredDocument | null> {
  const [r] = await db.query<Row>(
    `SELECT tenant_id, kind, doc_key, version, sha256, size_bytes, content_type, file_name, job_id
       FROM troupe_documents WHERE tenant_id = $1 AND kind = $2 AND doc_key = $3`,
    [tenantId, kind, key],
  );
  return r
    ? {
      tenantId: r.tenant_id,
      kind: r.kind,
      key: r.doc_key,
      version: r.version,
      sha256: r.sha256,
      size: Number(r.size_bytes),
      contentType: r.content_type,
      fileName: r.file_name,
      jobId: r.job_id,
    }
    : null;
}

/**
 * Stores `bytes` as a blob, noted as just stored (collected after the grace period unless
 * {@link recordDocument} holds it by then).
 */
export async function putDocumentBytes(
  db: SqlExecutor,
  blobs: BlobStore,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<{ sha256: string; size: number }> {
  const put = await blobs.put(new Blob([bytes]).stream());
  await noteStored(db, put.sha256);
  return { sha256: put.sha256, size: put.size };
}

/** Makes `doc` the stored document of its (tenant, kind, key), in `tx`. */
export async function recordDocument(
  tx: SqlExecutor,
  blobs: BlobStore,
  doc: StoredDocument,
): Promise<void> {
  const [old] = await tx.query<{ sha256: string }>(
    `SELECT sha256 FROM troupe_documents WHERE tenant_id = $1 AND kind = $2 AND doc_key = $3
     FOR UPDATE`,
    [doc.tenantId, doc.kind, doc.key],
  );
  if (old && old.sha256 !== doc.sha256) await releaseBlobs(tx, owner(doc));
  await holdBlobs(tx, blobs, owner(doc), [doc.sha256]);
  await tx.query(
    `INSERT INTO troupe_documents
       (tenant_id, kind, doc_key, version, sha256, size_bytes, content_type, file_name, job_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (tenant_id, kind, doc_key) DO UPDATE
        SET version = excluded.version, sha256 = excluded.sha256,
            size_bytes = excluded.size_bytes, content_type = excluded.content_type,
            file_name = excluded.file_name, job_id = excluded.job_id, created_at = now()`,
    [
      doc.tenantId,
      doc.kind,
      doc.key,
      doc.version,
      doc.sha256,
      doc.size,
      doc.contentType,
      doc.fileName,
      doc.jobId,
    ],
  );
}

/** Removes the document of (tenant, kind, key) and releases its blob, in `tx`. */
export async function dropDocument(
  tx: SqlExecutor,
  tenantId: string,
  kind: DocumentKind,
  key: string,
): Promise<void> {
  await tx.query(
    "DELETE FROM troupe_documents WHERE tenant_id = $1 AND kind = $2 AND doc_key = $3",
    [
      tenantId,
      kind,
      key,
    ],
  );
  await releaseBlobs(tx, owner({ tenantId, kind, key }));
}
