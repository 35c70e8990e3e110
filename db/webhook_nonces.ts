/**
 * The ids of the QStash signatures already accepted (`troupe_webhook_nonces`, a table of the
 * QStash transport's migrations), so that a signed delivery replayed within its validity is
 * refused. Expired ids are deleted by `system.cleanup`.
 */
import type { SqlExecutor } from "@troupe/runtime";

/**
 * Records signature `jti`, valid until `exp` (seconds since the epoch); false when it was
 * recorded already (a replay).
 */
export async function claimSignatureId(
  db: SqlExecutor,
  jti: string,
  exp: number,
): Promise<boolean> {
  const fresh = await db.query(
    `INSERT INTO troupe_webhook_nonces (jti, expires_at) VALUES ($1, to_timestamp($2))
     ON CONFLICT (jti) DO NOTHING RETURNING jti`,
    [jti, exp],
  );
  return fresh.length > 0;
}
