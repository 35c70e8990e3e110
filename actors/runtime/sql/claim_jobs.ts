import type { SqlDatabase, SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

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
  /** Times the job's process stopped while it ran (see `reapJobs`); above 0 it is a suspect. */
  lease_losses: number;
  /** The pipeline the job belongs to (see `pipelines.ts`). */
  pipeline_id: string | null;
  /** The group the job is a part of (see `../groups.ts`). */
  group_id?: string | null;
  /** The version of its actor's input shape it was made with (see `../versions.ts`). */
  input_version?: number;
  /** The W3C trace context the message was made in (see `../tracing.ts`). */
  traceparent?: string | null;
  /** The `tracestate` that goes with `traceparent`. */
  tracestate?: string | null;
}

/**
 * Claims up to `limit` runnable jobs (table queue), in one transaction:
 * 1. candidates in queue order, locked with `FOR UPDATE SKIP LOCKED` (concurrent workers never
 *    claim the same row), skipping keys whose lease is held and actors that are paused;
 * 2. the lease of each candidate key (a key leased elsewhere meanwhile keeps its jobs queued),
 *    recording the actor of the key's first candidate on it;
 * 3. the candidates of leased keys marked running under their key's fencing token.
 * Several jobs of one key may be claimed together: they run one after another under one lease.
 *
 * The statements are shaped so that plans stay right whatever the statistics say (right after
 * a burst of enqueues they are empty or stale): the queue is walked in index order, and rows
 * are found by primary key, never by sorting or scanning the whole table.
 */
export async function claimJobs(
  db: SqlDatabase,
  t: Tables,
  { actors, limit, workerId, leaseMs }: {
    actors: readonly string[];
    limit: number;
    workerId: string;
    leaseMs: number;
  },
): Promise<ClaimedJob[]> {
  return await db.transaction(async (tx) => {
    await tx.query(
      "SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)",
    );
    // Paused actors are taken out of the list once (an init plan), not checked per row.
    const candidates = await tx.query<{ id: string; key: string; actor: string }>(
      `SELECT j.id, j.key, j.actor FROM ${t.jobs} j
       WHERE j.status = 'queued' AND j.run_at <= now()
         AND j.actor = ANY(ARRAY(SELECT a FROM unnest($1::text[]) AS a
           WHERE NOT EXISTS (SELECT 1 FROM ${t.pauses} p WHERE p.actor = a)))
         AND NOT EXISTS (
           SELECT 1 FROM ${t.actorState} s WHERE s.key = j.key AND s.lease_until > now())
       ORDER BY j.priority DESC NULLS LAST, j.run_at, j.id -- matches troupe_jobs_claim_idx
       LIMIT $2
       FOR UPDATE OF j SKIP LOCKED`,
      [actors, limit],
    );
    if (candidates.length === 0) return [];
    const actorOf = new Map<string, string>();
    for (const c of candidates) if (!actorOf.has(c.key)) actorOf.set(c.key, c.actor);
    // Key rows are locked in one order by every claimer: in queue order, two instances that
    // want each other's keys wait on each other and one fails as a deadlock.
    const keys = [...actorOf.keys()].sort();
    const leases = await tx.query<{ key: string; fence: number; state: unknown }>(
      `INSERT INTO ${t.actorState} AS s (key, actor, fence, lease_owner, lease_until)
       SELECT k, a, 1, $2, now() + make_interval(secs => $3)
       FROM unnest($1::text[], $4::text[]) AS x(k, a)
       ON CONFLICT (key) DO UPDATE SET fence = s.fence + 1, lease_owner = EXCLUDED.lease_owner,
         lease_until = EXCLUDED.lease_until, actor = EXCLUDED.actor, updated_at = now()
       WHERE s.lease_until IS NULL OR s.lease_until <= now()
       RETURNING s.key, s.fence, s.state`,
      [keys, workerId, leaseMs / 1000, keys.map((k) => actorOf.get(k)!)],
    );
    const leased = new Map(leases.map((l) => [l.key, l]));
    const claimed = candidates.filter((c) => leased.has(c.key));
    if (claimed.length === 0) return [];
    const ids = claimed.map((c) => c.id);
    const rows = await tx.query<Omit<ClaimedJob, "state">>(
      `UPDATE ${t.jobs} j SET status = 'running', attempts = j.attempts + 1, lease_owner = $3,
         lease_fence = x.fence, started_at = coalesce(j.started_at, now()), updated_at = now()
       FROM unnest($1::text[], $2::int[]) AS x(id, fence)
       WHERE j.id = ANY($1::text[]) AND j.id = x.id
       RETURNING j.id, j.actor, j.key, j.tenant_id, j.input, j.attempts, j.max_attempts,
         j.lease_fence, j.cancel_requested, j.lease_losses, j.pipeline_id, j.group_id,
         j.input_version, j.traceparent, j.tracestate`,
      [ids, claimed.map((c) => leased.get(c.key)!.fence), workerId],
    );
    // Keep queue order (RETURNING order is unspecified): a key's jobs run in that order.
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.flatMap((id) => {
      const row = byId.get(id);
      return row ? [{ ...row, state: leased.get(row.key)!.state }] : [];
    });
  });
}

