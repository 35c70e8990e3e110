import type { EndRecord } from "../job_end.ts";
import type { SqlExecutor } from "../ports.ts";
import type { PipelineRecord } from "./pipelines.ts";
import type { Tables } from "./tables.ts";

/**
 * Inserts a pipeline's row (see `pipelines.ts`): `running` from the start, one attempt, named
 * `name`. Returns false when a row with `id` exists already (an idempotent repeat).
 */
export async function insertPipeline(
  tx: SqlExecutor,
  t: Tables,
  p: {
    id: string;
    name: string;
    tenantId: string | null;
    input: unknown;
    record: PipelineRecord;
    /** The message sent when the pipeline ends (see `../job_end.ts`). */
    onEnd?: EndRecord | null;
  },
): Promise<boolean> {
  const made = await tx.query(
    `INSERT INTO ${t.jobs} (id, actor, key, tenant_id, input, status, kind, max_attempts,
           pipeline, started_at, on_end)
         VALUES ($1, $2, $3, $4, $5::jsonb, 'running', 'pipeline', 1, $6::jsonb, now(), $7::jsonb)
         ON CONFLICT (id) DO NOTHING RETURNING id`,
    [
      p.id,
      p.name,
      `pipeline:${p.id}`,
      p.tenantId,
      JSON.stringify(p.input),
      JSON.stringify(p.record),
      p.onEnd ? JSON.stringify(p.onEnd) : null,
    ],
  );
  return made.length > 0;
}

/**
 * Inserts the rows of new pipelines (fresh ids, no idempotency key) in one statement, as
 * {@link insertPipeline} inserts one; an id that exists already fails the statement.
 */
export async function insertPipelines(
  tx: SqlExecutor,
  t: Tables,
  pipelines: readonly Parameters<typeof insertPipeline>[2][],
): Promise<void> {
  if (pipelines.length === 0) return;
  const rows = pipelines.map((p) => ({
    id: p.id,
    name: p.name,
    tenant_id: p.tenantId,
    input: p.input,
    pipeline: p.record,
    on_end: p.onEnd ?? null,
  }));
  await tx.query(
    `INSERT INTO ${t.jobs} (id, actor, key, tenant_id, input, status, kind, max_attempts,
       pipeline, started_at, on_end)
     SELECT x.id, x.name, 'pipeline:' || x.id, x.tenant_id, coalesce(x.input, 'null'::jsonb),
       'running', 'pipeline', 1, x.pipeline, now(), x.on_end
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, name text, tenant_id text, input jsonb,
       pipeline jsonb, on_end jsonb)`,
    [JSON.stringify(rows)],
  );
}
