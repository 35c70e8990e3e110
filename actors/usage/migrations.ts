/** The report-sync workload's tables (`migrations/`): usage snapshots, aggregates, report names. */
import { type MigrationSet, migrationSet } from "@troupe/runtime/migrate";

/** Applies after the app's storage set (tenants). */
export const usageMigrations: MigrationSet = migrationSet(
  "usage",
  new URL("./migrations/", import.meta.url),
);
