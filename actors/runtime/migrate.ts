/**
 * Migration sets: every owner of tables keeps its own folder of SQL migrations, and one
 * {@linkcode migrate} call applies the sets an application is made of.
 *
 * The scheme, decided once for the runtime and every application built on it:
 * - A set is a folder with `meta/_journal.json` (drizzle-kit's journal: `entries[]` of
 *   `{ idx, tag }`) and one `<tag>.sql` per entry, statements separated by
 *   `--> statement-breakpoint`. Migrations are never edited once released; a change is a new
 *   tag at the end of its set's journal.
 * - The runtime owns {@linkcode runtimeMigrations} (jobs, actor state, dead letters, outbox,
 *   processed messages), the QStash transport owns its webhook nonces (`qstashMigrations` of
 *   `@troupe/runtime/transports/qstash`), an application owns its own sets (Troupe's:
 *   `db/migrations/` for its storage, `actors/<workload>/migrations/` for each workload).
 * - Sets apply in the order given, each whole before the next: a set may use the tables of
 *   the sets before it, never those after it.
 * - The runtime's tables live in a PostgreSQL schema of your choosing (`schema`, default
 *   `public`). Its SQL names them `{{schema}}."troupe_jobs"`; the placeholder becomes the
 *   quoted schema name. Sets that do not use the placeholder create their tables in the
 *   connection's `search_path`, as plain SQL does.
 * - `<schema>.troupe_schema_migrations` records each applied `(migration_set, tag)`. A
 *   transaction-scoped advisory lock serialises concurrent callers (several instances starting
 *   at once), and every migration of one call commits together or not at all.
 * - A database migrated by an earlier single-folder ledger (a `tag` column per applied file) is
 *   adopted through {@linkcode MigrateOptions.legacy}: when the new ledger is created, each tag
 *   the old one lists marks the `(set, tag)` pairs it covered as applied, so nothing runs twice.
 *
 * @example Apply the runtime's tables in a schema of their own
 * ```ts
 * import { migrateRuntime, type SqlDatabase } from "@troupe/runtime";
 *
 * export async function prepare(db: SqlDatabase): Promise<void> {
 *   const applied = await migrateRuntime(db, { schema: "troupe" });
 *   console.log(applied.map((m) => `${m.set}/${m.tag}`));
 * }
 * ```
 *
 * @module
 */
import type { SqlDatabase, SqlExecutor } from "./ports.ts";
import { SCHEMA_NAME } from "./sql/tables.ts";

/** One migration of a set: its tag (the file name without `.sql`) and its SQL. */
export interface Migration {
  /** The migration's name in its set's journal, e.g. `0000_core`. */
  readonly tag: string;
  /** Its statements, separated by `--> statement-breakpoint`. */
  readonly sql: string;
}

/** The migrations of one owner of tables, in the order they apply. */
export interface MigrationSet {
  /** The set's name, recorded with each tag it applies (lowercase, digits, `_`). */
  readonly name: string;
  /** The set's migrations in journal order. */
  load(): Promise<readonly Migration[]>;
}

/** A migration applied by {@linkcode migrate}. */
export interface AppliedMigration {
  /** The set it belongs to. */
  readonly set: string;
  /** Its tag in that set. */
  readonly tag: string;
}

/** A ledger kept by an earlier migrator: one row per applied file, in a `tag` column. */
export interface LegacyLedger {
  /** The old ledger table, in the same schema as the new one. */
  readonly table: string;
  /**
   * For every tag the old ledger may hold, the migrations of the sets that cover it, as
   * `"set/tag"`. A tag found in the old ledger without an entry here stops the migration.
   */
  readonly tags: Readonly<Record<string, readonly string[]>>;
}

/** Options of {@linkcode migrate}. */
export interface MigrateOptions {
  /**
   * The PostgreSQL schema of the ledger and of the `{{schema}}` placeholder; made when
   * missing. A lowercase identifier: `/^[a-z_][a-z0-9_]{0,62}$/`.
   * @default "public"
   */
  schema?: string;
  /** An earlier ledger to adopt when the new one is created (see {@linkcode LegacyLedger}). */
  legacy?: LegacyLedger;
}

/** The table recording applied migrations, in the schema given to {@linkcode migrate}. */
export const MIGRATIONS_TABLE = "troupe_schema_migrations";
/** The placeholder a set's SQL writes where the schema's quoted name goes. */
export const SCHEMA_PLACEHOLDER = "{{schema}}";

const LOCK_ID = 7_316_001;
const BREAKPOINT = "--> statement-breakpoint";
const SET_NAME = /^[a-z][a-z0-9_]{0,62}$/;
const TAG = /^[A-Za-z0-9_.-]+$/;

/** The schema name quoted for SQL; throws on a name outside `/^[a-z_][a-z0-9_]{0,62}$/`. */
export function quoteSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new TypeError(
      `schema ${JSON.stringify(schema)}: expected a lowercase identifier (${SCHEMA_NAME.source})`,
    );
  }
  return `"${schema}"`;
}

/**
 * A set read from `folder` (`meta/_journal.json` and `<tag>.sql` files), a `file:` URL or one
 * `fetch` reaches (a package served by a registry). Read once, on first use.
 */
