/**
 * What follows a commit: the transport hears of the messages it committed, handlers of jobs a
 * pipeline's end cancelled stop, and watchers in this process hear of changed jobs.
 *
 * Invariants:
 * - Pull transports only need waking: the committed `queued` row is the message. Push
 *   transports get every committed message through `publish()`, and only after it resolves is
 *   its outbox row deleted; a crash in between leaves the row for `relayOutbox`, so a message
 *   is published at least once.
 * - A publish that fails after its commit never undoes the commit: the caller logs it and the
 *   relay publishes it later.
 * - The abort hook of a pipeline never throws: a hook that names an unknown actor or an input
 *   it refuses is logged and sends nothing, and the pipeline's end still commits.
 */
import type { AnyActor } from "./define.ts";
import { CancelledError } from "./errors.ts";
import type { Executor } from "./executor.ts";
import { prepareJobNow } from "./executor.ts";
import type { Logger, SqlDatabase } from "./ports.ts";
import type { QueuedMessage } from "./sql/insert_jobs.ts";
import { deleteOutbox, pendingOutbox } from "./sql/outbox.ts";
import type { AbortHook } from "./sql/pipelines.ts";
import type { Tables } from "./sql/tables.ts";
import type { Transport } from "./transport.ts";

/** Watchers of job changes in this process (live updates). */
export class JobEvents {
  readonly #listeners = new Set<(jobId: string) => void>();

  /** Calls `fn(jobId)` whenever a job of this process changes; returns an unsubscribe. */
  subscribe(fn: (jobId: string) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Tells every watcher that `jobId` changed. */
  emit(jobId: string): void {
    for (const fn of this.#listeners) fn(jobId);
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

  /** Whether committed messages go through the outbox (a push transport). */
  get outbox(): boolean {
    return this.#o.transport.mode === "push";
  }

  /** Hands committed messages to the transport (see the invariants above). */
  async afterCommit(sent: readonly QueuedMessage[]): Promise<void> {
    if (sent.length === 0) return;
    const { transport } = this.#o;
    if (transport.mode === "pull") {
      transport.wake();
      return;
    }
    await transport.publish(sent.map((m) => ({ ...m, policy: this.#o.actor(m.actor).policy })));
    await deleteOutbox(this.#o.db, this.#o.tables, sent.map((m) => m.id));
  }

  /** `afterCommit`, with a failure logged: the relay publishes the messages later. */
  async afterCommitOrLog(sent: readonly QueuedMessage[]): Promise<void> {
    await this.afterCommit(sent).catch((err) =>
      this.#o.log.warn("publish after commit failed; the relay will retry", { error: String(err) })
    );
  }

  /**
   * Publishes outbox rows left behind (a crash between commit and publish) at least
   * `minAgeMs` old (younger ones may be in a publish right now; at stop none is).
   */
  async relayOutbox(minAgeMs = 1000): Promise<number> {
    const rows = await pendingOutbox(this.#o.db, this.#o.tables, minAgeMs);
    await this.afterCommit(rows.filter((r) => this.#o.actors.has(r.actor)));
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
