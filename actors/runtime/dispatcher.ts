/**
 * The dispatcher: takes messages in (pull: claims batches of rows; push: one delivery at a
 * time), runs them through the executor under their key's lease and hands the completions to
 * the committer.
 *
 * Invariants:
 * - `inFlight` counts the messages of this process that are claimed, running or committing;
 *   it never passes `concurrency` (a claim reserves its whole batch first, then gives back what
 *   it did not get).
 * - The jobs of one key claimed together run one at a time, in queue order, under the one lease
 *   they were claimed with (a chain, see `committer.ts`). Pipelined: the next handler runs on
 *   the state the previous one left while that one is still being committed; links that come
 *   back `stale` run again on the committed state. A fenced link or a failed commit stops the
 *   chain: the rest is left to the lease's next owner, and the lease is given back.
 * - A job of an unordered actor is a chain of its own, with no state, run under the instance
 *   lease (see `leases.ts`); one that does not settle is given back, not its lease.
 * - Pull claims come in batches: while messages are in flight it claims again only once
 *   `refillAt` slots are free (a claim per freed slot would cost a query per job).
 * - A pull claim that came back empty while keys were held here (it walked past their queued
 *   jobs) makes pull claims past the same held keys wait nine times as long as it took, a
 *   second at most; a change in the held keys (a key given back) ends the wait.
 * - A pull claim can ride in the transaction of a commit (`claimAlong`): when every message in
 *   flight is in that commit and each commits, their slots are free once it does, and the next
 *   batch is claimed in the same transaction instead of in one of its own after it. Its slots
 *   are reserved when it is made (`inFlight` then counts both batches until the committed one
 *   settles, right after the commit); its jobs start after the commit (`startClaimed`).
 *
 * Modes of the pull dispatcher (foreground requests: see `Runtime.foreground`), as a state
 * machine; every change goes through `#setMode`, which refuses a transition not listed:
 *
 * | mode        | claims                                   | leaves to                      |
 * | ----------- | ---------------------------------------- | ------------------------------ |
 * | `open`      | up to the free slots                     | first request opens: deferring |
 * |             |                                          | (throttled when no deferral);  |
 * |             |                                          | stop: stopping                 |
 * | `deferring` | nothing, for `foregroundDeferMs`         | deferral over: throttled;      |
 * |             | from the first request                   | last request closes: open;     |
 * |             |                                          | stop: stopping                 |
 * | `throttled` | below `foregroundConcurrency` in flight  | last request closes: open;     |
 * |             |                                          | stop: stopping                 |
 * | `stopping`  | nothing, pushed deliveries are refused   | stopped: open, deferring or    |
 * |             |                                          | throttled (by open requests)   |
 *
 * Pushed deliveries are held back only while stopping (by free slots otherwise): their pace
 * is the push transport's flow control. A pushed delivery of a paused actor's job is answered
 * without running it: rescheduled when the transport can, `busy` otherwise.
 */
import type { ActorPolicy } from "./define.ts";
import { TroupeError } from "./errors.ts";
import type { Executor } from "./executor.ts";
import type { Committer } from "./committer.ts";
import type { LeaseKeeper } from "./leases.ts";
import type { Logger, SqlDatabase, SqlExecutor } from "./ports.ts";
import type { JobEvents } from "./publisher.ts";
import { loadState } from "./sql/actor_state.ts";
import { type ClaimedJob, claimJobs, claimJobsIn, claimOne } from "./sql/claim_jobs.ts";
import { chainKey, type CommitResult } from "./sql/complete_jobs.ts";
import { deliveryState, jobStatus, wasProcessed } from "./sql/delivery.ts";
import type { Tables } from "./sql/tables.ts";
import type { DeliveryOutcome, Transport } from "./transport.ts";
import { reschedule } from "./reschedule.ts";
import { TERMINAL } from "./views.ts";

const ignore = () => {};

/** The longest wait of claims past the same held keys after an empty claim (see `pump`). */
const MAX_WALK_WAIT_MS = 1000;
const fulfilled = (value: CommitResult): PromiseSettledResult<CommitResult> => ({
  status: "fulfilled",
  value,
});
const rejected = (reason: unknown): PromiseSettledResult<CommitResult> => ({
  status: "rejected",
  reason,
});

/** A claim made in the transaction of a commit (see `Dispatcher.claimAlong`). */
export interface ClaimAlong {
  jobs: ClaimedJob[];
  /** The slots reserved for it. */
  limit: number;
  /** Ends what `drain` waits for in its name, once its chains have started (or none will). */
  done: () => void;
}

