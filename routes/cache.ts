/**
 * `GET /api/cache/stats` (hits, misses, keys, keys per TTL class on the memory store, memory,
 * degraded) and
 * `POST /api/cache/invalidate` `{ prefix?, tag? }`: the caller's tenant's cached entries only
 * (keys and tags are tenant-scoped, so no tenant can see or touch another's), invalidation
 * audited. An admin key (`deno task tenant:create --admin`) may ask for every tenant's:
 * `GET /api/cache/stats?scope=all`, `POST /api/cache/invalidate` `{ ..., scope: "all" }`.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import { TroupeError } from "@troupe/runtime";
import { type Cache, cacheKey } from "../db/cache/cache.ts";
import type { Principal, TenantStore } from "../db/tenants.ts";
import { principalOf } from "./auth.ts";
import { auditContext } from "./jobs.ts";
import { jsonBody, parseBody, parseQuery } from "./validate.ts";
import { declare, JsonObject } from "./openapi.ts";
import type { AppEnv } from "./env.ts";

const tags = ["cache"];

const scope = z.enum(["tenant", "all"]).default("tenant");

const statsQuery = z.object({ scope });

const invalidateBody = z.object({
  prefix: z.string().max(500).optional(),
  tag: z.string().min(1).max(500).optional(),
  scope,
}).strict().refine((b) => b.prefix !== undefined || b.tag !== undefined, {
  message: "give a prefix, a tag or both",
});

/** Every tenant's view is an admin key's only. */
function assertAdmin(p: Principal): void {
  if (!p.admin) {
    throw new TroupeError("FORBIDDEN", 'scope "all" needs an admin key');
  }
}

export function cacheRoutes(cache: Cache, tenants: TenantStore): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  declare(app, {
    method: "get",
    path: "/cache/stats",
    tags,
    summary: "The tenant's cache hits, misses, keys, memory; degraded (scope=all: an admin key's)",
    query: statsQuery,
    responses: { 200: { description: "Cache figures", schema: JsonObject } },
  }, async function cacheStats(c) {
    const q = parseQuery(c, statsQuery);
    const p = principalOf(c);
    if (q.scope === "all") assertAdmin(p);
    return c.json(await cache.stats(q.scope === "all" ? undefined : p.tenantId));
  });
  declare(app, {
    method: "post",
    path: "/cache/invalidate",
    tags,
    summary: "Invalidate the tenant's cache by prefix and/or tag (scope \"all\": an admin key's)",
    body: invalidateBody,
    responses: {
      200: {
        description: "How many entries went",
        schema: z.object({ removed: z.number().int(), degraded: z.boolean() }),
      },
    },
  }, async function invalidate(c) {
    const body = parseBody(await jsonBody(c), invalidateBody);
    const p = principalOf(c);
    if (body.scope === "all") assertAdmin(p);
    // Keys and tags start with their tenant: an admin's prefix and tag are taken whole.
    const within = body.scope === "all" ? "" : `${cacheKey(p.tenantId)}:`;
    const removed = await cache.invalidate({
      ...(body.prefix !== undefined ? { prefix: `${within}${body.prefix}` } : {}),
      ...(body.tag !== undefined ? { tag: `${within}${body.tag}` } : {}),
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
