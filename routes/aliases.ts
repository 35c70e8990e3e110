/**
 * The API's versioned prefix and its unversioned aliases: every route answers under `/api/v1`
 * (documented) and under `/api` (deprecated, with headers pointing at its successor).
 */
import type { Context, Next } from "hono";
import { matchedRoutes } from "hono/route";
import type { AppEnv } from "./env.ts";

/** The canonical prefix of the API; `/api/...` answers too, deprecated (see `deprecatedAlias`). */
export const API_V1 = "/api/v1";

/** When the unversioned `/api/...` paths became deprecated aliases of `/api/v1/...`. */
export const ALIASES_DEPRECATED_AT = new Date("2026-12-05T00:00:00Z");

/**
 * Marks the unversioned `/api/...` answers deprecated (RFC 9745 `Deprecation: @<epoch
 * seconds>`) and links to the same resource under `/api/v1` (RFC 8594 `successor-version`).
 */
export async function deprecatedAlias(c: Context<AppEnv>, next: Next): Promise<void> {
  await next();
  const path = c.req.path;
  if (path.startsWith(`${API_V1}/`) || !matchedRoutes(c).some((r) => r.method !== "ALL")) return;
  c.res.headers.set("Deprecation", `@${ALIASES_DEPRECATED_AT.getTime() / 1000}`);
  c.res.headers.append("Link", `<${API_V1}${path.slice(4)}>; rel="successor-version"`);
}
