import type { SqlExecutor } from "../ports.ts";

/** A UUIDv7-shaped, time-ordered id made in SQL (sorts with the ids made by `uuidv7()`). */
const UUIDV7_SQL = `(SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(h, 14, 3)
  || '-a' || substr(h, 18, 3) || '-' || substr(h, 21, 12)
  FROM (SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
    || md5(random()::text) AS h) AS t)`;

/**
 * Requeues running jobs whose lease is gone (their worker crashed or stalled past its lease).
 * The attempt counts: a job out of attempts goes to the dead letters; a job whose cancel was
 * requested is cancelled. Returns how many jobs were reaped.
 */
export async function reapJobs(db: SqlExecutor): Promise<number> {
  const error = JSON.stringify({
    code: "LEASE_EXPIRED",
    message: "the worker running this job stopped renewing its lease (crashed or stalled)",
    retryable: true,
    at: new Date().toISOString(),
  });
  const rows = await db.query<{ n: number }>(
    `WITH stale AS (
       SELECT j.id FROM troupe_jobs j
       WHERE j.status = 'running' AND NOT EXISTS (
         SELECT 1 FROM troupe_actor_state s
         WHERE s.key = j.key AND s.fence = j.lease_fence AND s.lease_until > now())
       FOR UPDATE OF j SKIP LOCKED
     ), upd AS (
       UPDATE troupe_jobs j SET
         status = CASE WHEN j.cancel_requested THEN 'cancelled'
           WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
         error = $1::jsonb, lease_owner = NULL, run_at = now(), updated_at = now(),
         finished_at = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts
           THEN now() END
       FROM stale WHERE j.id = stale.id
       RETURNING j.id, j.actor, j.key, j.tenant_id, j.input, j.attempts, j.status
     ), dl AS (
       INSERT INTO troupe_dead_letters (id, job_id, actor, key, tenant_id, input, error, attempts)
       SELECT ${UUIDV7_SQL}, id, actor, key, tenant_id, input, $1::jsonb, attempts
       FROM upd WHERE status = 'failed'
     )
     SELECT count(*)::int AS n FROM upd`,
    [error],
  );
  return rows[0]?.n ?? 0;
}
