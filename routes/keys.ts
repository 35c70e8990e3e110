/**
 * A tenant's API keys, administered with one of its keys:
 *
 * - `GET /api/keys`: its keys (never the keys themselves: a prefix, scope, state);
 * - `POST /api/keys` `{ name, scope?, admin? }` → 201 with the new key, shown once; `admin`
 *   needs an admin key;
 * - `POST /api/keys/:id/rotate` `{ graceSeconds? }` → 201 with the replacement; the old key
 *   works for the grace period (default 3600 s, 0: stops now);
 * - `DELETE /api/keys/:id` → 204: revoked on every instance within seconds.
 *
 * Every change is in the audit log. Another tenant's key id is a 404. A read-only key cannot
 * reach the writes (the authentication middleware refuses them).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import { TroupeError } from "@troupe/runtime";
import { KEY_SCOPES, MAX_ROTATION_GRACE_SECONDS, type TenantStore } from "../db/tenants.ts";
import { principalOf } from "./auth.ts";
import { auditContext } from "./jobs.ts";
import { jsonBody, parseBody, pathId } from "./validate.ts";
import { declare, JsonObject } from "./openapi.ts";
import type { AppEnv } from "./env.ts";

const tags = ["keys"];

const createBody = z.object({
  name: z.string().min(1).max(64),
  scope: z.enum(KEY_SCOPES as ["full", "read"]).default("full"),
  admin: z.boolean().default(false),
}).strict();

const rotateBody = z.object({
  graceSeconds: z.number().int().min(0).max(MAX_ROTATION_GRACE_SECONDS).optional(),
}).strict();

export function keyRoutes(tenants: TenantStore): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  declare(app, {
    method: "get",
    path: "/keys",
    tags,
    summary: "The tenant's API keys (prefix, scope, state; never the keys)",
    responses: {
      200: { description: "The keys", schema: z.object({ items: z.array(JsonObject) }) },
    },
  }, async function listKeys(c) {
    return c.json({ items: await tenants.listKeys(principalOf(c).tenantId) });
  });
  declare(app, {
    method: "post",
    path: "/keys",
    tags,
    summary: "Make a key (an admin key needs an admin key); the key is in this answer only",
    body: createBody,
    responses: { 201: { description: "The new key, shown once", schema: JsonObject } },
  }, async function createKey(c) {
    const body = parseBody(await jsonBody(c), createBody);
    const p = principalOf(c);
    if (body.admin && !p.admin) {
      throw new TroupeError("FORBIDDEN", "only an admin key can make an admin key");
    }
    const { tenantId: _, ...audit } = auditContext(c);
    const created = await tenants.createKey(p.tenantId, { ...body, audit });
    return c.json({ ...created, name: body.name, scope: body.scope, admin: body.admin }, 201);
  });
  declare(app, {
    method: "post",
    path: "/keys/:id/rotate",
    tags,
    summary: "Replace a key; the old key works for `graceSeconds` (default 3600)",
    body: rotateBody,
    responses: { 201: { description: "The replacement, shown once", schema: JsonObject } },
  }, async function rotateKey(c) {
    const id = pathId(c, "api key");
    const raw = c.req.header("content-length") === "0" ? {} : await jsonBody(c);
    const body = parseBody(raw, rotateBody);
    const { tenantId, ...audit } = auditContext(c);
    const rotated = await tenants.rotateKey(tenantId, id, {
      ...(body.graceSeconds !== undefined ? { graceSeconds: body.graceSeconds } : {}),
      audit,
    });
    return c.json(rotated, 201);
  });
  declare(app, {
    method: "delete",
    path: "/keys/:id",
    tags,
    summary: "Revoke a key (every instance refuses it within seconds)",
    responses: { 204: { description: "Revoked" } },
  }, async function revokeKey(c) {
    const id = pathId(c, "api key");
    const { tenantId, ...audit } = auditContext(c);
    await tenants.revokeKey(tenantId, id, audit);
    return c.body(null, 204);
  });
  return app;
}
