import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

/**
 * One claim of a job: its lease's token and the attempt it counted (an unordered job's token is
 * its process's instance lease's, which two processes may share; the attempt tells them apart).
 */
export interface ClaimOf {
  id: string;
  fence: number;
  attempt: number;
}

/** Writes a running job's progress, unless its lease (`fence`) or its claim moved on. */
export async function writeProgress(
  db: SqlExecutor,
  t: Tables,
  job: ClaimOf,
  percent: number,
  message: string | null,
): Promise<void> {
  await db.query(
    `UPDATE ${t.jobs} SET progress = $2, progress_message = $3, updated_at = now()
         WHERE id = $1 AND status = 'running' AND lease_fence = $4 AND attempts = $5`,
    [job.id, percent, message, job.fence, job.attempt],
  );
}

/**
 * Records that a suspect job's handler starts under lease `fence` (see `reapJobs`: a later
 * lost lease counts against it only then).
 */
export async function markStarted(db: SqlExecutor, t: Tables, job: ClaimOf): Promise<void> {
  await db.query(
    `UPDATE ${t.jobs} SET started_fence = $2 WHERE id = $1 AND lease_fence = $2 AND attempts = $3`,
    [job.id, job.fence, job.attempt],
  );
}
