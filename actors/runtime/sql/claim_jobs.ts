import type { SqlExecutor } from "../ports.ts";

/** A job handed to this worker together with the lease of its key. */
export interface ClaimedJob {
  id: string;
  actor: string;
  key: string;
  tenant_id: string | null;
  input: unknown;
  attempts: number;
  max_attempts: number;
  lease_fence: number;
  state: unknown;
  cancel_requested: boolean;
}

/**
 * Claims up to `limit` runnable jobs in one statement (table queue).
 *
 * Candidates are locked with `FOR UPDATE SKIP LOCKED`, so concurrent workers never claim the
 * same row. Each candidate key's lease is taken in the same statement; a key whose lease is
 * held elsewhere keeps its jobs queued. Several jobs of one key may be claimed together: they
 * run one after another under that one lease.
 */
export async function claimJobs(
  db: SqlExecutor,
  { actors, limit, workerId, leaseMs }: {
    actors: readonly string[];
    limit: number;
    workerId: string;
    leaseMs: number;
  },
): Promise<ClaimedJob[]> {
  return await db.query<ClaimedJob>(
    `WITH cand AS (
      SELECT j.id, j.key FROM troupe_jobs j
      WHERE j.status = 'queued' AND j.run_at <= now() AND j.actor = ANY($1::text[])
        AND NOT EXISTS (
          SELECT 1 FROM troupe_actor_state s WHERE s.key = j.key AND s.lease_until > now())
      ORDER BY j.priority DESC NULLS LAST, j.run_at, j.id -- matches troupe_jobs_claim_idx
      LIMIT $2
      FOR UPDATE OF j SKIP LOCKED
    ), leased AS (
      INSERT INTO troupe_actor_state AS s (key, fence, lease_owner, lease_until)
      SELECT DISTINCT cand.key, 1, $3, now() + make_interval(secs => $4) FROM cand
      ON CONFLICT (key) DO UPDATE SET fence = s.fence + 1, lease_owner = EXCLUDED.lease_owner,
        lease_until = EXCLUDED.lease_until, updated_at = now()
      WHERE s.lease_until IS NULL OR s.lease_until <= now()
      RETURNING s.key, s.fence, s.state
    )
    UPDATE troupe_jobs j SET status = 'running', attempts = j.attempts + 1, lease_owner = $3,
      lease_fence = leased.fence, started_at = coalesce(j.started_at, now()), updated_at = now()
    FROM cand JOIN leased ON leased.key = cand.key
    WHERE j.id = cand.id AND j.id = ANY(ARRAY(SELECT id FROM cand)) -- index lookups, no scan
    RETURNING j.id, j.actor, j.key, j.tenant_id, j.input, j.attempts, j.max_attempts,
      j.lease_fence, leased.state, j.cancel_requested`,
    [actors, limit, workerId, leaseMs / 1000],
  );
}

/**
 * Push path: takes the lease of `key` and marks job `id` running under it.
 * Returns null when the key is leased elsewhere (busy) or the job is not runnable.
 */
export async function claimOne(
  db: SqlExecutor,
  { id, key, workerId, leaseMs }: { id: string; key: string; workerId: string; leaseMs: number },
): Promise<{ job: ClaimedJob | null; leased: boolean }> {
  const lease = await db.query<{ fence: number; state: unknown }>(
    `INSERT INTO troupe_actor_state AS s (key, fence, lease_owner, lease_until)
     VALUES ($1, 1, $2, now() + make_interval(secs => $3))
     ON CONFLICT (key) DO UPDATE SET fence = s.fence + 1, lease_owner = EXCLUDED.lease_owner,
       lease_until = EXCLUDED.lease_until, updated_at = now()
     WHERE s.lease_until IS NULL OR s.lease_until <= now()
     RETURNING s.fence, s.state`,
    [key, workerId, leaseMs / 1000],
  );
  const held = lease[0];
  if (!held) return { job: null, leased: false };
  const rows = await db.query<ClaimedJob>(
    `UPDATE troupe_jobs j SET status = 'running', attempts = j.attempts + 1, lease_owner = $2,
       lease_fence = $3, started_at = coalesce(j.started_at, now()), updated_at = now()
     WHERE j.id = $1 AND (j.status = 'queued'
       OR (j.status = 'running' AND j.lease_fence IS DISTINCT FROM $3))
     RETURNING j.id, j.actor, j.key, j.tenant_id, j.input, j.attempts, j.max_attempts,
       j.lease_fence, j.cancel_requested`,
    [id, workerId, held.fence],
  );
  const job = rows[0];
  if (!job) {
    await releaseLeases(db, workerId, [{ key, fence: held.fence }]);
    return { job: null, leased: true };
  }
  return { job: { ...job, state: held.state }, leased: true };
}

/** Gives back leases this worker holds (no-op for a lease it lost). */
export async function releaseLeases(
  db: SqlExecutor,
  workerId: string,
  leases: readonly { key: string; fence: number }[],
): Promise<void> {
  if (leases.length === 0) return;
  await db.query(
    `UPDATE troupe_actor_state s SET lease_owner = NULL, lease_until = NULL, updated_at = now()
     FROM jsonb_to_recordset($1::jsonb) AS x(key text, fence int)
     WHERE s.key = x.key AND s.fence = x.fence AND s.lease_owner = $2`,
    [JSON.stringify(leases), workerId],
  );
}

/**
 * Extends the leases this worker holds; returns the current fencing token of each key, so the
 * caller can tell a lease taken over (token moved on) from one it released itself.
 */
export async function extendLeases(
  db: SqlExecutor,
  { workerId, keys, leaseMs }: { workerId: string; keys: readonly string[]; leaseMs: number },
): Promise<Map<string, number>> {
  if (keys.length === 0) return new Map();
  const rows = await db.query<{ key: string; fence: number }>(
    `WITH renewed AS (
       UPDATE troupe_actor_state SET lease_until = now() + make_interval(secs => $3)
       WHERE key = ANY($2::text[]) AND lease_owner = $1 RETURNING key)
     SELECT s.key, s.fence FROM troupe_actor_state s WHERE s.key = ANY($2::text[])`,
    [workerId, keys, leaseMs / 1000],
  );
  return new Map(rows.map((r) => [r.key, r.fence]));
}
