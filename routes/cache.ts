/**
 * `GET /api/cache/stats` (hits, misses, keys, memory, degraded) and
 * `POST /api/cache/invalidate` `{ prefix?, tag? }`: drops the caller's tenant's cached entries
 * (keys and tags are tenant-scoped, so no tenant can touch another's), audited.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { Cache } from "../db/cache/cache.ts";
import type { TenantStore } from "../db/tenants.ts";
import { principalOf } from "./auth.ts";
import { auditContext } from "./jobs.ts";
import { jsonBody, parseBody } from "./validate.ts";

const invalidateBody = z.object({
  prefix: z.string().max(500).optional(),
  tag: z.string().min(1).max(500).optional(),
}).strict().refine((b) => b.prefix !== undefined || b.tag !== undefined, {
  message: "give a prefix, a tag or both",
});

export function cacheRoutes(cache: Cache, tenants: TenantStore): Hono {
  const app = new Hono();
  app.get("/cache/stats", async function cacheStats(c) {
    return c.json(await cache.stats());
  });
  app.post("/cache/invalidate", async function invalidate(c) {
    const body = parseBody(await jsonBody(c), invalidateBody);
    const { tenantId } = principalOf(c);
    const removed = await cache.invalidate({
      ...(body.prefix !== undefined ? { prefix: `${tenantId}:${body.prefix}` } : {}),
      ...(body.tag !== undefined ? { tag: `${tenantId}:${body.tag}` } : {}),
    });
    await tenants.audit({
      ...auditContext(c),
      action: "cache.invalidate",
      targetType: "cache",
      details: { ...body, removed },
    });
    return c.json({ removed, degraded: cache.degraded });
  });
  return app;
}
