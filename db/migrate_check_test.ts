import assert from "node:assert/strict";
import { openPglite } from "@troupe/runtime/pglite";
import {
  checkMigrations,
  migrate,
  MIGRATION_SETS,
  MigrationsPendingError,
  pendingMigrations,
} from "./migrate.ts";

Deno.test("pendingMigrations: all of them on an empty database, none once migrated, nothing written", async () => {
  const db = await openPglite();
  try {
    const total = (await Promise.all(MIGRATION_SETS.map((s) => s.load())))
      .reduce((n, m) => n + m.length, 0);
    const before = await pendingMigrations(db);
    assert.equal(before.length, total);
    assert.deepEqual(before[0], { set: "runtime", tag: "0000_core" });
    // A read only: the ledger is still absent.
    const [ledger] = await db.query<{ found: boolean }>(
      "SELECT to_regclass('public.troupe_schema_migrations') IS NOT NULL AS found",
    );
    assert.equal(ledger?.found, false);
    await assert.rejects(checkMigrations(db), MigrationsPendingError);

    await migrate(db);
    assert.deepEqual(await pendingMigrations(db), []);
    await checkMigrations(db);
  } finally {
    await db.close();
  }
});

Deno.test("checkMigrations names exactly the migrations the ledger lacks", async () => {
  const db = await openPglite();
  try {
    await migrate(db);
    await db.query(
      "DELETE FROM troupe_schema_migrations WHERE (migration_set, tag) IN (('usage', '0000_usage'), ('app', '0001_blobs'))",
    );
    const err = await checkMigrations(db).then(() => null, (e) => e);
    assert.ok(err instanceof MigrationsPendingError);
    assert.deepEqual(err.pending, [
      { set: "app", tag: "0001_blobs" },
      { set: "usage", tag: "0000_usage" },
    ]);
    assert.match(
      err.message,
      /lacks 2 migration\(s\).*app\/0001_blobs, usage\/0000_usage.*deno task migrate/,
    );
  } finally {
    await db.close();
  }
});
