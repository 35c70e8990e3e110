/**
 * The drizzle mirror of the runtime's tables (`runtime.ts`) against what the runtime's SQL
 * migrations make: a database migrated with the runtime's sets (and the QStash transport's) is
 * read back (information_schema, pg_indexes) and compared table by table: the tables, each
 * column's type, nullability and whether it has a default, the primary keys, and every index by
 * name and definition. An index is compared as PostgreSQL itself writes it: the drizzle index
 * is created on a copy of its table in another schema and both `pg_indexes.indexdef` are read.
 * The trigger of `0008_job_end` is the migrations' alone (drizzle has no triggers).
 */
import assert from "node:assert/strict";
import { is, SQL } from "drizzle-orm";
import { getTableConfig, IndexedColumn, PgDialect, PgTable } from "drizzle-orm/pg-core";
import type { SqlDatabase } from "@troupe/runtime";
import { migrate, runtimeMigrations } from "@troupe/runtime/migrate";
import { openPglite } from "@troupe/runtime/pglite";
import { qstashMigrations } from "@troupe/runtime/transports/qstash";
import * as runtimeSchema from "./runtime.ts";

const MIRROR = "drizzle_mirror";
const dialect = new PgDialect();
const tables = (Object.values(runtimeSchema) as unknown[])
  .filter((v): v is PgTable => v instanceof PgTable)
  .map((t) => getTableConfig(t));

/** SQL drizzle renders, with no parameters (an index definition has none). */
function render(sql: SQL): string {
  const q = dialect.sqlToQuery(sql);
  assert.deepEqual(q.params, [], `an index expression with parameters: ${q.sql}`);
  return q.sql;
}

/** An index key as drizzle declares it (`IndexedColumn` or an expression). */
function indexKey(c: unknown): string {
  if (is(c, SQL)) return `(${render(c)})`;
  const col = c as IndexedColumn;
  const { order, nulls, opClass } = col.indexConfig ?? {};
  const desc = order === "desc";
  return [
    `"${col.name}"`,
    opClass ?? "",
    desc ? "DESC" : "",
    desc && nulls === "last" ? "NULLS LAST" : "",
    !desc && nulls === "first" ? "NULLS FIRST" : "",
  ].filter(Boolean).join(" ");
}

async function indexDefs(db: SqlDatabase, schema: string, table: string) {
  const rows = await db.query<{ indexname: string; indexdef: string }>(
    `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2
       AND indexname NOT LIKE '%\\_pkey' ORDER BY indexname`,
    [schema, table],
  );
  return new Map(rows.map((r) => [r.indexname, r.indexdef.replace(`${schema}.`, "")]));
}

Deno.test("db/schema/runtime.ts has the tables, columns and indexes the runtime's migrations make", async () => {
  const db = await openPglite();
  try {
    await migrate(db, [runtimeMigrations, qstashMigrations]);
    const made = await db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_name <> 'troupe_schema_migrations'
        ORDER BY table_name`,
    );
    assert.deepEqual(
      tables.map((t) => t.name).sort(),
      made.map((r) => r.table_name),
      "the same tables",
    );

    await db.query(`CREATE SCHEMA ${MIRROR}`);
    for (const t of tables) {
      const columns = await db.query<
        { column_name: string; data_type: string; is_nullable: string; has_default: boolean }
      >(
        `SELECT column_name, data_type, is_nullable, column_default IS NOT NULL AS has_default
           FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1
          ORDER BY column_name`,
        [t.name],
      );
      assert.deepEqual(
        t.columns.map((c) => ({
          column_name: c.name,
          data_type: c.getSQLType(),
          is_nullable: c.notNull ? "NO" : "YES",
          has_default: c.hasDefault,
        })).sort((a, b) => a.column_name < b.column_name ? -1 : 1),
        columns,
        `the columns of ${t.name}`,
      );

      const [pk] = await db.query<{ cols: string[] }>(
        `SELECT coalesce(array_agg(a.attname::text ORDER BY a.attname), '{}') AS cols
           FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
            AND a.attnum = ANY (i.indkey)
          WHERE i.indrelid = $1::regclass AND i.indisprimary`,
        [`public.${t.name}`],
      );
      assert.deepEqual(
        [
          ...t.columns.filter((c) => c.primary).map((c) => c.name),
          ...t.primaryKeys.flatMap((k) => k.columns.map((c) => c.name)),
        ].sort(),
        pk!.cols,
        `the primary key of ${t.name}`,
      );

      // The drizzle indexes, made by PostgreSQL on a copy of the table, read back as it writes them.
      await db.query(`CREATE TABLE ${MIRROR}."${t.name}" (LIKE public."${t.name}")`);
      for (const ix of t.indexes) {
        const c = ix.config;
        const where = c.where ? ` WHERE ${render(c.where)}` : "";
        await db.query(
          `CREATE ${c.unique ? "UNIQUE " : ""}INDEX "${c.name}" ON ${MIRROR}."${t.name}"
             USING ${c.method ?? "btree"} (${c.columns.map(indexKey).join(", ")})${where}`,
        );
      }
      assert.deepEqual(
        Object.fromEntries(await indexDefs(db, MIRROR, t.name)),
        Object.fromEntries(await indexDefs(db, "public", t.name)),
        `the indexes of ${t.name}`,
      );
    }
  } finally {
    await db.close();
  }
});
