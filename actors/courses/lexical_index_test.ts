/**
 * The lexical index on every database target (PGlite, PostgreSQL, the Neon driver): lexemes
 * written as `tsvector` literals come back verbatim, BM25 ranks rare terms first, a course's
 * postings are re-read when its passages change, and courses and tenants stay apart.
 */
import assert from "node:assert/strict";
import { targets } from "../../tests/harness.ts";
import type { SqlExecutor } from "@troupe/runtime";
import { bm25, courseIndex, idf, unseenIdf } from "./lexical_index.ts";
import { lexemeVector, queryTokens } from "./lexicon.ts";

async function write(
  db: SqlExecutor,
  courseId: string,
  tenantId: string,
  passages: Record<string, string>,
) {
  await db.query(
    `INSERT INTO troupe_course_chunks
       (id, course_id, tenant_id, source_idx, file_name, page_from, page_to, section, text, lexemes)
     SELECT x.id, $1, $2, 0, 'f.pdf', 1, 1, 'S', x.text, x.lexemes::tsvector
     FROM jsonb_to_recordset($3::jsonb) AS x(id text, text text, lexemes text)`,
    [
      courseId,
      tenantId,
      JSON.stringify(
        Object.entries(passages).map(([id, text]) => ({ id, text, lexemes: lexemeVector(text) })),
      ),
    ],
  );
}

for (const target of targets) {
  Deno.test({
    name: `lexical index [${target.name}]: code words verbatim, BM25 order, re-read on change`,
  }, async () => {
    const { db, cleanup } = await target.open();
    try {
      await write(db, "c1", "t1", {
        a: "Fit a model with lm(y ~ x); the model is a list. It's fitted.",
        b: "The model of the data and the model of the noise, another model.",
        c: "Compare two means with t.test, or C++ code with ls -l.",
      });
      await write(db, "c2", "t1", { z: "lm lm lm lm" });
      await write(db, "c1", "t2", { y: "lm t.test c++" });
      const index = await courseIndex(db, "c1", "t1");
      assert.deepEqual(index.ids.sort(), ["a", "b", "c"]);
      for (const t of ["lm", "t.test", "c++", "-l", "it's", "fitted", "fit"]) {
        assert.ok(index.postings.has(t), t);
      }
      assert.deepEqual(bm25(index, queryTokens("lm"), 5).map((s) => s.id), ["a"]);
      assert.deepEqual(bm25(index, queryTokens("t.test"), 5).map((s) => s.id), ["c"]);
      assert.deepEqual(bm25(index, queryTokens("xylophone"), 5), []);
      // "model" is in two passages, "lm" in one: the rarer term weighs more.
      assert.ok(idf(index, "lm") > idf(index, "model"));
      assert.ok(unseenIdf(index) > idf(index, "lm"));
      assert.equal(bm25(index, queryTokens("model lm"), 5)[0]!.id, "a");
      // A rebuilt course (more passages) is read again.
      await write(db, "c1", "t1", { d: "Another passage on lm and glm." });
      const again = await courseIndex(db, "c1", "t1");
      assert.notEqual(again, index);
      assert.deepEqual(bm25(again, ["glm"], 5).map((s) => s.id), ["d"]);
      assert.equal(await courseIndex(db, "c1", "t1"), again, "unchanged: the cached one");
    } finally {
      await cleanup();
    }
  });
}
