/**
 * Rate limits shared by every instance, in Upstash Redis, with `@upstash/ratelimit`'s sliding
 * window. When Redis cannot be reached the request is let through (fail open: an outage of
 * the limiter must not become an outage of the API) and `degraded` says so.
 */
import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis";
import type { RateDecision, RateLimiter, RateRule } from "./port.ts";

export interface UpstashRateLimiterOptions {
  redis: Redis;
  /** Key prefix in Redis. @default "troupe:rl" */
  prefix?: string;
  /** Give up on Redis after this long and allow the request. @default 1000 */
  timeoutMs?: number;
}

export class UpstashRateLimiter implements RateLimiter {
  readonly kind = "upstash" as const;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #limiters = new Map<string, Ratelimit>();
  /** Set when the last call could not reach Redis. */
  degraded = false;

  constructor({ redis, prefix = "troupe:rl", timeoutMs = 1000 }: UpstashRateLimiterOptions) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#timeoutMs = timeoutMs;
  }

  async limit(rule: RateRule, id: string): Promise<RateDecision> {
    try {
      const r = await this.#limiter(rule).limit(id);
      this.degraded = r.reason === "timeout";
      return { allowed: r.success, limit: r.limit, remaining: r.remaining, resetAt: r.reset };
    } catch {
      this.degraded = true;
      return {
        allowed: true,
        limit: rule.limit,
        remaining: rule.limit,
        resetAt: Date.now() + rule.windowMs,
      };
    }
  }

  #limiter(rule: RateRule): Ratelimit {
    const key = `${rule.name}:${rule.limit}:${rule.windowMs}`;
    let limiter = this.#limiters.get(key);
    if (!limiter) {
      limiter = new Ratelimit({
        redis: this.#redis,
        limiter: Ratelimit.slidingWindow(rule.limit, `${rule.windowMs} ms`),
        prefix: `${this.#prefix}:${rule.name}`,
        timeout: this.#timeoutMs,
        analytics: false,
      });
      this.#limiters.set(key, limiter);
    }
    return limiter;
  }
}
