/**
 * Cache-aside over a {@linkcode CacheStore}, as the routes use it:
 * - TTL classes per kind of data ({@linkcode TTL});
 * - single-flight: concurrent misses of one key in this process compute once;
 * - invalidation by keys, key prefix or tag;
 * - graceful degradation: when the store fails or is slow (Redis down), reads compute
 *   directly and the request still answers; the cache reports `degraded` and skips the
 *   store for a back-off, then lets one call probe it; a success clears `degraded`.
 *   Invalidations that could not reach the store are replayed before it is used again.
 *
 * Values must be JSON-serialisable. Every call returns the JSON round trip of the value
 * (hit, miss or bypass alike), so a `Date` is a string whether or not it came from the
 * cache. Callers sharing a flight share one object: treat results as read-only.
 */
import type { CacheStore } from "./port.ts";

/** Default TTLs (ms) per kind of data: how stale each may be. */
export const TTL = {
  /** Name, columns, row count of a dataset: changes on upload or edit (invalidated then). */
  datasetMeta: 10 * 60_000,
  /** Rows of a query: short, as the freshest data is asked for most. */
  queryResult: 2 * 60_000,
  /** Sums, counts and histograms over a dataset. */
  aggregation: 5 * 60_000,
  /** A generated report's metadata: written once. */
  reportMeta: 60 * 60_000,
  /** A course's outline: changes only when the course is rebuilt (invalidated then). */
  courseOutline: 30 * 60_000,
  /** A usage API's report name (or its absence), asked for by report syncs. */
  usageReport: 60 * 60_000,
} as const;

/** A kind of cached data; it picks the TTL. */
export type CacheKind = keyof typeof TTL;

/**
 * What `Cache.stats()` reports (the body of `GET /api/cache/stats`): of one tenant's keys
 * (`scope: "tenant"`), or of all (`scope: "all"`, for an admin key).
 */
export interface CacheStats {
  scope: "tenant" | "all";
  store: CacheStore["kind"];
  hits: number;
  misses: number;
  /** hits / (hits + misses); 0 before any lookup. */
  hitRate: number;
  /** Callers that joined a computation already running for their key. */
  coalesced: number;
  /** Store calls that failed or timed out (`null` in a tenant's view: they are everyone's). */
  errors: number | null;
  /** Reads that skipped the store because it was failing. */
  bypasses: number;
  /** From the store; `null` while degraded. */
  keys: number | null;
  /**
   * The store's keys per TTL class (every class, 0 when it holds none); `null` while degraded
   * or when the store does not count them (only the memory store does).
   */
  keysByKind: Record<CacheKind, number> | null;
  memoryBytes: number | null;
  degraded: boolean;
}

/** What to drop; every given field applies. */
export interface Invalidation {
  /** Keys starting with this (`""`: everything). */
  prefix?: string;
  /** Keys stored with this tag. */
  tag?: string;
  /** These keys. */
  keys?: readonly string[];
}

/** Options of {@linkcode Cache}. */
export interface CacheOptions {
  /** TTLs overriding {@linkcode TTL}, per kind. */
  ttl?: Partial<Record<CacheKind, number>>;
  /** How long the store is skipped after a failure. @default 5000 */
  retryAfterMs?: number;
  /**
   * A store read, write or ping slower than this counts as a failure; invalidations and
   * `info()` get ten times as long. @default 1000
   */
  timeoutMs?: number;
  /** Invalidations kept for replay while degraded; past it the whole cache is dropped on recovery. @default 1000 */
  maxPendingInvalidations?: number;
  /** Told of every store failure (for logs). */
  onError?: (error: unknown) => void;
  /** The clock of the back-off, for tests. @default Date.now */
  now?: () => number;
}

/**
 * A cache key from a tenant and parts, `tenant:part:part`. `%` and `:` inside a part are
 * percent-escaped, so parts cannot run into each other and `tenant:` prefixes one tenant.
 */
export function cacheKey(tenantId: string, ...parts: readonly (string | number)[]): string {
  return [tenantId, ...parts].map((p) => String(p).replace(/[%:]/g, encodeURIComponent))
    .join(":");
}

/** The tenant of a key made by {@linkcode cacheKey} (or `tenant:...` by hand): its first part. */
export function tenantOfKey(key: string): string {
  const at = key.indexOf(":");
  return at < 0 ? key : key.slice(0, at);
}

/** Lookup counters, in all or of one tenant. */
export interface Counters {
  hits: number;
  misses: number;
  coalesced: number;
  bypasses: number;
}

const zero = (): Counters => ({ hits: 0, misses: 0, coalesced: 0, bypasses: 0 });

/** Tenants whose counters are kept; past it the least recently counted is dropped. */
const MAX_TENANT_COUNTERS = 10_000;

/** The store failed or timed out. */
class StoreUnavailable extends Error {
  override readonly name = "StoreUnavailable";
}

type Attempt<R> = { ok: true; value: R } | { ok: false };

