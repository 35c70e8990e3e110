import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

type Row = Record<string, unknown>;

/** The rows of the jobs `ids` (those that exist), in no particular order. */
export async function readJobs(db: SqlExecutor, t: Tables, ids: readonly string[]): Promise<Row[]> {
  return await db.query<Row>(`SELECT * FROM ${t.jobs} WHERE id = ANY($1::text[])`, [[...ids]]);
}

/** Filters of a job list; `before` is the last id of the previous page. */
export interface JobFilter {
  actor?: string;
  status?: string;
  tenantId?: string | null;
  pipelineId?: string;
  before?: string;
}

/** Up to `limit` jobs by filter, newest (highest id) first. */
export async function listJobs(
  db: SqlExecutor,
  t: Tables,
  filter: JobFilter,
  limit: number,
): Promise<Row[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace("?", `$${params.length}`));
  };
  if (filter.actor !== undefined) add("actor = ?", filter.actor);
  if (filter.status !== undefined) add("status = ?", filter.status);
  if (filter.pipelineId !== undefined) add("pipeline_id = ?", filter.pipelineId);
  if (filter.tenantId !== undefined) {
    if (filter.tenantId === null) where.push("tenant_id IS NULL");
    else add("tenant_id = ?", filter.tenantId);
  }
  if (filter.before !== undefined) add("id < ?", filter.before);
  params.push(limit);
  return await db.query<Row>(
    `SELECT * FROM ${t.jobs} ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
}

/** How many jobs of a pipeline are in each status (statuses with none are left out). */
export async function countPipelineJobs(
  db: SqlExecutor,
  t: Tables,
  pipelineId: string,
): Promise<{ status: string; n: number }[]> {
  return await db.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM ${t.jobs} WHERE pipeline_id = $1 GROUP BY status`,
    [pipelineId],
  );
}

/** Queued jobs, running jobs (not pipelines) and dead letters not replayed. */
export async function countQueue(
  db: SqlExecutor,
  t: Tables,
): Promise<{ queued: number; running: number; dead: number } | undefined> {
  const [counts] = await db.query<{ queued: number; running: number; dead: number }>(
    `SELECT
             (SELECT count(*)::int FROM ${t.jobs} WHERE status = 'queued') AS queued,
             (SELECT count(*)::int FROM ${t.jobs} WHERE status = 'running' AND kind = 'job')
               AS running,
             (SELECT count(*)::int FROM ${t.deadLetters} WHERE replayed_at IS NULL) AS dead`,
  );
  return counts;
}
