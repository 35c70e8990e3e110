/**
 * Report names for one page: the page's report ids deduplicated, looked up in the reports
 * table (entries not expired), then in the cache (the `usageReport` TTL class, Redis in
 * production), and only then fetched, with bounded concurrency. A 404 is kept as "no such
 * report" for the same hour, so a missing report is not asked for on every page. Expired rows
 * are read as absent and deleted by the daily cleanup (`purgeExpiredReports`, run by
 * `system.cleanup`).
 */
import type { SqlExecutor } from "@troupe/runtime";
import { type Cache, cacheKey } from "../../db/cache/cache.ts";

/** What a page's reports came to. */
export interface ResolvedReports {
  /** Every id of the page: its name, or null when the API has no such report. */
  names: Map<string, string | null>;
  /** Answers fetched from the API now (to keep in the reports table). */
  fetched: Map<string, string | null>;
  /** Ids answered by the table or the cache. */
  cached: number;
  /** Ids with no report (404 now or remembered). */
  missing: number;
}

/** How long a report name (or its absence) is kept: one hour. */
export const REPORT_TTL_MS = 60 * 60_000;

export interface ResolveOptions {
  db: SqlExecutor;
  cache?: Cache | undefined;
  tenantId: string;
  sourceId: string;
  ids: readonly string[];
  concurrency: number;
  /** Fetches one report (throws to fail the page). */
  fetch: (id: string) => Promise<string | null>;
}

/** Resolves `ids`; see the module doc. */
export async function resolveReports(o: ResolveOptions): Promise<ResolvedReports> {
  const unique = [...new Set(o.ids)];
  const names = new Map<string, string | null>();
  const fetched = new Map<string, string | null>();
  let cached = 0;
  if (unique.length > 0) {
    const rows = await o.db.query<{ report_id: string; name: string | null; found: boolean }>(
      `SELECT report_id, name, found FROM troupe_usage_reports
        WHERE tenant_id = $1 AND source_id = $2 AND report_id = ANY($3::text[])
          AND expires_at > now()`,
      [o.tenantId, o.sourceId, unique],
    );
    for (const r of rows) {
      names.set(r.report_id, r.found ? r.name : null);
      cached++;
    }
  }
  const todo = unique.filter((id) => !names.has(id));
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const id = todo[next++]!;
      let called = false;
      const load = async () => {
        called = true;
        return { name: await o.fetch(id) };
      };
      const got = o.cache
        ? await o.cache.getOrCompute(
          "usageReport",
          cacheKey(o.tenantId, "usage-report", o.sourceId, id),
          load,
        )
        : await load();
      names.set(id, got.name);
      if (called) fetched.set(id, got.name);
      else cached++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, todo.length) }, worker));
  let missing = 0;
  for (const name of names.values()) if (name === null) missing++;
  return { names, fetched, cached, missing };
}

/** Keeps fetched answers in the reports table for {@link REPORT_TTL_MS}. */
export async function keepReports(
  tx: SqlExecutor,
  tenantId: string,
  sourceId: string,
  fetched: ReadonlyMap<string, string | null>,
): Promise<void> {
  if (fetched.size === 0) return;
  const ids = [...fetched.keys()];
  await tx.query(
    `INSERT INTO troupe_usage_reports AS r
       (tenant_id, source_id, report_id, name, found, fetched_at, expires_at)
     SELECT $1, $2, i.report_id, i.name, i.name IS NOT NULL, now(),
            now() + make_interval(secs => $5::float8 / 1000)
       FROM unnest($3::text[], $4::text[]) AS i(report_id, name)
     ON CONFLICT (tenant_id, source_id, report_id) DO UPDATE
        SET name = excluded.name, found = excluded.found, fetched_at = excluded.fetched_at,
            expires_at = excluded.expires_at`,
    [tenantId, sourceId, ids, ids.map((id) => fetched.get(id) ?? null), REPORT_TTL_MS],
  );
}

/**
 * Deletes up to `limit` report names that expired before `before`; returns how many. The
 * daily cleanup (`system.cleanup`) calls it until fewer than `limit` go.
 */
export async function purgeExpiredReports(
  db: SqlExecutor,
  before: Date,
  limit: number,
): Promise<number> {
  const rows = await db.query<{ n: number }>(
    `WITH d AS (DELETE FROM troupe_usage_reports WHERE (tenant_id, source_id, report_id) IN (
       SELECT tenant_id, source_id, report_id FROM troupe_usage_reports
        WHERE expires_at < $1::timestamptz LIMIT $2) RETURNING 1)
     SELECT count(*)::int AS n FROM d`,
    [before.toISOString(), limit],
  );
  return rows[0]?.n ?? 0;
}