/**
 * Push path: takes the lease of `key` and marks job `id` running under it: a queued job, or a
 * running one whose lease was given back. A running job whose lease lapsed while held (its
 * process stopped) is left to the reaper, which counts the lost lease.
 * Returns null when the key is leased elsewhere (busy) or the job is not runnable.
 */
export async function claimOne(
  db: SqlExecutor,
  t: Tables,
  { id, key, actor, workerId, leaseMs }: {
    id: string;
    key: string;
    /** The job's actor, recorded on the key (see `troupe_actor_state.actor`). */
    actor?: string;
    workerId: string;
    leaseMs: number;
  },
): Promise<{ job: ClaimedJob | null; leased: boolean }> {
  const lease = await db.query<{ fence: number; state: unknown }>(
    `INSERT INTO ${t.actorState} AS s (key, actor, fence, lease_owner, lease_until)
     VALUES ($1, $4, 1, $2, now() + make_interval(secs => $3))
     ON CONFLICT (key) DO UPDATE SET fence = s.fence + 1, lease_owner = EXCLUDED.lease_owner,
       lease_until = EXCLUDED.lease_until, actor = coalesce(EXCLUDED.actor, s.actor),
       updated_at = now()
     WHERE s.lease_until IS NULL OR s.lease_until <= now()
     RETURNING s.fence, s.state`,
    [key, workerId, leaseMs / 1000, actor ?? null],
  );
  const held = lease[0];
  if (!held) return { job: null, leased: false };
  const rows = await db.query<ClaimedJob>(
    `UPDATE ${t.jobs} j SET status = 'running', attempts = j.attempts + 1, lease_owner = $2,
       lease_fence = $3, started_at = coalesce(j.started_at, now()), updated_at = now()
     WHERE j.id = $1 AND (j.status = 'queued'
       OR (j.status = 'running' AND j.lease_fence IS DISTINCT FROM $3 AND j.lease_owner IS NULL))
     RETURNING j.id, j.actor, j.key, j.tenant_id, j.input, j.attempts, j.max_attempts,
       j.lease_fence, j.cancel_requested, j.lease_losses, j.pipeline_id, j.group_id,
       j.input_version, j.traceparent, j.tracestate`,
    [id, workerId, held.fence],
  );
  const job = rows[0];
  if (!job) {
    await releaseLeases(db, t, workerId, [{ key, fence: held.fence }]);
    return { job: null, leased: true };
  }
  return { job: { ...job, state: held.state }, leased: true };
}

/**
 * Gives back leases this worker holds (no-op for a lease it lost). Jobs of the key still
 * running under the lease lose their owner too: the reaper requeues them without counting a
 * lost lease, since their process did not stop.
 */
export async function releaseLeases(
  db: SqlExecutor,
  t: Tables,
  workerId: string,
  leases: readonly { key: string; fence: number }[],
): Promise<void> {
  if (leases.length === 0) return;
  await db.query(
    `WITH x AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(key text, fence int)
     ), released AS (
       UPDATE ${t.actorState} s SET lease_owner = NULL, lease_until = NULL, updated_at = now()
       FROM x WHERE s.key = x.key AND s.fence = x.fence AND s.lease_owner = $2
       RETURNING s.key, s.fence
     )
     UPDATE ${t.jobs} j SET lease_owner = NULL, updated_at = now()
     FROM released r
     WHERE j.key = r.key AND j.lease_fence = r.fence AND j.status = 'running'
       AND j.lease_owner = $2`,
    [JSON.stringify(leases), workerId],
  );
}

/**
 * Extends the leases this worker holds; returns the current fencing token of each key, so the
 * caller can tell a lease taken over (token moved on) from one it released itself.
 */
export async function extendLeases(
  db: SqlExecutor,
  t: Tables,
  { workerId, keys, leaseMs }: { workerId: string; keys: readonly string[]; leaseMs: number },
): Promise<Map<string, number>> {
  if (keys.length === 0) return new Map();
  const rows = await db.query<{ key: string; fence: number }>(
    `WITH renewed AS (
       UPDATE ${t.actorState} SET lease_until = now() + make_interval(secs => $3)
       WHERE key = ANY($2::text[]) AND lease_owner = $1 RETURNING key)
     SELECT s.key, s.fence FROM ${t.actorState} s WHERE s.key = ANY($2::text[])`,
    [workerId, keys, leaseMs / 1000],
  );
  return new Map(rows.map((r) => [r.key, r.fence]));
}
