/**
 * The cache in Upstash Redis, shared by every instance. Keys live under a namespace (default
 * `troupe:cache:`); a tag is a Redis set of keys that outlives its entries by a margin;
 * prefix invalidation walks `SCAN MATCH` in batches and unlinks.
 */
import type { Redis } from "@upstash/redis";
import type { CacheStore } from "./port.ts";

export class UpstashCacheStore implements CacheStore {
  readonly kind = "upstash" as const;
  readonly #redis: Redis;
  readonly #ns: string;

  constructor(redis: Redis, { namespace = "troupe:cache:" }: { namespace?: string } = {}) {
    this.#redis = redis;
    this.#ns = namespace;
  }

  async get(key: string): Promise<string | null> {
    const v = await this.#redis.get<string>(this.#ns + key);
    return v === null || v === undefined ? null : typeof v === "string" ? v : JSON.stringify(v);
  }

  async set(
    key: string,
    value: string,
    ttlMs: number,
    tags: readonly string[] = [],
  ): Promise<void> {
    const p = this.#redis.pipeline();
    // Stored as a JSON string so that the client gives back exactly the text it was given.
    p.set(this.#ns + key, JSON.stringify(value), { px: Math.max(1, Math.round(ttlMs)) });
    for (const tag of tags) {
      const t = `${this.#ns}tag:${tag}`;
      p.sadd(t, this.#ns + key);
      p.pexpire(t, Math.round(ttlMs) + 60_000);
    }
    await p.exec();
  }

  async invalidatePrefix(prefix: string): Promise<number> {
    let cursor: string | number = 0;
    let n = 0;
    do {
      const [next, keys]: [string | number, string[]] = await this.#redis.scan(cursor, {
        match: `${this.#ns}${escapeGlob(prefix)}*`,
        count: 1000,
      });
      cursor = next;
      if (keys.length) n += await this.#redis.unlink(...keys);
    } while (String(cursor) !== "0");
    return n;
  }

  async invalidateTag(tag: string): Promise<number> {
    const t = `${this.#ns}tag:${tag}`;
    const keys = await this.#redis.smembers(t);
    const n = keys.length ? await this.#redis.unlink(...keys) : 0;
    await this.#redis.unlink(t);
    return n;
  }

  async info(): Promise<{ keys: number; memoryBytes: number | null }> {
    let cursor: string | number = 0;
    let keys = 0;
    let rounds = 0;
    do {
      const [next, batch]: [string | number, string[]] = await this.#redis.scan(cursor, {
        match: `${this.#ns}*`,
        count: 1000,
      });
      cursor = next;
      keys += batch.filter((k) => !k.startsWith(`${this.#ns}tag:`)).length;
    } while (String(cursor) !== "0" && ++rounds < 100);
    return { keys, memoryBytes: null };
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (ch) => `\\${ch}`);
}
