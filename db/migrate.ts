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
import {
  type AppliedMigration,
  migrate as migrateSets,
  type MigrationSet,
  migrationSet,
  runtimeMigrations,
  type SqlDatabase,
} from "@troupe/runtime";
import { qstashMigrations } from "@troupe/runtime/transports/qstash";
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
