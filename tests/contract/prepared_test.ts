/**
 * Prepared statements on PostgreSQL's pool: the statements run with `{ prepare: true }` are
 * parsed once a connection under a name of their text; with `prepare: false` none is kept.
 */
import assert from "node:assert/strict";
import type { SqlDatabase } from "@troupe/runtime";
import { openPostgres, statementName } from "@troupe/runtime/postgres";
import { contractSuite, echoThrice } from "./suite.ts";

const PREPARED_NAMES = "SELECT name, statement FROM pg_prepared_statements ORDER BY name";

const POOL = 6;

/** `PREPARED_NAMES` on each connection of a pool of `POOL`: as many transactions held at once. */
async function onEveryConnection(db: SqlDatabase) {
  let arrived = 0;
  let all!: () => void;
  const together = new Promise<void>((resolve) => all = resolve);
  return await Promise.all(
    Array.from({ length: POOL }, () =>
      db.transaction(async (tx) => {
        const rows = await tx.query<{ name: string; statement: string }>(PREPARED_NAMES);
        if (++arrived === POOL) all();
        await together;
        return rows;
      })),
  );
}

contractSuite("prepared statements", {
  "a statement run with prepare is kept under the name of its text, once a connection": async (
    { url },
  ) => {
    const db = openPostgres(url!, { max: 1, idleTimeoutMs: 0 });
    try {
      const text = "SELECT $1::int + 1 AS n";
      assert.deepEqual(await db.query(text, [1], { prepare: true }), [{ n: 2 }]);
      assert.deepEqual(await db.query(text, [41], { prepare: true }), [{ n: 42 }]);
      await db.transaction(async (tx) => {
        assert.deepEqual(await tx.query(text, [2], { prepare: true }), [{ n: 3 }]);
      });
      // Unflagged statements stay unnamed.
      await db.query("SELECT $1::text AS s", ["x"]);
      const kept = await db.query<{ name: string; statement: string }>(PREPARED_NAMES);
      assert.deepEqual(kept, [{ name: statementName(text), statement: text }]);
      assert.match(statementName(text), /^troupe_[0-9a-f]{16}$/);
      assert.notEqual(statementName(text), statementName(`${text} `));
    } finally {
      await db.close();
    }
  },

  "with prepare off, no statement is kept": async ({ url }) => {
    const db = openPostgres(url!, { max: 1, idleTimeoutMs: 0, prepare: false });
    try {
      assert.deepEqual(await db.query("SELECT $1::int AS n", [1], { prepare: true }), [{ n: 1 }]);
      assert.deepEqual(await db.query(PREPARED_NAMES), []);
    } finally {
      await db.close();
    }
  },

  "the runtime's claim, commit and enqueue run as prepared statements": async ({ url }) => {
    const db = openPostgres(url!, { max: POOL, idleTimeoutMs: 0 });
    try {
      await echoThrice(db, "prepared.echo");
      const kept = (await onEveryConnection(db)).flat();
      const has = (pattern: RegExp) => kept.some((s) => pattern.test(s.statement));
      assert.ok(has(/INSERT INTO troupe_jobs/), "the enqueue");
      assert.ok(has(/INSERT INTO troupe_actor_state AS s/), "the claim");
      assert.ok(has(/UPDATE troupe_jobs j SET status = x\.status/), "the commit");
    } finally {
      await db.close();
    }
  },
}, { only: ["postgres"] });
