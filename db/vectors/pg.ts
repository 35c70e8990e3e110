/**
 * Vectors in the same PostgreSQL (PGlite 0.5 has no pgvector): `float4[]` rows with tenant
 * and course, exact cosine computed here over one course's rows, read in batches (memory: one
 * batch). Ids are deterministic (the passage's id), so a redelivered batch upserts in place.
 */
import type { SqlExecutor } from "../../actors/runtime/ports.ts";
import { cosine } from "../embeddings/hashing.ts";
import type { VectorHit, VectorItem, VectorStore } from "./store.ts";

export type { VectorHit, VectorItem, VectorStore };

const BATCH = 2000;

export class PgVectorStore implements VectorStore {
  readonly kind = "postgres" as const;
  readonly transactional = true;
  constructor(readonly db: SqlExecutor) {}

  async upsert(items: readonly VectorItem[], tx: SqlExecutor = this.db): Promise<void> {
    for (let i = 0; i < items.length; i += 500) {
      const batch = items.slice(i, i + 500);
      await tx.query(
        `INSERT INTO troupe_course_vectors (id, tenant_id, course_id, vector)
         SELECT x.id, x.tenant_id, x.course_id, x.vector
         FROM jsonb_to_recordset($1::jsonb) AS x(id text, tenant_id text, course_id text, vector real[])
         ON CONFLICT (id) DO UPDATE SET vector = EXCLUDED.vector`,
        [JSON.stringify(batch.map((it) => ({
          id: it.id,
          tenant_id: it.tenantId,
          course_id: it.courseId,
          vector: Array.from(it.vector),
        })))],
      );
    }
  }

  /** The `k` nearest of one course (tenant-scoped), by exact cosine. */
  async query(
    vector: Float32Array,
    filter: { tenantId: string; courseId: string },
    k: number,
  ): Promise<VectorHit[]> {
    const best: VectorHit[] = [];
    let after = "";
    while (true) {
      const rows = await this.db.query<{ id: string; vector: number[] }>(
        `SELECT id, vector FROM troupe_course_vectors
         WHERE tenant_id = $1 AND course_id = $2 AND id > $3 ORDER BY id LIMIT $4`,
        [filter.tenantId, filter.courseId, after, BATCH],
      );
      for (const r of rows) {
        const score = cosine(vector, Float32Array.from(r.vector));
        if (best.length < k || score > best.at(-1)!.score) {
          best.push({ id: r.id, score });
          best.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
          if (best.length > k) best.pop();
        }
      }
      if (rows.length < BATCH) return best;
      after = rows.at(-1)!.id;
    }
  }

  async count(filter: { tenantId: string; courseId: string }): Promise<number> {
    const rows = await this.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM troupe_course_vectors WHERE tenant_id = $1 AND course_id = $2",
      [filter.tenantId, filter.courseId],
    );
    return rows[0]!.n;
  }

  async deleteWhere(filter: { courseId: string }, tx: SqlExecutor = this.db): Promise<void> {
    await tx.query("DELETE FROM troupe_course_vectors WHERE course_id = $1", [filter.courseId]);
  }
}

/** Reciprocal rank fusion of ranked id lists (k = 60, as in Cormack et al.). */
export function reciprocalRankFusion(
  lists: readonly (readonly string[])[],
  k = 60,
): { id: string; score: number }[] {
  const scores = new Map<string, number>();
  for (const list of lists) {
    list.forEach((id, rank) => scores.set(id, (scores.get(id) ?? 0) + 1 / (k + rank + 1)));
  }
  return [...scores].map(([id, score]) => ({ id, score }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
}
