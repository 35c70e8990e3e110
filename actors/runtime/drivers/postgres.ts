/** PostgreSQL over TCP (node-postgres pool). Several processes may share the database. */
import pg from "pg";
import type { SqlDatabase } from "../ports.ts";
import { type CopyOut, type PgLikePool, poolDatabase } from "./pool.ts";

export type { CopyOut, PgLikeClient, PgLikePool } from "./pool.ts";
export { poolDatabase } from "./pool.ts";

/** Options of `openPostgres`. */
export interface PostgresOptions {
  /** Pool size. @default 10 */
  max?: number;
  /**
   * An idle connection is closed after this long; 0 keeps idle connections until `close()`
   * (no idle timer runs, as tests checked by the ops sanitizer need). @default 10000
   */
  idleTimeoutMs?: number;
}

/** A `SqlDatabase` on the PostgreSQL server at `url` (a connection string), through a pool. */
export function openPostgres(
  url: string,
  { max = 10, idleTimeoutMs = 10_000 }: PostgresOptions = {},
): SqlDatabase & CopyOut {
  const pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: idleTimeoutMs });
  // An idle client that errors (server restart) must not crash the process.
  pool.on("error", () => {});
  return poolDatabase(pool as unknown as PgLikePool, "postgres");
}
