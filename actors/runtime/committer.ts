/**
 * The group committer: completions from every handler of this process are queued and written
 * together, up to `commitBatch` in one transaction (`completeJobs`).
 *
 * Invariants:
 * - A chain is the run of one key's jobs under one lease (`chainOf(key, fence)`): its handlers
 *   run one after another, each on the state the previous one left, before that one commits.
 *   A chain is broken once one of its links did not commit as computed (fenced, duplicate,
 *   stale, a commit error, or a success recorded as a failure): from then on every later
 *   completion of the chain resolves `stale` without being written, in the same transaction
 *   (`completeJobs`) and in later ones (here). The dispatcher that owns a chain ends it
 *   (`endChain`) before it reruns the stale links on the committed state, and when it lets go.
 * - One bad completion (an effect that throws) does not sink the batch: after a failed batch
 *   each completion is committed alone. A success whose commit fails is recorded as a failed
 *   attempt instead (retried or dead-lettered by policy); when even that fails the commit
 *   rejects, and the chain is broken.
 * - A commit resolves after its transaction commits; what follows (publish, stopped handlers)
 *   never turns a committed completion into an error.
 * - A batch is written in one statement when every completion in it is valid (`commitAll`);
 *   when one is fenced or a duplicate, that transaction is rolled back before anything else
 *   in it ran, and the batch is committed again through the checks (`commitChecked`), which
 *   decide fenced, duplicate and stale. Either way the batch commits once.
 * - The pull dispatcher may claim its next batch in the transaction of a batch
 *   (`Dispatcher.claimAlong`, after the commit's statements); the claimed jobs start after the
 *   batch's commits are resolved. A batch committed alone (after a failed one) claims nothing.
 */
import type { AnyActor } from "./define.ts";
import type { ClaimAlong, Dispatcher } from "./dispatcher.ts";
import type { Executor } from "./executor.ts";
import type { RuntimeObserver } from "./observer.ts";
import type { Logger, SqlDatabase } from "./ports.ts";
import type { Publisher } from "./publisher.ts";
import type { ClaimedJob } from "./sql/claim_jobs.ts";
import {
  chainOf,
  chainOfCompletion,
  CommitMismatch,
  type CommitResult,
  completeJobs,
  type Completion,
} from "./sql/complete_jobs.ts";
import type { Tables } from "./sql/tables.ts";

interface PendingCommit {
  completion: Completion;
  /** The job the completion ends (its failure is made from it, see `#fallback`). */
  job: ClaimedJob;
  /** Time in the handler, for the observer. */
  ms: number;
  resolve: (r: CommitResult) => void;
  reject: (e: unknown) => void;
}

/** What a `Committer` needs. */
export interface CommitterOptions {
  db: SqlDatabase;
  tables: Tables;
  workerId: string;
  /** Most completions committed in one transaction. */
  commitBatch: number;
  actors: ReadonlyMap<string, AnyActor>;
  /** Turns a success whose commit failed into a failed attempt. */
  executor: Pick<Executor, "failure">;
  publisher: Pick<Publisher, "writes" | "hook" | "afterCommit" | "afterCommitOrLog" | "stopped">;
  observer: RuntimeObserver;
  log: Logger;
}

/** Commits completions in groups (see the invariants above). */
export class Committer {
  readonly #o: CommitterOptions;
  #queue: PendingCommit[] = [];
  #flushing: Promise<void> | null = null;
  /** Chains (key + fence) with a link that did not commit as computed. */
  readonly #broken = new Set<string>();

  constructor(options: CommitterOptions) {
    this.#o = options;
  }

  /**
   * Set once the runtime's stop gave its leases back: a handler that runs on past the stop
   * holds a fence that is no longer the key's, so its completion is fenced without asking the
   * database (and a stopped runtime writes nothing more).
   */
  leasesReturned = false;

  /** The pull dispatcher, which may claim in the transaction of a batch (see above). */
  claims: Pick<Dispatcher, "claimAlong" | "startClaimed"> | null = null;

  /** Queues a completion for the next group commit. */
  commit(completion: Completion, job: ClaimedJob, ms: number): Promise<CommitResult> {
    if (this.leasesReturned) return Promise.resolve("fenced");
    completion.runMs = Math.min(2 ** 31 - 1, Math.round(ms));
    const { promise, resolve, reject } = Promise.withResolvers<CommitResult>();
    this.#queue.push({ completion, job, ms, resolve, reject });
    this.#kick();
    return promise;
  }

  /** What a success whose commit failed with `err` is recorded as: a failed attempt. */
  #fallback(item: PendingCommit, err: unknown): Completion | null {
    const { completion, job } = item;
    if (completion.outcome !== "succeeded") return null;
    const def = this.#o.actors.get(job.actor);
    return { ...this.#o.executor.failure(completion, job, def, err), release: completion.release };
  }

