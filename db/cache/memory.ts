/**
 * The in-process cache store for the embedded start: a size-bounded LRU (by entries and by
 * bytes) with per-entry TTLs and a tag index. Lost on restart, by design: the database is
 * the truth. Expired entries are dropped when read, when the store is full, and by `info()`.
 * Keys are counted per kind of data as they come and go, so `info()` reports them per kind.
 */
import type { CacheStore, CacheStoreInfo } from "./port.ts";

interface Entry {
  value: string;
  expiresAt: number;
  tags: readonly string[];
  bytes: number;
  kind: string | undefined;
}

/** Options of {@linkcode MemoryCacheStore}. */
export interface MemoryCacheOptions {
  /** Most entries held; the least recently used go first. @default 10_000 */
  maxEntries?: number;
  /** Most (estimated) bytes held. @default 64 MiB */
  maxBytes?: number;
  /** The clock, for tests. @default Date.now */
  now?: () => number;
}

/** Bookkeeping per entry beyond its strings (map slot, object, numbers): an estimate. */
const ENTRY_OVERHEAD = 96;
/** A full store sweeps expired entries at most this often before evicting live ones. */
const SWEEP_EVERY_MS = 1000;

/**
 * Estimated heap bytes of an entry: strings as UTF-16 (2 bytes per code unit), plus a fixed
 * overhead per entry and per tag. `info().memoryBytes` is the sum of these estimates.
 */
function entryBytes(key: string, value: string, tags: readonly string[]): number {
  const tagBytes = tags.reduce((n, t) => n + 2 * t.length + 32, 0);
  return 2 * (key.length + value.length) + tagBytes + ENTRY_OVERHEAD;
}

/** The in-process LRU cache store. */
export class MemoryCacheStore implements CacheStore {
  readonly kind = "memory" as const;
  /** Insertion order is recency order: the first entry is the least recently used. */
  readonly #entries = new Map<string, Entry>();
  readonly #tags = new Map<string, Set<string>>();
  /** Entries held per kind (expired ones included until they are dropped). */
  readonly #kinds = new Map<string, number>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  #bytes = 0;
  #lastSweep = Number.NEGATIVE_INFINITY;

  constructor(
    { maxEntries = 10_000, maxBytes = 64 * 1024 * 1024, now = Date.now }: MemoryCacheOptions = {},
  ) {
    if (maxEntries < 1 || maxBytes < 1) throw new RangeError("cache limits must be positive");
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
    this.#now = now;
  }

  get(key: string): Promise<string | null> {
    const entry = this.#live(key);
    if (!entry) return Promise.resolve(null);
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return Promise.resolve(entry.value);
  }

  set(
    key: string,
    value: string,
    ttlMs: number,
    tags: readonly string[] = [],
    kind?: string,
  ): Promise<void> {
    this.#remove(key);
    const bytes = entryBytes(key, value, tags);
    if (!(ttlMs > 0) || bytes > this.#maxBytes) return Promise.resolve();
    const unique = [...new Set(tags)];
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlMs, tags: unique, bytes, kind });
    this.#bytes += bytes;
    if (kind !== undefined) this.#kinds.set(kind, (this.#kinds.get(kind) ?? 0) + 1);
    for (const tag of unique) {
      let keys = this.#tags.get(tag);
      if (!keys) this.#tags.set(tag, keys = new Set());
      keys.add(key);
    }
    this.#evict();
    return Promise.resolve();
  }

  delete(keys: readonly string[]): Promise<number> {
    let n = 0;
    for (const key of keys) if (this.#take(key)) n++;
    return Promise.resolve(n);
  }

  invalidatePrefix(prefix: string): Promise<number> {
    let n = 0;
    for (const key of [...this.#entries.keys()]) {
      if (key.startsWith(prefix) && this.#take(key)) n++;
    }
    return Promise.resolve(n);
  }

  invalidateTag(tag: string): Promise<number> {
    let n = 0;
    for (const key of [...this.#tags.get(tag) ?? []]) if (this.#take(key)) n++;
    return Promise.resolve(n);
  }

  /**
   * `memoryBytes` is the estimate of {@linkcode entryBytes} summed over live entries;
   * `keysByKind` counts live entries per kind.
   */
  info(prefix?: string): Promise<CacheStoreInfo> {
    this.#sweep();
    if (prefix === undefined) {
      return Promise.resolve({
        keys: this.#entries.size,
        memoryBytes: this.#bytes,
        keysByKind: Object.fromEntries(this.#kinds),
      });
    }
    let keys = 0;
    let memoryBytes = 0;
    const keysByKind: Record<string, number> = {};
    for (const [key, entry] of this.#entries) {
      if (!key.startsWith(prefix)) continue;
      keys++;
      memoryBytes += entry.bytes;
      if (entry.kind !== undefined) keysByKind[entry.kind] = (keysByKind[entry.kind] ?? 0) + 1;
    }
    return Promise.resolve({ keys, memoryBytes, keysByKind });
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#entries.clear();
    this.#tags.clear();
    this.#kinds.clear();
    this.#bytes = 0;
    return Promise.resolve();
  }

  /** Tags currently indexed (for tests: the index must not outlive its entries). */
  get tagCount(): number {
    return this.#tags.size;
  }

  /** The entry when it is present and not expired; an expired one is dropped. */
  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt <= this.#now()) {
      this.#remove(key);
      return undefined;
    }
    return entry;
  }

  /** Removes `key`; true when it was live. */
  #take(key: string): boolean {
    const live = this.#live(key) !== undefined;
    this.#remove(key);
    return live;
  }

  #evict(): void {
    if (!this.#full()) return;
    if (this.#now() - this.#lastSweep >= SWEEP_EVERY_MS) this.#sweep();
    for (const key of this.#entries.keys()) {
      if (!this.#full()) break;
      this.#remove(key);
    }
  }

  #full(): boolean {
    return this.#entries.size > this.#maxEntries || this.#bytes > this.#maxBytes;
  }

  #sweep(): void {
    const now = this.#now();
    this.#lastSweep = now;
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#remove(key);
  }

  #remove(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    if (entry.kind !== undefined) {
      const left = this.#kinds.get(entry.kind)! - 1;
      if (left > 0) this.#kinds.set(entry.kind, left);
      else this.#kinds.delete(entry.kind);
    }
    for (const tag of entry.tags) {
      const keys = this.#tags.get(tag);
      keys?.delete(key);
      if (keys?.size === 0) this.#tags.delete(tag);
    }
  }
}
