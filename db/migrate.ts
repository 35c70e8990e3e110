/**
 * The application's migrations: the runtime's set, the QStash transport's webhook nonces, the
 * app's storage (`db/migrations/`: tenants, API keys, audit log, blobs) and each workload's
 * (`actors/datasets/migrations/`, `actors/courses/migrations/`, `actors/usage/migrations/`), applied in this order by the
 * runtime's `migrate()`, all in the `public` schema. The QStash set applies whatever the
 * transport: the health check's write probe uses its table. The scheme (sets, ledger, lock,
 * schema) is written at the top of `actors/runtime/migrate.ts`.
 *
 * A database made when all of these were one folder still lists its files in
 * `troupe_migrations`; {@link LEGACY_TAGS} says which migrations of the sets each one covers,
 * so such a database upgrades without running anything twice.
 */
import type { Logger, SqlDatabase } from "@troupe/runtime";
import {
  type AppliedMigration,
  migrate as migrateSets,
  type MigrationSet,
  migrationSet,
  runtimeMigrations,
} from "@troupe/runtime/migrate";
import { qstashMigrations } from "@troupe/runtime/transports/qstash/migrations";
import { coursesMigrations } from "../actors/courses/migrations.ts";
import { datasetsMigrations } from "../actors/datasets/migrations.ts";
import { usageMigrations } from "../actors/usage/migrations.ts";

/** The app's storage: tenants, API keys, audit log, blobs and their holders. */
export const appMigrations: MigrationSet = migrationSet(
  "app",
  new URL("./migrations/", import.meta.url),
);

/** Every set of the application, in the order they apply. */
export const MIGRATION_SETS: readonly MigrationSet[] = [
  runtimeMigrations,
  qstashMigrations,
  appMigrations,
  datasetsMigrations,
  coursesMigrations,
  usageMigrations,
];

/** Each file of the single-folder ledger, and the migrations of the sets it became. */
export const LEGACY_TAGS: Readonly<Record<string, readonly string[]>> = {
  "0000_runtime_core": ["runtime/0000_core"],
  "0001_tenants": ["app/0000_tenants", "runtime/0001_jobs_tenant"],
  "0002_webhook_nonces": ["qstash/0000_webhook_nonces"],
  "0003_blobs": ["app/0001_blobs"],
  "0004_datasets": ["datasets/0000_datasets"],
  "0005_courses": ["courses/0000_courses"],
  "0006_course_vectors": ["courses/0001_course_vectors"],
  "0007_blob_parts_uncompressed": ["app/0002_blob_parts_uncompressed"],
  "0008_runtime_guards": ["runtime/0002_guards"],
  "0009_blob_refs": ["app/0003_blob_refs", "datasets/0001_blob_refs", "courses/0002_blob_refs"],
  "0010_tenant_rate_limit": ["app/0004_tenant_rate_limit"],
  "0011_api_key_scopes": ["app/0005_api_key_scopes"],
  "0012_pdf_pages_version": ["courses/0003_pdf_pages_version"],
  "0013_course_lexemes": ["courses/0004_course_lexemes"],
  "0014_pipelines": ["runtime/0003_pipelines"],
};

/**
 * Applies every set's pending migrations; idempotent and safe from several instances at once.
 * Returns those it applied (empty when the database was up to date).
 */
export function migrate(db: SqlDatabase): Promise<AppliedMigration[]> {
  return migrateSets(db, MIGRATION_SETS, {
    legacy: { table: "troupe_migrations", tags: LEGACY_TAGS },
  });
}

/**
 * The migrations of every set the database has not recorded as applied, in apply order; a
 * read of the ledger, nothing written (what an edge instance checks at start).
 */
export async function pendingMigrations(db: SqlDatabase): Promise<AppliedMigration[]> {
  // The runtime's ledger (`MIGRATIONS_TABLE` of actors/runtime/migrate.ts) in the default schema.
  const ledger = "public.troupe_schema_migrations";
  // The sets' files are read while the database answers.
  const sets = Promise.all(MIGRATION_SETS.map(async (set) => ({ set, files: await set.load() })));
  sets.catch(() => {});
  const read = () =>
    db.query<{ migration_set: string; tag: string }>(`SELECT migration_set, tag FROM ${ledger}`);
  // One round trip when the ledger exists (every start but a new database's); when the read
  // fails, whether the ledger is there decides between "none applied" and the read's error.
  const rows = await read().catch(async (err) => {
    const [found] = await db.query<{ found: boolean }>(
      "SELECT to_regclass($1) IS NOT NULL AS found",
      [ledger],
    );
    if (found?.found) throw err;
    return [];
  });
  const done = new Set(rows.map((r) => `${r.migration_set}/${r.tag}`));
  const pending: AppliedMigration[] = [];
  for (const { set, files } of await sets) {
    for (const { tag } of files) {
      if (!done.has(`${set.name}/${tag}`)) pending.push({ set: set.name, tag });
    }
  }
  return pending;
}

/** The database lacks migrations this code needs: `deno task migrate` applies them. */
export class MigrationsPendingError extends Error {
  constructor(readonly pending: readonly AppliedMigration[]) {
    super(
      `the database lacks ${pending.length} migration(s) this version needs: ` +
        `${pending.map((m) => `${m.set}/${m.tag}`).join(", ")}; ` +
        "apply them with `deno task migrate` (same DATABASE_URL) before starting",
    );
    this.name = "MigrationsPendingError";
  }
}

/** Throws {@link MigrationsPendingError} unless every migration is applied. */
export async function checkMigrations(db: SqlDatabase): Promise<void> {
  const pending = await pendingMigrations(db);
  if (pending.length) throw new MigrationsPendingError(pending);
}

/**
 * A start's migrations: `"apply"` applies the pending ones (and logs them); `"check"` throws
 * {@link MigrationsPendingError} unless every one is applied (an edge instance, migrated by
 * `deno task migrate` at deploy).
 */
export async function prepareMigrations(
  db: SqlDatabase,
  mode: "apply" | "check",
  log: Pick<Logger, "info">,
): Promise<void> {
  if (mode === "check") return await checkMigrations(db);
  const applied = await migrate(db);
  if (applied.length) log.info("migrations applied", { applied });
}
