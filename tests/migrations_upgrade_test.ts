/**
 * Upgrading a database made when every migration lived in one folder (`db/migrations/`,
 * recorded by tag in `troupe_migrations`) to the migration sets: nothing runs twice, the data
 * stays, later migrations of any set apply, and the schema ends as a fresh database's. On
 * PGlite and on the PostgreSQL server (a scratch database each).
 *
 * `tests/fixtures/legacy_migrations/` is a frozen copy of the single folder, and
 * {@link legacyMigrate} the migrator that applied it; neither changes again.
 */
import assert from "node:assert/strict";
import { migrate as migrateSets, type MigrationSet, type SqlDatabase } from "@troupe/runtime";
import { openPglite } from "@troupe/runtime/pglite";
import { openPostgres } from "@troupe/runtime/postgres";
import { LEGACY_TAGS, migrate, MIGRATION_SETS } from "../db/migrate.ts";
import { createPgDatabase } from "./harness.ts";

const LEGACY = new URL("./fixtures/legacy_migrations/", import.meta.url);

/** The sets' migrations written after the single folder: an upgrade runs these, and only these. */
async function newerThanLegacy(): Promise<string[]> {
  const covered = new Set(Object.values(LEGACY_TAGS).flat());
  const all: string[] = [];
  for (const set of MIGRATION_SETS) {
    for (const { tag } of await set.load()) all.push(`${set.name}/${tag}`);
  }
  return all.filter((m) => !covered.has(m));
}

const applied = (list: { set: string; tag: string }[]) => list.map((m) => `${m.set}/${m.tag}`);

/** The single-folder migrator, as it was: every file not yet listed, under the same lock. */
async function legacyMigrate(db: SqlDatabase, upTo = Infinity): Promise<string[]> {
  const journal = JSON.parse(
    await Deno.readTextFile(new URL("meta/_journal.json", LEGACY)),
  ) as { entries: { idx: number; tag: string }[] };
  const entries = [...journal.entries].sort((a, b) => a.idx - b.idx).filter((e) => e.idx <= upTo);
  return await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(7316001)`);
    await tx.query(`CREATE TABLE IF NOT EXISTS troupe_migrations (
      tag text PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set(
      (await tx.query<{ tag: string }>("SELECT tag FROM troupe_migrations")).map((r) => r.tag),
    );
    const tags: string[] = [];
    for (const { tag } of entries) {
      if (done.has(tag)) continue;
      const text = await Deno.readTextFile(new URL(`${tag}.sql`, LEGACY));
      for (const statement of text.split("--> statement-breakpoint")) {
        if (statement.trim()) await tx.query(statement);
      }
      await tx.query("INSERT INTO troupe_migrations (tag) VALUES ($1)", [tag]);
      tags.push(tag);
    }
    return tags;
  });
}

const TARGETS: { name: string; open(): Promise<{ db: SqlDatabase; close(): Promise<void> }> }[] = [
  {
    name: "pglite",
    async open() {
      const db = await openPglite();
      return { db, close: () => db.close() };
    },
  },
  {
    name: "postgres",
    async open() {
      const { url, drop } = await createPgDatabase();
      const db = openPostgres(url, { max: 4 });
      return {
        db,
        async close() {
          await db.close();
          await drop();
        },
      };
    },
  },
];

/** Rows a running deployment has: a tenant and its key, a job, a dataset, a course, a blob. */
async function insertRows(db: SqlDatabase): Promise<void> {
  await db.query("INSERT INTO troupe_tenants (id, name) VALUES ('t1', 'acme')");
  await db.query(
    `INSERT INTO troupe_api_keys (id, tenant_id, name, prefix, hash)
     VALUES ('k1', 't1', 'ci', 'trp_ab', 'hash-1')`,
  );
  await db.query(
    `INSERT INTO troupe_jobs (id, actor, key, tenant_id, input, max_attempts)
     VALUES ('j1', 'greet', 'greet:1', 't1', '{"name":"Ada"}', 3)`,
  );
  await db.query(
    "INSERT INTO troupe_blobs (sha256, upload_id, size, part_size) VALUES ('b1', 'u1', 3, 3)",
  );
  await db.query(
    "INSERT INTO troupe_blob_parts (upload_id, part, data) VALUES ('u1', 0, '\\x616263')",
  );
  await db.query(
    `INSERT INTO troupe_datasets (id, tenant_id, name, status, format, options, blob_sha256,
       size_bytes) VALUES ('d1', 't1', 'cities', 'ready', 'csv', '{}', 'b1', 3)`,
  );
  await db.query(
    "INSERT INTO troupe_courses (id, tenant_id, title, status) VALUES ('c1', 't1', 'Intro', 'ready')",
  );
  await db.query(
    `INSERT INTO troupe_course_sources (course_id, idx, file_name, sha256, size_bytes, page_count,
       status) VALUES ('c1', 0, 'a.pdf', 'b1', 3, 2, 'ready')`,
  );
  await db.query(
    `INSERT INTO troupe_pdf_pages (sha256, page, lines) VALUES ('b1', 1, '[]'), ('b1', 2, '[]')`,
  );
}

