/**
 * The in-process cache store: a size-bounded LRU (entries and bytes) with TTLs and a tag
 * index, for the embedded start. Lost on restart, by design: the database is the truth.
 */
import type { CacheStore } from "./port.ts";

interface Entry {
  value: string;
  expires: number;
  tags: readonly string[];
  bytes: number;
}

export interface MemoryCacheOptions {
  /** @default 10_000 */
  maxEntries?: number;
  /** @default 64 MiB */
  maxBytes?: number;
  now?: () => number;
}

export class MemoryCacheStore implements CacheStore {
  readonly kind = "memory" as const;
  readonly #entries = new Map<string, Entry>();
  readonly #tags = new Map<string, Set<string>>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  #bytes = 0;

  constructor(
    { maxEntries = 10_000, maxBytes = 64 << 20, now = Date.now }: MemoryCacheOptions = {},
  ) {
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
    this.#now = now;
  }

  get(key: string): Promise<string | null> {
    const e = this.#entries.get(key);
    if (!e) return Promise.resolve(null);
    if (e.expires <= this.#now()) {
      this.#remove(key);
      return Promise.resolve(null);
    }
    // Most recently used last.
    this.#entries.delete(key);
    this.#entries.set(key, e);
    return Promise.resolve(e.value);
  }

  set(key: string, value: string, ttlMs: number, tags: readonly string[] = []): Promise<void> {
    this.#remove(key);
    const bytes = (key.length + value.length) * 2;
    if (bytes > this.#maxBytes) return Promise.resolve();
    this.#entries.set(key, { value, expires: this.#now() + ttlMs, tags, bytes });
    this.#bytes += bytes;
    for (const tag of tags) {
      let keys = this.#tags.get(tag);
      if (!keys) this.#tags.set(tag, keys = new Set());
      keys.add(key);
    }
    while (this.#entries.size > this.#maxEntries || this.#bytes > this.#maxBytes) {
      this.#remove(this.#entries.keys().next().value!);
    }
    return Promise.resolve();
  }

  invalidatePrefix(prefix: string): Promise<number> {
    let n = 0;
    for (const key of [...this.#entries.keys()]) {
      if (key.startsWith(prefix)) {
        this.#remove(key);
        n++;
      }
    }
    return Promise.resolve(n);
  }

  invalidateTag(tag: string): Promise<number> {
    const keys = [...this.#tags.get(tag) ?? []];
    for (const key of keys) this.#remove(key);
    this.#tags.delete(tag);
    return Promise.resolve(keys.length);
  }

  info(): Promise<{ keys: number; memoryBytes: number | null }> {
    const now = this.#now();
    for (const [key, e] of this.#entries) if (e.expires <= now) this.#remove(key);
    return Promise.resolve({ keys: this.#entries.size, memoryBytes: this.#bytes });
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  #remove(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#entries.delete(key);
    this.#bytes -= e.bytes;
    for (const tag of e.tags) {
      const keys = this.#tags.get(tag);
      keys?.delete(key);
      if (keys?.size === 0) this.#tags.delete(tag);
    }
  }
}