/** A mode of the pull dispatcher (see the table above). */
export type DispatchMode = "open" | "deferring" | "throttled" | "stopping";

const TRANSITIONS: Record<DispatchMode, readonly DispatchMode[]> = {
  open: ["deferring", "throttled", "stopping"],
  deferring: ["throttled", "open", "stopping"],
  throttled: ["open", "stopping"],
  stopping: ["open", "deferring", "throttled"],
};

/** What a `Dispatcher` needs. */
export interface DispatcherOptions {
  db: SqlDatabase;
  tables: Tables;
  workerId: string;
  /** The actors whose jobs this process claims. */
  actorNames: readonly string[];
  /** Those of them declared `ordered: false` (claimed under the instance lease). */
  unorderedActors?: readonly string[];
  concurrency: number;
  claimBatch: number;
  /** Each tenant's weight in a claim (see `claimJobs`). */
  tenantWeights?: Readonly<Record<string, number>>;
  leaseMs: number;
  foregroundDeferMs: number;
  foregroundConcurrency: number;
  executor: Pick<Executor, "execute" | "leaveQuarantine">;
  committer: Pick<Committer, "commit" | "endChain">;
  leases: Pick<
    LeaseKeeper,
    "hold" | "letGo" | "giveBack" | "reap" | "heldKeys" | "nextInstanceFence"
  >;
  transport: Pick<Transport, "wake" | "reschedule">;
  /** The policy of `actor` (a rescheduled message carries it). */
  policy: (actor: string) => ActorPolicy;
  /** How long a pushed message of a paused actor waits before it is delivered again. */
  pauseRecheckMs: number;
  /** Told of each pushed delivery (the instance's heartbeat); must not throw. */
  onDelivery: () => Promise<void>;
  events: Pick<JobEvents, "emit">;
  log: Logger;
}

/** Delivers messages to handlers (see the invariants and modes above). */
export class Dispatcher {
  readonly #o: DispatcherOptions;
  readonly #refillAt: number;
  /** Chains running, and claims made in a commit whose chains have not all ended. */
  #chains = 0;
  /** Resolved once `#chains` is back to 0, for `drain`. */
  #idle: PromiseWithResolvers<void> | null = null;
  #inFlight = 0;
  #mode: DispatchMode = "open";
  /** Foreground requests open now. */
  #foreground = 0;
  /** When the open foreground requests began (the first of those that overlap). */
  #heldSince = 0;
  #deferTimer: ReturnType<typeof setTimeout> | undefined;
  /** Pumped at least once: this process pulls from a table queue. */
  #pulling = false;
  /** The last pull claim filled its batch: more jobs are likely queued. */
  #more = false;
  /** The keys held here when a claim last walked past them to find nothing (see `pump`). */
  #walkedPast = "";
  /** Until when a claim that would walk past the same keys waits, in `performance.now()` ms. */
  #lookAgainAt = 0;