/** Cache-aside with single-flight and degradation over one store. */
export class Cache {
  readonly store: CacheStore;
  readonly #ttl: Record<CacheKind, number>;
  readonly #retryAfterMs: number;
  readonly #timeoutMs: number;
  readonly #maxPending: number;
  readonly #onError: (error: unknown) => void;
  readonly #now: () => number;
  readonly #inflight = new Map<string, Promise<unknown>>();
  /** Bumped by every invalidation: a value computed across one is not stored. */
  #generation = 0;
  #degraded = false;
  #retryAt = 0;
  #pending: Invalidation[] = [];
  #pendingOverflow = false;
  #replaying: Promise<void> | null = null;
  readonly #all = zero();
  /** Per tenant, in order of last use (a Map keeps insertion order). */
  readonly #byTenant = new Map<string, Counters>();
  /** Per TTL class (kind of data). */
  readonly #byKind = new Map<CacheKind, Counters>();
  #errors = 0;

  constructor(
    store: CacheStore,
    {
      ttl = {},
      retryAfterMs = 5000,
      timeoutMs = 1000,
      maxPendingInvalidations = 1000,
      onError = () => {},
      now = Date.now,
    }: CacheOptions = {},
  ) {
    this.store = store;
    this.#ttl = { ...TTL, ...ttl };
    this.#retryAfterMs = retryAfterMs;
    this.#timeoutMs = timeoutMs;
    this.#maxPending = maxPendingInvalidations;
    this.#onError = onError;
    this.#now = now;
  }

  /** True from a store failure until a store call succeeds again. */
  get degraded(): boolean {
    return this.#degraded;
  }

  /** `degraded` as `/api/health` reports it, without calling the store. */
  health(): "ok" | "degraded" {
    return this.#degraded ? "degraded" : "ok";
  }

  /** The TTL used for `kind`. */
  ttlOf(kind: CacheKind): number {
    return this.#ttl[kind];
  }

