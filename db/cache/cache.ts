/**
 * Cache-aside over a `CacheStore`, as every route uses it:
 * - TTL classes per kind of data (the source systems' values: dataset metadata 10 min,
 *   query results 2 min, aggregations 5 min, report metadata 1 h, course outlines 30 min);
 * - single-flight: concurrent misses of one key in this process compute once;
 * - tags and prefixes to invalidate what a change makes stale;
 * - graceful degradation: when the store fails (Redis down), reads compute directly and the
 *   request still answers; the cache reports `degraded` and is skipped for a few seconds
 *   before it is tried again.
 */
import type { CacheStore } from "./port.ts";

export const TTL_CLASSES = {
  datasetMeta: 10 * 60_000,
  queryResult: 2 * 60_000,
  aggregation: 5 * 60_000,
  reportMeta: 60 * 60_000,
  courseOutline: 30 * 60_000,
} as const;

export type CacheKind = keyof typeof TTL_CLASSES;

export interface CacheStats {
  store: "memory" | "upstash";
  hits: number;
  misses: number;
  hitRate: number;
  errors: number;
  bypassed: number;
  keys: number | null;
  memoryBytes: number | null;
  degraded: boolean;
}

export interface CacheOptions {
  ttl?: Partial<Record<CacheKind, number>>;
  /** How long the store is skipped after a failure. @default 5000 */
  retryAfterMs?: number;
}

/** Builds a cache key from parts; `:` and `%` inside parts are escaped. */
export function cacheKey(...parts: (string | number)[]): string {
  return parts.map((p) => String(p).replace(/[%:]/g, (ch) => encodeURIComponent(ch))).join(":");
}

export class Cache {
  readonly store: CacheStore;
  readonly #ttl: Record<CacheKind, number>;
  readonly #retryAfterMs: number;
  readonly #inflight = new Map<string, Promise<unknown>>();
  #downUntil = 0;
  #hits = 0;
  #misses = 0;
  #errors = 0;
  #bypassed = 0;

  constructor(store: CacheStore, { ttl = {}, retryAfterMs = 5000 }: CacheOptions = {}) {
    this.store = store;
    this.#ttl = { ...TTL_CLASSES, ...ttl };
    this.#retryAfterMs = retryAfterMs;
  }

  /** Whether the store failed recently (requests then bypass it). */
  get degraded(): boolean {
    return Date.now() < this.#downUntil;
  }

  health(): "ok" | "degraded" {
    return this.degraded ? "degraded" : "ok";
  }

  /** The cached value of `key`, or `compute()`'s, stored for the kind's TTL. */
  getOrCompute<T>(
    kind: CacheKind,
    key: string,
    compute: () => Promise<T>,
    { tags = [] }: { tags?: string[] } = {},
  ): Promise<T> {
    const running = this.#inflight.get(key);
    if (running) return running as Promise<T>;
    const p = this.#load(kind, key, compute, tags).finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  async #load<T>(kind: CacheKind, key: string, compute: () => Promise<T>, tags: string[]) {
    if (this.degraded) {
      this.#bypassed++;
      return await compute();
    }
    let cached: string | null = null;
    try {
      cached = await this.store.get(key);
    } catch {
      this.#fail();
      this.#bypassed++;
      return await compute();
    }
    if (cached !== null) {
      this.#hits++;
      return JSON.parse(cached) as T;
    }
    this.#misses++;
    const value = await compute();
    try {
      await this.store.set(key, JSON.stringify(value), this.#ttl[kind], tags);
    } catch {
      this.#fail();
    }
    return value;
  }

  /** Drops what matches; returns how many entries went (0 while degraded). */
  async invalidate(what: { prefix?: string; tag?: string }): Promise<number> {
    try {
      let n = 0;
      if (what.prefix !== undefined) n += await this.store.invalidatePrefix(what.prefix);
      if (what.tag !== undefined) n += await this.store.invalidateTag(what.tag);
      return n;
    } catch {
      this.#fail();
      return 0;
    }
  }

  async stats(): Promise<CacheStats> {
    let info: { keys: number | null; memoryBytes: number | null } = {
      keys: null,
      memoryBytes: null,
    };
    if (!this.degraded) {
      try {
        info = await this.store.info();
      } catch {
        this.#fail();
      }
    }
    const lookups = this.#hits + this.#misses;
    return {
      store: this.store.kind,
      hits: this.#hits,
      misses: this.#misses,
      hitRate: lookups ? this.#hits / lookups : 0,
      errors: this.#errors,
      bypassed: this.#bypassed,
      ...info,
      degraded: this.degraded,
    };
  }

  /** Checks the store now (health checks); clears or sets `degraded`. */
  async check(): Promise<"ok" | "degraded"> {
    try {
      await this.store.ping();
      this.#downUntil = 0;
      return "ok";
    } catch {
      this.#fail();
      return "degraded";
    }
  }

  #fail(): void {
    this.#errors++;
    this.#downUntil = Date.now() + this.#retryAfterMs;
  }
}
