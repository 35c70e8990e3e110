/**
 * The transport port: how committed messages reach a dispatcher.
 *
 * Two shapes exist:
 * - **pull** (table queue): a committed `queued` row is itself the message; the transport wakes
 *   the consumer, which claims rows in batches (`Consumer.pump`).
 * - **push** (in-process, QStash): the runtime writes an outbox row in the same transaction as
 *   the job, and after commit hands the ids to `publish()`; the transport later calls
 *   `Consumer.deliver(id)`, at least once per message.
 */
import type { ActorPolicy } from "./define.ts";

/**
 * What happened to one pushed delivery; a push transport redelivers `busy` and `retry`.
 * `rescheduled`: the job runs again later through a new message (`Transport.reschedule`), so
 * this delivery is done.
 */
export type DeliveryOutcome =
  | { status: "succeeded" | "failed" | "cancelled" | "duplicate" | "unknown" | "rescheduled" }
  | { status: "busy"; retryInMs: number }
  | { status: "retry"; retryInMs: number };

/** A committed message handed to a push transport, with its actor's policy. */
export interface OutgoingMessage {
  /** The job's id. */
  id: string;
  /** The actor that runs it. */
  actor: string;
  /** Its instance key. */
  key: string;
  /** Not to be delivered before. */
  runAt: Date;
  /** The actor's policy (attempts, delays, time limit). */
  policy: ActorPolicy;
}

/** What a transport drives: the runtime implements it. */
export interface Consumer {
  /** Pull: claims up to the free capacity and starts the handlers; returns how many. */
  pump(): Promise<number>;
  /** Push: runs one message to its end (or finds it done) and says what happened. */
  deliver(jobId: string): Promise<DeliveryOutcome>;
  /** Handler slots free in this process. */
  freeSlots(): number;
}

/** How committed messages reach a dispatcher (see the shapes above). */
export interface Transport {
  /** A short name for logs and health. */
  readonly name: string;
  /** `pull`: the consumer claims rows; `push`: the transport delivers each message. */
  readonly mode: "pull" | "push";
  /**
   * Push: hands over committed messages; resolves once the transport holds them durably
   * (then their outbox rows go). Pull transports ignore it.
   */
  publish(messages: readonly OutgoingMessage[]): Promise<void>;
  /**
   * Push, optional: publishes a new message for a job committed back to `queued` at
   * `message.runAt` without consuming an attempt (`RetryLaterError`), so the delivery that ran
   * it can be answered as done. Each call must make a distinct message (a run-again-later
   * answered as a failed delivery would use up the transport's own retries). Without it, the
   * delivery's outcome is `retry` and the transport redelivers it.
   */
  reschedule?(message: OutgoingMessage): Promise<void>;
  /** Something may be runnable now (a local enqueue, a freed slot): look soon. */
  wake(): void;
  /** Starts delivering to `consumer`. */
  start(consumer: Consumer): Promise<void>;
  /** Stops taking new work; resolves when the loop has stopped. */
  stop(): Promise<void>;
}
