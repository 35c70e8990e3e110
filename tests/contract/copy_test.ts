/**
 * `copyIn`, the bulk load the dataset pipeline uses, on every driver: escapes and nulls come
 * back as they went in; inside a transaction it commits or rolls back with the rest; a bad
 * row fails the whole COPY and stores nothing.
 */
import assert from "node:assert/strict";
import { copyText } from "@troupe/runtime";
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
  "copyIn takes UTF-8 bytes in segments, cut anywhere (mid-row, mid-character)": async ({ db }) => {
    await db.query("CREATE TABLE copy_s (id bigint PRIMARY KEY, v text)");
    const bytes = new TextEncoder().encode(tsv(nasty.map((v, i) => [String(i), v])));
    const lead = bytes.findIndex((b) => b >= 0xc0); // the first byte of a multi-byte character
    const cuts = [0, 3, 17, 40, lead + 1, lead + 2, bytes.length];
    const segments = cuts.slice(1).map((end, i) => bytes.subarray(cuts[i], end));
    assert.ok(
      segments.some((s) => s.length && (s[0]! & 0xc0) === 0x80),
      "a segment starts inside a character",
    );
    await db.copyIn!("copy_s", ["id", "v"], segments);
    await db.transaction(async (tx) => {
      await tx.copyIn!("copy_s", ["id", "v"], [
        new TextEncoder().encode("100\tin a tx\n"),
        bytes.subarray(0, 0),
      ]);
    });
    const rows = await db.query<{ v: string | null }>("SELECT v FROM copy_s ORDER BY id");
    assert.deepEqual(rows.map((r) => r.v), [...nasty, "in a tx"]);
  },
  "copyIn of many rows (over a MiB) stores them all, or nothing when one fails": async (
    { db },
  ) => {
    await db.query("CREATE TABLE copy_m (id bigint PRIMARY KEY, v text)");
    const rows = Array.from(
      { length: 20_000 },
      (_, i) => [String(i), `${nasty[i % 7]} ${"x".repeat(i % 90)}`],
    );
    const text = tsv(rows);
    assert.ok(text.length > 1_000_000, "several of PGlite's COPY slices");
    await db.copyIn!("copy_m", ["id", "v"], new TextEncoder().encode(text));
    const got = await db.query<{ v: string }>("SELECT v FROM copy_m ORDER BY id");
    assert.deepEqual(got.map((r) => r.v), rows.map((r) => r[1]));
    // A duplicate key in the last rows: the rows before it are not stored either.
    const more = Array.from({ length: 20_000 }, (_, i) => [String(100_000 + i), "y".repeat(50)]);
    more.push(["5", "dup"]);
    await assert.rejects(() => db.copyIn!("copy_m", ["id", "v"], tsv(more)));
    await assert.rejects(() =>
      db.transaction(async (tx) => {
        await tx.copyIn!("copy_m", ["id", "v"], tsv(more));
      })
    );
    const n = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM copy_m");
    assert.equal(n[0]!.n, 20_000);
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
