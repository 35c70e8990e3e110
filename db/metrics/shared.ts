/**
 * Counters summed across instances, for deployments where a scrape reaches whichever instance
 * answers (Deno Deploy): each instance adds what its counters and histograms gained since its
 * last flush, and `/metrics` renders the sums.
 *
 * Invariants of a store: `add` adds each delta to its field atomically per field (concurrent
 * adders never lose an increment); `read` returns every field's total. Fields are opaque strings
 * (a series' name and labels).
 */
import type { Redis } from "@upstash/redis";

export interface SharedCounterStore {
  add(deltas: ReadonlyMap<string, number>): Promise<void>;
  read(): Promise<Map<string, number>>;
}

/** In one process: for tests, and to show what the Redis store keeps. */
export class MemorySharedCounters implements SharedCounterStore {
  readonly #totals = new Map<string, number>();

  add(deltas: ReadonlyMap<string, number>): Promise<void> {
    for (const [field, d] of deltas) this.#totals.set(field, (this.#totals.get(field) ?? 0) + d);
    return Promise.resolve();
  }

  read(): Promise<Map<string, number>> {
    return Promise.resolve(new Map(this.#totals));
  }
}

/** One Redis hash (`HINCRBYFLOAT` per field in one pipeline; `HGETALL` to read). */
export class RedisSharedCounters implements SharedCounterStore {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, { key = "troupe:metrics:counters" }: { key?: string } = {}) {
    this.#redis = redis;
    this.#key = key;
  }

  async add(deltas: ReadonlyMap<string, number>): Promise<void> {
    if (deltas.size === 0) return;
    const p = this.#redis.pipeline();
    for (const [field, d] of deltas) p.hincrbyfloat(this.#key, field, d);
    await p.exec();
  }

  async read(): Promise<Map<string, number>> {
    const all = await this.#redis.hgetall<Record<string, unknown>>(this.#key);
    return new Map(Object.entries(all ?? {}).map(([f, v]) => [f, Number(v)]));
  }
}
