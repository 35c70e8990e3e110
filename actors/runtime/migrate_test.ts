import assert from "node:assert/strict";
import { openPglite } from "./drivers/pglite.ts";
import { openPostgres } from "./drivers/postgres.ts";
import {
  migrate,
  migrateRuntime,
  type MigrationSet,
  migrationSet,
  runtimeMigrations,
} from "./migrate.ts";
import type { SqlDatabase } from "./ports.ts";

const PG_URL = Deno.env.get("TEST_PG_URL_DB") ?? "postgres://postgres@127.0.0.1:5432/test";

async function tablesIn(db: SqlDatabase, schema: string): Promise<string[]> {
  const rows = await db.query<{ t: string }>(
    "SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
    [schema],
  );
  return rows.map((r) => r.t);
}

const RUNTIME_TABLES = [
  "troupe_actor_pauses",
  "troupe_actor_state",
  "troupe_dead_letters",
  "troupe_groups",
  "troupe_jobs",
  "troupe_outbox",
  "troupe_processed_messages",
  "troupe_schedule_pauses",
  "troupe_schema_migrations",
  "troupe_workers",
];

const targets: { name: string; open(): Promise<SqlDatabase> }[] = [
  { name: "pglite", open: () => openPglite() },
  { name: "postgres", open: () => Promise.resolve(openPostgres(PG_URL, { max: 2 })) },
];

for (const target of targets) {
  Deno.test(`migrateRuntime() makes the runtime's tables in the schema given (${target.name})`, async () => {
    const db = await target.open();
    const schema = `troupe_m_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    try {
      const applied = await migrateRuntime(db, { schema });
      assert.deepEqual(
        applied.map((m) => m.tag),
        (await runtimeMigrations.load()).map((m) => m.tag),
      );
      assert.deepEqual(await tablesIn(db, schema), RUNTIME_TABLES);
      const indexes = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1 AND tablename = 'troupe_jobs'",
        [schema],
      );
      assert.ok(indexes[0]!.n >= 7, `${indexes[0]!.n} indexes on troupe_jobs`);
      assert.deepEqual(await migrateRuntime(db, { schema }), [], "applied once");
      // A job row fits the table as the runtime writes it.
      await db.query(
        `INSERT INTO "${schema}".troupe_jobs (id, actor, key, input, max_attempts)
         VALUES ('j', 'a', 'k', '{}', 1)`,
      );
    } finally {
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.close();
    }
  });
}

Deno.test("migrate() refuses a schema name that is not a plain lowercase identifier", async () => {
  let queries = 0;
  const db = { query: () => (queries++, Promise.resolve([])) } as unknown as SqlDatabase;
  for (const schema of ['x"; DROP TABLE y; --', "Public", "1st", "", "a".repeat(64), "a-b"]) {
    await assert.rejects(migrateRuntime(db, { schema }), TypeError, schema);
  }
  assert.equal(queries, 0);
});

Deno.test("migrate() applies sets in order and rolls all of a call back when one fails", async () => {
  const db = await openPglite();
  try {
    const first: MigrationSet = {
      name: "first",
      load: () => Promise.resolve([{ tag: "0000_a", sql: "CREATE TABLE {{schema}}.a (x int)" }]),
    };
    const broken: MigrationSet = {
      name: "second",
      load: () =>
        Promise.resolve([
          { tag: "0000_b", sql: "INSERT INTO a VALUES (1)\n--> statement-breakpoint\nSELECT 1/0" },
        ]),
    };
    await assert.rejects(migrate(db, [first, broken]), /division by zero/);
    assert.deepEqual(await tablesIn(db, "public"), []);
    await assert.rejects(migrate(db, [first, first]), /given twice/);
    const fixed: MigrationSet = {
      name: "second",
      load: () => Promise.resolve([{ tag: "0000_b", sql: "INSERT INTO a VALUES (1)" }]),
    };
    assert.deepEqual(await migrate(db, [first, fixed]), [
      { set: "first", tag: "0000_a" },
      { set: "second", tag: "0000_b" },
    ]);
    assert.deepEqual(await db.query("SELECT x FROM a"), [{ x: 1 }]);
  } finally {
    await db.close();
  }
});

Deno.test("migrationSet() reads a set served over HTTP as from files (a package on a registry)", async () => {
  const folder = new URL("./migrations/", import.meta.url);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname.slice(1);
    try {
      return new Response(await Deno.readFile(new URL(path, folder)));
    } catch {
      return new Response("missing", { status: 404 });
    }
  });
  try {
    const remote = migrationSet("runtime", new URL(`http://127.0.0.1:${server.addr.port}/x/`));
    await assert.rejects(remote.load(), /HTTP 404/);
    const served = migrationSet("runtime", new URL(`http://127.0.0.1:${server.addr.port}`));
    const local = await runtimeMigrations.load();
    assert.ok(local.length >= 4);
    assert.deepEqual(await served.load(), local);
  } finally {
    await server.shutdown();
  }
});
