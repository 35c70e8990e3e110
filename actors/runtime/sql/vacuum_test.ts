import assert from "node:assert/strict";
import { openPglite } from "../drivers/pglite.ts";
import { migrateRuntime } from "../migrate.ts";
import { tables } from "./tables.ts";
import { vacuumTables } from "./vacuum.ts";

const t = tables();
const names = [
  "troupe_jobs",
  "troupe_actor_state",
  "troupe_processed_messages",
  "troupe_outbox",
  "troupe_dead_letters",
  "troupe_groups",
];

Deno.test("vacuumTables analyzes each of the runtime's tables (PGlite)", async () => {
  const db = await openPglite();
  try {
    await migrateRuntime(db);
    await db.query(
      `INSERT INTO ${t.jobs} (id, actor, key, input, max_attempts)
       SELECT 'j' || g, 'vacuum.test', 'j' || g, '{}'::jsonb, 3 FROM generate_series(1, 25) g`,
    );
    // reltuples is -1 for a table never vacuumed nor analyzed since its rows changed.
    await db.query(`UPDATE pg_class SET reltuples = -1 WHERE relname = ANY($1)`, [names]);
    await vacuumTables(db, t);
    const rows = await db.query<{ relname: string; reltuples: number }>(
      `SELECT relname, reltuples::int AS reltuples FROM pg_class WHERE relname = ANY($1)`,
      [names],
    );
    assert.equal(rows.length, names.length);
    for (const r of rows) {
      assert.equal(r.reltuples, r.relname === "troupe_jobs" ? 25 : 0, r.relname);
    }
  } finally {
    await db.close();
  }
});
