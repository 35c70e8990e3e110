/** The courses workload's tables (`migrations/`): courses, sources, passages, vectors, pages. */
import { type MigrationSet, migrationSet } from "@troupe/runtime/migrate";

/** Applies after the app's storage set, whose blob references it fills. */
export const coursesMigrations: MigrationSet = migrationSet(
  "courses",
  new URL("./migrations/", import.meta.url),
);
