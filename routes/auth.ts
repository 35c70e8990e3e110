/**
 * API keys: every `/api/*` call but the public ones carries `X-API-Key: <key>` or
 * `Authorization: Bearer <key>`; the key's tenant scopes everything the call reads or writes.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Principal, TenantStore } from "../db/tenants.ts";
import type { AppEnv } from "./env.ts";
import { errorResponse } from "./errors.ts";

/** The caller of an authenticated route. */
export function principalOf(c: Context<AppEnv>): Principal {
  const principal: Principal | undefined = c.get("principal");
  if (!principal) throw new Error("principal missing on an authenticated route");
  return principal;
}

/** The key a request presents, if any. */
export function presentedKey(c: Context): string | undefined {
  const header = c.req.header("x-api-key");
  if (header) return header.trim();
  const auth = c.req.header("authorization");
  const m = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  return m?.[1];
}

/**
 * Sets the caller's principal, or refuses with 401. `onRefused` runs first for a request with no
 * key or a wrong one (the per-IP limit: it slows key guessing); a response it returns (a 429) is
 * sent instead of the 401.
 */
export function authenticate(
  tenants: TenantStore,
  { isPublic, onRefused, isRead = isSafeMethod }: {
    isPublic: (path: string) => boolean;
    onRefused?: (c: Context) => Promise<Response | undefined>;
    /** Whether a request only reads (what a `read` key may send). @default GET, HEAD, OPTIONS */
    isRead?: (c: Context) => boolean;
  },
): MiddlewareHandler {
  return async function authenticateMiddleware(c, next) {
    if (isPublic(c.req.path)) return await next();
    const key = presentedKey(c);
    if (!key) {
      const refused = await onRefused?.(c);
      if (refused) return refused;
      c.header("WWW-Authenticate", 'Bearer realm="troupe"');
      return errorResponse(
        c,
        401,
        "UNAUTHENTICATED",
        "an API key is required: send X-API-Key or Authorization: Bearer",
      );
    }
    const principal = await tenants.authenticate(key);
    if (!principal) {
      const refused = await onRefused?.(c);
      if (refused) return refused;
      c.header("WWW-Authenticate", 'Bearer realm="troupe", error="invalid_token"');
      return errorResponse(c, 401, "UNAUTHENTICATED", "the API key is unknown or revoked");
    }
    if (principal.scope === "read" && !isRead(c)) {
      return errorResponse(
        c,
        403,
        "READ_ONLY_KEY",
        "this API key may only read: use a key with the full scope for this request",
        { method: c.req.method, path: c.req.path },
      );
    }
    c.set("principal", principal);
    await next();
  };
}

/** GET, HEAD and OPTIONS. */
export function isSafeMethod(c: Context): boolean {
  const m = c.req.method;
  return m === "GET" || m === "HEAD" || m === "OPTIONS";
}
