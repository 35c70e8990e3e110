/**
 * The lease keeper: the leases this process holds, kept alive while their handlers run, the
 * leases of other processes that lapsed taken back, and cancellations heard.
 *
 * Invariants:
 * - A claimed job's lease is held (`hold`) from its claim until its dispatcher lets go
 *   (`letGo`): its key's, with the fencing token it was claimed with (letting go of an older
 *   token keeps a newer hold), or for an unordered job the instance lease.
 * - The heartbeat renews every held lease each third of `leaseMs`. A key whose token moved on
 *   while this process still holds it under the old one was taken over by another worker: its
 *   handlers here are aborted (`LEASE_LOST`), since their commit would be fenced anyway. A key
 *   held here under a newer token by the time the renewal answers is not lost.
 * - The jobs of unordered actors run under one instance lease (`instanceLease`), taken and
 *   renewed by the claims that take them and by the heartbeat while any runs here. When its
 *   token moves on (it lapsed: this process stalled past it), the handlers claimed under the
 *   older token are aborted: the reaper takes their jobs back.
 * - Cancellation reaches a running handler two ways: the cancel channel (a notification from
 *   any process, heard at once) and the heartbeat (`cancel_requested`, for a lost
 *   notification); the cancels are also read when listening resumes after a lost session.
 * - The reaper takes back only jobs of this process's actors, whose `onDeadLetter` it can
 *   call; what it dead-letters or requeues is dropped from the reader's cache first.
 * - At stop, leases still held are given back, so their jobs are requeued at once and not
 *   counted as lost to a crash.
 */
import type { AnyActor } from "./define.ts";
import { CancelledError, TroupeError } from "./errors.ts";
import type { Executor } from "./executor.ts";
import type { RuntimeObserver } from "./observer.ts";
import type { Logger, SqlDatabase } from "./ports.ts";
import type { JobEvents, Publisher } from "./publisher.ts";
import { cancelRequested } from "./sql/cancel_job.ts";
import {
  type ClaimedJob,
  extendLeases,
  instanceLease,
  releaseJobs,
  releaseLeases,
  renewInstanceLease,
} from "./sql/claim_jobs.ts";
import { reapJobs } from "./sql/reap_jobs.ts";
import type { Tables } from "./sql/tables.ts";
import type { Transport } from "./transport.ts";

/** What of a claimed job tells the lease it runs under. */
type LeasedJob = Pick<ClaimedJob, "id" | "key" | "lease_fence" | "unordered">;

/** What a `LeaseKeeper` needs. */
export interface LeaseKeeperOptions {
  db: SqlDatabase;
  tables: Tables;
  workerId: string;
  leaseMs: number;
  maxLeaseLosses: number;
  actors: ReadonlyMap<string, AnyActor>;
  executor: Pick<
    Executor,
    "abort" | "abortKey" | "abortUnordered" | "runningJobs" | "deadLetterSends"
  >;
  publisher: Pick<Publisher, "writes" | "hook" | "afterCommit" | "afterCommitOrLog" | "stopped">;
  transport: Pick<Transport, "wake">;
  events: Pick<JobEvents, "emit">;
  /** Drops a job from the reader's cache of finished jobs. */
  forget: (jobId: string) => void;
  observer: RuntimeObserver;
  log: Logger;
}

/** Keeps this process's leases (see the invariants above). */
export class LeaseKeeper {
  readonly #o: LeaseKeeperOptions;
  readonly #actorNames: string[];
  /** Keys whose lease this process holds, with the fencing token. */
  readonly #held = new Map<string, number>();
  /** The instance lease's latest token seen (0: never taken), and its jobs running here. */
  readonly #instance = { fence: 0, runs: 0 };
  #unlisten: (() => Promise<void>) | undefined;

  constructor(options: LeaseKeeperOptions) {
    this.#o = options;
    this.#actorNames = [...options.actors.keys()];
  }

  /**
   * Records that `job`, claimed here, runs under its lease: its key's, or for an unordered job
   * the instance lease, until `letGo`. An instance token newer than the last seen means that
   * lease lapsed and was taken again: the handlers claimed under the older one are aborted.
   */
  hold(job: LeasedJob): void {
    if (!job.unordered) {
      this.#held.set(job.key, job.lease_fence);
      return;
    }
    this.#instance.runs++;
    this.#instanceToken(job.lease_fence);
  }

