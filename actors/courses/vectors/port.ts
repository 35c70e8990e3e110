/**
 * The vectors port: one embedding per course passage, searched per course and tenant.
 * Adapters: `PgVectorStore` (the same PostgreSQL; transactional, the embedded default) and
 * `ChromaVectorStore` (ChromaDB, `CHROMA_URL`). Ids are the passages' deterministic ids, so
 * writing a batch again upserts in place.
 */
import type { SqlExecutor } from "@troupe/runtime";

export interface VectorItem {
  id: string;
  tenantId: string;
  courseId: string;
  vector: Float32Array;
}

export interface VectorHit {
  id: string;
  score: number;
}

export interface VectorStore {
  readonly kind: "postgres" | "chroma";
  /** True when `upsert` can join the caller's database transaction. */
  readonly transactional: boolean;
  upsert(items: readonly VectorItem[], tx?: SqlExecutor): Promise<void>;
  query(
    vector: Float32Array,
    filter: { tenantId: string; courseId: string },
    k: number,
  ): Promise<VectorHit[]>;
  count(filter: { tenantId: string; courseId: string }): Promise<number>;
  deleteWhere(filter: { courseId: string }, tx?: SqlExecutor): Promise<void>;
}
