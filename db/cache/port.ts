/**
 * The cache port: string values with a TTL and tags. Adapters: in-process memory (embedded)
 * and Upstash Redis (shared by every instance). `Cache` (cache.ts) builds cache-aside,
 * single-flight and graceful degradation on top.
 */
export interface CacheStore {
  readonly kind: "memory" | "upstash";
  get(key: string): Promise<string | null>;
  /** Stores `value` for `ttlMs`; each tag lists the key for `invalidateTag`. */
  set(key: string, value: string, ttlMs: number, tags?: readonly string[]): Promise<void>;
  /** Removes every key starting with `prefix`; returns how many. */
  invalidatePrefix(prefix: string): Promise<number>;
  /** Removes every key stored with `tag`; returns how many. */
  invalidateTag(tag: string): Promise<number>;
  /** Keys held and memory used (null when the store cannot tell). */
  info(): Promise<{ keys: number; memoryBytes: number | null }>;
  /** Throws when the store cannot be reached. */
  ping(): Promise<void>;
}
