/**
 * `X-Request-Id` on every response: the caller's, when it is a safe token, else a new one.
 */
import type { MiddlewareHandler } from "hono";

const SAFE = /^[A-Za-z0-9._-]{1,100}$/;

export function requestId(): MiddlewareHandler {
  return async function requestIdMiddleware(c, next) {
    const incoming = c.req.header("x-request-id");
    const id = incoming && SAFE.test(incoming) ? incoming : crypto.randomUUID();
    c.set("requestId", id);
    c.header("X-Request-Id", id);
    await next();
    c.res.headers.set("X-Request-Id", id);
  };
}
