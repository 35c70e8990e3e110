/**
 * The pooled drivers (node-postgres, and Neon's through the local bridge) survive the server
 * ending a connection that a transaction holds: the transaction fails, the process does not.
 */
import assert from "node:assert/strict";
import { neonTarget, postgresTarget, sleep } from "../tests/harness.ts";

for (const target of [postgresTarget, neonTarget]) {
  Deno.test({
    name:
      `${target.name}: a transaction whose connection the server ends fails; nothing is uncaught`,
  }, async () => {
    const { db, cleanup } = await target.open();
    try {
      const ended = db.transaction(async (tx) => {
        const [me] = await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
        // Another connection ends this one while the transaction waits between statements.
        await db.query("SELECT pg_terminate_backend($1)", [me!.pid]);
        await sleep(300);
        await tx.query("SELECT 1");
      });
      await assert.rejects(ended);
      // The pool goes on with fresh connections.
      const [row] = await db.query<{ n: number }>("SELECT 1 AS n");
      assert.equal(row!.n, 1);
    } finally {
      await cleanup();
    }
  });
}
