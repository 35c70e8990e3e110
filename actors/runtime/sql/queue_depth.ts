import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

/** Queued jobs of one actor, as far as {@link queueDepths} looked. */
export interface QueueDepth {
  actor: string;
  /** Queued jobs seen (due or delayed). A lower bound when `capped`. */
  depth: number;
  /** Seconds the longest-waiting due job has waited past its `run_at`; 0 when none is due. */
  oldestSeconds: number;
}

/**
 * Depth and oldest wait of the queue per actor, at a bounded cost: it reads at most `limit`
 * queued jobs, by id from `troupe_jobs_status_idx` (job ids are time-ordered: the oldest
 * first, but for ids made from idempotency keys), so it never counts a large table. Below the
 * limit the figures are exact; at it (`capped`), depths are lower bounds and the oldest wait is
 * that of the jobs it read, the longest-queued.
 */
export async function queueDepths(
  db: SqlExecutor,
  t: Tables,
  limit: number,
): Promise<{ actors: QueueDepth[]; capped: boolean }> {
  const rows = await db.query<{ actor: string; depth: number; oldest: number }>(
    `SELECT actor, count(*)::int AS depth,
       coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now())), 0)::float8
         AS oldest
     FROM (
       SELECT actor, run_at FROM ${t.jobs} WHERE status = 'queued'
       ORDER BY id LIMIT $1 -- matches troupe_jobs_status_idx
     ) q
     GROUP BY actor ORDER BY actor`,
    [limit],
  );
  const seen = rows.reduce((n, r) => n + r.depth, 0);
  return {
    actors: rows.map((r) => ({
      actor: r.actor,
      depth: r.depth,
      oldestSeconds: Math.max(0, Number(r.oldest)),
    })),
    capped: seen >= limit,
  };
}
