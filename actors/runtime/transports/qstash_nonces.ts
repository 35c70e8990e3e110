/**
 * The ids of the QStash signatures already accepted (`troupe_webhook_nonces`, a table of
 * `qstashMigrations`), so that a signed delivery replayed within its validity is
 * refused.
 *
 * Invariants: an id is accepted once across every instance sharing the database (the primary
 * key decides); it is kept at least until its signature expires (the application deletes
 * expired ids, Troupe's `system.cleanup`).
 *
 * @module
 */
import type { SqlExecutor } from "../ports.ts";
import { SCHEMA_NAME } from "../sql/tables.ts";

/** The nonce table's name in `schema` (unqualified in `public`, as the runtime's tables). */
export function nonceTable(schema = "public"): string {
  if (!SCHEMA_NAME.test(schema)) throw new TypeError(`schema ${JSON.stringify(schema)} is invalid`);
  return schema === "public" ? "troupe_webhook_nonces" : `"${schema}"."troupe_webhook_nonces"`;
}

/**
 * Records signature `jti`, valid until `exp` (seconds since the epoch), in `table`
 * ({@linkcode nonceTable}); false when it was recorded already (a replay).
 */
export async function claimSignatureId(
  db: SqlExecutor,
  jti: string,
  exp: number,
  table: string = nonceTable(),
): Promise<boolean> {
  const fresh = await db.query(
    `INSERT INTO ${table} (jti, expires_at) VALUES ($1, to_timestamp($2))
     ON CONFLICT (jti) DO NOTHING RETURNING jti`,
    [jti, exp],
  );
  return fresh.length > 0;
}
