/**
 * The QStash transport's tables, apart from the transport: a start that checks its migrations
 * before anything else has loaded (the edge entry) imports this alone, not the webhook's
 * modules (`@troupe/runtime/transports/qstash` re-exports it).
 *
 * @module
 */
import { type MigrationSet, migrationSet } from "../migrate.ts";

/**
 * The tables of the QStash webhook (the nonces of the signed deliveries it accepted): apply
 * them with the runtime's, `migrate(db, [runtimeMigrations, qstashMigrations], { schema })`.
 */
export const qstashMigrations: MigrationSet = migrationSet(
  "qstash",
  new URL("./qstash_migrations/", import.meta.url),
);
