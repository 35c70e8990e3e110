/**
 * Vectors in the same PostgreSQL (PGlite 0.5 has no pgvector): `float4[]` rows with tenant
 * and course, exact cosine computed here over one course's rows, read in batches (memory: one
 * batch). Ids are deterministic (the passage's id), so a redelivered batch upserts in place.
 */
import type { SqlExecutor } from "@troupe/runtime";
import type { VectorHit, VectorItem, VectorStore } from "./port.ts";

export type { VectorHit, VectorItem, VectorStore };

const BATCH = 2000;

interface CourseMatrix {
  ids: string[];
  /** Row-major vectors, one row per id. */
  data: Float32Array;
}

/** Memory for cached course matrices (5,000 passages × 256 dims ≈ 5 MB). */
const CACHE_BYTES = 64 * 1024 * 1024;

export class PgVectorStore implements VectorStore {
  readonly kind = "postgres" as const;
  readonly transactional = true;
  readonly #cache = new Map<string, CourseMatrix>();
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

  /**
   * The `k` nearest of one course (tenant-scoped), by exact cosine. A course's vectors are
   * loaded once into one `Float32Array` and kept (LRU, bounded) while the course's vector
   * count is unchanged: a course changes only when it is rebuilt or deleted, and the same ids
   * always carry the same vectors for a given embedder.
   */
  async query(
    vector: Float32Array,
    filter: { tenantId: string; courseId: string },
    k: number,
  ): Promise<VectorHit[]> {
    const m = await this.#matrix(filter);
    const best: VectorHit[] = [];
    const dims = vector.length;
    if (m.data.length !== m.ids.length * dims) {
      throw new Error(
        `the course's vectors have ${m.data.length / Math.max(1, m.ids.length)} dimensions, ` +
          `the embedder ${dims}: rebuild the course after changing the embedder`,
      );
    }
    for (let r = 0; r < m.ids.length; r++) {
      let score = 0;
      const base = r * dims;
      for (let i = 0; i < dims; i++) score += vector[i]! * m.data[base + i]!;
      if (best.length < k || score > best.at(-1)!.score) {
        best.push({ id: m.ids[r]!, score });
        best.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
        if (best.length > k) best.pop();
      }
    }
    return best;
  }

  async #matrix(filter: { tenantId: string; courseId: string }): Promise<CourseMatrix> {
    const key = `${filter.tenantId}\u0000${filter.courseId}`;
    const n = await this.count(filter);
    const hit = this.#cache.get(key);
    if (hit && hit.ids.length === n) {
      this.#cache.delete(key);
      this.#cache.set(key, hit);
      return hit;
    }
    const ids: string[] = [];
    const rowsData: number[][] = [];
    let after = "";
    while (true) {
      const rows = await this.db.query<{ id: string; vector: number[] }>(
        `SELECT id, vector FROM troupe_course_vectors
         WHERE tenant_id = $1 AND course_id = $2 AND id > $3 ORDER BY id LIMIT $4`,
        [filter.tenantId, filter.courseId, after, BATCH],
      );
      for (const r of rows) {
        ids.push(r.id);
        rowsData.push(r.vector);
      }
      if (rows.length < BATCH) break;
      after = rows.at(-1)!.id;
    }
    const dims = rowsData[0]?.length ?? 0;
    const data = new Float32Array(ids.length * dims);
    rowsData.forEach((v, i) => data.set(v, i * dims));
    const m = { ids, data };
    this.#cache.set(key, m);
    let bytes = 0;
    for (const c of this.#cache.values()) bytes += c.data.byteLength;
    while (bytes > CACHE_BYTES && this.#cache.size > 1) {
      const oldest = this.#cache.keys().next().value!;
      bytes -= this.#cache.get(oldest)!.data.byteLength;
      this.#cache.delete(oldest);
    }
    return m;
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
    for (const key of [...this.#cache.keys()]) {
      if (key.endsWith(`\u0000${filter.courseId}`)) this.#cache.delete(key);
    }
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
