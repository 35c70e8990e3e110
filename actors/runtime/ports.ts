/**
 * The ports the runtime core talks to. Adapters live in `db/`, `drivers/` and `transports/`;
 * `main.ts` alone chooses them.
 */

/** Runs parameterised SQL (`$1`, `$2`, ...). Rows come back as plain objects. */
export interface SqlExecutor {
  /** Runs one statement and returns its rows. */
  query<T = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<T[]>;
  /**
   * Bulk load: `COPY table (columns) FROM STDIN` in PostgreSQL's text format (tab-separated,
   * `\N` for null, see {@link copyText}), as a string or its UTF-8 bytes (one buffer, or
   * segments in order). Absent where the driver has no COPY (callers then insert). Quote
   * identifiers yourself; they go into the statement as given.
   */
  copyIn?(table: string, columns: readonly string[], data: CopyData): Promise<void>;
}

/** How a statement is run (see `SqlExecutor.query`). */
export interface QueryOptions {
  /**
   * The statement is one of a few fixed texts run over and over (the runtime's claim, commit
   * and enqueue): a driver may keep it parsed on each connection (a named prepared statement),
   * and PostgreSQL then plans it once when its plan does not depend on the parameters. A hint:
   * drivers that cannot (PGlite) run it as any other.
   */
  prepare?: boolean;
}

/** COPY text, or its UTF-8 bytes in one buffer or in segments to be sent in order. */
export type CopyData = string | Uint8Array | readonly Uint8Array[];

/** The parts of {@link CopyData}, in the order they are sent. */
export function copyParts(data: CopyData): readonly (string | Uint8Array)[] {
  return typeof data === "string" || data instanceof Uint8Array ? [data] : data;
}

/** A value as a field of COPY's text format: `\N` for null, backslash escapes. */
export function copyText(v: string | null): string {
  if (v === null) return "\\N";
  return /[\\\t\n\r]/.test(v)
    ? v.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r")
    : v;
}

/** What `SqlDatabase.listen` does besides listening. */
export interface ListenOptions {
  /**
   * A shared advisory lock (`pg_advisory_lock_shared(a, b)`) held on the listening session while
   * it listens: another session that fails `pg_try_advisory_xact_lock(a, b)` knows someone
   * listens. Only drivers with `listenLocks` honour it.
   */
  sharedLock?: readonly [number, number];
  /**
   * Called when listening resumed on a new session after the one it was on was lost (drivers
   * that reconnect): notifications sent in between were not heard, so look again now.
   */
  onResume?: () => void;
}

/**
 * A PostgreSQL-compatible database (PGlite, node-postgres, Neon).
 *
 * Invariants every adapter keeps:
 * - `transaction(fn)` runs `fn` on one connection inside BEGIN/COMMIT; it rolls back and
 *   rethrows when `fn` throws. Nothing `fn` wrote is visible to others before COMMIT.
 * - `jsonb` columns come back parsed; `jsonb` parameters are passed as JSON strings.
 * - Integers must be selected as `int4` (`::int`): int8 differs between drivers.
 * - `listen()` delivers NOTIFY payloads sent after it resolved, from any connection or process
 *   sharing the database; a notification may be lost when a connection drops, so listeners
 *   must also poll now and then. A driver whose listening session can be lost listens again on
 *   a new one and tells each listener (`ListenOptions.onResume`).
 * - With `listenLocks`, `listen(..., { sharedLock })` holds that shared advisory lock on the
 *   listening session from before it resolves until it stops or its session ends.
 */
export interface SqlDatabase extends SqlExecutor {
  /** Which driver this is (drivers differ in small ways, e.g. int8 parsing). */
  readonly dialect: "pglite" | "postgres" | "neon";
  /** Runs `fn` in one transaction (see the invariants above). */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Calls `onPayload` for each NOTIFY on `channel`; resolves to a function that stops listening. */
  listen(
    channel: string,
    onPayload: (payload: string) => void,
    options?: ListenOptions,
  ): Promise<() => Promise<void>>;
  /**
   * Whether `listen` honours `ListenOptions.sharedLock` (a driver with a session per listener).
   * Absent: it does not.
   */
  readonly listenLocks?: boolean;
  /** Whether several processes can share this database (false for an embedded PGlite file). */
  readonly shared: boolean;
  /**
   * Whether the server vacuums and analyzes tables by itself. PGlite has no autovacuum: the
   * runtime then runs `VACUUM (ANALYZE)` on its tables now and then, or queue tables bloat and
   * plans degrade.
   */
  readonly autovacuum: boolean;
  /**
   * Runs `fn` after a checkpoint while no statement runs: a consistent moment to copy the
   * database's files. Only an embedded database (its files are this process's) has it.
   */
  hold?<T>(fn: () => Promise<T>): Promise<T>;
  /** Closes the connections; nothing can be run afterwards. */
  close(): Promise<void>;
}

/** Structured logger; the default writes JSON lines. */
export interface Logger {
  /** Detail for debugging. */
  debug(msg: string, fields?: Record<string, unknown>): void;
  /** A normal event. */
  info(msg: string, fields?: Record<string, unknown>): void;
  /** Something unexpected that the process survives. */
  warn(msg: string, fields?: Record<string, unknown>): void;
  /** A failure. */
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
}

/** The lowest level a logger writes; `silent` writes nothing. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/**
 * A JSON-lines logger writing to stderr. `context`, called for each line written, adds fields
 * of the moment (e.g. the active trace's `traceId` and `spanId`, see `traceLogFields`).
 */
export function jsonLogger(
  level: LogLevel = "info",
  base: Record<string, unknown> = {},
  context?: () => Record<string, unknown> | undefined,
): Logger {
  const min = LEVELS[level];
  const write = (
    lvl: Exclude<LogLevel, "silent">,
    msg: string,
    fields?: Record<string, unknown>,
  ) => {
    if (LEVELS[lvl] < min) return;
    const line = JSON.stringify({
      t: new Date().toISOString(),
      level: lvl,
      msg,
      ...context?.(),
      ...base,
      ...fields,
    });
    console.error(line);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => jsonLogger(level, { ...base, ...fields }, context),
  };
}
