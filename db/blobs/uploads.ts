/**
 * Direct uploads: a tenant asks for a presigned URL (routes/uploads.ts), its client `PUT`s the
 * file to the bucket, and a dataset is made of it once (`claimUpload`). Rows are tenant-scoped:
 * another tenant's id is not found.
 */
import type { SqlExecutor } from "@troupe/runtime";

export interface DirectUpload {
  id: string;
  tenantId: string | null;
  key: string;
  filename: string;
  contentType: string;
  size: number;
  expiresAt: Date;
  usedAt: Date | null;
}

export async function createUpload(
  db: SqlExecutor,
  u: Omit<DirectUpload, "usedAt">,
): Promise<void> {
  await db.query(
    `INSERT INTO troupe_uploads (id, tenant_id, key, filename, content_type, size, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [u.id, u.tenantId, u.key, u.filename, u.contentType, u.size, u.expiresAt.toISOString()],
  );
}

interface Row {
  id: string;
  tenant_id: string | null;
  key: string;
  filename: string;
  content_type: string;
  size: string | number;
  expires_at: string | Date;
  used_at: string | Date | null;
}

const COLUMNS = "id, tenant_id, key, filename, content_type, size, expires_at, used_at";

function fromRow(r: Row): DirectUpload {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    key: r.key,
    filename: r.filename,
    contentType: r.content_type,
    size: Number(r.size),
    expiresAt: new Date(r.expires_at),
    usedAt: r.used_at === null ? null : new Date(r.used_at),
  };
}

/** The tenant's upload `id`, or null (unknown, or another tenant's). */
export async function findUpload(
  db: SqlExecutor,
  id: string,
  tenantId: string | null,
): Promise<DirectUpload | null> {
  const rows = await db.query<Row>(
    `SELECT ${COLUMNS} FROM troupe_uploads WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2`,
    [id, tenantId],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

/**
 * Marks the tenant's upload used, when it is unused and unexpired: one dataset per upload,
 * whatever requests race for it. Null when it was not (`findUpload` tells why).
 */
export async function claimUpload(
  db: SqlExecutor,
  id: string,
  tenantId: string | null,
): Promise<DirectUpload | null> {
  const rows = await db.query<Row>(
    `UPDATE troupe_uploads SET used_at = now()
     WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $2 AND used_at IS NULL
       AND expires_at > now()
     RETURNING ${COLUMNS}`,
    [id, tenantId],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

/** Gives a claimed upload back (the dataset was not made of it: the client may try again). */
export async function releaseUpload(db: SqlExecutor, id: string): Promise<void> {
  await db.query("UPDATE troupe_uploads SET used_at = NULL WHERE id = $1", [id]);
}
