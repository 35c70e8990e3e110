/** `GET /api/audit`: the caller's tenant's audit log, newest first, cursor pagination. */
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { TenantStore } from "../db/tenants.ts";
import { principalOf } from "./auth.ts";
import { parseQuery } from "./validate.ts";
import { declare, JsonObject, pageOf } from "./openapi.ts";
import type { AppEnv } from "./env.ts";

const auditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().min(1).max(100).optional(),
});

export function auditRoutes(tenants: TenantStore): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  declare(app, {
    method: "get",
    path: "/audit",
    tags: ["audit"],
    summary: "The tenant's audit log, newest first",
    query: auditQuery,
    responses: { 200: { description: "A page of audit entries", schema: pageOf(JsonObject) } },
  }, async function listAudit(c) {
    const q = parseQuery(c, auditQuery);
    return c.json(
      await tenants.listAudit(principalOf(c).tenantId, {
        limit: q.limit,
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      }),
    );
  });
  return app;
}
