/** PostgreSQL over TCP (node-postgres pool). Several processes may share the database. */
import pg from "pg";
import type { SqlDatabase } from "../ports.ts";
import { type CopyOut, type PgLikePool, poolDatabase } from "./pool.ts";

export type { CopyOut, PgLikeClient, PgLikePool } from "./pool.ts";
export { poolDatabase, statementName } from "./pool.ts";

/** Options of `openPostgres`. */
export interface PostgresOptions {
  /** Pool size: connections that run statements (LISTEN has one of its own). @default 10 */
  max?: number;
  /**
   * An idle connection is closed after this long; 0 keeps idle connections until `close()`
   * (no idle timer runs, as tests checked by the ops sanitizer need). @default 10000
   */
  idleTimeoutMs?: number;
  /**
   * The runtime's claim, commit and enqueue statements are named prepared statements on each
   * connection (parsed once, planned once where the plan does not depend on the parameters).
   * Turn off behind a pooler in transaction mode that does not keep prepared statements
   * (PgBouncer before 1.21, or with `max_prepared_statements = 0`). @default true
   */
  prepare?: boolean;
  /**
   * The listening connection (LISTEN, shared by every `listen`) answers a `SELECT 1` this
   * often, or within as long again it is taken as lost and replaced: a connection dropped
   * without a reset (a NAT or load balancer timing out, a network cut) is found. 0: never.
   * @default 30000
   */
  listenCheckMs?: number;
}

/** A `SqlDatabase` on the PostgreSQL server at `url` (a connection string), through a pool. */
export function openPostgres(
  url: string,
  { max = 10, idleTimeoutMs = 10_000, prepare = true, listenCheckMs }: PostgresOptions = {},
): SqlDatabase & CopyOut {
  const open = (size: number) => {
    const pool = new pg.Pool({
      connectionString: url,
      max: size,
      idleTimeoutMillis: idleTimeoutMs,
    });
    // An idle client that errors (server restart) must not crash the process.
    pool.on("error", () => {});
    return pool as unknown as PgLikePool;
  };
  // The LISTEN connection: a pool of its own, so that every connection of `max` runs statements.
  return poolDatabase(open(max), "postgres", { prepare, listenPool: open(1), listenCheckMs });
}
