import { IdempotencyKeyReusedError } from "../errors.ts";
import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

/**
 * Refuses repeats of idempotency keys whose first request was another one: each row's job
 * exists already (its insert was skipped) and must carry the same request hash. A job stored
 * without a hash (enqueued before hashes were kept) accepts any repeat.
 */
export async function checkRepeats(
  tx: SqlExecutor,
  t: Tables,
  repeats: readonly { id: string; hash: string; key: string }[],
): Promise<void> {
  if (repeats.length === 0) return;
  const stored = await tx.query<{ id: string; request_hash: string | null }>(
    `SELECT id, request_hash FROM ${t.jobs} WHERE id = ANY($1::text[])`,
    [repeats.map((r) => r.id)],
  );
  const byId = new Map(stored.map((r) => [r.id, r.request_hash]));
  for (const { id, hash, key } of repeats) {
    const first = byId.get(id);
    if (first && first !== hash) throw new IdempotencyKeyReusedError(key);
  }
}
