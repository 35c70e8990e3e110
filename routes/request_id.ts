/**
 * Headers on every response: `X-Request-Id` (the caller's, when it is a safe token, else a new
 * one), `X-Response-Time` (milliseconds spent in the app, to the tenth) and `X-Troupe-Version`.
 */
import type { MiddlewareHandler } from "hono";
import { TROUPE_VERSION } from "./version.ts";

const SAFE = /^[A-Za-z0-9._-]{1,100}$/;

export function requestId(): MiddlewareHandler {
  return async function requestIdMiddleware(c, next) {
    const started = performance.now();
    const incoming = c.req.header("x-request-id");
    const id = incoming && SAFE.test(incoming) ? incoming : crypto.randomUUID();
    c.set("requestId", id);
    c.header("X-Request-Id", id);
    await next();
    const headers = c.res.headers;
    headers.set("X-Request-Id", id);
    headers.set("X-Response-Time", `${(performance.now() - started).toFixed(1)}ms`);
    headers.set("X-Troupe-Version", TROUPE_VERSION);
  };
}
