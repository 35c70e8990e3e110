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
 * queued jobs, in the order of the claim index (`troupe_jobs_claim_idx`, partial on
 * `status = 'queued'`), so it never counts a large table. Below the limit the figures are
 * exact; at it (`capped`), depths are lower bounds and the oldest wait is that of the jobs next
 * in line (the highest priority first, then the oldest `run_at`), which is what a worker would
 * claim next.
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
       ORDER BY priority DESC NULLS LAST, run_at, id -- matches troupe_jobs_claim_idx
       LIMIT $1
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