async function rowsOf(db: SqlDatabase) {
  const one = async (sql: string) => (await db.query(sql))[0];
  return {
    tenant: await one("SELECT id, name FROM troupe_tenants"),
    key: await one("SELECT id, tenant_id, scope, admin FROM troupe_api_keys"),
    job: await one("SELECT id, status, input, kind, lease_losses FROM troupe_jobs"),
    blob: await one("SELECT sha256, size::int AS size FROM troupe_blobs"),
    dataset: await one("SELECT id, name, status FROM troupe_datasets"),
    course: await one("SELECT id, title FROM troupe_courses"),
    source: await one("SELECT course_id, sha256, pages_done FROM troupe_course_sources"),
    refs: await db.query(
      "SELECT sha256, owner_kind, owner_id FROM troupe_blob_refs ORDER BY owner_kind",
    ),
  };
}

/** What a later release adds: one more migration in the runtime's set and in a workload's. */
function withLaterMigrations(): MigrationSet[] {
  const later: Record<string, string> = {
    runtime: 'ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "later_note" text',
    datasets: 'ALTER TABLE "troupe_datasets" ADD COLUMN "later_note" text',
  };
  return MIGRATION_SETS.map((set) =>
    later[set.name]
      ? {
        name: set.name,
        load: async () => [...await set.load(), { tag: "9999_later", sql: later[set.name]! }],
      }
      : set
  );
}

/**
 * The tables' shape in `public`: columns (type, default, nullability, generation, storage),
 * indexes and constraints. The ledgers are left out: the legacy one stays where it was.
 */
async function shapeOf(db: SqlDatabase): Promise<Record<string, unknown[]>> {
  const ledgers = "('troupe_migrations', 'troupe_schema_migrations')";
  return {
    columns: await db.query(
      `SELECT c.table_name, c.column_name, c.ordinal_position::int AS position, c.data_type,
         c.udt_name, c.is_nullable, c.column_default, c.is_generated, c.generation_expression,
         a.attstorage::text AS storage
       FROM information_schema.columns c
       JOIN pg_attribute a ON a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
         AND a.attname = c.column_name
       WHERE c.table_schema = 'public' AND c.table_name NOT IN ${ledgers}
       ORDER BY c.table_name, c.column_name`,
    ),
    indexes: await db.query(
      `SELECT tablename, indexname, indexdef FROM pg_indexes
       WHERE schemaname = 'public' AND tablename NOT IN ${ledgers}
       ORDER BY tablename, indexname`,
    ),
    constraints: await db.query(
      `SELECT conrelid::regclass::text AS table_name, conname, contype::text AS type,
         pg_get_constraintdef(oid) AS def
       FROM pg_constraint
       WHERE connamespace = 'public'::regnamespace
         AND conrelid::regclass::text NOT IN ${ledgers}
       ORDER BY 1, 2`,
    ),
  };
}

