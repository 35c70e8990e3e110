/** The datasets workload's tables (`migrations/`): datasets and their chunks. */
import { type MigrationSet, migrationSet } from "@troupe/runtime/migrate";

/** Applies after the app's storage set, whose blob references it fills. */
export const datasetsMigrations: MigrationSet = migrationSet(
  "datasets",
  new URL("./migrations/", import.meta.url),
);