  /**
   * The cached value of `key`, or `compute()`'s, stored for the kind's TTL. Concurrent
   * calls for one key share one lookup and one `compute`. Never fails because of the store;
   * fails when `compute` does (nothing is stored then).
   */
  getOrCompute<T>(
    kind: CacheKind,
    key: string,
    compute: () => Promise<T>,
    { tags = [] }: { tags?: readonly string[] } = {},
  ): Promise<T> {
    const running = this.#inflight.get(key);
    if (running) {
      this.#count(key, "coalesced", kind);
      return running as Promise<T>;
    }
    const flight: Promise<T> = this.#load(kind, key, compute, tags).finally(() => {
      if (this.#inflight.get(key) === flight) this.#inflight.delete(key);
    });
    this.#inflight.set(key, flight);
    return flight;
  }

  /**
   * Drops what matches; returns how many entries went. While the store is failing it
   * returns 0 and the invalidation is replayed before the store is used again.
   */
  async invalidate(what: Invalidation): Promise<number> {
    this.#generation++;
    // Flights that started before this must not hand their (stale) value to new callers.
    this.#inflight.clear();
    const done = await this.#attempt(() => this.#apply(what), {
      timeoutMs: this.#bulkTimeoutMs,
    });
    if (done.ok) return done.value;
    this.#remember(what);
    return 0;
  }

  /**
   * Counters and the store's size, of `tenantId`'s keys (keys starting `tenantId:`), or of
   * all keys when it is not given; never throws.
   */
  async stats(tenantId?: string): Promise<CacheStats> {
    const prefix = tenantId === undefined ? undefined : `${cacheKey(tenantId)}:`;
    const info = await this.#attempt(() => this.store.info(prefix), {
      timeoutMs: this.#bulkTimeoutMs,
    });
    const c = tenantId === undefined ? this.#all : this.#byTenant.get(cacheKey(tenantId)) ?? zero();
    const lookups = c.hits + c.misses;
    return {
      scope: tenantId === undefined ? "all" : "tenant",
      store: this.store.kind,
      hits: c.hits,
      misses: c.misses,
      hitRate: lookups ? c.hits / lookups : 0,
      coalesced: c.coalesced,
      errors: tenantId === undefined ? this.#errors : null,
      bypasses: c.bypasses,
      keys: info.ok ? info.value.keys : null,
      keysByKind: info.ok && info.value.keysByKind ? perKind(info.value.keysByKind) : null,
      memoryBytes: info.ok ? info.value.memoryBytes : null,
      degraded: this.#degraded,
    };
  }

  /**
   * Lookups since the start per TTL class (kind of data), for metrics: hits, misses, callers
   * that joined a running computation (`coalesced`) and reads that skipped a failing store
   * (`bypasses`). Kinds never looked up are absent.
   */
  countsByKind(): Map<CacheKind, Readonly<Counters>> {
    return new Map([...this.#byKind].map(([kind, c]) => [kind, { ...c }]));
  }

  #count(key: string, what: keyof Counters, kind: CacheKind): void {
    this.#all[what]++;
    let k = this.#byKind.get(kind);
    if (!k) this.#byKind.set(kind, k = zero());
    k[what]++;
    const tenant = tenantOfKey(key);
    let c = this.#byTenant.get(tenant);
    if (c) this.#byTenant.delete(tenant);
    else {
      c = zero();
      if (this.#byTenant.size >= MAX_TENANT_COUNTERS) {
        this.#byTenant.delete(this.#byTenant.keys().next().value!);
      }
    }
    this.#byTenant.set(tenant, c);
    c[what]++;
  }

  /** Pings the store now, back-off or not (for `/api/health`); sets or clears `degraded`. */
  async check(): Promise<"ok" | "degraded"> {
    const pong = await this.#attempt(() => this.store.ping(), { force: true });
    return pong.ok ? "ok" : "degraded";
  }

  async #load<T>(
    kind: CacheKind,
    key: string,
    compute: () => Promise<T>,
    tags: readonly string[],
  ): Promise<T> {
    const generation = this.#generation;
    const cached = await this.#attempt(() => this.store.get(key));
    if (cached.ok && cached.value !== null) {
      const hit = parseJson<T>(cached.value);
      if (hit.ok) {
        this.#count(key, "hits", kind);
        return hit.value;
      }
    }
    this.#count(key, cached.ok ? "misses" : "bypasses", kind);
    const value = await compute();
    const text = toJson(value);
    if (text === undefined) return value;
    if (cached.ok && generation === this.#generation) {
      await this.#attempt(() => this.store.set(key, text, this.#ttl[kind], tags, kind));
    }
    return JSON.parse(text) as T;
  }

  /**
   * Runs a store call unless the store is in back-off (or `force`), bounded by the timeout.
   * Pending invalidations go first. A failure starts a back-off; a success ends `degraded`.
   */
  async #attempt<R>(
    call: () => Promise<R>,
    { force = false, timeoutMs = this.#timeoutMs }: { force?: boolean; timeoutMs?: number } = {},
  ): Promise<Attempt<R>> {
    if (this.#degraded && !force && this.#now() < this.#retryAt) return { ok: false };
    // While one call probes a failing store, the others keep bypassing it.
    if (this.#degraded) this.#retryAt = this.#now() + this.#retryAfterMs;
    try {
      await this.#replay();
      const value = await this.#bounded(call(), timeoutMs);
      this.#degraded = false;
      return { ok: true, value };
    } catch (error) {
      this.#fail(error);
      return { ok: false };
    }
  }

  /** Replays pending invalidations, once even when several calls ask at the same time. */
  #replay(): Promise<void> {
    if (!this.#pending.length && !this.#pendingOverflow) return Promise.resolve();
    this.#replaying ??= this.#replayAll().finally(() => this.#replaying = null);
    return this.#replaying;
  }

  async #replayAll(): Promise<void> {
    if (this.#pendingOverflow) {
      await this.#bounded(this.store.invalidatePrefix(""), this.#bulkTimeoutMs);
      this.#pendingOverflow = false;
      this.#pending = [];
    }
    while (this.#pending.length) {
      await this.#bounded(this.#apply(this.#pending[0]!), this.#bulkTimeoutMs);
      this.#pending.shift();
    }
  }

  async #apply(what: Invalidation): Promise<number> {
    let n = 0;
    if (what.keys?.length) n += await this.store.delete(what.keys);
    if (what.prefix !== undefined) n += await this.store.invalidatePrefix(what.prefix);
    if (what.tag !== undefined) n += await this.store.invalidateTag(what.tag);
    return n;
  }

  #remember(what: Invalidation): void {
    if (this.#pending.length >= this.#maxPending) this.#pendingOverflow = true;
    else this.#pending.push(what);
  }

  #fail(error: unknown): void {
    this.#errors++;
    this.#degraded = true;
    this.#retryAt = this.#now() + this.#retryAfterMs;
    this.#onError(error);
  }

  /** Invalidations and `info()` walk many keys: they get ten times the timeout. */
  get #bulkTimeoutMs(): number {
    return 10 * this.#timeoutMs;
  }

  /** `promise`, or a rejection after `ms` (its late outcome is ignored). */
  #bounded<R>(promise: Promise<R>, ms = this.#timeoutMs): Promise<R> {
    promise.catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreUnavailable(`cache store took over ${ms} ms`)),
        ms,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}

/** Every TTL class's count from a store's `keysByKind` (0 for the classes it does not name). */
function perKind(counts: Record<string, number>): Record<CacheKind, number> {
  const all = {} as Record<CacheKind, number>;
  for (const kind of Object.keys(TTL) as CacheKind[]) all[kind] = counts[kind] ?? 0;
  return all;
}

function parseJson<T>(text: string): Attempt<T> {
  try {
    return { ok: true, value: JSON.parse(text) as T };
  } catch {
    return { ok: false };
  }
}

/** JSON text of a value, or `undefined` when it has none (undefined, a BigInt, a cycle). */
function toJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}
