/**
 * The transport port: how committed messages reach a dispatcher. A transport is three parts,
 * and the core runs each of them without knowing which transport it holds:
 *
 * 1. **In the transaction** (`inTransaction`): what every writer of messages adds to the
 *    transaction that commits them: a notification of the jobs channel (the table queue: the
 *    committed `queued` row is itself the message, and listeners look for it at once) and/or
 *    an outbox row per message (in-process, QStash: the message reaches the transport only by
 *    a publish after the commit, so its outbox row keeps it until then).
 * 2. **After the commit** (`afterCommit`): the transport hears of the committed messages (the
 *    table queue wakes its loop; a push transport publishes them). When it resolves, the core
 *    deletes their outbox rows; when it rejects, they stay, and the outbox relay (a background
 *    loop and each maintenance pass, run for every transport that asks for outbox rows) hands
 *    them over again later: a message reaches its transport at least once.
 * 3. **The consumer side** (`start`/`stop`): a pull loop claiming rows through
 *    `Consumer.pump`, or a push delivery calling `Consumer.deliver(id)` at least once per
 *    message (in-process timers; QStash's signed webhook, whose HTTP handler the QStash
 *    transport owns, see `transports/qstash_receiver.ts`).
 *
 * Invariants:
 * - A transport's `inTransaction` is fixed for its life (rows written under it are relayed
 *   under it).
 * - `afterCommit` is called only after the commit, never for a message that did not commit,
 *   possibly more than once for a message (a relay after a crash): a push transport
 *   deduplicates by job id where it can; the job row and the runtime's ledger (a row a pushed
 *   success) are the guarantee either way.
 * - Every message carries its trace context (`traceparent`) when it has one, and a transport
 *   that crosses a process boundary forwards it to the delivery.
 */
import type { ActorPolicy } from "./define.ts";
import type { MessageWrites } from "./sql/insert_jobs.ts";

export type { MessageWrites } from "./sql/insert_jobs.ts";

/**
 * What happened to one pushed delivery; a push transport redelivers `busy` and `retry`.
 * `rescheduled`: the job runs again later through a new message (`Transport.reschedule`), so
 * this delivery is done.
 */
export type DeliveryOutcome =
  | { status: "succeeded" | "failed" | "cancelled" | "duplicate" | "unknown" | "rescheduled" }
  | { status: "busy"; retryInMs: number }
  | { status: "retry"; retryInMs: number };

/** What `Consumer.giveUp` did with a message its transport gave up delivering. */
export type GiveUpOutcome = "dead-lettered" | "running" | "finished" | "unknown";

/** A committed message handed to a transport, with its actor's policy. */
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
  /** The W3C trace context of the message (`traceparent` header), when it carries one. */
  traceparent?: string;
}

/** What a transport drives: the runtime implements it. */
export interface Consumer {
  /** Pull: claims up to the free capacity and starts the handlers; returns how many. */
  pump(): Promise<number>;
  /** Push: runs one message to its end (or finds it done) and says what happened. */
  deliver(jobId: string): Promise<DeliveryOutcome>;
  /**
   * Push: the transport gave up delivering a message (e.g. QStash's failure callback). A job
   * still queued is dead-lettered; a running or finished one is left alone. Idempotent.
   */
  giveUp(jobId: string, error: { code: string; message: string }): Promise<GiveUpOutcome>;
  /** Handler slots free in this process. */
  freeSlots(): number;
}

/** How committed messages reach a dispatcher (see the three parts above). */
export interface Transport {
  /** A short name for logs and health. */
  readonly name: string;
  /**
   * What the transaction that commits messages writes for this transport (part 1). With
   * `outbox`, the runtime also relays outbox rows left behind (at start, every few seconds
   * with background timers, in each maintenance pass, and at stop).
   */
  readonly inTransaction: MessageWrites;
  /**
   * Part 2: hears of committed messages; resolves once the transport holds them durably (then
   * their outbox rows, if any, are deleted). A rejection undoes nothing: the caller logs it
   * and the relay hands the messages over again.
   */
  afterCommit(messages: readonly OutgoingMessage[]): Promise<void>;
  /**
   * Push, optional: publishes a new message for a job committed back to `queued` at
   * `message.runAt` without consuming an attempt (`RetryLaterError`), so the delivery that ran
   * it can be answered as done. Each call must make a distinct message (a run-again-later
   * answered as a failed delivery would use up the transport's own retries). Without it, the
   * delivery's outcome is `retry` and the transport redelivers it.
   */
  reschedule?(message: OutgoingMessage): Promise<void>;
  /** Something may be runnable now (a freed slot, jobs requeued here): look soon. */
  wake(): void;
  /** Part 3: starts delivering to `consumer`. */
  start(consumer: Consumer): Promise<void>;
  /** Stops taking new work; resolves when the loop has stopped. */
  stop(): Promise<void>;
}
