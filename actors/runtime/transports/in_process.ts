/**
 * The in-process push transport: delivers committed messages to this process's consumer
 * with timers, at least once, redelivering `busy` and `retry` outcomes after their delay.
 * For unit tests and single-process setups that want the push path.
 *
 * Its three parts (see `../transport.ts`):
 * - in the transaction: an outbox row per message, no notification;
 * - after the commit: a timer per message, due at its `runAt` (the outbox row goes then);
 * - the consumer side: the timers call `Consumer.deliver`, from `start` until `stop`.
 *
 * Invariants: timers do not survive a restart; the outbox relay covers only messages never
 * handed over, the reaper those whose delivery was running.
 */
import type { Consumer, MessageWrites, OutgoingMessage, Transport } from "../transport.ts";

/** Push delivery with timers in this process (see above). */
export class InProcessTransport implements Transport {
  /** The transport's name. */
  readonly name = "in-process";
  /** An outbox row: a message is handed over after its commit. */
  readonly inTransaction: MessageWrites = { outbox: true, notify: false };
  #consumer: Consumer | null = null;
  /**
   * Between `stop` and the next `start` no timer is armed: messages handed over meanwhile
   * (the outbox relay at stop) wait here, due times in ms since the epoch, until `start`.
   */
  #stopped = true;
  #waiting: [id: string, due: number][] = [];
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #inFlight = new Set<Promise<void>>();
  /** Every delivery made, in order (tests count duplicates with it). */
  readonly deliveries: string[] = [];

  /** Schedules a delivery of each message at its `runAt`. */
  afterCommit(messages: readonly OutgoingMessage[]): Promise<void> {
    const now = Date.now();
    for (const m of messages) this.#schedule(m.id, Math.max(0, m.runAt.getTime() - now));
    return Promise.resolve();
  }

  wake(): void {}

  /** Delivers to `consumer` from now on. */
  start(consumer: Consumer): Promise<void> {
    this.#consumer = consumer;
    this.#stopped = false;
    const now = Date.now();
    for (const [id, due] of this.#waiting.splice(0)) this.#schedule(id, Math.max(0, due - now));
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.#consumer = null;
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await Promise.allSettled([...this.#inFlight]);
  }

  #schedule(id: string, ms: number): void {
    if (this.#stopped) {
      this.#waiting.push([id, Date.now() + ms]);
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      const consumer = this.#consumer;
      if (!consumer) return;
      this.deliveries.push(id);
      const p = consumer.deliver(id).then((outcome) => {
        if (outcome.status === "busy" || outcome.status === "retry") {
          this.#schedule(id, outcome.retryInMs);
        }
      }, () => this.#schedule(id, 500));
      this.#inFlight.add(p);
      p.finally(() => this.#inFlight.delete(p));
    }, ms);
    this.#timers.add(timer);
  }
}
