/**
 * Deleting courses: one (`DELETE /courses/:id`) or all of a tenant's (its part of a tenant's
 * deletion). Files are released, not removed: other courses and datasets may hold the same bytes.
 */
import { NotFoundError, type SqlExecutor } from "@troupe/runtime";
import { releaseBlobs } from "../../db/blobs/refs.ts";
import type { VectorStore } from "../../actors/courses/vectors/port.ts";
import { drainIds, type TenantDataPart } from "../tenants/part.ts";

/**
 * Deletes course `id` of `tenantId` with its passages, sources and (when the store is in the
 * database) vectors, in `tx`; `NotFoundError` when the tenant has no such course. A vector store
 * outside the database is the caller's to clear (`vectors.deleteWhere`).
 */
export async function deleteCourse(
  tx: SqlExecutor,
  vectors: VectorStore,
  id: string,
  tenantId: string,
): Promise<{ passages: number; sources: number }> {
  const gone = await tx.query(
    "DELETE FROM troupe_courses WHERE id = $1 AND tenant_id = $2 RETURNING id",
    [id, tenantId],
  );
  if (!gone[0]) throw new NotFoundError("course", id);
  const passages = await tx.query(
    "DELETE FROM troupe_course_chunks WHERE course_id = $1 RETURNING 1",
    [
      id,
    ],
  );
  if (vectors.transactional) await vectors.deleteWhere({ courseId: id }, tx);
  const sources = await tx.query(
    "DELETE FROM troupe_course_sources WHERE course_id = $1 RETURNING 1",
    [id],
  );
  // Its files (and their extracted pages) go later, once nothing else holds them.
  await releaseBlobs(tx, { kind: "course", id });
  return { passages: passages.length, sources: sources.length };
}

/** A tenant's courses, one transaction each; vectors outside the database go first. */
export function courseTenantData(vectors: VectorStore): TenantDataPart {
  return {
    name: "courses",
    async deleteTenantData(ctx) {
      await drainIds(ctx, async () =>
        (await ctx.db.query<{ id: string }>(
          "SELECT id FROM troupe_courses WHERE tenant_id = $1 ORDER BY id LIMIT 50",
          [ctx.tenantId],
        )).map((r) => r.id), async (id) => {
        const filter = { tenantId: ctx.tenantId, courseId: id };
        const count = await vectors.count(filter);
        // Before the rows: a crash in between leaves the course to be deleted again, vectors and all.
        if (!vectors.transactional) await vectors.deleteWhere({ courseId: id });
        await ctx.step(async (tx) => {
          const held = await tx.query(
            "SELECT 1 FROM troupe_courses WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
            [id, ctx.tenantId],
          );
          if (!held[0]) return {};
          return {
            courses: 1,
            ...await deleteCourse(tx, vectors, id, ctx.tenantId),
            vectors: count,
          };
        });
      });
    },
  };
}
