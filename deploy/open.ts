/**
 * The drivers a start opens first, before any workload or route module loads: the database
 * the configuration names and its Upstash Redis client. Light on purpose: the edge entry
 * (deploy/edge.ts) answers its first health check with these alone, while the rest loads.
 *
 * Every driver's module loads by dynamic import when the configuration chooses it: a production
 * start neither loads nor needs the embedded-only ones (PGlite; `deno task deploy:check` guards
 * this), and the edge entry starts loading each while the others load and connect.
 */
import { join } from "node:path";
import type { SqlDatabase } from "@troupe/runtime";
import type { Redis } from "@upstash/redis";
import { type Config, drivers } from "./config.ts";
import { databaseWriteProbe, diskWriteProbe, type WriteProbe } from "../db/write_probe.ts";

/** The database the configuration names. */
export async function openDatabase(config: Config): Promise<SqlDatabase> {
  const kind = drivers(config).database;
  if (kind === "pglite") {
    const { openPglite } = await import("@troupe/runtime/pglite");
    return await openPglite(join(config.DATA_DIR, "pglite"), {
      sharedBuffersMb: config.PGLITE_SHARED_BUFFERS_MB,
      thread: config.PGLITE_THREAD,
    });
  }
  const url = config.DATABASE_URL!;
  if (kind === "neon") {
    const { openNeon } = await import("@troupe/runtime/neon");
    return openNeon(url, {
      max: config.DATABASE_POOL_SIZE,
      ...(config.NEON_WS_PROXY ? { wsProxy: config.NEON_WS_PROXY, secure: false } : {}),
    });
  }
  const { openPostgres } = await import("@troupe/runtime/postgres");
  return openPostgres(url, {
    max: config.DATABASE_POOL_SIZE,
    prepare: config.DATABASE_PREPARED_STATEMENTS,
  });
}

/**
 * The Upstash Redis client when the configuration names one (cache, rate limits), else null;
 * its module loads here, so a start without Redis never loads it.
 */
export async function openRedis(config: Config): Promise<Redis | null> {
  if (drivers(config).cache !== "upstash") return null;
  const { Redis } = await import("@upstash/redis");
  // One quick retry: a cache that is down must degrade fast, not hold requests.
  return new Redis({
    url: config.UPSTASH_REDIS_REST_URL!,
    token: config.UPSTASH_REDIS_REST_TOKEN!,
    retry: { retries: 1, backoff: () => 50 },
  });
}

/** What the health check writes: a row, and a file when the data directory holds data. */
export function healthProbes(config: Config, db: SqlDatabase): WriteProbe[] {
  const kinds = drivers(config);
  // The data directory holds the embedded database and the files: a full disk stops both.
  return [
    databaseWriteProbe(db),
    ...(kinds.database === "pglite" || kinds.blobs === "fs"
      ? [diskWriteProbe(config.DATA_DIR)]
      : []),
  ];
}

/** `true`, or why `HOST:PORT` cannot be listened on (checked before anything starts). */
export function portAvailable(hostname: string, port: number): true | string {
  try {
    Deno.listen({ hostname, port }).close();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      return `port ${port} on ${hostname} is already in use (another Troupe or another server); ` +
        "stop it or set PORT";
    }
    if (
      err instanceof Deno.errors.AddrNotAvailable || err instanceof Deno.errors.PermissionDenied
    ) {
      return `cannot listen on ${hostname}:${port}: ${(err as Error).message}; check HOST and PORT`;
    }
    throw err;
  }
}

/** A start that cannot go on for a reason the user can fix: one line, exit code 1. */
export function startFailed(message: string): never {
  console.error(`troupe: ${message}`);
  Deno.exit(1);
}
