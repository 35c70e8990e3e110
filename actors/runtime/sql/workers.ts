/**
 * Runtime instances (`troupe_workers`) and what they run.
 *
 * Invariants:
 * - An instance's row is written by its own process only: at start, by its heartbeat (pull) or
 *   by the deliveries it takes (push, throttled by the caller), and at a clean stop
 *   (`stopped_at`). A row unseen for a day is deleted by the next write of any instance.
 * - The reads are bounded: running jobs come from `troupe_jobs_status_idx`, delayed jobs from
 *   `troupe_jobs_tenant_claim_idx` (one index range per tenant group and priority level, found
 *   by a loose index scan), each with a limit.
 */
import type { SqlExecutor } from "../ports.ts";
import { INSTANCE_PREFIX_SQL } from "./claim_jobs.ts";
import type { Tables } from "./tables.ts";

/** What an instance writes about itself. */
export interface InstanceBeat {
  id: string;
  host: string | null;
  pid: number | null;
  transport: string;
  mode: "pull" | "push";
  actors: readonly string[];
  concurrency: number;
  inFlight: number;
}

/** An instance's row. */
export interface InstanceRow {
  id: string;
  host: string | null;
  pid: number | null;
  transport: string;
  mode: string;
  actors: string[];
  concurrency: number;
  in_flight: number;
  started_at: Date | string;
  heartbeat_at: Date | string;
  stopped_at: Date | string | null;
  /** Seconds since its last heartbeat. */
  idle_seconds: number;
}

/** A running or delayed job as the instance list shows it. */
export interface JobBrief {
  id: string;
  actor: string;
  key: string;
  tenant_id: string | null;
  attempts: number;
  max_attempts: number;
  lease_owner: string | null;
  started_at: Date | string | null;
  run_at: Date | string;
}

/**
 * Writes the instance's heartbeat (a restart under the same id clears `stopped_at`). Instances
 * not heard of for a day are forgotten, with their instance leases (see `instanceLease`).
 */
export async function beatInstance(db: SqlExecutor, t: Tables, b: InstanceBeat): Promise<void> {
  await db.query(
    `WITH gone AS (
       DELETE FROM ${t.workers} WHERE heartbeat_at < now() - interval '1 day' AND id <> $1
       RETURNING id
     ), leases AS (
       DELETE FROM ${t.actorState} WHERE key IN (SELECT ${INSTANCE_PREFIX_SQL} || id FROM gone))
     INSERT INTO ${t.workers} AS w (id, host, pid, transport, mode, actors, concurrency, in_flight)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)
     ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,
       transport = EXCLUDED.transport, mode = EXCLUDED.mode, actors = EXCLUDED.actors,
       concurrency = EXCLUDED.concurrency, in_flight = EXCLUDED.in_flight, heartbeat_at = now(),
       stopped_at = NULL`,
    [
      b.id,
      b.host,
      b.pid,
      b.transport,
      b.mode,
      JSON.stringify(b.actors),
      b.concurrency,
      b.inFlight,
    ],
  );
}

/** Marks the instance stopped (a clean stop). */
export async function stopInstance(db: SqlExecutor, t: Tables, id: string): Promise<void> {
  await db.query(
    `UPDATE ${t.workers} SET stopped_at = now(), in_flight = 0, heartbeat_at = now()
     WHERE id = $1`,
    [id],
  );
}

/** The instances seen within `sinceSeconds`, the most recently seen first. */
export async function listInstances(
  db: SqlExecutor,
  t: Tables,
  sinceSeconds: number,
): Promise<InstanceRow[]> {
  return await db.query<InstanceRow>(
    `SELECT id, host, pid, transport, mode, actors, concurrency, in_flight, started_at,
       heartbeat_at, stopped_at,
       greatest(0, extract(epoch FROM now() - heartbeat_at))::float8 AS idle_seconds
     FROM ${t.workers} WHERE heartbeat_at > now() - make_interval(secs => $1)
     ORDER BY heartbeat_at DESC, id LIMIT 500`,
    [sinceSeconds],
  );
}

const BRIEF = `j.id, j.actor, j.key, j.tenant_id, j.attempts, j.max_attempts, j.lease_owner,
  j.started_at, j.run_at`;

/** Up to `limit` running jobs (of tenant `tenantId` when given), oldest id first. */
export async function runningJobs(
  db: SqlExecutor,
  t: Tables,
  { tenantId, limit }: { tenantId?: string | null | undefined; limit: number },
): Promise<JobBrief[]> {
  const scoped = tenantId !== undefined;
  return await db.query<JobBrief>(
    `SELECT ${BRIEF} FROM ${t.jobs} j
     WHERE j.status = 'running' AND j.kind = 'job'
       ${scoped ? "AND j.tenant_id IS NOT DISTINCT FROM $2" : ""}
     ORDER BY j.id LIMIT $1 -- matches troupe_jobs_status_idx`,
    scoped ? [limit, tenantId] : [limit],
  );
}

/**
 * Up to `limit` delayed jobs (queued, not due yet: a delay, a retry's backoff, a run-again-later),
 * the soonest first. Each priority level of a tenant group (`''`: no tenant) is one range of the
 * claim index (`troupe_jobs_tenant_claim_idx`: group, `priority`, then `run_at`), found by a
 * loose index scan, so due jobs ahead in the queue are never walked.
 */
export async function delayedJobs(
  db: SqlExecutor,
  t: Tables,
  { tenantId, limit }: { tenantId?: string | null | undefined; limit: number },
): Promise<JobBrief[]> {
  const scoped = tenantId !== undefined;
  // A tenant's jobs are in its group's range; the group '' also holds the jobs without one.
  const group = (j: string) => `coalesce(${j}.tenant_id, '')`;
  const inGroup = scoped ? `AND ${group("j")} = coalesce($2, '')` : "";
  const exact = !scoped
    ? ""
    : tenantId === null
    ? "AND j.tenant_id IS NULL"
    : "AND j.tenant_id IS NOT NULL";
  return await db.query<JobBrief>(
    `WITH RECURSIVE levels(g, priority) AS (
       (SELECT ${group("j")}, j.priority FROM ${t.jobs} j WHERE j.status = 'queued' ${inGroup}
        ORDER BY ${group("j")}, j.priority DESC NULLS LAST LIMIT 1)
       UNION ALL
       SELECT n.g, n.priority FROM levels l, LATERAL (
         (SELECT ${group("j")} AS g, j.priority FROM ${t.jobs} j
          WHERE j.status = 'queued' AND ${group("j")} = l.g AND j.priority < l.priority
          ORDER BY j.priority DESC NULLS LAST LIMIT 1)
         UNION ALL
         (SELECT ${group("j")}, j.priority FROM ${t.jobs} j
          WHERE j.status = 'queued' AND ${group("j")} > l.g ${inGroup}
          ORDER BY ${group("j")}, j.priority DESC NULLS LAST LIMIT 1)
         LIMIT 1) n
     )
     SELECT d.* FROM levels l, LATERAL (
       SELECT ${BRIEF} FROM ${t.jobs} j
       WHERE j.status = 'queued' AND ${group("j")} = l.g AND j.priority = l.priority
         AND j.run_at > now() AND j.kind = 'job' ${exact}
       ORDER BY j.run_at, j.id LIMIT $1) d
     ORDER BY d.run_at, d.id LIMIT $1`,
    scoped ? [limit, tenantId] : [limit],
  );
}