export function migrationSet(name: string, folder: URL): MigrationSet {
  if (!SET_NAME.test(name)) throw new TypeError(`migration set name ${JSON.stringify(name)}`);
  const base = folder.href.endsWith("/") ? folder : new URL(`${folder.href}/`);
  let loading: Promise<readonly Migration[]> | undefined;
  const load = async (): Promise<readonly Migration[]> => {
    const journal = JSON.parse(await readText(new URL("meta/_journal.json", base))) as {
      entries?: { idx: number; tag: string }[];
    };
    const entries = [...(journal.entries ?? [])].sort((a, b) => a.idx - b.idx);
    return await Promise.all(entries.map(async ({ tag }) => {
      if (!TAG.test(tag)) throw new TypeError(`migration set ${name}: bad tag ${tag}`);
      return { tag, sql: await readText(new URL(`${tag}.sql`, base)) };
    }));
  };
  return {
    name,
    load() {
      loading ??= load().catch((err) => {
        loading = undefined;
        throw err;
      });
      return loading;
    },
  };
}

async function readText(url: URL): Promise<string> {
  if (url.protocol === "file:") return await Deno.readTextFile(url);
  const res = await fetch(url);
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${url.href}: HTTP ${res.status}`);
  }
  return await res.text();
}

/** The runtime's own tables: jobs, actor state, dead letters, outbox, processed messages. */
export const runtimeMigrations: MigrationSet = migrationSet(
  "runtime",
  new URL("./migrations/", import.meta.url),
);

/**
 * Applies {@linkcode runtimeMigrations} in `options.schema` (default `public`); see
 * {@linkcode migrate}.
 */
export function migrateRuntime(
  db: SqlDatabase,
  options: { schema?: string } = {},
): Promise<AppliedMigration[]> {
  return migrate(db, [runtimeMigrations], options);
}

/**
 * Applies the migrations of `sets` not applied yet, set after set, in one transaction under
 * an advisory lock. Returns those it applied (empty when the database was up to date).
 */
export async function migrate(
  db: SqlDatabase,
  sets: readonly MigrationSet[],
  options: MigrateOptions = {},
): Promise<AppliedMigration[]> {
  const schemaName = options.schema ?? "public";
  const schema = quoteSchema(schemaName);
  const names = sets.map((s) => s.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new TypeError(`migration set ${twice} given twice`);
  const loaded = await Promise.all(
    sets.map(async (s) => ({ name: s.name, migrations: await s.load() })),
  );
  const ledger = `${schema}.${MIGRATIONS_TABLE}`;
  const applied = await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${LOCK_ID})`);
    // Only when missing: CREATE SCHEMA checks the CREATE privilege even when the schema exists.
    const [ns] = await tx.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schemaName]);
    if (!ns) await tx.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    const [had] = await tx.query<{ found: boolean }>(
      "SELECT to_regclass($1) IS NOT NULL AS found",
      [ledger],
    );
    await tx.query(`CREATE TABLE IF NOT EXISTS ${ledger} (
      migration_set text NOT NULL,
      tag text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (migration_set, tag)
    )`);
    if (!had?.found && options.legacy) await adopt(tx, schema, ledger, options.legacy, loaded);
    const done = new Set(
      (await tx.query<{ migration_set: string; tag: string }>(
        `SELECT migration_set, tag FROM ${ledger}`,
      )).map((r) => `${r.migration_set}/${r.tag}`),
    );
    const ran: AppliedMigration[] = [];
    for (const set of loaded) {
      for (const { tag, sql } of set.migrations) {
        if (done.has(`${set.name}/${tag}`)) continue;
        for (const statement of sql.replaceAll(SCHEMA_PLACEHOLDER, schema).split(BREAKPOINT)) {
          if (statement.trim()) await tx.query(statement);
        }
        await tx.query(`INSERT INTO ${ledger} (migration_set, tag) VALUES ($1, $2)`, [
          set.name,
          tag,
        ]);
        ran.push({ set: set.name, tag });
      }
    }
    return ran;
  });
  // Fresh statistics so the first plans use the queue's indexes.
  if (applied.length > 0) await db.query("ANALYZE");
  return applied;
}

/** Marks as applied the migrations covered by the tags an earlier ledger lists. */
async function adopt(
  tx: SqlExecutor,
  schema: string,
  ledger: string,
  legacy: LegacyLedger,
  sets: readonly { name: string; migrations: readonly Migration[] }[],
): Promise<void> {
  const table = `${schema}."${legacy.table.replaceAll('"', '""')}"`;
  const [old] = await tx.query<{ found: boolean }>(
    "SELECT to_regclass($1) IS NOT NULL AS found",
    [table],
  );
  if (!old?.found) return;
  const known = new Map(sets.map((s) => [s.name, new Set(s.migrations.map((m) => m.tag))]));
  const tags = await tx.query<{ tag: string }>(`SELECT tag FROM ${table} ORDER BY tag`);
  for (const { tag } of tags) {
    const covered = Object.hasOwn(legacy.tags, tag) ? legacy.tags[tag] : undefined;
    if (!covered) {
      throw new Error(`${legacy.table} lists ${tag}, which no migration set is known to cover`);
    }
    for (const pair of covered) {
      const [set, setTag] = pair.split("/") as [string, string | undefined];
      const inSet = known.get(set);
      if (!setTag || (inSet && !inSet.has(setTag))) {
        throw new Error(`${tag} is mapped to ${pair}, which is not a migration of its set`);
      }
      await tx.query(
        `INSERT INTO ${ledger} (migration_set, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
        [set, setTag],
      );
    }
  }
}
