/**
 * The key that signs a tenant's completion callbacks (see actors/system/callback.ts):
 *
 * - `GET /api/callbacks/secret` → the current key, made on first use;
 * - `POST /api/callbacks/secret` → 201 with a new key; the old one signs nothing from now on.
 *
 * Both need a key with the full scope (a read-only key could otherwise learn a key that
 * forges callbacks). A rotation is in the audit log.
 */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import { TroupeError } from "@troupe/runtime";
import type { TenantStore } from "../db/tenants.ts";
import type { Callbacks } from "../actors/system/callback.ts";
import { principalOf } from "./auth.ts";
import { auditContext } from "./jobs.ts";
import { declare } from "./openapi.ts";
import type { AppEnv } from "./env.ts";

const tags = ["callbacks"];

const Secret = z.object({
  secret: z.string().openapi({ description: "The HMAC-SHA256 key (the whole string)" }),
  createdAt: z.string(),
  scheme: z.string().openapi({
    description: "How callbacks are signed: `Troupe-Signature: t=<unix seconds>,v1=<hex " +
      'HMAC-SHA256 of "<t>.<raw body>">`',
  }),
}).openapi("CallbackSecret");

const SCHEME = 'Troupe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">';

function fullScope(c: Parameters<typeof principalOf>[0]): string {
  const p = principalOf(c);
  if (p.scope === "read") {
    throw new TroupeError("FORBIDDEN", "the callback signing key needs a key with the full scope");
  }
  return p.tenantId;
}

export function callbackRoutes(callbacks: Callbacks, tenants: TenantStore): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  declare(app, {
    method: "get",
    path: "/callbacks/secret",
    tags,
    summary: "The key that signs this tenant's completion callbacks (made on first use)",
    responses: { 200: { description: "The signing key", schema: Secret } },
  }, async function getCallbackSecret(c) {
    const secret = await callbacks.secrets.current(fullScope(c));
    return c.json({ ...secret, scheme: SCHEME });
  });
  declare(app, {
    method: "post",
    path: "/callbacks/secret",
    tags,
    summary: "Replace the callback signing key; callbacks sent from now on use the new one",
    responses: { 201: { description: "The new signing key", schema: Secret } },
  }, async function rotateCallbackSecret(c) {
    const tenantId = fullScope(c);
    const secret = await callbacks.secrets.rotate(tenantId);
    await tenants.audit({
      ...auditContext(c),
      action: "callback_secret.rotate",
      targetType: "tenant",
      targetId: tenantId,
      details: null,
    });
    return c.json({ ...secret, scheme: SCHEME }, 201);
  });
  return app;
}
