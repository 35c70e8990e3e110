/**
 * CORS for browser front-ends on other origins: only the origins listed (`CORS_ORIGINS`; none by
 * default, `*` for any) get `Access-Control-Allow-Origin`. Mounted before rate limits and
 * authentication, so a preflight (which carries no API key) is answered, not refused with 401;
 * a preflight from an origin not listed is answered without the allow header, which browsers
 * refuse.
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";

/** Request headers a front-end may send. */
const ALLOW_HEADERS = [
  "Authorization",
  "Content-Type",
  "Idempotency-Key",
  "X-API-Key",
  "X-Request-Id",
];

/** Response headers a front-end may read. */
const EXPOSE_HEADERS = [
  "Location",
  "Retry-After",
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
  "RateLimit-Policy",
  "X-Request-Id",
  "X-Response-Time",
  "X-Troupe-Version",
];

/** The CORS middleware for `origins` (exact origins such as `https://app.example.com`, or `*`). */
export function corsFor(origins: readonly string[]): MiddlewareHandler {
  const any = origins.includes("*");
  const allowed = new Set(origins);
  const handle = cors({
    origin: (origin) => (any || allowed.has(origin) ? origin : null),
    allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    allowHeaders: ALLOW_HEADERS,
    exposeHeaders: EXPOSE_HEADERS,
    maxAge: 600,
  });
  // Only a browser's request carries Origin, and only it needs the headers: the rest (scripts,
  // servers, most of the traffic) skip the middleware, which costs a copy of every response.
  // With no origin listed, only preflights are answered (refused), so they are not a 401.
  return async function corsMiddleware(c, next) {
    if (!c.req.header("origin") || (allowed.size === 0 && c.req.method !== "OPTIONS")) {
      return await next();
    }
    return await handle(c, next);
  };
}
