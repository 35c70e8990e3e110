/**
 * A pg-compatible pool as a `SqlDatabase`: what the node-postgres driver (postgres.ts) and
 * Neon's (neon.ts) share. It loads neither driver; `pg-copy-streams` loads on the first COPY.
 */
import { Buffer } from "node:buffer";
import {
  type CopyData,
  copyParts,
  type ListenOptions,
  type QueryOptions,
  type SqlDatabase,
  type SqlExecutor,
} from "../ports.ts";

/** Shape shared by node-postgres and `@neondatabase/serverless` pools. */
export interface PgLikePool {
  /** Runs one statement on any pooled connection (`name`d: kept prepared on it). */
  query(text: string | NamedQuery, params?: unknown[]): Promise<{ rows: unknown[] }>;
  /** Takes a connection out of the pool (for a transaction or LISTEN). */
  connect(): Promise<PgLikeClient>;
  /** Closes every connection. */
  end(): Promise<void>;
}

/** One pooled connection, as `PgLikePool.connect()` gives it. */
export interface PgLikeClient {
  /** Runs one statement on this connection (`name`d: kept prepared on it). */
  query(text: string | NamedQuery, params?: unknown[]): Promise<{ rows: unknown[] }>;
  /** Runs a submittable (a COPY stream) on this connection. */
  query<S>(submittable: S): S;
  /** Hears NOTIFY payloads on the channels this connection listens to. */
  on(event: "notification", fn: (n: { channel: string; payload?: string }) => void): unknown;
  /** Hears the connection's errors. */
  on(event: "error", fn: (err: Error) => void): unknown;
  /** Stops hearing the connection's errors. */
  removeListener(event: "error", fn: (err: Error) => void): unknown;
  /** Gives the connection back; `err` destroys it instead. */
  release(err?: boolean | Error): void;
}

/** A statement node-postgres keeps prepared on each connection under `name`. */
export interface NamedQuery {
  name: string;
  text: string;
  values?: unknown[];
}

/**
 * Wraps a pg-compatible pool as a `SqlDatabase`. With `prepare`, statements run with
 * `{ prepare: true }` (`QueryOptions`) are named prepared statements: parsed once a connection,
 * and planned once where PostgreSQL finds a generic plan as cheap as a custom one.
 */
export function poolDatabase(
  pool: PgLikePool,
  dialect: "postgres" | "neon",
  { prepare = false, listenPool = pool }: {
    prepare?: boolean;
    /**
     * Where the one connection every `listen` shares comes from: a pool of its own keeps it out
     * of `pool`, whose connections then all run statements. @default pool
     */
    listenPool?: PgLikePool;
  } = {},
): SqlDatabase & CopyOut {
  const listener = sharedListener(listenPool);
  /** Runs a statement on `on` (the pool or a connection), named when it asks to be prepared. */
  const run = async <T>(
    on: Pick<PgLikePool, "query">,
    text: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<T[]> => {
    const values = params ? [...params] : undefined;
    const res = prepare && options?.prepare
      ? await on.query({ name: statementName(text), text, ...(values ? { values } : {}) })
      : await on.query(text, values);
    return res.rows as T[];
  };
  const db: SqlDatabase & CopyOut = {
    dialect,
    shared: true,
    autovacuum: true,
    query: (text, params, options) => run(pool, text, params, options),
    // One COPY is one statement: run as a transaction of its own, so that a failed COPY
    // leaves its connection clean (ROLLBACK) like any other failed transaction.
    copyIn(table, columns, data) {
      return db.transaction((tx) => tx.copyIn!(table, columns, data));
    },
    // node-postgres only: Neon's driver is a fork of it that no test runs a COPY out through.
    ...(dialect === "postgres"
      ? { copyOut: (sql: string, onData: (b: Uint8Array) => void) => copyOut(pool, sql, onData) }
      : {}),
    async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: Error | undefined;
      // The server may end the connection while the transaction waits between statements (a
      // restart, pg_terminate_backend): the client then emits "error", which with no listener
      // would be uncaught and stop the process. The next statement fails instead.
      const lost = (err: Error) => broken = err;
      client.on("error", lost);
      try {
        await client.query("BEGIN");
        const result = await fn({
          query: (text, params, options) => run(client, text, params, options),
          copyIn: (table, columns, data) => copyIn(client, table, columns, data),
        });
        await client.query("COMMIT");
        return result;
      } catch (err) {
        try {
          await client.query("ROLLBACK");
        } catch (rollbackErr) {
          broken = rollbackErr as Error;
        }
        throw err;
      } finally {
        client.removeListener("error", lost);
        client.release(broken);
      }
    },
    listenLocks: true,
    listen: (channel, onPayload, options = {}) => listener.listen(channel, onPayload, options),
    async close() {
      await listener.close();
      await pool.end();
      if (listenPool !== pool) await listenPool.end();
    },
  };
  return db;
}

/**
 * `COPY (...) TO STDOUT`: `onData` gets each CopyData message's bytes, valid during the call
 * only (a view of the driver's read buffer). A row result (`query`) decodes every value as
 * text, a bytea included; a binary COPY's bytes come as they are, so large binary values are
 * read with it.
 */
export interface CopyOut {
  copyOut?(statement: string, onData: (bytes: Uint8Array) => void): Promise<void>;
}

