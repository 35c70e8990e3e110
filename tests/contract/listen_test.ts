/**
 * `SqlDatabase.listen`: listeners of one channel each hear every notification until they stop;
 * on the pooled drivers every listen shares one connection outside the pool, its shared advisory
 * locks held once a listener, so that the pool's connections all run statements.
 */
import assert from "node:assert/strict";
import type { SqlDatabase } from "@troupe/runtime";
import { openPostgres } from "@troupe/runtime/postgres";
import { waitFor } from "../harness.ts";
import { contractSuite, echoThrice } from "./suite.ts";

async function notify(db: SqlDatabase, channel: string, payload: string): Promise<void> {
  await db.query("SELECT pg_notify($1, $2)", [channel, payload]);
}

/** Whether another session can take the advisory lock `(a, b)` exclusively now. */
async function lockFree(db: SqlDatabase, a: number, b: number): Promise<boolean> {
  return await db.transaction(async (tx) => {
    const [row] = await tx.query<{ free: boolean }>(
      "SELECT pg_try_advisory_xact_lock($1, $2) AS free",
      [a, b],
    );
    return row!.free;
  });
}

contractSuite("listen", {
  "each listener of a channel hears every notification until it stops": async ({ db }) => {
    const a: string[] = [];
    const b: string[] = [];
    const toA = (p: string) => a.push(p);
    // The same function twice: two listeners, each stopped on its own.
    const stopA1 = await db.listen("listen_t1", toA);
    const stopA2 = await db.listen("listen_t1", toA);
    const stopB = await db.listen("listen_t1", (p) => b.push(p));
    const other: string[] = [];
    const stopOther = await db.listen("listen_t1_other", (p) => other.push(p));
    try {
      await notify(db, "listen_t1", "x");
      await waitFor(() => a.length === 2 && b.length === 1, { what: "x heard three times" });
      assert.deepEqual(a, ["x", "x"]);
      await stopA1();
      await stopA1(); // a second stop does nothing
      await notify(db, "listen_t1", "y");
      await waitFor(() => b.length === 2, { what: "y heard by b" });
      await notify(db, "listen_t1_other", "z");
      await waitFor(() => other.length === 1, { what: "z heard on the other channel" });
      assert.deepEqual(a, ["x", "x", "y"]);
      assert.deepEqual(b, ["x", "y"]);
      assert.deepEqual(other, ["z"]);
      await stopA2();
      await stopB();
      // The channel is listened to again after all its listeners stopped.
      const c: string[] = [];
      const stopC = await db.listen("listen_t1", (p) => c.push(p));
      await notify(db, "listen_t1", "w");
      await waitFor(() => c.length === 1, { what: "w heard by a new listener" });
      await stopC();
      assert.deepEqual(a, ["x", "x", "y"]);
      assert.deepEqual(b, ["x", "y"]);
    } finally {
      await stopOther();
    }
  },
});

contractSuite("listen", {
  "a shared lock is held while any listener that asked for it listens": async ({ db }) => {
    assert.ok(db.listenLocks);
    const stop1 = await db.listen("listen_t2", () => {}, { sharedLock: [7101, 1] });
    const stop2 = await db.listen("listen_t2b", () => {}, { sharedLock: [7101, 1] });
    assert.equal(await lockFree(db, 7101, 1), false);
    await stop1();
    assert.equal(await lockFree(db, 7101, 1), false, "the second listener still holds it");
    await stop2();
    assert.equal(await lockFree(db, 7101, 1), true);
  },
}, { only: ["postgres", "neon"] });

contractSuite("listen", {
  "a runtime runs on a pool of one connection (its listeners on one of their own)": async (
    { url },
  ) => {
    const db = openPostgres(url!, { max: 1, idleTimeoutMs: 0 });
    try {
      await echoThrice(db, "listen.echo");
    } finally {
      await db.close();
    }
  },
}, { only: ["postgres"] });
