/** Retry delays: exponential with full jitter, capped. */

export interface BackoffPolicy {
  /** Delay before the first retry, in ms. @default 1000 */
  baseMs: number;
  /** Upper bound of any delay, in ms. @default 300000 */
  maxMs: number;
  /** Growth factor per attempt. @default 2 */
  factor: number;
  /** Fraction of the delay that is randomised (0 = none, 1 = full jitter). @default 0.5 */
  jitter: number;
}

/** Retry delays unless an actor overrides them: 1 s doubling to 5 min, half jittered. */
export const DEFAULT_BACKOFF: BackoffPolicy = {
  baseMs: 1000,
  maxMs: 300_000,
  factor: 2,
  jitter: 0.5,
};

/**
 * Delay before retry number `attempt` (1 = the first retry).
 * The result lies in `[d * (1 - jitter), d]` where `d = min(maxMs, baseMs * factor^(attempt-1))`.
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exp = policy.baseMs * policy.factor ** Math.max(0, attempt - 1);
  const capped = Math.min(policy.maxMs, exp);
  return Math.round(capped * (1 - policy.jitter * random()));
}