  /**
   * Starts a flush unless one runs, one timer tick later: the handlers of a claimed batch that
   * finish in the same turn of the event loop (most of them, when they do not wait on I/O) go
   * in one transaction, not the first alone and the rest in a second. A flush can settle its
   * last commits before it ends (a batch of stale links never waits), so what was queued after
   * its loop is flushed next. A flush takes a second batch at once only when a whole one is
   * queued: a part of a batch may be completions of handlers that the commit before let run
   * (its claim's jobs, or the next links of its chains), still finishing in this turn, which
   * wait the tick for their batch's others.
   */
  #kick(): void {
    if (this.#flushing) return;
    this.#flushing = new Promise<void>((tick) => setTimeout(tick, 0)).then(() => this.#flush())
      .finally(() => {
        this.#flushing = null;
        if (this.#queue.length > 0) this.#kick();
      });
  }

  /**
   * Forgets that the chain of `key` (its name: see `chainKey`) under `fence` broke (its owner
   * reruns or lets go).
   */
  endChain(key: string, fence: number): void {
    this.#broken.delete(chainOf(key, fence));
  }

  /** Settles when the commits queued now are written (or have failed). */
  async drained(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  #isBroken(c: Completion): boolean {
    return this.#broken.size > 0 && this.#broken.has(chainOfCompletion(c));
  }

  #break(c: Completion): void {
    this.#broken.add(chainOfCompletion(c));
  }

  /**
   * One transaction: the one-statement commit first; when a completion is fenced or a
   * duplicate, rolled back and made again through the checks (no savepoint taken for the
   * common case, where every completion is valid).
   */
  async #transaction(completions: Completion[], along?: (claimed: ClaimAlong) => void) {
    const { db, tables, workerId, publisher } = this.#o;
    const claims = along ? this.claims : null;
    const commit = (allValid: "throw" | "off") =>
      db.transaction(async (tx) => {
        const done = await completeJobs(tx, tables, workerId, completions, {
          writes: publisher.writes,
          hook: publisher.hook,
          allValid,
        });
        if (claims) {
          const committed = done.results.filter((r) => r === "committed").length;
          if (committed === completions.length) {
            const claimed = await claims.claimAlong(tx, committed);
            if (claimed) along!(claimed);
          }
        }
        return done;
      });
    try {
      return await commit("throw");
    } catch (err) {
      if (!(err instanceof CommitMismatch)) throw err;
      return await commit("off");
    }
  }

  async #flush(): Promise<void> {
    do {
      const batch = this.#queue.splice(0, this.#o.commitBatch).filter((item) => {
        if (!this.#isBroken(item.completion)) return true;
        item.resolve("stale");
        return false;
      });
      if (batch.length === 0) continue;
      let claimed: ClaimAlong | null = null;
      try {
        const { results, sent, cancelled } = await this.#transaction(
          batch.map((b) => b.completion),
          (c) => claimed = c,
        );
        batch.forEach((b, i) => this.#settle(b, results[i]!));
        if (claimed) this.claims!.startClaimed(claimed, true);
        claimed = null;
        this.#o.publisher.stopped(cancelled, batch.map((b) => b.completion.pipelineId));
        await this.#o.publisher.afterCommitOrLog(sent);
      } catch (err) {
        this.#o.log.warn("group commit failed; committing its messages one by one", {
          messages: batch.length,
          error: String(err),
        });
        // A claim made in a transaction that did not commit claimed nothing.
        if (claimed) this.claims!.startClaimed(claimed, false);
        // Commit one by one so one bad completion (a failing effect) does not sink the rest.
        for (const item of batch) await this.#commitAlone(item);
      }
    } while (this.#queue.length >= this.#o.commitBatch);
  }

  /** Resolves a commit; a chain whose link did not commit as computed is broken after it. */
  #settle(item: PendingCommit, result: CommitResult, committed?: Completion): void {
    if (result !== "committed" || committed) this.#break(item.completion);
    if (result === "committed") {
      const { outcome, deadLetter } = committed ?? item.completion;
      this.#o.observer.jobFinished(item.job.actor, outcome, item.ms);
      if (outcome === "failed" && deadLetter !== false) {
        this.#o.observer.deadLettered(item.job.actor, "failed");
      }
    }
    item.resolve(result);
  }

  async #commitAlone(item: PendingCommit): Promise<void> {
    const { publisher } = this.#o;
    if (this.#isBroken(item.completion)) {
      item.resolve("stale");
      return;
    }
    try {
      const { results, sent, cancelled } = await this.#transaction([item.completion]);
      this.#settle(item, results[0]!);
      publisher.stopped(cancelled, [item.completion.pipelineId]);
      await publisher.afterCommit(sent).catch(() => {});
      return;
    } catch (err) {
      const failed = this.#fallback(item, err);
      if (!failed) {
        this.#break(item.completion);
        item.reject(err);
        return;
      }
      this.#o.log.warn("commit of a success failed; recording the attempt as failed", {
        jobId: item.completion.id,
        error: String(err),
      });
      try {
        const { results, sent, cancelled } = await this.#transaction([failed]);
        this.#settle(item, results[0]!, failed);
        publisher.stopped(cancelled, [failed.pipelineId]);
        await publisher.afterCommit(sent).catch(() => {});
      } catch (err2) {
        this.#break(item.completion);
        item.reject(err2);
      }
    }
  }
}
