/**
 * The courses' part of a tenant's deletion with vectors in ChromaDB (a real chroma run): the
 * tenant's vectors go with its courses, another tenant's stay, and a second run removes and
 * counts nothing.
 */
import assert from "node:assert/strict";
import type { SqlExecutor } from "@troupe/runtime";
import { ChromaVectorStore } from "./vectors/chroma.ts";
import { startChroma } from "../../tests/fixtures/chroma_server.ts";
import { pgliteTarget } from "../../tests/harness.ts";
import type { Counts, TenantDeletionContext } from "../tenants/part.ts";
import { courseTenantData } from "./delete.ts";

Deno.test({
  name: "courseTenantData removes a tenant's courses and their Chroma vectors, no one else's",
}, async () => {
  const chroma = await startChroma();
  const tdb = await pgliteTarget.open();
  const db = tdb.db;
  const vectors = new ChromaVectorStore({
    url: chroma.url,
    collection: `courses_${crypto.randomUUID().slice(0, 8)}`,
  });
  try {
    const seed = async (tenantId: string, courseId: string, n: number) => {
      await db.query(
        `INSERT INTO troupe_courses (id, tenant_id, title, status) VALUES ($1, $2, 't', 'ready')`,
        [courseId, tenantId],
      );
      await vectors.upsert(Array.from({ length: n }, (_, i) => ({
        id: `${courseId}-${i}`,
        tenantId,
        courseId,
        vector: new Float32Array([1, i, 0.5, 0.25]),
      })));
    };
    await seed("gone", "c-1", 3);
    await seed("gone", "c-2", 2);
    await seed("stays", "c-3", 4);
    const ctx = (tenantId: string, tally: Counts): TenantDeletionContext => ({
      tenantId,
      db,
      signal: new AbortController().signal,
      step: (fn: (tx: SqlExecutor) => Promise<Counts>) =>
        db.transaction(async (tx) => {
          const counts = await fn(tx);
          for (const [k, v] of Object.entries(counts)) tally[k] = (tally[k] ?? 0) + v;
          return counts;
        }),
    });
    const first: Counts = {};
    await courseTenantData(vectors).deleteTenantData(ctx("gone", first));
    assert.deepEqual(first, { courses: 2, passages: 0, sources: 0, vectors: 5 });
    assert.equal(await vectors.count({ tenantId: "gone", courseId: "c-1" }), 0);
    assert.equal(await vectors.count({ tenantId: "gone", courseId: "c-2" }), 0);
    assert.equal(await vectors.count({ tenantId: "stays", courseId: "c-3" }), 4);
    const left = await db.query("SELECT id FROM troupe_courses ORDER BY id");
    assert.deepEqual(left, [{ id: "c-3" }]);
    const second: Counts = {};
    await courseTenantData(vectors).deleteTenantData(ctx("gone", second));
    assert.deepEqual(second, {});
  } finally {
    await tdb.cleanup();
    await chroma.close();
  }
});