async function copyOut(
  pool: PgLikePool,
  statement: string,
  onData: (bytes: Uint8Array) => void,
): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const lost = (err: Error) => broken = err;
  client.on("error", lost);
  // What `onData` threw: the statement runs to its end (the connection stays usable), then
  // the call rejects with it.
  let thrown: { err: unknown } | null = null;
  try {
    await new Promise<void>((resolve, reject) => {
      // A submittable of node-postgres: the client hands it the statement's messages.
      client.query({
        submit: (connection: { query(text: string): void }) => connection.query(statement),
        handleCopyData: (msg: { chunk: Buffer }) => {
          if (thrown) return;
          try {
            onData(new Uint8Array(msg.chunk.buffer, msg.chunk.byteOffset, msg.chunk.length));
          } catch (err) {
            thrown = { err };
          }
        },
        handleRowDescription: () => {},
        handleDataRow: () => {},
        handleCommandComplete: () => {},
        handleEmptyQuery: () => {},
        handlePortalSuspended: () => {},
        handleCopyInResponse: () => {
          broken = new Error("copyOut: not a COPY TO statement");
          reject(broken);
        },
        handleError: (err: Error) => reject(err),
        handleReadyForQuery: () => thrown ? reject(thrown.err) : resolve(),
      });
    });
  } finally {
    client.removeListener("error", lost);
    client.release(broken);
  }
}

/** `COPY ... FROM STDIN` on one client; resolves when the server has taken every row. */
async function copyIn(
  client: PgLikeClient,
  table: string,
  columns: readonly string[],
  data: CopyData,
): Promise<void> {
  const { from: copyFromStdin } = await import("pg-copy-streams");
  const stream = client.query(copyFromStdin(`COPY ${table} (${columns.join(", ")}) FROM STDIN`));
  await new Promise<void>((resolve, reject) => {
    stream.on("error", reject);
    stream.on("finish", () => resolve());
    for (const part of copyParts(data)) {
      stream.write(
        typeof part === "string"
          ? part
          : Buffer.from(part.buffer, part.byteOffset, part.byteLength),
      );
    }
    stream.end();
  });
}

/**
 * Every LISTEN of a database on one connection of `source`, taken at the first `listen` and
 * given back when the last one stops. Its operations (advisory locks, LISTEN, UNLISTEN) run one
 * after another. A channel is listened to once, for all its listeners; each `sharedLock` is
 * taken once a listener (shared locks of one session stack) and given back when it stops. When
 * the connection fails, its listeners hear nothing more (as `SqlDatabase.listen` allows: they
 * poll) and the next `listen` opens another.
 */
function sharedListener(source: PgLikePool) {
  let conn: PgLikeClient | null = null;
  let broken = false;
  const channels = new Map<string, Set<(payload: string) => void>>();
  let listeners = 0;
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => {});
    return next;
  };
  const connection = async (): Promise<PgLikeClient> => {
    if (conn && !broken) return conn;
    if (conn) conn.release(true);
    // The listeners of a failed connection hear nothing more: they are not counted.
    conn = null;
    channels.clear();
    listeners = 0;
    const client = await source.connect();
    broken = false;
    client.on("error", () => broken = true);
    client.on("notification", (n) => {
      for (const fn of channels.get(n.channel) ?? []) fn(n.payload ?? "");
    });
    return conn = client;
  };
  const letGo = () => {
    if (listeners > 0 || !conn) return;
    conn.release(broken);
    conn = null;
    channels.clear();
  };
  const quoted = (channel: string) => `"${channel.replaceAll('"', '""')}"`;
  return {
    listen: (
      channel: string,
      onPayload: (payload: string) => void,
      { sharedLock: lock }: ListenOptions,
    ): Promise<() => Promise<void>> =>
      serial(async () => {
        const client = await connection();
        listeners++;
        // Its own function: one listener's stop never takes another's, the same `onPayload` or not.
        const heard = (payload: string) => onPayload(payload);
        let locked = false;
        try {
          // The lock first: whoever sees it held may notify before this LISTEN, which is before
          // this call resolved (nothing is promised for then).
          if (lock) {
            await client.query("SELECT pg_advisory_lock_shared($1, $2)", [...lock]);
            locked = true;
          }
          let fns = channels.get(channel);
          if (!fns) {
            await client.query(`LISTEN ${quoted(channel)}`);
            channels.set(channel, fns = new Set());
          }
          fns.add(heard);
        } catch (err) {
          if (locked && !broken) {
            await client.query("SELECT pg_advisory_unlock_shared($1, $2)", [...lock!])
              .catch(() => broken = true);
          }
          listeners--;
          letGo();
          throw err;
        }
        let stopped = false;
        return () =>
          serial(async () => {
            if (stopped) return;
            stopped = true;
            // A connection opened since this listen began holds none of its state.
            if (conn !== client) return;
            listeners--;
            if (!broken) {
              const fns = channels.get(channel);
              fns?.delete(heard);
              try {
                if (fns?.size === 0) {
                  channels.delete(channel);
                  await client.query(`UNLISTEN ${quoted(channel)}`);
                }
                if (lock) await client.query("SELECT pg_advisory_unlock_shared($1, $2)", [...lock]);
              } catch {
                broken = true;
              }
            }
            letGo();
          });
      }),
    close: () =>
      serial(() => {
        listeners = 0;
        letGo();
        return Promise.resolve();
      }),
  };
}

/** Prepared statements' names, by their text. */
const names = new Map<string, string>();

/**
 * The name of the prepared statement of `text`: `troupe_` and a 64-bit FNV-1a hash of it (a
 * connection refuses one name for two texts; the texts named are a few dozen).
 */
export function statementName(text: string): string {
  let name = names.get(text);
  if (name) return name;
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    hash = ((hash ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  name = `troupe_${hash.toString(16).padStart(16, "0")}`;
  names.set(text, name);
  return name;
}
