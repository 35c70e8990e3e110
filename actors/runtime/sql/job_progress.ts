import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

/** Writes a running job's progress, unless its lease (`fence`) moved on. */
export async function writeProgress(
  db: SqlExecutor,
  t: Tables,
  job: { id: string; fence: number },
  percent: number,
  message: string | null,
): Promise<void> {
  await db.query(
    `UPDATE ${t.jobs} SET progress = $2, progress_message = $3, updated_at = now()
         WHERE id = $1 AND status = 'running' AND lease_fence = $4`,
    [job.id, percent, message, job.fence],
  );
}

/**
 * Records that a suspect job's handler starts under lease `fence` (see `reapJobs`: a later
 * lost lease counts against it only then).
 */
export async function markStarted(
  db: SqlExecutor,
  t: Tables,
  job: { id: string; fence: number },
): Promise<void> {
  await db.query(
    `UPDATE ${t.jobs} SET started_fence = $2 WHERE id = $1 AND lease_fence = $2`,
    [job.id, job.fence],
  );
}
