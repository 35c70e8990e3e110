/**
 * `copyIn`, the bulk load the dataset pipeline uses, on every driver: escapes and nulls come
 * back as they went in; inside a transaction it commits or rolls back with the rest; a bad
 * row fails the whole COPY and stores nothing.
 */
import assert from "node:assert/strict";
import { copyText } from "../../actors/runtime/ports.ts";
import { contractSuite } from "./suite.ts";

const nasty = [
  "plain",
  "tab\there",
  "new\nline",
  "carriage\r\nreturn",
  "back\\slash \\N \\t",
  "",
  "ünïcödé ✓ 漢字",
  null,
];

function tsv(rows: (string | null)[][]): string {
  return rows.map((r) => r.map(copyText).join("\t") + "\n").join("");
}

contractSuite("copy", {
  "copyIn stores every value as given, escapes and nulls included": async ({ db }) => {
    assert.ok(db.copyIn, "the driver offers COPY");
    await db.query("CREATE TABLE copy_a (id bigint PRIMARY KEY, v text)");
    await db.copyIn!("copy_a", ["id", "v"], tsv(nasty.map((v, i) => [String(i), v])));
    const rows = await db.query<{ id: number; v: string | null }>(
      "SELECT id::int AS id, v FROM copy_a ORDER BY id",
    );
    assert.deepEqual(rows.map((r) => r.v), nasty);
  },
  "copyIn in a transaction: all or nothing": async ({ db }) => {
    await db.query('CREATE TABLE copy_b (id bigint PRIMARY KEY, "c_x" text)');
    await db.transaction(async (tx) => {
      assert.ok(tx.copyIn, "transactions offer COPY");
      await tx.query("DELETE FROM copy_b");
      await tx.copyIn!("copy_b", ["id", '"c_x"'], tsv([["1", "a"], ["2", "b"]]));
    });
    await assert.rejects(() =>
      db.transaction(async (tx) => {
        await tx.query("DELETE FROM copy_b");
        await tx.copyIn!("copy_b", ["id", '"c_x"'], tsv([["3", "c"]]));
        throw new Error("abort after the copy");
      }), /abort/);
    const n = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM copy_b");
    assert.equal(n[0]!.n, 2, "the rolled back transaction left the first copy in place");
    // A duplicate key fails the COPY: nothing of it is stored, and the connection is usable.
    await assert.rejects(() =>
      db.copyIn!("copy_b", ["id", '"c_x"'], tsv([["9", "z"], ["1", "dup"]]))
    );
    const after = await db.query<{ id: number }>("SELECT id::int AS id FROM copy_b ORDER BY id");
    assert.deepEqual(after.map((r) => r.id), [1, 2]);
  },
});
