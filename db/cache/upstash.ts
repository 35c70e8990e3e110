/**
 * The cache in Upstash Redis, shared by every instance.
 *
 * Layout under the namespace (default `troupe:cache:`):
 * - `<ns>k:<key>`: an entry, a string with a PX expiry. Values are stored as `~<value>`:
 *   no JSON text starts with `~`, so the client hands the text back untouched whether or not
 *   its `automaticDeserialization` is on.
 * - `<ns>t:<tag>`: a set of entry keys; its expiry is kept at least `tagGraceMs` beyond the
 *   longest entry added to it (PEXPIRE NX, then GT).
 *
 * Prefix invalidation walks `SCAN MATCH` in batches and UNLINKs each batch (not atomic:
 * entries written during the walk may survive). Tag invalidation takes and drops the set
 * in one MULTI, then UNLINKs its members.
 */
import { Redis } from "@upstash/redis";
import type { CacheStore, CacheStoreInfo } from "./port.ts";

/** Options of {@linkcode UpstashCacheStore}. */
export interface UpstashCacheOptions {
  /** Prefix of every Redis key this store writes. @default "troupe:cache:" */
  namespace?: string;
  /** How much longer than its entries a tag set lives. @default 60_000 */
  tagGraceMs?: number;
  /** Keys asked per SCAN and unlinked per UNLINK. @default 500 */
  batchSize?: number;
  /** Most SCAN calls `info()` makes to count keys; past it the count is a lower bound. @default 200 */
  infoScanLimit?: number;
}

/** A client, or what it takes to make one. */
export type UpstashConnection = Redis | { url: string; token: string };

const VALUE_MARK = "~";

/** Escapes Redis glob metacharacters, so a prefix matches literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (ch) => `\\${ch}`);
}

/** The cache store over Upstash Redis (REST). */
export class UpstashCacheStore implements CacheStore {
  readonly kind = "upstash" as const;
  readonly #redis: Redis;
  readonly #ns: string;
  readonly #tagGraceMs: number;
  readonly #batch: number;
  readonly #infoScanLimit: number;

  /**
   * @param connection a `Redis` instance (its retry settings decide how fast a dead Redis is
   * noticed), or `{ url, token }` for one with a single quick retry.
   */
  constructor(
    connection: UpstashConnection,
    {
      namespace = "troupe:cache:",
      tagGraceMs = 60_000,
      batchSize = 500,
      infoScanLimit = 200,
    }: UpstashCacheOptions = {},
  ) {
    this.#redis = connection instanceof Redis ? connection : new Redis({
      url: connection.url,
      token: connection.token,
      retry: { retries: 1, backoff: () => 50 },
    });
    this.#ns = namespace;
    this.#tagGraceMs = tagGraceMs;
    this.#batch = batchSize;
    this.#infoScanLimit = infoScanLimit;
  }

  async get(key: string): Promise<string | null> {
    const raw = await this.#redis.get<unknown>(this.#entry(key));
    // Anything without the mark was not written by this store: a miss, overwritten later.
    return typeof raw === "string" && raw.startsWith(VALUE_MARK) ? raw.slice(1) : null;
  }

  async set(
    key: string,
    value: string,
    ttlMs: number,
    tags: readonly string[] = [],
  ): Promise<void> {
    const px = Math.max(1, Math.ceil(ttlMs));
    if (tags.length === 0) {
      await this.#redis.set(this.#entry(key), VALUE_MARK + value, { px });
      return;
    }
    // One transaction: the entry never exists without its tags.
    const tx = this.#redis.multi();
    tx.set(this.#entry(key), VALUE_MARK + value, { px });
    for (const tag of new Set(tags)) {
      const t = this.#tag(tag);
      tx.sadd(t, this.#entry(key));
      tx.pexpire(t, px + this.#tagGraceMs, "NX");
      tx.pexpire(t, px + this.#tagGraceMs, "GT");
    }
    await tx.exec();
  }

  async delete(keys: readonly string[]): Promise<number> {
    return await this.#unlink(keys.map((k) => this.#entry(k)));
  }

  /** An empty prefix empties the namespace, tag sets included. */
  async invalidatePrefix(prefix: string): Promise<number> {
    const pattern = prefix === ""
      ? `${escapeGlob(this.#ns)}*`
      : `${escapeGlob(this.#entry(prefix))}*`;
    let removed = 0;
    for await (const batch of this.#scan(pattern, Number.POSITIVE_INFINITY)) {
      const entries = batch.filter((k) => this.#isEntry(k));
      removed += await this.#unlink(entries);
      await this.#unlink(batch.filter((k) => !this.#isEntry(k)));
    }
    return removed;
  }

  async invalidateTag(tag: string): Promise<number> {
    const t = this.#tag(tag);
    const tx = this.#redis.multi();
    tx.smembers(t);
    tx.unlink(t);
    const [members] = await tx.exec<[unknown[], number]>();
    return await this.#unlink(members.map(String));
  }

  /**
   * `keys`: entries under the namespace, counted with SCAN (a lower bound past
   * `infoScanLimit` calls); not per kind (no `keysByKind`: the kind is not in the key, and
   * counting by it would walk the keyspace). `memoryBytes`: `used_memory` of `INFO memory`, i.e. the whole
   * Redis database's memory, not only this namespace's; with `prefix`, `null` (Redis cannot
   * tell the memory of some keys cheaply).
   */
  async info(prefix?: string): Promise<CacheStoreInfo> {
    // SCAN may return a key more than once (while Redis resizes its table): each counts once.
    const seen = new Set<string>();
    const pattern = `${escapeGlob(this.#entry(prefix ?? ""))}*`;
    for await (const batch of this.#scan(pattern, this.#infoScanLimit)) {
      for (const key of batch) seen.add(key);
    }
    const keys = seen.size;
    if (prefix !== undefined) return { keys, memoryBytes: null };
    const text = await this.#redis.exec<unknown>(["info", "memory"]);
    const used = /^used_memory:(\d+)/m.exec(String(text))?.[1];
    return { keys, memoryBytes: used === undefined ? null : Number(used) };
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  #entry(key: string): string {
    return `${this.#ns}k:${key}`;
  }

  #tag(tag: string): string {
    return `${this.#ns}t:${tag}`;
  }

  #isEntry(redisKey: string): boolean {
    return redisKey.startsWith(`${this.#ns}k:`);
  }

  /** Key batches matching `pattern`, until the cursor is back at 0 or `maxCalls` ran. */
  async *#scan(pattern: string, maxCalls: number): AsyncGenerator<string[]> {
    let cursor: string | number = 0;
    for (let calls = 0; calls < maxCalls; calls++) {
      const [next, keys]: [string | number, unknown[]] = await this.#redis.scan(cursor, {
        match: pattern,
        count: this.#batch,
      });
      if (keys.length) yield keys.map(String);
      cursor = next;
      if (String(cursor) === "0") return;
    }
  }

  /** UNLINKs in batches; returns how many existed. */
  async #unlink(keys: readonly string[]): Promise<number> {
    let n = 0;
    for (let i = 0; i < keys.length; i += this.#batch) {
      n += await this.#redis.unlink(...keys.slice(i, i + this.#batch));
    }
    return n;
  }
}
