/**
 * New usage of a tenant as it commits, for the live stream: rows after a `seq`, and a wake-up
 * when the tenant's snapshots change on any instance (a NOTIFY on `troupe_usage` sent by a
 * trigger of migration 0017, heard through one LISTEN per process while a stream is open).
 * A stream also polls every `pollMs`, as a notification can be lost with its connection.
 *
 * Streams are bounded per process and per tenant: one more is a 429.
 */
import { type SqlDatabase, TroupeError } from "@troupe/runtime";
import { centsNumber } from "./money.ts";

export interface UsageEvent {
  seq: string;
  sourceId: string;
  messageId: string;
  timestamp: string;
  day: string;
  creditsUsed: number;
  reportId: string | null;
  reportName: string | null;
}

export interface UsageFeedOptions {
  /** @default 2000 */
  pollMs?: number;
  /** Open streams in this process. @default 200 */
  maxStreams?: number;
  /** Open streams of one tenant in this process. @default 10 */
  maxPerTenant?: number;
}

/** One open stream: waits for a change of its tenant, then reads. */
export interface UsageSubscription {
  /** Resolves on a change of the tenant's usage, after `pollMs`, or on close. */
  changed(): Promise<void>;
  close(): void;
}

export class UsageFeed {
  readonly #db: SqlDatabase;
  readonly #pollMs: number;
  readonly #max: number;
  readonly #maxPerTenant: number;
  readonly #wakers = new Map<string, Set<() => void>>();
  #open = 0;
  /** The LISTEN connection's lifecycle, serialized: started with the first stream. */
  #listening: Promise<(() => Promise<void>) | null> = Promise.resolve(null);

  constructor(db: SqlDatabase, o: UsageFeedOptions = {}) {
    this.#db = db;
    this.#pollMs = o.pollMs ?? 2000;
    this.#max = o.maxStreams ?? 200;
    this.#maxPerTenant = o.maxPerTenant ?? 10;
  }

  /** Streams open in this process. */
  get open(): number {
    return this.#open;
  }

  /** Opens a stream of `tenantId`'s usage; a 429 beyond the bounds. */
  async subscribe(tenantId: string): Promise<UsageSubscription> {
    const wakers = this.#wakers.get(tenantId) ?? new Set();
    if (this.#open >= this.#max || wakers.size >= this.#maxPerTenant) {
      throw new TroupeError("TOO_MANY_STREAMS", "too many usage streams are open; retry later", {
        details: { maxStreams: this.#max, maxPerTenant: this.#maxPerTenant },
      });
    }
    this.#wakers.set(tenantId, wakers);
    if (this.#open++ === 0) {
      this.#listening = this.#listening.then(async (stop) =>
        stop ?? await this.#db.listen("troupe_usage", (tenant) => this.#wake(tenant))
      ).catch(() => null);
    }
    let closed = false;
    let pending: (() => void) | null = null;
    const wake = () => pending?.();
    wakers.add(wake);
    await this.#listening;
    return {
      changed: () =>
        closed ? Promise.resolve() : new Promise<void>((resolve) => {
          const timer = setTimeout(() => done(), this.#pollMs);
          const done = () => {
            clearTimeout(timer);
            pending = null;
            resolve();
          };
          pending = done;
        }),
      close: () => {
        if (closed) return;
        closed = true;
        wake();
        wakers.delete(wake);
        if (wakers.size === 0) this.#wakers.delete(tenantId);
        if (--this.#open === 0) {
          this.#listening = this.#listening.then(async (stop) => {
            // Another stream may have opened meanwhile: it keeps the connection.
            if (this.#open > 0 || !stop) return stop;
            await stop().catch(() => {});
            return null;
          });
        }
      },
    };
  }

  #wake(tenantId: string): void {
    for (const wake of this.#wakers.get(tenantId) ?? []) wake();
  }

  /** The highest `seq` of the tenant's snapshots ("0" for none). */
  async latest(tenantId: string): Promise<string> {
    const rows = await this.#db.query<{ seq: string | null }>(
      "SELECT max(seq)::text AS seq FROM troupe_usage_snapshots WHERE tenant_id = $1",
      [tenantId],
    );
    return rows[0]?.seq ?? "0";
  }

  /** Up to `limit` snapshots of the tenant written after `afterSeq`, in `seq` order. */
  async after(tenantId: string, afterSeq: string, limit = 500): Promise<UsageEvent[]> {
    const rows = await this.#db.query<{
      seq: string;
      source_id: string;
      message_id: string;
      ts: Date | string;
      day: string;
      credits_cents: string | number;
      report_id: string | null;
      report_name: string | null;
    }>(
      `SELECT seq::text AS seq, source_id, message_id, ts, day::text AS day, credits_cents,
              report_id, report_name
         FROM troupe_usage_snapshots
        WHERE tenant_id = $1 AND seq > $2::bigint
        ORDER BY seq LIMIT $3`,
      [tenantId, afterSeq, limit],
    );
    return rows.map((r) => ({
      seq: r.seq,
      sourceId: r.source_id,
      messageId: r.message_id,
      timestamp: new Date(r.ts).toISOString(),
      day: r.day,
      creditsUsed: centsNumber(BigInt(String(r.credits_cents))),
      reportId: r.report_id,
      reportName: r.report_name,
    }));
  }

  /** Stops listening (the streams still open end on their next poll). */
  async close(): Promise<void> {
    const stop = await this.#listening;
    this.#listening = Promise.resolve(null);
    await stop?.().catch(() => {});
  }
}
