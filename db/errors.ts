/**
 * What a storage failure means for a request, whichever driver raised it (node-postgres, the
 * Neon driver, PGlite, the file system): the database cannot be reached, the disk is full, or
 * the caller's value was out of the database's range. Anything else is `null`: a bug, a 500.
 *
 * Errors are recognised by their codes (SQLSTATE, errno names) and by the few messages the
 * drivers raise without one; `cause`, `errors` (AggregateError) and `error` are followed, since
 * pools and streams wrap what the socket or the server said.
 */

/** Why a storage operation failed, as far as the caller is concerned. */
export type StorageFailure =
  /** The database is down, restarting, unreachable, out of connections or closed. */
  | "database_unavailable"
  /** The disk (the database's or the blob store's) has no space left. */
  | "storage_full"
  /** A bound value the database rejected as out of its range (SQLSTATE class 22). */
  | "bad_value";

/** A SQLSTATE: five digits or upper-case letters. */
const SQLSTATE = /^[0-9A-Z]{5}$/;

/** Socket-level errno names of a peer that is not there (or went away mid-query). */
const CONNECTION_ERRNOS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTCONN",
  "EAI_AGAIN",
]);

/** Messages drivers raise without a code when the connection or the instance is gone. */
const UNAVAILABLE_MESSAGES = [
  /^Connection terminated/, // node-postgres (unexpectedly / due to connection timeout)
  /^timeout exceeded when trying to connect/, // pg-pool
  /^Client has encountered a connection error/, // node-postgres
  /^PGlite is clos(ed|ing)/, // PGlite after close()
  /^Cannot use a pool after calling end/, // pg-pool
  /^Connection refused/,
  // The Neon driver rejects with the WebSocket's ErrorEvent when the socket cannot open.
  /failed to connect to WebSocket/,
];

/** SQLSTATEs that say the server cannot take work now, not that the query is wrong. */
function unavailableState(state: string): boolean {
  return state.startsWith("08") || // connection exception
    state.startsWith("53") || // insufficient resources (53100 disk full is told apart)
    state === "57P01" || state === "57P02" || state === "57P03" || // shutdown, crash, starting
    state === "3D000" || // the database does not exist (dropped under the service)
    state === "58030"; // I/O error
}

/** The SQLSTATE of a database server's error (`err` or what it wraps), or `null`. */
export function sqlState(err: unknown): string | null {
  for (const e of causes(err)) {
    if (typeof e.code === "string" && SQLSTATE.test(e.code) && typeof e.severity === "string") {
      return e.code;
    }
  }
  return null;
}

/** `err` and the errors it wraps (`cause`, `error`, AggregateError's `errors`), breadth first. */
function* causes(err: unknown): Generator<Record<string, unknown>> {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length && seen.size < 16) {
    const e = queue.shift();
    if (typeof e !== "object" || e === null || seen.has(e)) continue;
    seen.add(e);
    yield e as Record<string, unknown>;
    const { cause, errors, error } = e as { cause?: unknown; errors?: unknown; error?: unknown };
    queue.push(cause, error);
    if (Array.isArray(errors)) queue.push(...errors);
  }
}

/** The storage failure `err` stands for, or `null` for any other error. */
export function storageFailure(err: unknown): StorageFailure | null {
  for (const e of causes(err)) {
    const found = ownFailure(e);
    if (found) return found;
  }
  return null;
}

function ownFailure(e: Record<string, unknown>): StorageFailure | null {
  const code = typeof e.code === "string" ? e.code : "";
  const message = typeof e.message === "string" ? e.message : "";
  if (code === "ENOSPC" || code === "53100" || /\(os error 28\)/.test(message)) {
    return "storage_full";
  }
  if (CONNECTION_ERRNOS.has(code)) return "database_unavailable";
  // A SQLSTATE only from an error of the server (it has a severity), not an errno that
  // happens to be five letters.
  if (SQLSTATE.test(code) && typeof e.severity === "string") {
    if (unavailableState(code)) return "database_unavailable";
    if (code.startsWith("22")) return "bad_value";
  }
  if (UNAVAILABLE_MESSAGES.some((m) => m.test(message))) return "database_unavailable";
  return null;
}
