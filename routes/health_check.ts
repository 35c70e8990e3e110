/**
 * What `GET /api/health` answers (routes/health.ts declares the routes): the database asked,
 * the write probes run at most every `probeEveryMs`, the cache pinged, all at once. Kept apart
 * from the route declarations so that a start can answer its first health check without the
 * OpenAPI modules (routes/front.ts).
 */
import type { Context } from "hono";
import type { Runtime } from "@troupe/runtime";
import { toErrorRecord, TroupeError } from "@troupe/runtime/errors";
import type { Cache } from "../db/cache/cache.ts";
import { storageFailure } from "../db/errors.ts";
import type { WriteProbe } from "../db/write_probe.ts";
import { principalOf } from "./auth.ts";
import { RETRY_AFTER_SECONDS } from "./errors.ts";
import { TROUPE_VERSION } from "./version.ts";
import type { AppEnv } from "./env.ts";

export interface HealthOptions {
  /** Writes the check makes (a file in the data directory, a row). @default none */
  probes?: readonly WriteProbe[];
  /**
   * The probes run at most once in this time; checks in between answer with their last result
   * (a health check polled every second does not write every second). @default 5000
   */
  probeEveryMs?: number;
  /** A probe that takes longer fails. @default 2000 */
  probeTimeoutMs?: number;
  /**
   * Runs the probes once when the routes are made, so that the first check (within
   * `probeEveryMs`) finds their result instead of waiting for it. @default false
   */
  probeAtOnce?: boolean;
}

/** A probe's outcome; a failure says what it stands for, not its error (health is public). */
interface ProbeResult {
  name: string;
  ok: boolean;
  code?: string;
}

/**
 * What the check asks: the database and the transport's name; the queue figures of
 * `/health/details` (a `Runtime` is one).
 */
export interface HealthSubject {
  readonly db: Pick<Runtime["db"], "query" | "dialect">;
  readonly transport: { readonly name: string };
  health(): ReturnType<Runtime["health"]>;
}

/**
 * The check (see the module doc of routes/health.ts): its answer to `c`, with the queue
 * figures when `details`.
 */
export function healthCheck(
  runtime: HealthSubject,
  cache?: Cache,
  { probes = [], probeEveryMs = 5000, probeTimeoutMs = 2000, probeAtOnce = false }: HealthOptions =
    {},
): (c: Context<AppEnv>, details: boolean) => Promise<Response> {
  let last: { at: number; results: Promise<ProbeResult[]> } | null = null;
  const writes = () => {
    if (!last || performance.now() - last.at >= probeEveryMs) {
      last = { at: performance.now(), results: runProbes(probes, probeTimeoutMs) };
    }
    return last.results;
  };
  if (probeAtOnce) writes();
  /** The public report and its status code; `details` adds the queue figures. */
  return async function report(c: Context<AppEnv>, details: boolean): Promise<Response> {
    let queue;
    // The database, the write probes and the cache are asked at once: the answer waits for the
    // slowest, not for their sum. (Neither `writes` nor `check` rejects.)
    const writing = writes();
    const caching = cache?.check();
    try {
      if (details) queue = await runtime.health();
      else await ping(runtime, 2000);
    } catch (err) {
      const { code } = toErrorRecord(err);
      c.header("Retry-After", String(RETRY_AFTER_SECONDS.database));
      return c.json({
        status: "unavailable",
        version: TROUPE_VERSION,
        database: { status: "unreachable", dialect: runtime.db.dialect },
        error: {
          code: code === "DB_TIMEOUT" ? code : "DB_UNREACHABLE",
          message: "database did not answer",
        },
      }, 503);
    }
    const results = await writing;
    const failed = results.filter((r) => !r.ok);
    // The cache is an optimisation: when it is down, requests go to the database and the
    // service is degraded, not unavailable.
    const cacheStatus = (await caching) ?? null;
    let cacheFigures = {};
    if (details && cache) {
      const p = principalOf(c);
      const { hits, misses, hitRate, keys, keysByKind, scope } = await cache.stats(
        p.admin ? undefined : p.tenantId,
      );
      cacheFigures = { scope, hits, misses, hitRate, keys, keysByKind };
    }
    const body = {
      status: failed.length ? "unavailable" : cacheStatus === "degraded" ? "degraded" : "ok",
      version: TROUPE_VERSION,
      database: { status: "ok", dialect: runtime.db.dialect },
      ...(probes.length
        ? { writes: { status: failed.length ? "failing" : "ok", checks: results } }
        : {}),
      ...(cache
        ? { cache: { status: cacheStatus, store: cache.store.kind, ...cacheFigures } }
        : {}),
      ...(queue ? { queue } : {}),
      transport: runtime.transport.name,
    };
    if (!failed.length) return c.json(body);
    const full = failed.some((r) => r.code === "STORAGE_FULL");
    c.header("Retry-After", String(RETRY_AFTER_SECONDS.storage));
    return c.json({
      ...body,
      error: {
        code: full ? "STORAGE_FULL" : "WRITE_FAILED",
        message: `writes are failing: ${failed.map((r) => r.name).join(", ")}`,
      },
    }, 503);
  };
}

/** `SELECT 1`, failing with `DB_TIMEOUT` after `timeoutMs`. */
async function ping(runtime: HealthSubject, timeoutMs: number): Promise<void> {
  await withTimeout(
    runtime.db.query("SELECT 1"),
    timeoutMs,
    () => new TroupeError("DB_TIMEOUT", "database did not answer"),
  );
}

/** `work`, or a rejection with `error()` once `ms` have passed (the timer is always cleared). */
async function withTimeout<T>(work: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(error()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every probe, each under `timeoutMs`; a failure is named by what it stands for. */
function runProbes(probes: readonly WriteProbe[], timeoutMs: number): Promise<ProbeResult[]> {
  return Promise.all(probes.map(async (probe) => {
    try {
      await withTimeout(probe.run(), timeoutMs, () => new Error(`took over ${timeoutMs} ms`));
      return { name: probe.name, ok: true };
    } catch (err) {
      const failure = storageFailure(err);
      return {
        name: probe.name,
        ok: false,
        code: failure === "storage_full"
          ? "STORAGE_FULL"
          : failure === "database_unavailable"
          ? "DATABASE_UNAVAILABLE"
          : "WRITE_FAILED",
      };
    }
  }));
}
