/**
 * The embedded vector store on PGlite, PostgreSQL and the Neon driver, the hashing embedder,
 * and reciprocal rank fusion.
 */
import assert from "node:assert/strict";
import { targets } from "../../tests/harness.ts";
import { cosine, HashingEmbedder } from "../embeddings/hashing.ts";
import { PgVectorStore, reciprocalRankFusion } from "./pg.ts";

Deno.test("hashing embedder: deterministic, normalised, lexical neighbours closer", async () => {
  const e = new HashingEmbedder(256);
  const [a, b, c, d, a2] = await e.embed([
    "The cell membrane controls what enters the cell.",
    "Cell membranes control what enters cells.",
    "Stock markets fell sharply on Tuesday.",
    "Мембрана клетки контролирует вход веществ.",
    "The cell membrane controls what enters the cell.",
  ]);
  assert.deepEqual(a, a2);
  assert.ok(Math.abs(cosine(a!, a!) - 1) < 1e-5);
  assert.ok(cosine(a!, b!) > cosine(a!, c!) + 0.2, "shared words and word pieces count");
  assert.ok(cosine(d!, d!) > 0.99, "non-Latin text embeds too");
});

Deno.test("reciprocal rank fusion favours what both lists rank high", () => {
  const fused = reciprocalRankFusion([["a", "b", "c"], ["c", "a", "d"]]);
  assert.deepEqual(fused.map((f) => f.id), ["a", "c", "b", "d"]);
});

for (const target of targets) {
  Deno.test({
    name: `vectors [${target.name}]: upsert by id, nearest first, scoped, deleted with the course`,
    sanitizeOps: false,
    sanitizeResources: false,
  }, async () => {
    const { db, cleanup } = await target.open();
    try {
      const store = new PgVectorStore(db);
      const e = new HashingEmbedder(64);
      const texts = [
        "photosynthesis in leaves",
        "cellular respiration",
        "stock market news",
        "leaf chlorophyll",
      ];
      const vecs = await e.embed(texts);
      const items = texts.map((_, i) => ({
        id: `v${i}`,
        tenantId: "t1",
        courseId: "c1",
        vector: vecs[i]!,
      }));
      await store.upsert(items);
      await store.upsert(items); // redelivered: same rows
      await store.upsert([{ id: "other", tenantId: "t2", courseId: "c1", vector: vecs[0]! }]);
      assert.equal(await store.count({ tenantId: "t1", courseId: "c1" }), 4);
      const [q] = await e.embed(["photosynthesis leaves"]);
      const hits = await store.query(q!, { tenantId: "t1", courseId: "c1" }, 2);
      assert.equal(hits[0]!.id, "v0");
      assert.equal(hits.length, 2);
      assert.ok(hits[0]!.score >= hits[1]!.score);
      assert.ok(!hits.some((h) => h.id === "other"), "another tenant's vectors are not searched");
      await store.deleteWhere({ courseId: "c1" });
      assert.equal(await store.count({ tenantId: "t1", courseId: "c1" }), 0);
    } finally {
      await cleanup();
    }
  });
}
