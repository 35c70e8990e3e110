/**
 * Every drizzle table of `db/schema/` against what the SQL migrations make (the migrations are
 * the truth). A PGlite database is migrated set after set (`MIGRATION_SETS` of `db/migrate.ts`);
 * the tables and sequences each group of sets adds must be exactly those its drizzle modules
 * declare: a table in the database and not in drizzle, or the reverse, fails.
 *
 * Each drizzle table is built by PostgreSQL in another schema (`drizzle_mirror`) from drizzle's
 * declaration alone (columns with their types, NOT NULL, defaults and generated expressions;
 * primary keys, unique, check and foreign key constraints; indexes), and both are read back
 * from the catalog as PostgreSQL writes them: each column's `format_type` and default
 * expression, each constraint's name and `pg_get_constraintdef` (so a composite primary key or
 * a unique constraint is compared by name and columns), each other index's name and
 * `pg_get_indexdef` (unique and partial indexes and expression keys included). Sequences are
 * compared by name and parameters.
 *
 * Not compared, because drizzle cannot declare them: the triggers and their functions
 * (`runtime/0008_job_end`, `usage/0002_indexes`), a column's storage (`troupe_blob_parts.data`
 * and `troupe_dataset_chunks.profile` are `STORAGE EXTERNAL`), data the migrations insert or
 * update, and the datasets' own row tables (`troupe_ds_<id>`, made by the pipeline, not by
 * migrations).
 */
import assert from "node:assert/strict";
import { is, SQL } from "drizzle-orm";
import {
  getTableConfig,
  type IndexedColumn,
  type PgColumn,
  PgDialect,
  PgSequence,
  PgTable,
} from "drizzle-orm/pg-core";
import type { SqlDatabase } from "@troupe/runtime";
import { migrate } from "@troupe/runtime/migrate";
import { openPglite } from "@troupe/runtime/pglite";
import { MIGRATION_SETS } from "../migrate.ts";
import * as allSchema from "./mod.ts";
import * as blobsSchema from "./blobs.ts";
import * as coursesSchema from "./courses.ts";
import * as datasetsSchema from "./datasets.ts";
import * as documentsSchema from "./documents.ts";
import * as runtimeSchema from "./runtime.ts";
import * as tenantsSchema from "./tenants.ts";
import * as usageSchema from "./usage.ts";

/** Consecutive migration sets and the drizzle modules declaring what they make. */
const GROUPS: readonly { sets: readonly string[]; modules: readonly object[] }[] = [
  // The QStash transport's webhook nonces are declared with the runtime's tables.
  { sets: ["runtime", "qstash"], modules: [runtimeSchema] },
  { sets: ["app"], modules: [tenantsSchema, blobsSchema, documentsSchema] },
  { sets: ["datasets"], modules: [datasetsSchema] },
  { sets: ["courses"], modules: [coursesSchema] },
  { sets: ["usage"], modules: [usageSchema] },
];

const MIRROR = "drizzle_mirror";
type TableConfig = ReturnType<typeof getTableConfig>;
const dialect = new PgDialect();

function tablesOf(modules: readonly object[]): TableConfig[] {
  return modules.flatMap((m) => Object.values(m) as unknown[])
    .filter((v): v is PgTable => v instanceof PgTable)
    .map((t) => getTableConfig(t));
}

function sequencesOf(modules: readonly object[]): PgSequence[] {
  return modules.flatMap((m) => Object.values(m) as unknown[])
    .filter((v): v is PgSequence => is(v, PgSequence));
}

