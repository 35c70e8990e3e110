import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

/**
 * Vacuums and analyzes the runtime's tables (for databases without autovacuum), one statement a
 * table: on PGlite in the server's thread a statement holds the event loop while it runs, and
 * between two statements the driver gives it a turn, so requests wait for one table's vacuum at
 * most, not for all of them together.
 */
export async function vacuumTables(db: SqlExecutor, t: Tables): Promise<void> {
  for (const table of [t.jobs, t.actorState, t.processed, t.outbox, t.deadLetters, t.groups]) {
    await db.query(`VACUUM (ANALYZE) ${table}`);
  }
}
