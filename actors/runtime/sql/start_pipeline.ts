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
  p: { id: string; name: string; tenantId: string | null; input: unknown; record: PipelineRecord },
): Promise<boolean> {
  const made = await tx.query(
    `INSERT INTO ${t.jobs} (id, actor, key, tenant_id, input, status, kind, max_attempts,
           pipeline, started_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, 'running', 'pipeline', 1, $6::jsonb, now())
         ON CONFLICT (id) DO NOTHING RETURNING id`,
    [
      p.id,
      p.name,
      `pipeline:${p.id}`,
      p.tenantId,
      JSON.stringify(p.input),
      JSON.stringify(p.record),
    ],
  );
  return made.length > 0;
}
