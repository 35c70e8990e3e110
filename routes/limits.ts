/**
 * Rate limits: an authenticated request counts against its API key, at its tenant's limit (or the
 * server's default); a request without a valid key counts against its client IP (which slows key
 * guessing), so clients behind one address do not share a budget once they authenticate. Every
 * limited response carries `RateLimit-Limit`, `RateLimit-Remaining`,
 * `RateLimit-Reset` (seconds) and `RateLimit-Policy`; a refused one is a 429 with
 * `Retry-After`.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { RateDecision, RateLimiter, RateRule } from "../db/ratelimit/port.ts";
import type { Principal } from "../db/tenants.ts";
import type { AppEnv } from "./env.ts";
import { errorResponse } from "./errors.ts";

export interface LimitOptions {
  limiter: RateLimiter;
  perIp: RateRule;
  perKey: RateRule;
  isExempt: (path: string) => boolean;
  /** The client address: the connection's, or the proxy header's when proxies are trusted. */
  clientIp: (c: Context<AppEnv>) => string;
}

function setHeaders(c: Context<AppEnv>, rule: RateRule, d: RateDecision): void {
  const reset = Math.max(0, Math.ceil((d.resetAt - Date.now()) / 1000));
  c.header("RateLimit-Limit", String(d.limit));
  c.header("RateLimit-Remaining", String(d.remaining));
  c.header("RateLimit-Reset", String(reset));
  c.header("RateLimit-Policy", `${rule.limit};w=${Math.round(rule.windowMs / 1000)}`);
}

function refuse(c: Context<AppEnv>, rule: RateRule, d: RateDecision, scope: string): Response {
  const retryAfter = Math.max(1, Math.ceil((d.resetAt - Date.now()) / 1000));
  c.header("Retry-After", String(retryAfter));
  return errorResponse(c, 429, "RATE_LIMITED", `too many requests for this ${scope}`, {
    limit: rule.limit,
    windowSeconds: Math.round(rule.windowMs / 1000),
    retryAfterSeconds: retryAfter,
  });
}

/**
 * Per-IP limit of a request that has no valid key: counts it, sets the headers, and returns the
 * 429 to send when the address is over its limit (for `authenticate`'s `onRefused`).
 */
export function limitUnauthenticated(
  o: LimitOptions,
): (c: Context<AppEnv>) => Promise<Response | undefined> {
  return async function limitByIp(c) {
    const d = await o.limiter.limit(o.perIp, o.clientIp(c));
    setHeaders(c, o.perIp, d);
    return d.allowed ? undefined : refuse(c, o.perIp, d, "address");
  };
}

/** Per-key limit at the key's tenant's rate; mount after authentication. */
export function limitByKey(o: LimitOptions): MiddlewareHandler<AppEnv> {
  return async function limitByKeyMiddleware(c, next) {
    const principal: Principal | undefined = c.get("principal");
    if (o.isExempt(c.req.path) || !principal) return await next();
    const rule = principal.rateLimitPerMinute === null
      ? o.perKey
      : { ...o.perKey, limit: principal.rateLimitPerMinute };
    const d = await o.limiter.limit(rule, principal.apiKeyId);
    setHeaders(c, rule, d);
    if (!d.allowed) return refuse(c, rule, d, "API key");
    await next();
  };
}