/** SQL drizzle renders, with no parameters (a definition has none). */
function render(sql: SQL): string {
  const q = dialect.sqlToQuery(sql);
  assert.deepEqual(q.params, [], `an expression with parameters: ${q.sql}`);
  return q.sql;
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
const names = (cols: readonly { name: string }[]) => cols.map((c) => quote(c.name)).join(", ");

/** A column's default as SQL: an expression, or a literal of its value. */
function defaultSql(c: PgColumn): string | undefined {
  const v = c.default;
  if (v === undefined) return undefined; // none, or a `$defaultFn` (applied by drizzle only)
  if (is(v, SQL)) return render(v);
  if (typeof v === "string") return `'${v.replaceAll("'", "''")}'`;
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (v === null) return "NULL";
  return `'${JSON.stringify(v).replaceAll("'", "''")}'`;
}

/** An index key as drizzle declares it (`IndexedColumn` or an expression). */
function indexKey(c: unknown): string {
  if (is(c, SQL)) return `(${render(c)})`;
  const col = c as IndexedColumn;
  const { order, nulls, opClass } = col.indexConfig ?? {};
  const desc = order === "desc";
  return [
    quote(col.name!),
    opClass ?? "",
    desc ? "DESC" : "",
    desc && nulls === "last" ? "NULLS LAST" : "",
    !desc && nulls === "first" ? "NULLS FIRST" : "",
  ].filter(Boolean).join(" ");
}

/** Makes drizzle's declaration of `t` in {@link MIRROR}: the table, its constraints, indexes. */
async function mirrorTable(db: SqlDatabase, t: TableConfig): Promise<void> {
  const parts = t.columns.map((c) => {
    const generated = c.generated
      ? ` GENERATED ALWAYS AS (${
        is(c.generated.as, SQL) ? render(c.generated.as) : String(c.generated.as)
      }) STORED`
      : "";
    const dflt = defaultSql(c);
    return `${quote(c.name)} ${c.getSQLType()}${c.primary ? " PRIMARY KEY" : ""}${
      c.notNull ? " NOT NULL" : ""
    }${dflt === undefined ? "" : ` DEFAULT ${dflt}`}${generated}`;
  });
  for (const pk of t.primaryKeys) {
    parts.push(`CONSTRAINT ${quote(pk.getName())} PRIMARY KEY (${names(pk.columns)})`);
  }
  for (const c of t.columns.filter((c) => c.isUnique)) {
    const nulls = c.uniqueType === "not distinct" ? " NULLS NOT DISTINCT" : "";
    parts.push(`CONSTRAINT ${quote(c.uniqueName!)} UNIQUE${nulls} (${quote(c.name)})`);
  }
  for (const u of t.uniqueConstraints) {
    const nulls = u.nullsNotDistinct ? " NULLS NOT DISTINCT" : "";
    parts.push(`CONSTRAINT ${quote(u.getName()!)} UNIQUE${nulls} (${names(u.columns)})`);
  }
  for (const ch of t.checks) {
    parts.push(`CONSTRAINT ${quote(ch.name)} CHECK (${render(ch.value)})`);
  }
  for (const fk of t.foreignKeys) {
    const ref = fk.reference();
    const target = getTableConfig(ref.foreignTable);
    parts.push(
      `CONSTRAINT ${quote(fk.getName())} FOREIGN KEY (${names(ref.columns)}) REFERENCES ` +
        `public.${quote(target.name)} (${names(ref.foreignColumns)}) ` +
        `ON DELETE ${fk.onDelete ?? "no action"} ON UPDATE ${fk.onUpdate ?? "no action"}`,
    );
  }
  await db.query(`CREATE TABLE ${MIRROR}.${quote(t.name)} (\n  ${parts.join(",\n  ")}\n)`);
  for (const ix of t.indexes) {
    const c = ix.config;
    const where = c.where ? ` WHERE ${render(c.where)}` : "";
    await db.query(
      `CREATE ${c.unique ? "UNIQUE " : ""}INDEX ${quote(c.name!)} ON ${MIRROR}.${quote(t.name)}
         USING ${c.method ?? "btree"} (${c.columns.map(indexKey).join(", ")})${where}`,
    );
  }
}

/** A table as the catalog describes it: columns, constraints, indexes not behind a constraint. */
async function describe(db: SqlDatabase, schema: string, table: string) {
  const rel = `${quote(schema)}.${quote(table)}`;
  const columns = await db.query(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            a.attnotnull AS not_null, a.attgenerated AS generated,
            pg_get_expr(d.adbin, d.adrelid) AS default
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attname`,
    [rel],
  );
  const constraints = await db.query(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'c', 'f', 'x') ORDER BY conname`,
    [rel],
  );
  const indexes = await db.query<{ name: string; def: string }>(
    `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = $1::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                          AND k.conrelid = i.indrelid)
      ORDER BY c.relname`,
    [rel],
  );
  return {
    columns,
    constraints,
    indexes: indexes.map((r) => ({ ...r, def: r.def.replace(` ON ${schema}.`, " ON ") })),
  };
}

/** The sequences of a schema that no column owns, with their parameters. */
async function sequences(db: SqlDatabase, schema: string) {
  return await db.query(
    `SELECT sequencename AS name, data_type::text AS type, start_value::text AS start,
            min_value::text AS min, max_value::text AS max, increment_by::text AS increment,
            cycle, cache_size::text AS cache
       FROM pg_sequences s
      WHERE schemaname = $1 AND NOT EXISTS (
        SELECT 1 FROM pg_depend d WHERE d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass
          AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
      ORDER BY sequencename`,
    [schema],
  );
}

async function publicTables(db: SqlDatabase): Promise<string[]> {
  const rows = await db.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_name <> 'troupe_schema_migrations'`,
  );
  return rows.map((r) => r.name);
}

/**
 * Applies `sets` (after those already applied) and asserts that what they add to `public`
 * (tables and sequences) is what `modules` declare, table by table.
 */
async function assertMigrationsMatch(
  db: SqlDatabase,
  sets: Parameters<typeof migrate>[1],
  modules: readonly object[],
): Promise<void> {
  const before = new Set(await publicTables(db));
  const seqBefore = new Set((await sequences(db, "public")).map((s) => s.name));
  await migrate(db, sets);
  const made = (await publicTables(db)).filter((n) => !before.has(n)).sort();
  const tables = tablesOf(modules);
  const label = sets.map((s) => s.name).join(", ");
  assert.deepEqual(tables.map((t) => t.name).sort(), made, `the tables of ${label}`);

  for (const t of tables) {
    await mirrorTable(db, t);
    const mirror = await describe(db, MIRROR, t.name);
    const real = await describe(db, "public", t.name);
    assert.deepEqual(mirror.columns, real.columns, `the columns of ${t.name}`);
    assert.deepEqual(mirror.constraints, real.constraints, `the constraints of ${t.name}`);
    assert.deepEqual(mirror.indexes, real.indexes, `the indexes of ${t.name}`);
  }

  for (const s of sequencesOf(modules)) {
    const o = s.seqOptions ?? {};
    const opts = [
      o.increment !== undefined ? `INCREMENT BY ${o.increment}` : "",
      o.minValue !== undefined ? `MINVALUE ${o.minValue}` : "",
      o.maxValue !== undefined ? `MAXVALUE ${o.maxValue}` : "",
      o.startWith !== undefined ? `START WITH ${o.startWith}` : "",
      o.cache !== undefined ? `CACHE ${o.cache}` : "",
      o.cycle ? "CYCLE" : "",
    ].filter(Boolean).join(" ");
    await db.query(`CREATE SEQUENCE ${MIRROR}.${quote(s.seqName!)} ${opts}`);
  }
  assert.deepEqual(
    await sequences(db, MIRROR).then((r) => r.filter((s) => !seqBefore.has(s.name))),
    (await sequences(db, "public")).filter((s) => !seqBefore.has(s.name)),
    `the sequences of ${label}`,
  );
}

Deno.test("every drizzle table of db/schema/ is what the SQL migrations make", async (t) => {
  assert.deepEqual(
    GROUPS.flatMap((g) => g.sets),
    MIGRATION_SETS.map((s) => s.name),
    "every migration set, in the order they apply, has its drizzle modules",
  );
  assert.deepEqual(
    tablesOf([allSchema]).map((t) => t.name).sort(),
    tablesOf(GROUPS.flatMap((g) => g.modules)).map((t) => t.name).sort(),
    "db/schema/mod.ts exports every table",
  );
  assert.deepEqual(
    sequencesOf([allSchema]).map((s) => s.seqName).sort(),
    sequencesOf(GROUPS.flatMap((g) => g.modules)).map((s) => s.seqName).sort(),
    "db/schema/mod.ts exports every sequence",
  );

  const db = await openPglite();
  try {
    await db.query(`CREATE SCHEMA ${MIRROR}`);
    for (const group of GROUPS) {
      const sets = MIGRATION_SETS.filter((s) => group.sets.includes(s.name));
      await t.step(group.sets.join(" + "), () => assertMigrationsMatch(db, sets, group.modules));
    }
    assert.deepEqual(await publicTables(db).then((n) => n.length), tablesOf([allSchema]).length);
  } finally {
    await db.close();
  }
});
