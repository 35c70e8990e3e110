/**
 * Headers on every response: `X-Request-Id` (hono/request-id: the caller's, when it is a safe
 * token of at most 100 characters, else a new UUID), `X-Response-Time` (milliseconds spent in
 * the app, to the tenth) and `X-Troupe-Version`.
 */
import type { MiddlewareHandler } from "hono";
import { requestId as honoRequestId } from "hono/request-id";
import type { AppEnv } from "./env.ts";
import { TROUPE_VERSION } from "./version.ts";

export function requestId(): MiddlewareHandler<AppEnv> {
  const assign = honoRequestId({ limitLength: 100 });
  return async function requestIdMiddleware(c, next) {
    const started = performance.now();
    await assign(c, next);
    // Set again: a handler's own `Response` does not carry the headers set before it.
    const headers = c.res.headers;
    headers.set("X-Request-Id", c.get("requestId"));
    headers.set("X-Response-Time", `${(performance.now() - started).toFixed(1)}ms`);
    headers.set("X-Troupe-Version", TROUPE_VERSION);
  };
}
