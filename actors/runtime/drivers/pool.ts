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
  /** Hears the connection's end. */
  on(event: "end", fn: () => void): unknown;
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
  { prepare = false, listenPool = pool, listenCheckMs = LISTEN_CHECK_MS }: {
    prepare?: boolean;
    /**
     * Where the one connection every `listen` shares comes from: a pool of its own keeps it out
     * of `pool`, whose connections then all run statements. @default pool
     */
    listenPool?: PgLikePool;
    /**
     * How often the listening connection is checked (see `sharedListener`); 0: never.
     * @default LISTEN_CHECK_MS
     */
    listenCheckMs?: number | undefined;
  } = {},
): SqlDatabase & CopyOut {
  const listener = sharedListener(listenPool, listenCheckMs);
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

/** One `listen` of a `sharedListener`. */
interface Registration {
  channel: string;
  heard: (payload: string) => void;
  lock: readonly [number, number] | undefined;
  onResume: (() => void) | undefined;
}

/** Waits before each attempt to listen again after the listening connection was lost. */
const RESUME_DELAYS_MS = [100, 250, 500, 1000, 2000, 5000];

/**
 * How often the listening connection answers a `SELECT 1` by default: within as long again, or
 * it is taken as lost. Also keeps idle-connection timeouts of load balancers and NATs from
 * closing it silently.
 */
export const LISTEN_CHECK_MS = 30_000;

/**
 * Every LISTEN of a database on one connection of `source`, taken at the first `listen` and
 * given back when the last one stops. Its operations (advisory locks, LISTEN, UNLISTEN) run one
 * after another. A channel is listened to once, for all its listeners; each `sharedLock` is
 * taken once a listener (shared locks of one session stack) and given back when it stops.
 * When the connection is lost (a server restart, `pg_terminate_backend`, a network cut), the
 * listeners stay registered: another connection is opened (after 100 ms, then longer waits up
 * to 5 s while it fails), their channels listened to and their locks taken again on it, and
 * each listener's `onResume` told (what was notified in between was not heard).
 * A connection that stops answering without being closed (a peer gone behind a NAT or a load
 * balancer, a network cut that sends no reset) is found by a `SELECT 1` every `checkMs`: one
 * unanswered within `checkMs` drops the connection, and it is replaced as a lost one.
 */
function sharedListener(source: PgLikePool, checkMs: number) {
  let conn: PgLikeClient | null = null;
  const registrations = new Set<Registration>();
  /** Channels LISTENed to on `conn`. */
  const listening = new Set<string>();
  /** The connection was lost while listeners were registered: tell them once listening again. */
  let gap = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let check: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => {});
    return next;
  };
  const quoted = (channel: string) => `"${channel.replaceAll('"', '""')}"`;
  /** LISTENs to `channel` on `client` unless it does already. */
  const listenTo = async (client: PgLikeClient, channel: string) => {
    if (listening.has(channel)) return;
    await client.query(`LISTEN ${quoted(channel)}`);
    listening.add(channel);
  };
  /** Drops `client` (destroyed, not pooled: its handlers stay on it) if it is the connection. */
  const drop = (client: PgLikeClient): boolean => {
    if (conn !== client) return false;
    conn = null;
    listening.clear();
    client.release(true);
    return true;
  };
  const lost = (client: PgLikeClient) => {
    if (!drop(client) || registrations.size === 0) return;
    gap = true;
    resumeLater();
  };
  /** Whether `client` answers a `SELECT 1` within `checkMs`. */
  const answers = async (client: PgLikeClient): Promise<boolean> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), checkMs));
    try {
      return await Promise.race([client.query("SELECT 1").then(() => true, () => false), late]);
    } finally {
      clearTimeout(timer);
    }
  };
  /** Checks the listening connection in `checkMs`, and again after each check it passes. */
  const checkLater = () => {
    if (checkMs <= 0 || check !== undefined) return;
    check = setTimeout(() => {
      check = undefined;
      serial(async () => {
        const client = conn;
        if (!client) return;
        if (await answers(client)) checkLater();
        else lost(client);
      }).catch(() => {});
    }, checkMs);
    Deno.unrefTimer(check);
  };
  const resumeLater = () => {
    if (retry !== undefined) return;
    const delay = RESUME_DELAYS_MS[Math.min(failures, RESUME_DELAYS_MS.length - 1)]!;
    retry = setTimeout(() => {
      retry = undefined;
      serial(async () => {
        if (!conn && registrations.size > 0) await connection();
      }).catch(() => {}); // `connection` tries again later
    }, delay);
    // A process with nothing else to do may end while it waits.
    Deno.unrefTimer(retry);
  };
  /**
   * The listening connection; when there is none, a new one with every registration's lock
   * and LISTEN on it (and, after a loss, each registration's `onResume` told). When that
   * fails, it is tried again later while registrations remain.
   */
  const connection = async (): Promise<PgLikeClient> => {
    if (conn) return conn;
    let client: PgLikeClient | undefined;
    try {
      client = await source.connect();
      const c = client;
      const fail = () => lost(c);
      c.on("error", fail);
      c.on("end", fail);
      c.on("notification", (n) => {
        for (const r of registrations) if (r.channel === n.channel) r.heard(n.payload ?? "");
      });
      conn = c;
      for (const r of registrations) {
        if (r.lock) await c.query("SELECT pg_advisory_lock_shared($1, $2)", [...r.lock]);
        await listenTo(c, r.channel);
      }
      if (conn !== c) throw new Error("the listening connection was lost");
    } catch (err) {
      if (client) drop(client);
      if (registrations.size > 0) {
        gap = true;
        failures++;
        resumeLater();
      }
      throw err;
    }
    failures = 0;
    checkLater();
    if (gap) {
      gap = false;
      for (const r of registrations) r.onResume?.();
    }
    return client;
  };
  const letGo = () => {
    if (registrations.size > 0) return;
    clearTimeout(retry);
    retry = undefined;
    clearTimeout(check);
    check = undefined;
    failures = 0;
    gap = false;
    if (conn) drop(conn);
  };
  return {
    listen: (
      channel: string,
      onPayload: (payload: string) => void,
      { sharedLock: lock, onResume }: ListenOptions,
    ): Promise<() => Promise<void>> =>
      serial(async () => {
        // Its own function: one listener's stop never takes another's, the same `onPayload` or not.
        const r: Registration = { channel, heard: (p) => onPayload(p), lock, onResume };
        const client = await connection();
        let locked = false;
        try {
          // The lock first: whoever sees it held may notify before this LISTEN, which is before
          // this call resolved (nothing is promised for then).
          if (lock) {
            await client.query("SELECT pg_advisory_lock_shared($1, $2)", [...lock]);
            locked = true;
          }
          await listenTo(client, channel);
        } catch (err) {
          if (locked && conn === client) {
            await client.query("SELECT pg_advisory_unlock_shared($1, $2)", [...lock!])
              .catch(() => lost(client));
          }
          letGo();
          throw err;
        }
        registrations.add(r);
        let stopped = false;
        return () =>
          serial(async () => {
            if (stopped) return;
            stopped = true;
            registrations.delete(r);
            const client = conn;
            if (client) {
              try {
                if (![...registrations].some((o) => o.channel === channel)) {
                  listening.delete(channel);
                  await client.query(`UNLISTEN ${quoted(channel)}`);
                }
                if (lock) await client.query("SELECT pg_advisory_unlock_shared($1, $2)", [...lock]);
              } catch {
                lost(client);
              }
            }
            letGo();
          });
      }),
    close: () =>
      serial(() => {
        registrations.clear();
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
