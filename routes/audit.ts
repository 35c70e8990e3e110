/** `GET /api/audit`: the caller's tenant's audit log, newest first, cursor pagination. */
import { Hono } from "hono";
import { z } from "zod";
import type { TenantStore } from "../db/tenants.ts";
import { principalOf } from "./auth.ts";
import { parseQuery } from "./validate.ts";

const auditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().min(1).max(100).optional(),
});

export function auditRoutes(tenants: TenantStore): Hono {
  const app = new Hono();
  app.get("/audit", async function listAudit(c) {
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
