/**
 * In-process sliding-window limiter (the two-window estimate @upstash/ratelimit also uses):
 * the previous fixed window's count is weighted by how much of it still overlaps the sliding
 * window. Memory is bounded: windows older than two periods are dropped as they are met and
 * by a sweep every minute.
 */
import type { RateDecision, RateLimiter, RateRule } from "./port.ts";

interface Counter {
  window: number;
  current: number;
  previous: number;
}

const MAX_IDS = 100_000;

export class MemoryRateLimiter implements RateLimiter {
  readonly kind = "memory" as const;
  readonly #counters = new Map<string, Counter>();
  readonly #now: () => number;
  #lastSweep = 0;

  constructor({ now = Date.now }: { now?: () => number } = {}) {
    this.#now = now;
  }

  limit(rule: RateRule, id: string): Promise<RateDecision> {
    const now = this.#now();
    this.#sweep(now, rule.windowMs);
    const window = Math.floor(now / rule.windowMs);
    const key = `${rule.name}\u0000${id}`;
    let c = this.#counters.get(key);
    if (!c || c.window < window - 1) c = { window, current: 0, previous: 0 };
    else if (c.window === window - 1) c = { window, current: 0, previous: c.current };
    const elapsed = (now % rule.windowMs) / rule.windowMs;
    const used = Math.floor(c.previous * (1 - elapsed)) + c.current;
    const allowed = used < rule.limit;
    if (allowed) c.current++;
    this.#counters.set(key, c);
    return Promise.resolve({
      allowed,
      limit: rule.limit,
      remaining: Math.max(0, rule.limit - used - (allowed ? 1 : 0)),
      resetAt: (window + 1) * rule.windowMs,
    });
  }

  #sweep(now: number, windowMs: number): void {
    if (now - this.#lastSweep < 60_000 && this.#counters.size < MAX_IDS) return;
    this.#lastSweep = now;
    const window = Math.floor(now / windowMs);
    for (const [key, c] of this.#counters) {
      if (c.window < window - 1) this.#counters.delete(key);
    }
    if (this.#counters.size >= MAX_IDS) this.#counters.clear();
  }
}
