import type { SqlExecutor } from "../ports.ts";
import { type QueuedMessage, queuedMessage, type QueuedRow } from "./insert_jobs.ts";
import type { Tables } from "./tables.ts";

/** Deletes the outbox rows of messages the transport now holds (its `afterCommit` resolved). */
export async function deleteOutbox(
  db: SqlExecutor,
  t: Tables,
  jobIds: readonly string[],
): Promise<void> {
  await db.query(`DELETE FROM ${t.outbox} WHERE job_id = ANY($1::text[])`, [[...jobIds]]);
}

/**
 * Outbox rows older than `minAgeMs` (a crash between commit and publish left them; a younger
 * one may be in a publish right now), oldest first, at most 500.
 */
export async function pendingOutbox(
  db: SqlExecutor,
  t: Tables,
  minAgeMs = 1000,
): Promise<QueuedMessage[]> {
  const rows = await db.query<QueuedRow>(
    `SELECT j.id, j.actor, j.key, j.run_at, j.traceparent, j.tracestate
       FROM ${t.outbox} o JOIN ${t.jobs} j ON j.id = o.job_id
       WHERE o.created_at < now() - $1 * interval '1 millisecond'
       ORDER BY o.created_at LIMIT 500`,
    [minAgeMs],
  );
  return rows.map(queuedMessage);
}

/**
 * The messages among `jobIds` that have an outbox row (committed, not yet published), to
 * publish right after the commit that made them.
 */
export async function outboxed(
  db: SqlExecutor,
  t: Tables,
  jobIds: readonly string[],
): Promise<QueuedMessage[]> {
  if (jobIds.length === 0) return [];
  const rows = await db.query<QueuedRow>(
    `SELECT j.id, j.actor, j.key, j.run_at, j.traceparent, j.tracestate
       FROM ${t.outbox} o JOIN ${t.jobs} j ON j.id = o.job_id
       WHERE o.job_id = ANY($1::text[])`,
    [[...jobIds]],
  );
  return rows.map(queuedMessage);
}
