/**
 * `GET /api/health`: database reachability, queue depth and cache status; 503 when the
 * database is down, `degraded` (200) when only the cache is.
 */
import { Hono } from "hono";
import { toErrorRecord } from "../actors/runtime/errors.ts";
import type { Runtime } from "../actors/runtime/runtime.ts";
import type { Cache } from "../db/cache/cache.ts";

export function healthRoutes(runtime: Runtime, cache?: Cache): Hono {
  const app = new Hono();
  app.get("/health", async function health(c) {
    try {
      const queue = await runtime.health();
      // The cache is an optimisation: when it is down, requests go to the database and the
      // service is degraded, not unavailable.
      const cacheStatus = cache ? await cache.check() : null;
      return c.json({
        status: cacheStatus === "degraded" ? "degraded" : "ok",
        database: { status: "ok", dialect: runtime.db.dialect },
        ...(cache ? { cache: { status: cacheStatus, store: cache.store.kind } } : {}),
        queue,
        transport: runtime.transport.name,
      });
    } catch (err) {
      const { code } = toErrorRecord(err);
      return c.json({
        status: "unavailable",
        database: { status: "unreachable", dialect: runtime.db.dialect },
        error: {
          code: code === "DB_TIMEOUT" ? code : "DB_UNREACHABLE",
          message: "database did not answer",
        },
      }, 503);
    }
  });
  return app;
}
