/** The PGlite adapter's turns: waiting single statements go before waiting transactions. */
import assert from "node:assert/strict";
import { openPglite } from "./pglite.ts";

Deno.test("a statement waits for the running transaction only, not for the queued ones", async () => {
  const db = await openPglite();
  try {
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => release = r);
    const running = db.transaction(async (tx) => {
      await tx.query("SELECT 1");
      await held;
      order.push("running");
    });
    await new Promise((r) => setTimeout(r, 10));
    const queued = [1, 2, 3].map((i) =>
      db.transaction(async (tx) => {
        await tx.query("SELECT $1::int", [i]);
        order.push(`transaction ${i}`);
      })
    );
    const read = db.query<{ x: number }>("SELECT 42 AS x").then((rows) => {
      order.push("statement");
      return rows;
    });
    release();
    await Promise.all([running, ...queued]);
    assert.deepEqual((await read)[0], { x: 42 });
    assert.deepEqual(order, [
      "running",
      "statement",
      "transaction 1",
      "transaction 2",
      "transaction 3",
    ]);
  } finally {
    await db.close();
  }
});

Deno.test("a waiting transaction goes after 16 statements in a row", async () => {
  const db = await openPglite();
  try {
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => release = r);
    const running = db.transaction(async () => {
      await held;
    });
    await new Promise((r) => setTimeout(r, 10));
    const tx = db.transaction(async (t) => {
      await t.query("SELECT 1");
      order.push("transaction");
    });
    const reads = Array.from(
      { length: 20 },
      (_, i) => db.query("SELECT $1::int", [i]).then(() => order.push(`s${i}`)),
    );
    release();
    await Promise.all([running, tx, ...reads]);
    assert.equal(order.indexOf("transaction"), 16);
    assert.equal(order.length, 21);
  } finally {
    await db.close();
  }
});
