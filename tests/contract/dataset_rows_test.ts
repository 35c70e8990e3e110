/**
 * A dataset chunk stored twice (a redelivery after a crash between the COPY's commit and the
 * message's) leaves one copy of its rows, and another chunk's rows are untouched.
 */
import assert from "node:assert/strict";
import { replaceChunkRows } from "../../actors/datasets/chunk_rows.ts";
import { copyLines } from "../fixtures/copy_lines.ts";
import type { SqlDatabase } from "@troupe/runtime";

const copyRows = (
  db: SqlDatabase,
  table: string,
  idx: number,
  keys: string[],
  rows: unknown[][],
) => replaceChunkRows(db, table, idx, keys, copyLines(idx, rows));
import { contractSuite } from "./suite.ts";

contractSuite("dataset rows", {
  "a chunk copied twice is stored once": async ({ db }) => {
    await db.query('CREATE TABLE rows_a (_row bigint PRIMARY KEY, "c_1" text, "c_2" text)');
    const chunk = (tag: string) =>
      Array.from({ length: 500 }, (_, i) => [`${tag}${i}`, i % 7 ? "x\ty" : null]);
    await copyRows(db, "rows_a", 0, ["c_1", "c_2"], chunk("a"));
    await copyRows(db, "rows_a", 1, ["c_1", "c_2"], chunk("b"));
    await copyRows(db, "rows_a", 1, ["c_1", "c_2"], chunk("b"));
    const n = await db.query<{ chunk: number; n: number; nulls: number }>(
      `SELECT (_row / 4294967296)::int AS chunk, count(*)::int AS n,
         count(*) FILTER (WHERE "c_2" IS NULL)::int AS nulls
       FROM rows_a GROUP BY 1 ORDER BY 1`,
    );
    assert.deepEqual(n, [{ chunk: 0, n: 500, nulls: 72 }, { chunk: 1, n: 500, nulls: 72 }]);
    const tab = await db.query<{ v: string }>(`SELECT "c_2" AS v FROM rows_a WHERE _row = 1`);
    assert.equal(tab[0]!.v, "x\ty");
  },
});
