import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

/** Where a pushed message stands before it is claimed. */
export interface DeliveryState {
  key: string;
  actor: string;
  status: string;
  /** Its success is in the ledger. */
  processed: boolean;
  /** Milliseconds until it is due (0 when due). */
  wait_ms: number;
  /** Its actor is paused (see `pauses.ts`). */
  paused: boolean;
}

/** The job `id` as a delivery sees it, or undefined when there is no such job. */
export async function deliveryState(
  db: SqlExecutor,
  t: Tables,
  id: string,
): Promise<DeliveryState | undefined> {
  const rows = await db.query<DeliveryState>(
    `SELECT j.key, j.actor, j.status, EXISTS (
         SELECT 1 FROM ${t.processed} p WHERE p.message_id = j.id) AS processed,
         greatest(0, ceil(extract(epoch FROM j.run_at - now()) * 1000))::int AS wait_ms,
         EXISTS (SELECT 1 FROM ${t.pauses} a WHERE a.actor = j.actor) AS paused
       FROM ${t.jobs} j WHERE j.id = $1`,
    [id],
  );
  return rows[0];
}

/** Whether message `id` is in the ledger (it committed once, its job row may be gone). */
export async function wasProcessed(db: SqlExecutor, t: Tables, id: string): Promise<boolean> {
  const seen = await db.query(`SELECT 1 FROM ${t.processed} WHERE message_id = $1`, [id]);
  return seen.length > 0;
}

/** The status of job `id`, or undefined. */
export async function jobStatus(
  db: SqlExecutor,
  t: Tables,
  id: string,
): Promise<string | undefined> {
  const rows = await db.query<{ status: string }>(`SELECT status FROM ${t.jobs} WHERE id = $1`, [
    id,
  ]);
  return rows[0]?.status;
}
