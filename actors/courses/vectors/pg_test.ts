/**
 * The vector stores — embedded (PGlite, PostgreSQL, the Neon driver) and ChromaDB (a real
 * `chroma run` server) — with one behaviour suite; the hashing embedder; reciprocal rank fusion.
 */
import assert from "node:assert/strict";
import { targets } from "../../../tests/harness.ts";
import { cosine, HashingEmbedder } from "../embeddings/hashing.ts";
import { startChroma } from "../../../tests/fixtures/chroma_server.ts";
import { ChromaVectorStore } from "./chroma.ts";
import { PgVectorStore, reciprocalRankFusion } from "./pg.ts";
import type { VectorStore } from "./port.ts";

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

interface Subject {
  name: string;
  open(): Promise<{ store: VectorStore; close(): Promise<void> }>;
}

const subjects: Subject[] = [
  ...targets.map((target) => ({
    name: target.name,
    async open() {
      const { db, cleanup } = await target.open();
      return { store: new PgVectorStore(db) as VectorStore, close: cleanup };
    },
  })),
  {
    name: "chroma",
    async open() {
      const server = await startChroma();
      return {
        store: new ChromaVectorStore({
          url: server.url,
          collection: `test_${crypto.randomUUID().slice(0, 8)}`,
        }),
        close: () => server.close(),
      };
    },
  },
];

for (const subject of subjects) {
  Deno.test({
    name: `vectors [${subject.name}]: upsert by id, nearest first, scoped, deleted with the course`,
  }, async () => {
    const { store, close } = await subject.open();
    try {
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
      assert.ok(Math.abs(hits[0]!.score - cosine(q!, vecs[0]!)) < 1e-3, "the score is the cosine");
      assert.ok(!hits.some((h) => h.id === "other"), "another tenant's vectors are not searched");
      if (store.kind === "postgres") {
        const [short] = await new HashingEmbedder(32).embed(["photosynthesis"]);
        await assert.rejects(
          () => store.query(short!, { tenantId: "t1", courseId: "c1" }, 2),
          /rebuild the course/,
          "vectors of another embedder are refused, not misread",
        );
      }
      await store.deleteWhere({ courseId: "c1" });
      assert.equal(await store.count({ tenantId: "t1", courseId: "c1" }), 0);
    } finally {
      await close();
    }
  });
}
