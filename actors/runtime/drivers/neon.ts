/**
 * Neon serverless PostgreSQL over its WebSocket driver (`@neondatabase/serverless` Pool), the
 * driver that works at the edge (no TCP). Same `SqlDatabase` as node-postgres: interactive
 * transactions, and LISTEN/NOTIFY on one connection of its own.
 *
 * With `wsProxy` (a template such as `127.0.0.1:4444/v1?address={host}:{port}`) the driver
 * goes through that proxy without TLS: the local stand-in used by tests and `deno task stack`.
 * Without it, Neon's own proxy and secure WebSockets are used.
 */
import { neonConfig, Pool } from "@neondatabase/serverless";
import type { SqlDatabase } from "../ports.ts";
import { type PgLikePool, poolDatabase } from "./pool.ts";

/** Options of `openNeon`. */
export interface NeonOptions {
  /** Pool size: connections that run statements (LISTEN has one of its own). @default 10 */
  max?: number;
  /**
   * An idle connection is closed after this long; 0 keeps idle connections until `close()`.
   * @default 10000
   */
  idleTimeoutMs?: number;
  /** Proxy template with `{host}` and `{port}`; unset for real Neon. */
  wsProxy?: string;
  /** Secure WebSocket; defaults to true without a proxy, false with one. */
  secure?: boolean;
  /**
   * How often the listening connection (LISTEN, shared by every `listen`) must answer a
   * `SELECT 1`, or within as long again it is taken as lost and replaced. Off by default on
   * Neon: a query that often keeps the compute from scaling to zero (Neon counts queries, not
   * open connections, as activity). @default 0 (never)
   */
  listenCheckMs?: number;
}

/** A `SqlDatabase` on the Neon database at `url`, through Neon's WebSocket pool. */
export function openNeon(
  url: string,
  { max = 10, idleTimeoutMs = 10_000, wsProxy, secure, listenCheckMs = 0 }: NeonOptions = {},
): SqlDatabase {
  if (wsProxy) {
    neonConfig.wsProxy = (host, port) =>
      wsProxy.replace("{host}", host).replace("{port}", String(port));
    neonConfig.useSecureWebSocket = secure ?? false;
    // The pipelined "password" startup fails against scram-sha-256; plain PostgreSQL has no
    // SNI routing, so no TLS inside the socket either.
    neonConfig.pipelineConnect = false;
    neonConfig.forceDisablePgSSL = true;
  } else if (secure !== undefined) {
    neonConfig.useSecureWebSocket = secure;
  }
  const open = (size: number) => {
    const pool = new Pool({ connectionString: url, max: size, idleTimeoutMillis: idleTimeoutMs });
    // An idle client that errors (a dropped socket) must not crash the process.
    pool.on("error", () => {});
    return pool as unknown as PgLikePool;
  };
  // The LISTEN connection: a pool of its own, so that every connection of `max` runs statements.
  return poolDatabase(open(max), "neon", { listenPool: open(1), listenCheckMs });
}