  constructor(options: DispatcherOptions) {
    this.#o = options;
    this.#refillAt = Math.max(
      1,
      Math.min(options.claimBatch, Math.floor(options.concurrency / 4)),
    );
  }

  /** The current mode (see the table above). */
  get mode(): DispatchMode {
    return this.#mode;
  }

  /** Messages in flight in this process. */
  get inFlight(): number {
    return this.#inFlight;
  }

  #setMode(next: DispatchMode): void {
    if (next === this.#mode) return;
    if (!TRANSITIONS[this.#mode].includes(next)) {
      throw new TroupeError("DISPATCH_MODE", `dispatcher cannot go from ${this.#mode} to ${next}`);
    }
    this.#mode = next;
  }

  /** The mode that open foreground requests call for. */
  #foregroundMode(): DispatchMode {
    if (this.#foreground === 0) return "open";
    const deferred = performance.now() - this.#heldSince < this.#o.foregroundDeferMs;
    return deferred ? "deferring" : "throttled";
  }

  /** Handler slots free in this process (none while stopping). */
  freeSlots(): number {
    return this.#mode === "stopping" ? 0 : this.#o.concurrency - this.#inFlight;
  }

  /** Opens a foreground request (see `Runtime.foreground`); returns its close function. */
  foreground(): () => void {
    if (this.#foreground++ === 0) {
      this.#heldSince = performance.now();
      if (this.#o.foregroundDeferMs > 0) {
        // Wakes the dispatcher when the pause ends, as a closing request does.
        this.#deferTimer = setTimeout(() => {
          if (this.#mode === "deferring") this.#setMode("throttled");
          this.#o.transport.wake();
        }, this.#o.foregroundDeferMs);
        Deno.unrefTimer(this.#deferTimer);
      }
      if (this.#mode !== "stopping") this.#setMode(this.#foregroundMode());
    }
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      if (--this.#foreground === 0) {
        clearTimeout(this.#deferTimer);
        if (this.#mode !== "stopping") this.#setMode("open");
        this.#o.transport.wake();
      }
    };
  }

  /** Claims nothing from now on; pushed deliveries are refused as busy. */
  beginStop(): void {
    this.#setMode("stopping");
  }

  /** Waits up to `graceMs` for the running chains, then leaves the stopping mode. */
  async drain(graceMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise((r) => {
      const t = setTimeout(r, graceMs);
      Deno.unrefTimer(t);
      timer = t;
    });
    try {
      await Promise.race([this.#allEnded(), deadline]);
    } finally {
      clearTimeout(timer);
    }
    clearTimeout(this.#deferTimer);
  }

  /** Leaves the stopping mode (the runtime can start again). */
  stopped(): void {
    if (this.#mode === "stopping") this.#setMode(this.#foregroundMode());
  }

  /** New messages the dispatcher may claim now (see the modes above). */
  #claimable(): number {
    if (this.#mode === "deferring" && this.#foregroundMode() === "throttled") {
      this.#setMode("throttled");
    }
    switch (this.#mode) {
      case "stopping":
      case "deferring":
        return 0;
      case "open":
        return this.freeSlots();
      case "throttled":
        return Math.min(this.freeSlots(), this.#o.foregroundConcurrency - this.#inFlight);
    }
  }

  /** Pull: claims up to the claimable capacity and starts the chains; returns how many. */
  async pump(): Promise<number> {
    const held = this.#foreground > 0;
    const free = this.#claimable();
    // Refill in batches: claiming one job per freed slot costs a query per job.
    if (free <= 0 || (!held && this.#inFlight > 0 && free < this.#refillAt)) return 0;
    // The keys of the chains running here are leased: passed over without a lease lookup. A
    // claim passes their queued jobs one by one, in queue order: while a key with a deep
    // backlog runs, each claim walks the whole backlog to find the other keys' jobs. One that
    // came back empty makes the claims that would walk past the same keys wait nine times what
    // it took: such walks take at most a tenth of the time, and a job of another key behind the
    // backlog waits at most that long. A key given back (a chain ended) is claimed at once.
    const skipKeys = this.#o.leases.heldKeys();
    const walking = skipKeys.length > 0 && !held && performance.now() < this.#lookAgainAt;
    if (walking && keysOf(skipKeys) === this.#walkedPast) return 0;
    const limit = Math.min(free, this.#o.claimBatch);
    this.#pulling = true;
    this.#inFlight += limit;
    let jobs: ClaimedJob[] = [];
    const began = performance.now();
    try {
      jobs = await claimJobs(this.#o.db, this.#o.tables, {
        ...this.#claimOptions(limit),
        skipKeys,
      });
    } finally {
      this.#inFlight -= limit - jobs.length;
    }
    if (jobs.length === 0 && skipKeys.length > 0) {
      const now = performance.now();
      // The time includes waiting for a connection (PGlite's one, behind an upload's writes):
      // bounded, so that a job of another key enqueued after a slow empty claim never waits long.
      this.#lookAgainAt = now + Math.min(MAX_WALK_WAIT_MS, 9 * (now - began));
      this.#walkedPast = keysOf(skipKeys);
    }
    this.#more = jobs.length === limit;
    this.#start(jobs);
    return jobs.length;
  }

  #claimOptions(limit: number) {
    const { actorNames: actors, workerId, leaseMs, tenantWeights, unorderedActors } = this.#o;
    return {
      actors,
      limit,
      workerId,
      leaseMs,
      tenantWeights,
      unordered: unorderedActors,
      instanceFence: this.#o.leases.nextInstanceFence(),
    };
  }

  /** Starts the chains of claimed jobs (one per key, in queue order; one per unordered job). */
  #start(jobs: readonly ClaimedJob[]): void {
    const groups = new Map<string, ClaimedJob[]>();
    for (const job of jobs) {
      const chain = chainKey(job);
      const group = groups.get(chain);
      if (group) group.push(job);
      else groups.set(chain, [job]);
    }
    for (const group of groups.values()) {
      this.#chains++;
      this.#runChain(group);
    }
  }

  /** A chain (or a claim's wait for its chains) ended: its slots may be claimed again. */
  #ended(): void {
    if (--this.#chains === 0 && this.#idle) {
      this.#idle.resolve();
      this.#idle = null;
    }
    this.#o.transport.wake();
  }

  /** Settles once no chain runs. */
  #allEnded(): Promise<void> {
    if (this.#chains === 0) return Promise.resolve();
    return (this.#idle ??= Promise.withResolvers<void>()).promise;
  }

  /**
   * Pull: claims in `tx`, the transaction of a commit of `committed` messages of this process
   * that all commit, the batch `pump` would claim once they settle: only when they are every
   * message in flight (their slots are all free after the commit), the dispatcher is open and
   * pulling, and the last claim filled its batch. Its slots are reserved now; `startClaimed`
   * runs its jobs once the transaction has committed, or gives the slots back. Returns null
   * when there is no such claim to make.
   */
  async claimAlong(tx: SqlExecutor, committed: number): Promise<ClaimAlong | null> {
    if (!this.#pulling || !this.#more || this.#mode !== "open") return null;
    if (committed === 0 || committed !== this.#inFlight) return null;
    const limit = Math.min(this.#o.concurrency, this.#o.claimBatch);
    this.#inFlight += limit;
    // `drain` waits for what this claims, as for the chains of a pump.
    this.#chains++;
    try {
      const jobs = await claimJobsIn(tx, this.#o.tables, this.#claimOptions(limit));
      return { jobs, limit, done: () => this.#ended() };
    } catch (err) {
      this.#inFlight -= limit;
      this.#ended();
      throw err;
    }
  }

  /**
   * Runs the jobs of a `claimAlong` whose transaction committed; gives its slots back when the
   * transaction did not commit (`committed` false: nothing was claimed).
   */
  startClaimed(along: ClaimAlong, committed: boolean): void {
    const jobs = committed ? along.jobs : [];
    this.#inFlight -= along.limit - jobs.length;
    if (committed) this.#more = jobs.length === along.limit;
    this.#start(jobs); // counted in `#chains` from here on, each until it ends
    along.done();
  }

  /**
   * Runs the claimed jobs of one key in order, under one lease (see the invariants above);
   * counted in `#chains` until it ends.
   */
  async #runChain(jobs: ClaimedJob[]): Promise<void> {
    const { executor, committer, leases, events, log } = this.#o;
    const first = jobs[0]!;
    const { key, lease_fence: fence } = first;
    const chain = chainKey(first);
    leases.hold(first);
    let state: unknown = first.state;
    let next = 0;
    let settled = 0;
    try {
      while (next < jobs.length) {
        // Each link's commit as a result that never rejects: awaited below, after the later
        // links ran, without an unhandled rejection in between.
        const pending: Promise<PromiseSettledResult<CommitResult>>[] = [];
        let speculative = state;
        for (let i = next; i < jobs.length; i++) {
          const job = jobs[i]!;
          const began = performance.now();
          const completion = await executor.execute(job, speculative);
          completion.release = i === jobs.length - 1;
          // Pulled: the job row is the message's only copy (see `Completion.ledger`).
          completion.ledger = false;
          const committed = committer.commit(completion, job, performance.now() - began)
            .then(fulfilled, rejected);
          if (job.lease_losses > 0) {
            // A suspect: the next one runs once this one's outcome is committed (or not).
            committed.then(() => executor.leaveQuarantine(job.id));
          }
          pending.push(committed);
          if (completion.outcome === "succeeded" && completion.state) {
            speculative = completion.state.value;
          }
        }
        const results: PromiseSettledResult<CommitResult>[] = [];
        for (const p of pending) results.push(await p);
        let restartAt = -1;
        let stop = false;
        for (let i = 0; i < results.length; i++) {
          const r = results[i]!;
          const job = jobs[next + i]!;
          if (r.status === "rejected") {
            log.error("commit failed", { jobId: job.id, error: String(r.reason) });
            stop = true;
            break;
          }
          if (r.value === "fenced") {
            log.warn("lease lost; leaving the rest to the new owner", { key });
            stop = true;
            break;
          }
          if (r.value === "stale") {
            restartAt = next + i;
            break;
          }
          settled++;
          this.#inFlight--;
          events.emit(job.id);
          if (r.value === "duplicate" && i < results.length - 1) {
            restartAt = next + i + 1;
            break;
          }
        }
        if (stop || restartAt < 0) break;
        committer.endChain(chain, fence);
        try {
          state = await loadState(this.#o.db, this.#o.tables, key);
        } catch (err) {
          // Nothing awaits a chain: it ends here, and the rest goes back with the lease.
          log.error("state reload failed; leaving the rest to the lease", {
            key,
            error: String(err),
          });
          break;
        }
        next = restartAt;
      }
    } finally {
      this.#inFlight -= jobs.length - settled;
      committer.endChain(chain, fence);
      leases.letGo(first);
      // Give the lease (an unordered job: the job) back so the reaper requeues the rest at once.
      if (settled < jobs.length) await leases.giveBack(first).catch(ignore);
      this.#ended();
    }
  }

  /** Push: runs one message to its end (or finds it done) and says what happened. */
  async deliver(jobId: string): Promise<DeliveryOutcome> {
    const { db, tables, executor, committer, leases, events } = this.#o;
    await this.#o.onDelivery();
    const row = await deliveryState(db, tables, jobId);
    if (!row) {
      return { status: (await wasProcessed(db, tables, jobId)) ? "duplicate" : "unknown" };
    }
    if (TERMINAL.has(row.status)) return { status: row.status as "succeeded" };
    // Redelivered while running: its process may have stopped (a lost lease is counted, and a
    // poison job dead-lettered, only by the reaper), so reap before trying to claim it.
    if (row.status === "running") await leases.reap();
    // Paused: not run, no attempt used; a new message comes back later (see `operations.ts`).
    if (row.paused && (row.status === "queued" || row.status === "running")) {
      const retryInMs = Math.max(row.wait_ms, this.#o.pauseRecheckMs);
      if (!this.#o.transport.reschedule) return { status: "busy", retryInMs };
      const out = await this.#reschedule({ id: jobId, actor: row.actor, key: row.key }, retryInMs);
      return out.status === "retry" ? { status: "busy", retryInMs } : out;
    }
    // Early (a retry's backoff or a delay not over yet): come back when it is due.
    if (row.status === "queued" && row.wait_ms > 50) {
      return { status: "busy", retryInMs: row.wait_ms };
    }
    if (this.freeSlots() <= 0) return { status: "busy", retryInMs: 100 };
    this.#inFlight++;
    let rescheduled: { retryInMs: number; job: ClaimedJob } | undefined;
    try {
      const { job } = await claimOne(db, tables, {
        id: jobId,
        key: row.key,
        actor: row.actor,
        workerId: this.#o.workerId,
        leaseMs: this.#o.leaseMs,
        unordered: this.#o.unorderedActors?.includes(row.actor) ?? false,
        instanceFence: leases.nextInstanceFence(),
      });
      if (!job) {
        const status = (await jobStatus(db, tables, jobId)) ?? "unknown";
        return TERMINAL.has(status)
          ? { status: status as "succeeded" }
          : { status: "busy", retryInMs: 250 };
      }
      leases.hold(job);
      try {
        const began = performance.now();
        const completion = await executor.execute(job, job.state);
        completion.release = true;
        const result = await committer.commit(completion, job, performance.now() - began)
          .finally(() => executor.leaveQuarantine(job.id));
        events.emit(job.id);
        if (result === "fenced") return { status: "busy", retryInMs: 250 };
        if (result === "duplicate") return { status: "duplicate" };
        if (completion.outcome !== "retry") return { status: completion.outcome };
        const retryInMs = completion.retryInMs ?? 1000;
        if (!completion.refund || !this.#o.transport.reschedule) {
          return { status: "retry", retryInMs };
        }
        rescheduled = { retryInMs, job };
      } finally {
        committer.endChain(chainKey(job), job.lease_fence);
        leases.letGo(job);
      }
      return await this.#reschedule(rescheduled.job, rescheduled.retryInMs);
    } finally {
      this.#inFlight--;
    }
  }

  #reschedule(
    job: Pick<ClaimedJob, "id" | "actor" | "key">,
    retryInMs: number,
  ): Promise<DeliveryOutcome> {
    return reschedule(this.#o, job, retryInMs);
  }
}

/** A set of keys as one string: equal for the same keys in any order. */
function keysOf(keys: readonly string[]): string {
  return [...keys].sort().join("\u0000");
}