for (const target of TARGETS) {
  Deno.test(`${target.name}: a database of the single folder upgrades with its data, nothing re-run`, async () => {
    const { db, close } = await target.open();
    try {
      assert.equal((await legacyMigrate(db)).length, Object.keys(LEGACY_TAGS).length);
      await insertRows(db);
      // Today's code would fill these holders in 0009; the rows above came after it.
      await db.query(
        `INSERT INTO troupe_blob_refs (sha256, owner_kind, owner_id, tenant_id)
         VALUES ('b1', 'dataset', 'd1', 't1'), ('b1', 'course', 'c1', 't1')`,
      );
      const before = await rowsOf(db);

      const newer = await newerThanLegacy();
      assert.ok(newer.includes("runtime/0007_operations"), "instances and pauses come later");
      assert.deepEqual(applied(await migrate(db)), newer, "every legacy migration is covered");
      assert.deepEqual(await rowsOf(db), before);
      const [ledger] = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM troupe_schema_migrations",
      );
      assert.equal(ledger?.n, Object.values(LEGACY_TAGS).flat().length + newer.length);

      const later = await migrateSets(db, withLaterMigrations());
      assert.deepEqual(later, [
        { set: "runtime", tag: "9999_later" },
        { set: "datasets", tag: "9999_later" },
      ]);
      assert.deepEqual(await rowsOf(db), before);
      const [job] = await db.query("SELECT id, later_note FROM troupe_jobs");
      assert.deepEqual(job, { id: "j1", later_note: null });
      assert.deepEqual(await migrate(db), []);
    } finally {
      await close();
    }
  });

  Deno.test(`${target.name}: a database part way through the single folder runs only the rest`, async () => {
    const { db, close } = await target.open();
    try {
      // Up to 0008_runtime_guards: no blob holders, no pages_done, no pipelines yet.
      assert.equal((await legacyMigrate(db, 8)).length, 9);
      await db.query("INSERT INTO troupe_tenants (id, name) VALUES ('t1', 'acme')");
      await db.query(
        `INSERT INTO troupe_blobs (sha256, upload_id, size, part_size) VALUES ('b1', 'u1', 3, 3)`,
      );
      await db.query(
        `INSERT INTO troupe_datasets (id, tenant_id, name, status, format, options, blob_sha256,
           size_bytes) VALUES ('d1', 't1', 'cities', 'ready', 'csv', '{}', 'b1', 3)`,
      );

      const ran = applied(await migrate(db));
      const rest = Object.entries(LEGACY_TAGS).filter(([tag]) => tag >= "0009");
      assert.deepEqual(
        ran.toSorted(),
        [...rest.flatMap(([, covered]) => covered), ...await newerThanLegacy()].sort(),
      );
      // The dataset that existed before holds its blob, as 0009 would have recorded it.
      assert.deepEqual(
        await db.query("SELECT sha256, owner_kind, owner_id, tenant_id FROM troupe_blob_refs"),
        [{ sha256: "b1", owner_kind: "dataset", owner_id: "d1", tenant_id: "t1" }],
      );
      assert.deepEqual(await db.query("SELECT name FROM troupe_tenants"), [{ name: "acme" }]);
    } finally {
      await close();
    }
  });

  Deno.test(`${target.name}: a fresh database has the shape of an upgraded one`, async () => {
    const upgraded = await target.open();
    const fresh = await target.open();
    try {
      await legacyMigrate(upgraded.db);
      await migrate(upgraded.db);
      await migrate(fresh.db);
      const [a, b] = [await shapeOf(upgraded.db), await shapeOf(fresh.db)];
      assert.ok(a.columns!.length > 100, `${a.columns!.length} columns`);
      assert.ok(a.indexes!.length > 30, `${a.indexes!.length} indexes`);
      assert.deepEqual(b, a);
    } finally {
      await upgraded.close();
      await fresh.close();
    }
  });

  Deno.test(`${target.name}: a legacy tag no set covers stops the upgrade, nothing applied`, async () => {
    const { db, close } = await target.open();
    try {
      await legacyMigrate(db);
      await db.query("INSERT INTO troupe_migrations (tag) VALUES ('0099_unknown')");
      await assert.rejects(migrate(db), /lists 0099_unknown/);
      const [ledger] = await db.query<{ t: string | null }>(
        "SELECT to_regclass('troupe_schema_migrations')::text AS t",
      );
      assert.equal(ledger?.t, null, "the failed upgrade rolled back");
    } finally {
      await close();
    }
  });
}

Deno.test("postgres: instances migrating a fresh database at once apply each migration once", async () => {
  const { url, drop } = await createPgDatabase();
  const pools = Array.from({ length: 3 }, () => openPostgres(url, { max: 2 }));
  try {
    const results = await Promise.all(pools.map((db) => migrate(db)));
    const all = results.flat().map((m) => `${m.set}/${m.tag}`);
    assert.equal(
      all.length,
      Object.values(LEGACY_TAGS).flat().length + (await newerThanLegacy()).length,
    );
    assert.equal(new Set(all).size, all.length);
  } finally {
    for (const db of pools) await db.close();
    await drop();
  }
});

Deno.test("every SQL file of every set is in its journal, and the sets' tags are what they load", async () => {
  const folders: Record<string, string> = {
    runtime: "../actors/runtime/migrations/",
    qstash: "../actors/runtime/transports/qstash_migrations/",
    app: "../db/migrations/",
    datasets: "../actors/datasets/migrations/",
    courses: "../actors/courses/migrations/",
    usage: "../actors/usage/migrations/",
  };
  assert.deepEqual(MIGRATION_SETS.map((s) => s.name).sort(), Object.keys(folders).sort());
  for (const set of MIGRATION_SETS) {
    const files: string[] = [];
    for await (const e of Deno.readDir(new URL(folders[set.name]!, import.meta.url))) {
      if (e.name.endsWith(".sql")) files.push(e.name.slice(0, -4));
    }
    const tags = (await set.load()).map((m) => m.tag);
    assert.deepEqual(files.sort(), [...tags].sort(), set.name);
    assert.deepEqual(tags, [...tags].sort(), `${set.name}: journal order is file order`);
  }
});
