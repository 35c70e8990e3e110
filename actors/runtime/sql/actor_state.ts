import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

/** The committed state of actor instance `key` (null when it has none). */
export async function loadState(db: SqlExecutor, t: Tables, key: string): Promise<unknown> {
  const rows = await db.query<{ state: unknown }>(
    `SELECT state FROM ${t.actorState} WHERE key = $1`,
    [key],
  );
  return rows[0]?.state ?? null;
}
