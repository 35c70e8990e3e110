/**
 * What follows a commit: the transport hears of the messages it committed, handlers of jobs a
 * pipeline's end cancelled stop, and watchers in this process hear of changed jobs.
 *
 * Invariants:
 * - Every writer of messages writes what the transport asks for in the transaction
 *   (`writes`, the transport's `inTransaction`), and hands the committed messages to the
 *   transport's `afterCommit` only after the commit. With outbox rows, a row is deleted only
 *   after `afterCommit` resolved for its message; a crash in between leaves the row for
 *   `relayOutbox`, so a message reaches its transport at least once.
 * - A message whose actor this runtime does not run is not handed over here: its outbox row
 *   (if any) waits for the relay of a runtime that runs it.
 * - A hand-over that fails after its commit never undoes the commit: the caller logs it and
 *   the relay hands the message over later.
 * - The abort hook of a pipeline never throws: a hook that names an unknown actor or an input
 *   it refuses is logged and sends nothing, and the pipeline's end still commits.
 */
import type { AnyActor } from "./define.ts";
import { CancelledError } from "./errors.ts";
import type { Executor } from "./executor.ts";
import { prepareJobNow } from "./executor.ts";
import type { Logger, SqlDatabase } from "./ports.ts";
import type { MessageWrites, QueuedMessage } from "./sql/insert_jobs.ts";
import { deleteOutbox, pendingOutbox } from "./sql/outbox.ts";
import type { AbortHook } from "./sql/pipelines.ts";
import type { Tables } from "./sql/tables.ts";
import type { OutgoingMessage, Transport } from "./transport.ts";

/** Watchers of job changes in this process (live updates). */
export class JobEvents {
  readonly #listeners = new Set<(jobId: string) => void>();
  /** The listeners as an array, made again on each change (`emit` runs for every job). */
  #calls: ((jobId: string) => void)[] = [];

  /** Calls `fn(jobId)` whenever a job of this process changes; returns an unsubscribe. */
  subscribe(fn: (jobId: string) => void): () => void {
    this.#listeners.add(fn);
    this.#calls = [...this.#listeners];
    return () => {
      this.#listeners.delete(fn);
      this.#calls = [...this.#listeners];
    };
  }

  /** Tells every watcher that `jobId` changed. */
  emit(jobId: string): void {
    const calls = this.#calls;
    for (let i = 0; i < calls.length; i++) calls[i]!(jobId);
  }
}

/** What a `Publisher` needs. */
export interface PublisherOptions {
  db: SqlDatabase;
  tables: Tables;
  transport: Transport;
  actors: ReadonlyMap<string, AnyActor>;
  /** The actor called `name`; throws `NotFoundError` when there is none. */
  actor: (name: string) => AnyActor;
  executor: Executor;
  events: JobEvents;
  /** Drops a job from the reader's cache of finished jobs. */
  forget: (jobId: string) => void;
  log: Logger;
}

/** Runs what follows a commit (see the invariants above). */
export class Publisher {
  readonly #o: PublisherOptions;

  constructor(options: PublisherOptions) {
    this.#o = options;
  }

  /** What every transaction that commits messages writes for the transport. */
  get writes(): MessageWrites {
    return this.#o.transport.inTransaction;
  }

  /** Hands committed messages to the transport (see the invariants above). */
  async afterCommit(sent: readonly QueuedMessage[]): Promise<void> {
    if (sent.length === 0) return;
    const outgoing: OutgoingMessage[] = [];
    for (const m of sent) {
      const def = this.#o.actors.get(m.actor);
      if (def) outgoing.push({ ...m, policy: def.policy });
    }
    if (outgoing.length === 0) return;
    const { transport } = this.#o;
    await transport.afterCommit(outgoing);
    if (transport.inTransaction.outbox) {
      await deleteOutbox(this.#o.db, this.#o.tables, outgoing.map((m) => m.id));
    }
  }

  /** `afterCommit`, with a failure logged: the relay publishes the messages later. */
  async afterCommitOrLog(sent: readonly QueuedMessage[]): Promise<void> {
    await this.afterCommit(sent).catch((err) =>
      this.#o.log.warn("hand-over after commit failed; the relay will retry", {
        transport: this.#o.transport.name,
        error: String(err),
      })
    );
  }

  /**
   * Hands over outbox rows left behind (a crash between commit and hand-over) at least
   * `minAgeMs` old (younger ones may be in a hand-over right now; at stop none is). Returns how
   * many rows it found; none without outbox rows (`writes.outbox` false).
   */
  async relayOutbox(minAgeMs = 1000): Promise<number> {
    if (!this.writes.outbox) return 0;
    const rows = await pendingOutbox(this.#o.db, this.#o.tables, minAgeMs);
    await this.afterCommit(rows);
    return rows.length;
  }

  /**
   * The abort hook of a pipeline the runtime ended (see `sql/pipelines.ts`): its message, with
   * the pipeline's id, status and error added to the stored input.
   */
  readonly hook: AbortHook = (p, outcome) => {
    const onAbort = p.pipeline?.onAbort;
    if (!onAbort) return null;
    try {
      const input = {
        ...(onAbort.input as Record<string, unknown>),
        pipeline: {
          id: p.id,
          status: outcome.status,
          error: { code: outcome.error.code, message: outcome.error.message },
        },
      };
      return prepareJobNow(this.#o.actor(onAbort.actor), input, {
        tenantId: p.tenant_id,
        parentId: p.id,
      });
    } catch (err) {
      this.#o.log.error("pipeline abort hook failed; the pipeline ends without it", {
        pipelineId: p.id,
        error: String(err),
      });
      return null;
    }
  };

  /** After a commit: jobs its pipelines' ends cancelled stop here, and watchers hear of it. */
  stopped(cancelled: readonly string[], pipelines: readonly (string | null | undefined)[]): void {
    for (const id of cancelled) {
      this.#o.executor.abort(id, new CancelledError());
      this.#o.forget(id);
      this.#o.events.emit(id);
    }
    for (const id of new Set(pipelines)) {
      if (!id) continue;
      this.#o.events.emit(id);
    }
  }
}
