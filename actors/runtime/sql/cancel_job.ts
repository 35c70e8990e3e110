import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

/**
 * Asks job `id` to stop: a queued job is cancelled at once (with `error`), a running one gets
 * `cancel_requested` and its handler hears of it through `notifyCancel`. Returns the job's
 * status after the update and its group, or undefined when it was neither queued nor running.
 */
export async function requestCancel(
  db: SqlExecutor,
  t: Tables,
  id: string,
  error: unknown,
): Promise<{ status: string; group_id: string | null } | undefined> {
  const rows = await db.query<{ status: string; group_id: string | null }>(
    `UPDATE ${t.jobs} SET cancel_requested = true, updated_at = now(),
         status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
         error = CASE WHEN status = 'queued' THEN $2::jsonb ELSE error END,
         finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
       WHERE id = $1 AND status IN ('queued', 'running') RETURNING status, group_id`,
    [id, JSON.stringify(error)],
  );
  return rows[0];
}

/** Tells every process listening that job `id` must stop (see `Tables.cancelChannel`). */
export async function notifyCancel(db: SqlExecutor, t: Tables, id: string): Promise<void> {
  await db.query(`SELECT pg_notify('${t.cancelChannel}', $1)`, [id]);
}

/** The jobs among `ids` whose cancel was requested. */
export async function cancelRequested(
  db: SqlExecutor,
  t: Tables,
  ids: readonly string[],
): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `SELECT id FROM ${t.jobs} WHERE id = ANY($1::text[]) AND cancel_requested`,
    [[...ids]],
  );
  return rows.map((r) => r.id);
}
