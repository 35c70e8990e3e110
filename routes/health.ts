/**
 * `GET /api/health` (public, cheap: one `SELECT 1`, the write probes at most every few
 * seconds, the cache's ping): database reachability, cache status, and whether writes still
 * succeed; 503 when the database is down or a write probe fails (a full disk leaves reads
 * working while every upload fails), `degraded` (200) when only the cache is down.
 *
 * `GET /api/health/details` (an API key): the same, plus queue figures (queued, running, dead
 * letters: counts over the jobs table), failed maintenance runs, and the cache's hits,
 * misses, hit ratio and keys, in all and per TTL class when the store counts them (the memory
 * store; `keysByKind: null` on Redis), the key's tenant's (all tenants' for an admin key).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Cache } from "../db/cache/cache.ts";
import { healthCheck, type HealthOptions, type HealthSubject } from "./health_check.ts";
import { declare, JsonObject } from "./openapi.ts";
import type { AppEnv } from "./env.ts";

export type { HealthOptions, HealthSubject } from "./health_check.ts";

const tags = ["health"];

export function healthRoutes(
  runtime: HealthSubject,
  cache?: Cache,
  options: HealthOptions = {},
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  const report = healthCheck(runtime, cache, options);
  declare(app, {
    method: "get",
    path: "/health",
    tags,
    public: true,
    summary: "Database, cache and write status (503 when the database is down or writes fail)",
    responses: { 200: { description: "Healthy", schema: JsonObject } },
  }, function health(c) {
    return report(c, false);
  });
  declare(app, {
    method: "get",
    path: "/health/details",
    tags,
    summary: "Health plus queue figures and the cache's (all tenants' for an admin key)",
    responses: { 200: { description: "Healthy, with figures", schema: JsonObject } },
  }, function healthDetails(c) {
    return report(c, true);
  });
  return app;
}
