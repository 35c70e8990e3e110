/**
 * Per-actor figures for operators: outcomes and handler durations over a recent window, and the
 * keys an actor has leased with their state and lease holder.
 *
 * Invariants: every read is bounded. The window's jobs are read newest first from
 * `troupe_jobs_finished_idx` (a range on `finished_at`) up to a cap; past it the figures are
 * those of the most recent jobs (`sampled`). Keys come from `troupe_actor_state_actor_idx`.
 */
import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

/** Outcomes and handler durations of one actor's jobs that finished in the window. */
export interface ActorStatsRow {
  actor: string;
  succeeded: number;
  failed: number;
  cancelled: number;
  /** Median handler duration of the last attempts, in milliseconds (null: none measured). */
  p50_ms: number | null;
  /** 99th percentile handler duration, in milliseconds. */
  p99_ms: number | null;
}

/** Outcomes and durations per actor of at most `cap` jobs finished in the last `windowSeconds`. */
export async function actorStats(
  db: SqlExecutor,
  t: Tables,
  { windowSeconds, cap, tenantId }: {
    windowSeconds: number;
    cap: number;
    tenantId?: string | null | undefined;
  },
): Promise<{ rows: ActorStatsRow[]; sampled: boolean }> {
  const scoped = tenantId !== undefined;
  const rows = await db.query<ActorStatsRow & { n: number }>(
    `SELECT actor, count(*)::int AS n,
       count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
       count(*) FILTER (WHERE status = 'failed')::int AS failed,
       count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY run_ms)::float8 AS p50_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY run_ms)::float8 AS p99_ms
     FROM (
       SELECT actor, status, run_ms FROM ${t.jobs}
       WHERE finished_at IS NOT NULL AND finished_at > now() - make_interval(secs => $1)
         AND kind = 'job' ${scoped ? "AND tenant_id IS NOT DISTINCT FROM $3" : ""}
       ORDER BY finished_at DESC -- matches troupe_jobs_finished_idx, read backwards
       LIMIT $2
     ) f
     GROUP BY actor ORDER BY actor`,
    scoped ? [windowSeconds, cap, tenantId] : [windowSeconds, cap],
  );
  const seen = rows.reduce((n, r) => n + r.n, 0);
  return {
    rows: rows.map(({ n: _n, ...r }) => r),
    sampled: seen >= cap,
  };
}

/** A key an actor leased: its state and lease (owner and end null when none is live). */
export interface ActorKeyRow {
  key: string;
  state: unknown;
  version: number;
  fence: number;
  lease_owner: string | null;
  lease_until: Date | string | null;
  updated_at: Date | string;
}

/** Up to `limit` keys last leased by `actor`, in key order after `after`. */
export async function actorKeys(
  db: SqlExecutor,
  t: Tables,
  { actor, limit, after }: { actor: string; limit: number; after?: string | undefined },
): Promise<ActorKeyRow[]> {
  return await db.query<ActorKeyRow>(
    `SELECT key, state, version, fence,
       CASE WHEN lease_until > now() THEN lease_owner END AS lease_owner,
       CASE WHEN lease_until > now() THEN lease_until END AS lease_until, updated_at
     FROM ${t.actorState}
     WHERE actor = $1 ${after !== undefined ? "AND key > $3" : ""}
     ORDER BY key LIMIT $2 -- matches troupe_actor_state_actor_idx`,
    after !== undefined ? [actor, limit, after] : [actor, limit],
  );
}
