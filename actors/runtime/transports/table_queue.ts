/**
 * The table queue: the `troupe_jobs` table of the same database is the queue (the embedded
 * default, and how several instances share one PostgreSQL).
 *
 * Its three parts (see `../transport.ts`):
 * - in the transaction: a notification of the jobs channel at commit (`troupe_jobs`, per
 *   schema, see `sql/tables.ts`); no outbox row: the committed `queued` row is the message;
 * - after the commit: a local wake-up, nothing to publish;
 * - the consumer side: a loop that claims in batches while there is work and free capacity,
 *   then sleeps until a notification (any process), a local wake-up (an enqueue or a freed
 *   slot here) or the poll interval (delayed retries, lost notifications).
 *
 * Invariants: nothing is lost to a missed notification or wake-up, only delayed by at most
 * `pollMs`; a failed claim is retried with backoff and never stops the loop.
 */
import type { SqlDatabase } from "../ports.ts";
import { tables } from "../sql/tables.ts";
import type { Consumer, MessageWrites, OutgoingMessage, Transport } from "../transport.ts";

/** Options of the table queue. */
export interface TableQueueOptions {
  /** Longest sleep without a wake-up, in ms. @default 1000 */
  pollMs?: number;
  /** The schema of the runtime's tables: the runtime's `schema`. @default "public" */
  schema?: string;
}

/** The pull transport over `troupe_jobs` (see above). */
export class TableQueueTransport implements Transport {
  /** The transport's name. */
  readonly name = "table-queue";
  /** A notification at commit; the row is the message, so no outbox. */
  readonly inTransaction: MessageWrites = { outbox: false, notify: true };
  readonly #db: SqlDatabase;
  readonly #pollMs: number;
  readonly #channel: string;
  #wakeup: (() => void) | null = null;
  #pending = false;
  #running = false;
  #loop: Promise<void> | null = null;
  #unlisten: (() => Promise<void>) | null = null;

  /** A table queue on `db` (the runtime's database). */
  constructor(db: SqlDatabase, { pollMs = 1000, schema }: TableQueueOptions = {}) {
    this.#db = db;
    this.#pollMs = pollMs;
    this.#channel = tables(schema).jobsChannel;
  }

  /** Wakes the claim loop: the committed rows are claimable now (or at their `runAt`). */
  afterCommit(_messages: readonly OutgoingMessage[]): Promise<void> {
    this.wake();
    return Promise.resolve();
  }

  wake(): void {
    this.#pending = true;
    const fn = this.#wakeup;
    this.#wakeup = null;
    fn?.();
  }

  /** Listens for new jobs and starts the claim loop. */
  async start(consumer: Consumer): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    // Jobs enqueued while a lost listening session was being replaced were not heard: look.
    this.#unlisten = await this.#db.listen(this.#channel, () => this.wake(), {
      onResume: () => this.wake(),
    });
    this.#loop = this.#run(consumer);
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.wake();
    await this.#loop;
    await this.#unlisten?.();
    this.#unlisten = null;
  }

  async #run(consumer: Consumer): Promise<void> {
    let failures = 0;
    while (this.#running) {
      this.#pending = false;
      let claimed = 0;
      if (consumer.freeSlots() > 0) {
        try {
          claimed = await consumer.pump();
          failures = 0;
        } catch (err) {
          failures++;
          console.error(JSON.stringify({ level: "warn", msg: "claim failed", error: String(err) }));
          await this.#sleep(Math.min(5000, 100 * 2 ** failures));
          continue;
        }
      }
      if (claimed > 0 && consumer.freeSlots() > 0) continue;
      if (this.#pending) continue;
      await this.#sleep(this.#pollMs);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wakeup = null;
        resolve();
      }, ms);
      this.#wakeup = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
