/**
 * Rate limits: per client IP before authentication (which also slows key guessing) and per API
 * key after it. Every limited response carries `RateLimit-Limit`, `RateLimit-Remaining`,
 * `RateLimit-Reset` (seconds) and `RateLimit-Policy`; a refused one is a 429 with
 * `Retry-After`.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { RateDecision, RateLimiter, RateRule } from "../db/ratelimit/port.ts";
import type { Principal } from "../db/tenants.ts";
import { errorResponse } from "./errors.ts";

export interface LimitOptions {
  limiter: RateLimiter;
  perIp: RateRule;
  perKey: RateRule;
  isExempt: (path: string) => boolean;
  /** The client address: the connection's, or the proxy header's when proxies are trusted. */
  clientIp: (c: Context) => string;
}

function setHeaders(c: Context, rule: RateRule, d: RateDecision): void {
  const reset = Math.max(0, Math.ceil((d.resetAt - Date.now()) / 1000));
  c.header("RateLimit-Limit", String(d.limit));
  c.header("RateLimit-Remaining", String(d.remaining));
  c.header("RateLimit-Reset", String(reset));
  c.header("RateLimit-Policy", `${rule.limit};w=${Math.round(rule.windowMs / 1000)}`);
}

function refuse(c: Context, rule: RateRule, d: RateDecision, scope: string): Response {
  const retryAfter = Math.max(1, Math.ceil((d.resetAt - Date.now()) / 1000));
  c.header("Retry-After", String(retryAfter));
  return errorResponse(c, 429, "RATE_LIMITED", `too many requests for this ${scope}`, {
    limit: rule.limit,
    windowSeconds: Math.round(rule.windowMs / 1000),
    retryAfterSeconds: retryAfter,
  });
}

/** Per-IP limit; mount before authentication. */
export function limitByIp(o: LimitOptions): MiddlewareHandler {
  return async function limitByIpMiddleware(c, next) {
    if (o.isExempt(c.req.path)) return await next();
    const d = await o.limiter.limit(o.perIp, o.clientIp(c));
    setHeaders(c, o.perIp, d);
    c.set("rateLimitIp", d);
    if (!d.allowed) return refuse(c, o.perIp, d, "address");
    await next();
  };
}

/** Per-key limit; mount after authentication. Reports whichever limit is closer. */
export function limitByKey(o: LimitOptions): MiddlewareHandler {
  return async function limitByKeyMiddleware(c, next) {
    const principal = c.get("principal") as Principal | undefined;
    if (o.isExempt(c.req.path) || !principal) return await next();
    const d = await o.limiter.limit(o.perKey, principal.apiKeyId);
    const ipRemaining = (c.get("rateLimitIp") as RateDecision | undefined)?.remaining ?? Infinity;
    if (!d.allowed || d.remaining < ipRemaining) setHeaders(c, o.perKey, d);
    if (!d.allowed) return refuse(c, o.perKey, d, "API key");
    await next();
  };
}
