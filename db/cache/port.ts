/**
 * The cache port: string values under string keys, each with a TTL and optional tags.
 * Adapters: in-process memory (`memory.ts`, the embedded start) and Upstash Redis
 * (`upstash.ts`, shared by every instance). `Cache` (`cache.ts`) builds cache-aside,
 * single-flight and graceful degradation on top; callers normally use that.
 *
 * Invariants every adapter keeps (checked by the shared suite in `store_contract.ts`):
 * - `get` returns exactly the string `set` stored, until the TTL passes or it is removed;
 *   after the TTL it returns `null` (expiry is at least millisecond-accurate).
 * - `set` replaces a key's value, TTL and tags.
 * - The counts returned by `delete`, `invalidatePrefix` and `invalidateTag` are of entries
 *   that were present; an adapter may remove more than asked (never less), e.g. a key that
 *   was tagged once and then stored again without the tag.
 * - `invalidatePrefix("")` empties the store.
 * - A store that cannot be reached throws (any error) from every method; it never answers
 *   a miss instead, so the caller can tell "absent" from "down".
 */
export interface CacheStore {
  /** Which adapter this is, as reported by `/api/cache/stats`. */
  readonly kind: "memory" | "upstash";
  /** The value of `key`, or `null` when absent or expired. */
  get(key: string): Promise<string | null>;
  /**
   * Stores `value` for `ttlMs` (> 0); each tag lists the key for `invalidateTag`. `kind` names
   * the kind of data (the cache's TTL class), for a store that counts its keys per kind.
   */
  set(
    key: string,
    value: string,
    ttlMs: number,
    tags?: readonly string[],
    kind?: string,
  ): Promise<void>;
  /** Removes the keys; returns how many were present. */
  delete(keys: readonly string[]): Promise<number>;
  /** Removes every key starting with `prefix`; returns how many. */
  invalidatePrefix(prefix: string): Promise<number>;
  /** Removes every key stored with `tag`; returns how many. */
  invalidateTag(tag: string): Promise<number>;
  /**
   * Keys held and memory used in bytes (`null` when the store cannot tell); with `prefix`,
   * of the keys starting with it only (one tenant's, as `tenant:` prefixes them).
   */
  info(prefix?: string): Promise<CacheStoreInfo>;
  /** Resolves when the store answers; throws when it cannot be reached. */
  ping(): Promise<void>;
  /** Releases what the store holds (timers, connections). */
  close?(): Promise<void>;
}

/** What `CacheStore.info()` reports. */
export interface CacheStoreInfo {
  /** Live entries (tag bookkeeping excluded); may be approximate for large stores. */
  keys: number;
  /** Bytes used; what is measured is adapter-specific (see each adapter). */
  memoryBytes: number | null;
  /**
   * Live entries per `kind` given to `set` (entries stored without one are not counted);
   * absent when the store cannot count them cheaply (Redis would have to walk its keyspace).
   */
  keysByKind?: Record<string, number>;
}
