/**
 * Tenant administration (admin keys only):
 * - `DELETE /api/tenants/:id` → 202 `{ jobId }`: the `tenant.delete` job removes the tenant with
 *   its rows, blobs, vectors and jobs; its result counts what it removed, per part and kind
 *   (actors/tenants/delete.ts). Asking again while it runs, or after, is harmless.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import { ConflictError, type Runtime, TroupeError } from "@troupe/runtime";
import type { TenantStore } from "../db/tenants.ts";
import { principalOf } from "./auth.ts";
import { auditContext } from "./jobs.ts";
import { apiBase, declare } from "./openapi.ts";
import { pathId } from "./validate.ts";
import type { AppEnv } from "./env.ts";

const Deleting = z.object({ tenantId: z.string(), jobId: z.string(), status: z.string() });

export function tenantRoutes(runtime: Runtime, tenants: TenantStore): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  declare(app, {
    method: "delete",
    path: "/tenants/:id",
    tags: ["admin"],
    summary: "Delete a tenant with all its data, in a job (an admin key's)",
    description: "The job's result counts what was removed, per part (keys, jobs, datasets, " +
      "courses, runtime, audit, tenant, blobs) and kind. Blobs other tenants hold stay.",
    responses: { 202: { description: "The deletion's job", schema: Deleting } },
  }, async function deleteTenant(c) {
    const p = principalOf(c);
    if (!p.admin) {
      throw new TroupeError("FORBIDDEN", "deleting a tenant needs an admin key");
    }
    const id = pathId(c, "tenant");
    if (id === p.tenantId) throw new ConflictError("a key cannot delete its own tenant");
    if (!runtime.actors.has("tenant.delete")) {
      throw new TroupeError("UNAVAILABLE", "tenant deletion does not run here");
    }
    const tenant = await tenants.getTenant(id); // 404 for an unknown one
    const { job } = await runtime.enqueue("tenant.delete", { tenantId: id }, {
      tenantId: p.tenantId,
    });
    await tenants.audit({
      ...auditContext(c),
      action: "tenant.delete",
      targetType: "tenant",
      targetId: id,
      details: { name: tenant.name, jobId: job.id },
    });
    c.header("Location", `${apiBase(c)}/jobs/${job.id}`);
    return c.json({ tenantId: id, jobId: job.id, status: job.status }, 202);
  });
  return app;
}