  /** The keys whose lease this process holds. */
  heldKeys(): string[] {
    return [...this.#held.keys()];
  }

  /** `job`, held with `hold`, ended here (a newer hold of its key stays). */
  letGo(job: LeasedJob): void {
    if (job.unordered) this.#instance.runs--;
    else if (this.#held.get(job.key) === job.lease_fence) this.#held.delete(job.key);
  }

  /** The token a new instance lease row starts with: one past any this process saw. */
  nextInstanceFence(): number {
    return this.#instance.fence + 1;
  }

  #instanceToken(fence: number): void {
    const was = this.#instance.fence;
    if (fence <= was) return;
    this.#instance.fence = fence;
    if (was > 0) {
      const n = this.#o.executor.abortUnordered(fence, new TroupeError("LEASE_LOST", "lease lost"));
      if (n > 0) this.#o.log.warn("instance lease lost", { aborted: n });
    }
  }

  /**
   * Gives back what `job`, claimed here, will not finish here, so that the reaper requeues it
   * at once: its key's lease (the key's jobs still running under it lose their owner, see
   * `releaseLeases`), or for an unordered job the job itself (`releaseJobs`).
   */
  async giveBack(job: LeasedJob): Promise<void> {
    const { db, tables, workerId } = this.#o;
    const fence = job.lease_fence;
    if (job.unordered) await releaseJobs(db, tables, workerId, [{ id: job.id, fence }]);
    else await releaseLeases(db, tables, workerId, [{ key: job.key, fence }]);
  }

  /**
   * Listens for cancellations: a notified job running here is aborted. When listening resumes
   * on a new session (the one it was on was lost), the running jobs' cancels are read at once:
   * one notified in between was not heard.
   */
  async watchCancels(): Promise<void> {
    this.#unlisten = await this.#o.db.listen(this.#o.tables.cancelChannel, (id) => {
      this.#o.executor.abort(id, new CancelledError());
    }, {
      onResume: () => {
        this.#abortCancelled().catch((err) =>
          this.#o.log.warn("cancels not read after listening resumed", { error: String(err) })
        );
      },
    });
  }

  /** Aborts the handlers running here whose job's cancel was asked for. */
  async #abortCancelled(): Promise<void> {
    const { db, tables, executor } = this.#o;
    const running = executor.runningJobs();
    if (running.length === 0) return;
    for (const id of await cancelRequested(db, tables, running)) {
      executor.abort(id, new CancelledError());
    }
  }

  /** Gives back every lease still held, and stops listening for cancellations. */
  async stop(): Promise<void> {
    const held = [...this.#held].map(([key, fence]) => ({ key, fence }));
    if (this.#instance.fence > 0) {
      held.push({ key: instanceLease(this.#o.workerId), fence: this.#instance.fence });
    }
    await releaseLeases(this.#o.db, this.#o.tables, this.#o.workerId, held).catch((err) =>
      this.#o.log.warn("leases not given back at stop; they lapse", { error: String(err) })
    );
    await this.#unlisten?.();
    this.#unlisten = undefined;
  }

  /** Renews the held leases, aborts handlers whose lease was lost or whose cancel was asked. */
  async heartbeat(): Promise<void> {
    const { db, tables, workerId, leaseMs, executor } = this.#o;
    const held = [...this.#held.entries()];
    if (held.length > 0) {
      const keys = held.map(([key]) => key);
      const current = await extendLeases(db, tables, { workerId, keys, leaseMs });
      for (const [key, fence] of held) {
        // A key let go meanwhile, or claimed here again under a newer token (its chain ended
        // and another began while the renewal waited its turn), was not lost.
        if (current.get(key) === fence || this.#held.get(key) !== fence) continue;
        // Another worker took the key over: stop our handler, its commit would be fenced.
        this.#o.log.warn("lease lost", { key });
        executor.abortKey(key, new TroupeError("LEASE_LOST", "lease lost"));
      }
    }
    if (this.#instance.runs > 0) {
      const fence = this.nextInstanceFence();
      this.#instanceToken(await renewInstanceLease(db, tables, { workerId, leaseMs, fence }));
    }
    await this.#abortCancelled();
    this.#o.observer.heartbeat(workerId);
  }

  /**
   * Takes back the jobs of this runtime's actors whose lease is gone (see `reapJobs`): requeued,
   * or dead-lettered with their actor's `onDeadLetter` messages. Returns how many were reaped.
   */
  async reap(): Promise<number> {
    const { publisher, executor, observer, log } = this.#o;
    const { reaped, poisoned, lapsed, sent, cancelled, requeued } = await reapJobs(
      this.#o.db,
      this.#o.tables,
      {
        actors: this.#actorNames,
        maxLeaseLosses: this.#o.maxLeaseLosses,
        writes: publisher.writes,
        hook: publisher.hook,
        deadLetterSends: (job, error) =>
          executor.deadLetterSends(job, this.#o.actors.get(job.actor), error),
      },
    );
    for (const job of lapsed) observer.deadLettered(job.actor, "lease_expired");
    for (const job of poisoned) {
      observer.deadLettered(job.actor, "poison");
      log.error("poison job dead-lettered: its process stopped each time it ran", {
        jobId: job.id,
        actor: job.actor,
        key: job.key,
        leaseLosses: job.lease_losses,
      });
    }
    for (const id of reaped) {
      this.#o.forget(id);
      this.#o.events.emit(id);
    }
    publisher.stopped(cancelled, []);
    await publisher.afterCommit(sent);
    // A requeued job is handed to the transport as a new message: a pushed message for it may
    // be spent (its delivery went down with the process). A second delivery of a job finds it
    // taken or done.
    await publisher.afterCommitOrLog(requeued);
    if (reaped.length > 0) this.#o.transport.wake();
    return reaped.length;
  }
}
