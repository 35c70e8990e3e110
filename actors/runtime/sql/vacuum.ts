import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

/** Vacuums and analyzes the runtime's tables (for databases without autovacuum). */
export async function vacuumTables(db: SqlExecutor, t: Tables): Promise<void> {
  await db.query(
    `VACUUM (ANALYZE) ${t.jobs}, ${t.actorState}, ${t.processed},
         ${t.outbox}, ${t.deadLetters}, ${t.groups}`,
  );
}
