/**
 * The in-process push transport: delivers published messages to this process's consumer
 * with timers, at least once, redelivering `busy` and `retry` outcomes after their delay.
 * For unit tests and single-process setups that want the push path; timers do not survive a
 * restart, which the runtime's outbox relay covers only for messages never delivered.
 */
import type { Consumer, OutgoingMessage, Transport } from "../transport.ts";

/** Push delivery with timers in this process (see above). */
export class InProcessTransport implements Transport {
  /** The transport's name. */
  readonly name = "in-process";
  /** Push: each message is delivered to the consumer. */
  readonly mode = "push" as const;
  #consumer: Consumer | null = null;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #inFlight = new Set<Promise<void>>();
  /** Every delivery made, in order (tests count duplicates with it). */
  readonly deliveries: string[] = [];

  publish(messages: readonly OutgoingMessage[]): Promise<void> {
    const now = Date.now();
    for (const m of messages) this.#schedule(m.id, Math.max(0, m.runAt.getTime() - now));
    return Promise.resolve();
  }

  wake(): void {}

  /** Delivers to `consumer` from now on. */
  start(consumer: Consumer): Promise<void> {
    this.#consumer = consumer;
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.#consumer = null;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await Promise.allSettled([...this.#inFlight]);
  }

  #schedule(id: string, ms: number): void {
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
