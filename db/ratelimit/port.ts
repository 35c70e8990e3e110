/**
 * The rate-limit port: counts requests per identifier (an IP, an API key) in a sliding window.
 * Adapters: in-memory (embedded, one process) and Upstash Redis (shared by every instance).
 */

/** A limit: at most `limit` requests per `windowMs`, counted under `name`. */
export interface RateRule {
  name: string;
  limit: number;
  windowMs: number;
}

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** When the window frees capacity again, epoch milliseconds. */
  resetAt: number;
}

export interface RateLimiter {
  readonly kind: "memory" | "upstash";
  /** Counts one request of `id` under `rule` and says whether it may go on. */
  limit(rule: RateRule, id: string): Promise<RateDecision>;
}
