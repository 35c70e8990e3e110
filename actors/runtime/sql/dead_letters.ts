import type { EndRecord } from "../job_end.ts";
import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

type Row = Record<string, unknown>;

/** Up to `limit` dead letters by filter, newest (highest id) first. */
export async function listDeadLetters(
  db: SqlExecutor,
  t: Tables,
  filter: { actor?: string; tenantId?: string | null; before?: string },
  limit: number,
): Promise<Row[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.actor !== undefined) {
    params.push(filter.actor);
    where.push(`actor = $${params.length}`);
  }
  if (filter.tenantId !== undefined) {
    if (filter.tenantId === null) where.push("tenant_id IS NULL");
    else {
      params.push(filter.tenantId);
      where.push(`tenant_id = $${params.length}`);
    }
  }
  if (filter.before !== undefined) {
    params.push(filter.before);
    where.push(`id < $${params.length}`);
  }
  params.push(limit);
  return await db.query<Row>(
    `SELECT * FROM ${t.deadLetters} ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
}

/** One dead letter's row, or undefined. */
export async function getDeadLetter(
  db: SqlExecutor,
  t: Tables,
  id: string,
): Promise<Row | undefined> {
  const rows = await db.query<Row>(`SELECT * FROM ${t.deadLetters} WHERE id = $1`, [id]);
  return rows[0];
}

/**
 * The end message stored on job `jobId` (`on_end`, see `../job_end.ts`), or null: what a replay
 * of its dead letter sends again when the new job ends.
 */
export async function endOfJob(
  db: SqlExecutor,
  t: Tables,
  jobId: string,
): Promise<EndRecord | null> {
  const rows = await db.query<{ on_end: EndRecord | string | null }>(
    `SELECT on_end FROM ${t.jobs} WHERE id = $1`,
    [jobId],
  );
  const v = rows[0]?.on_end ?? null;
  return typeof v === "string" ? JSON.parse(v) as EndRecord : v;
}

/** Marks a dead letter replayed by job `jobId`; false when it was replayed already. */
export async function markReplayed(
  tx: SqlExecutor,
  t: Tables,
  id: string,
  jobId: string,
): Promise<boolean> {
  const marked = await tx.query(
    `UPDATE ${t.deadLetters} SET replayed_at = now(), replay_job_id = $2
         WHERE id = $1 AND replayed_at IS NULL RETURNING id`,
    [id, jobId],
  );
  return marked.length > 0;
}

/**
 * Failed jobs by filter whose dead letter is not replayed yet, oldest first, with that dead
 * letter's id: what a bulk retry replays.
 */
export async function retryableFailures(
  db: SqlExecutor,
  t: Tables,
  filter: { actor?: string; tenantId?: string | null; pipelineId?: string },
  limit: number,
): Promise<{ job_id: string; dead_letter_id: string; actor: string }[]> {
  const where = ["j.status = 'failed'", "d.replayed_at IS NULL"];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace("?", `$${params.length}`));
  };
  if (filter.actor !== undefined) add("j.actor = ?", filter.actor);
  if (filter.pipelineId !== undefined) add("j.pipeline_id = ?", filter.pipelineId);
  if (filter.tenantId === null) where.push("j.tenant_id IS NULL");
  else if (filter.tenantId !== undefined) add("j.tenant_id = ?", filter.tenantId);
  params.push(limit);
  return await db.query(
    `SELECT j.id AS job_id, d.id AS dead_letter_id, j.actor
       FROM ${t.jobs} j JOIN ${t.deadLetters} d ON d.job_id = j.id
      WHERE ${where.join(" AND ")}
      ORDER BY j.id LIMIT $${params.length}`,
    params,
  );
}
