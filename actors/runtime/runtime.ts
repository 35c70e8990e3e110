/**
 * The runtime: the facade users hold. It builds the roles and routes each public call to the
 * one that owns it: `RuntimeClient` (client.ts: enqueue, pipelines, cancel, replay, give-up,
 * schedules), `JobReader` (reader.ts: jobs, lists, counts), `Dispatcher` (dispatcher.ts: pull
 * and push), `Committer` (committer.ts: group commit), `LeaseKeeper` (leases.ts: heartbeat,
 * reaper, cancel watch), `Publisher` (publisher.ts: after a commit), `Executor` (handlers).
 *
 * Invariants: nothing runs before `start()`; the roles share one database, schema, executor
 * and transport, fixed at construction. `stop()` claims nothing more, waits up to its grace
 * for running handlers, writes what is queued for commit, then gives back the leases held.
 */
import { BackgroundTasks } from "./background.ts";
import {
  type EnqueueOptions,
  type PipelineStart,
  RuntimeClient,
  type StartPipelineOptions,
} from "./client.ts";
import { Committer } from "./committer.ts";
import { maintenancePass, type MaintenanceResult } from "./maintenance.ts";
import type { ActorTarget, AnyActor, GroupThen, Message, SendOptions } from "./define.ts";
import { Dispatcher } from "./dispatcher.ts";
import { Executor } from "./executor.ts";
import { uuidv7 } from "./ids.ts";
import { LeaseKeeper } from "./leases.ts";
import {
  type ActorKeyView,
  type ActorStatsView,
  Operations,
  type PauseView,
  type WorkersView,
} from "./operations.ts";
import { silentObserver } from "./observer.ts";
import { jsonLogger, type Logger, type SqlDatabase, type SqlExecutor } from "./ports.ts";
import { JobEvents, Publisher } from "./publisher.ts";
import { JobEventRelay } from "./event_relay.ts";
import { JobReader, type ListJobsFilter, type RetryCandidate, type RetryFilter } from "./reader.ts";
import { checkTenantWeights } from "./sql/claim_jobs.ts";
import type { QueueDepth } from "./sql/queue_depth.ts";
import { type Tables, tables } from "./sql/tables.ts";
import { vacuumTables } from "./sql/vacuum.ts";
import type { Consumer, DeliveryOutcome, GiveUpOutcome, Transport } from "./transport.ts";
import type { RuntimeOptions } from "./options.ts";
import { noTracing } from "./tracing.ts";
import type { DeadLetterView, JobStatus, JobView, Page } from "./views.ts";

export type { RuntimeOptions } from "./options.ts";
export type { EnqueueOptions, OnEnd, PipelineStart, StartPipelineOptions } from "./client.ts";
export type { ListJobsFilter, RetryCandidate, RetryFilter } from "./reader.ts";
export type {
  ActorKeyView,
  ActorStatsView,
  InstanceView,
  JobBriefView,
  PauseView,
  WorkersView,
} from "./operations.ts";
export type { Tables } from "./sql/tables.ts";
export {
  type DeadLetterView,
  isTerminal,
  JOB_STATUSES,
  type JobStatus,
  type JobView,
  type Page,
} from "./views.ts";

/** Stores messages as jobs, runs them through the transport with per-key leases, commits results, state and sent messages atomically, retries and dead-letters by policy. */
export class Runtime implements Consumer {
  /** The database it runs on. */
  readonly db: SqlDatabase;
  /** The transport that delivers its messages. */
  readonly transport: Transport;
  /** This process's id in leases. */
  readonly workerId: string;
  /** The runtime's logger. */
  readonly log: Logger;
  /** The actors it runs, by name. */
  readonly actors: ReadonlyMap<string, AnyActor>;
  /** The names of the runtime's tables, in its schema. */
  readonly tables: Tables;
  readonly #leaseMs: number;
  readonly #maintenanceMs: number;
  readonly #backgroundTimers: boolean;
  readonly #events = new JobEvents();
  readonly #relay: JobEventRelay;
  readonly #reader: JobReader;
  readonly #publisher: Publisher;
  readonly #client: RuntimeClient;
  readonly #committer: Committer;
  readonly #leases: LeaseKeeper;
  readonly #dispatcher: Dispatcher;
  readonly #background: BackgroundTasks;
  readonly #ops: Operations;
  #started = false;
  #stopping = false;

  /** Builds a runtime; nothing runs before `start()`. */
  constructor(options: RuntimeOptions) {
    this.db = options.db;
    this.transport = options.transport;
    this.tables = tables(options.schema ?? "public");
    this.workerId = options.workerId ?? `w-${uuidv7().slice(-12)}`;
    this.log = options.logger ?? jsonLogger("info");
    const actors = new Map<string, AnyActor>();
    for (const def of options.actors) {
      if (actors.has(def.name)) throw new TypeError(`actor ${def.name} is defined twice`);
      actors.set(def.name, def);
    }
    this.actors = actors;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#maintenanceMs = options.maintenanceMs ?? 60_000;
    this.#backgroundTimers = options.backgroundTimers ?? true;
    const observer = options.observer ?? silentObserver;
    const tracing = options.tracing ?? noTracing;
    const common = { db: this.db, tables: this.tables, log: this.log };
    const unorderedActors = [...actors.values()].filter((a) => !a.policy.ordered)
      .map((a) => a.name);
    const batches = defaultBatches(
      options.db.shared,
      actors.size > 0 && unorderedActors.length === actors.size,
    );
    this.#background = new BackgroundTasks(this.log);
    this.#reader = new JobReader(this.db, this.tables);
    this.#relay = new JobEventRelay(this.db, this.tables.jobEventsChannel, this.log);
    this.#events.subscribe((id) => this.#relay.changed(id));
    const forget = (id: string) => this.#reader.forget(id);
    const executor = new Executor({
      db: this.db,
      tables: this.tables,
      actors,
      logger: this.log,
      onProgress: (id) => this.#events.emit(id),
      tracing,
    });
    this.#publisher = new Publisher({
      ...common,
      transport: this.transport,
      actors,
      actor: (name) => this.actor(name),
      executor,
      events: this.#events,
      forget,
    });
    this.#client = new RuntimeClient({
      ...common,
      actors,
      reader: this.#reader,
      publisher: this.#publisher,
      executor,
      events: this.#events,
      observer,
      tracing,
    });
    this.#committer = new Committer({
      ...common,
      workerId: this.workerId,
      commitBatch: options.commitBatch ?? batches.commit,
      actors,
      executor,
      publisher: this.#publisher,
      observer,
    });
    this.#leases = new LeaseKeeper({
      ...common,
      workerId: this.workerId,
      leaseMs: this.#leaseMs,
      maxLeaseLosses: Math.max(1, options.maxLeaseLosses ?? 2),
      actors,
      executor,
      publisher: this.#publisher,
      transport: this.transport,
      events: this.#events,
      forget,
      observer,
    });
    const concurrency = options.concurrency ?? batches.concurrency;
    const pauseRecheckMs = Math.max(1000, options.pauseRecheckMs ?? 30_000);
    this.#ops = new Operations({
      ...common,
      workerId: this.workerId,
      transport: this.transport,
      policy: (name) => actors.get(name)?.policy,
      pauseRecheckMs,
      actorNames: [...actors.keys()],
      concurrency,
      inFlight: () => this.#dispatcher.inFlight,
      beatMs: Math.max(1000, Math.floor(this.#leaseMs / 3)),
    });
    this.#dispatcher = new Dispatcher({
      ...common,
      workerId: this.workerId,
      actorNames: [...actors.keys()],
      unorderedActors,
      concurrency,
      claimBatch: options.claimBatch ?? batches.claim,
      tenantWeights: checkTenantWeights(options.tenantWeights),
      leaseMs: this.#leaseMs,
      foregroundDeferMs: Math.max(0, options.foregroundDeferMs ?? 2000),
      foregroundConcurrency: Math.max(1, options.foregroundConcurrency ?? 1),
      executor,
      committer: this.#committer,
      leases: this.#leases,
      transport: this.transport,
      policy: (name) => this.actor(name).policy,
      pauseRecheckMs,
      onDelivery: () => this.#ops.touch(),
      events: this.#events,
    });
    // Pull claims ride in the commits' transactions when they can (`Dispatcher.claimAlong`).
    this.#committer.claims = this.#dispatcher;
  }

  /**
   * Starts the transport and the background loops. A background task that fails (the reaper,
   * the lease heartbeat, the outbox relay, the vacuum, the first reap here) never stops the
   * process: it is logged, counted in {@link Runtime.maintenanceFailures} and runs again on
   * its next tick.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#committer.leasesReturned = false;
    this.#relay.startPublishing();
    await this.#reader.start();
    await this.#leases.watchCancels();
    const bg = this.#background;
    // Outbox rows are written for the transport: a crash may leave some for the relay.
    const relay = this.transport.inTransaction.outbox;
    if (this.#backgroundTimers) {
      const beat = Math.max(100, Math.floor(this.#leaseMs / 3));
      bg.every("heartbeat", beat, () => this.#leases.heartbeat());
      bg.every("instance heartbeat", Math.max(1000, beat), () => this.#ops.beat());
      bg.every("reaper", Math.max(200, Math.floor(this.#leaseMs / 2)), () => this.reap());
      if (relay) bg.every("outbox relay", 2000, () => this.relayOutbox());
      if (!this.db.autovacuum) bg.every("vacuum", this.#maintenanceMs, () => this.maintain());
    }
    await bg.run("reaper", () => this.reap());
    await bg.run("instance heartbeat", () => this.#ops.beat());
    await this.transport.start(this);
    if (relay) await bg.run("outbox relay", () => this.relayOutbox());
  }

  /** Background tasks that failed since this runtime was made (each retried on its next tick). */
  get maintenanceFailures(): number {
    return this.#background.failures;
  }

  /**
   * Takes back the jobs of this runtime's actors whose lease is gone (see `reapJobs`): requeued,
   * or dead-lettered with their actor's `onDeadLetter` messages. Returns how many were reaped.
   */
  async reap(): Promise<number> {
    return await this.#leases.reap();
  }

  /** One pass of the background loops' work, for hosts without timers (`./maintenance.ts`). */
  maintenancePass(at: Date = new Date()): Promise<MaintenanceResult> {
    return maintenancePass(
      {
        actors: this.actors,
        reap: () => this.reap(),
        relayOutbox: () => this.relayOutbox(),
        fireSchedule: (name, when) => this.fireDueSchedule(name, when),
      },
      this.#background,
      at,
    );
  }

  /**
   * Stops claiming, waits up to `graceMs` for running handlers, gives back the leases of those
   * still running (their jobs are claimable at once, not after the lease), relays the outbox,
   * then stops the loops.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.#started || this.#stopping) return;
    this.#stopping = true;
    this.#background.stopping = true;
    this.#dispatcher.beginStop();
    await this.transport.stop();
    await this.#dispatcher.drain(graceMs);
    this.#background.clear();
    await this.#committer.drained();
    // Handlers still running past the grace stop with this process: give their leases back so
    // that their jobs are requeued at once, and not counted as lost to a crash.
    await this.#leases.stop();
    this.#committer.leasesReturned = true;
    await this.#ops.stopped();
    // Messages committed but not yet handed over would wait for another instance's relay.
    if (this.transport.inTransaction.outbox) {
      await this.#background.run("outbox relay", () => this.#publisher.relayOutbox(0));
    }
    await this.#relay.stopPublishing();
    await this.#reader.stop();
    this.#started = false;
    this.#stopping = false;
    this.#background.stopping = false;
    this.#dispatcher.stopped();
  }

  /** The actor called `name`; throws `NotFoundError` when there is none. */
  actor(name: string): AnyActor {
    return this.#client.actor(name);
  }

  /**
   * Validates and enqueues a message; durable when it resolves. With an idempotency key, a
   * repeat of the same request (actor and input) returns the first job (`created: false`); a
   * different request with the same key throws `IdempotencyKeyReusedError` (409).
   */
  async enqueue<I = unknown>(
    actor: ActorTarget<I>,
    input: NoInfer<I>,
    options: EnqueueOptions = {},
  ): Promise<{ job: JobView; created: boolean }> {
    return await this.#client.enqueue(actor, input, options);
  }

  /**
   * Enqueues many messages to one actor in one transaction (all or none); returns the ids in
   * input order. With `idempotencyKeys`, each message gets its own key, and a key used before
   * with another input fails the whole call with `IdempotencyKeyReusedError`.
   */
  async enqueueMany<I = unknown>(
    actor: ActorTarget<I>,
    inputs: readonly NoInfer<I>[],
    options: Omit<SendOptions, "idempotencyKey"> & { idempotencyKeys?: readonly string[] } = {},
  ): Promise<string[]> {
    return await this.#client.enqueueMany(actor, inputs, options);
  }

  /**
   * Fans out: enqueues every part and a group that sends `then` (its input gets `group`, a
   * `GroupOutcome`) once all parts succeeded or one failed for good, in one transaction (see
   * `groups.ts`). Inputs are validated here (400); an idempotency key's repeat makes nothing.
   */
  async enqueueGroup(
    parts: readonly Message[],
    then: GroupThen,
    options: { tenantId?: string | null; idempotencyKey?: string } = {},
  ): Promise<{ groupId: string; jobIds: string[]; continuationId: string }> {
    return await this.#client.enqueueGroup(parts, then, options);
  }

  /**
   * Hands the transport outbox rows left behind (a crash between commit and hand-over); none
   * when the transport asks for no outbox rows. Returns how many it found.
   */
  async relayOutbox(): Promise<number> {
    return await this.#publisher.relayOutbox();
  }

  /**
   * Starts a pipeline: a parent job named `name` (not an actor's name) that no handler runs,
   * with its first job, in one transaction (with `effect`, which gets both ids). Every job sent
   * within it belongs to it; its status, progress and error follow them (see
   * `sql/pipelines.ts`). `onAbort` is sent, with `pipeline: {id, status, error}` added to its
   * input, when the runtime ends the pipeline (a cancel, a job failed or cancelled). Returns
   * the pipeline's job and the first job's id. With an idempotency key, a repeat returns the
   * first pipeline (`created: false`).
   */
  async startPipeline(
    name: string,
    first: { actor: ActorTarget; input: unknown },
    options: StartPipelineOptions = {},
  ): Promise<{ job: JobView; firstJobId: string; created: boolean }> {
    return await this.#client.startPipeline(name, first, options);
  }

  /**
   * Starts several pipelines (as {@link Runtime.startPipeline} starts one, with no idempotency
   * key) in one transaction, with `effect`, which gets their ids in order: all are started or
   * none. Returns each pipeline's id (its job's) and its first job's id, in order; the jobs
   * are not read back.
   */
  async startPipelines(
    starts: readonly PipelineStart[],
    effect?: (tx: SqlExecutor, ids: { pipelineId: string; jobId: string }[]) => Promise<void>,
  ): Promise<{ pipelineId: string; firstJobId: string }[]> {
    return await this.#client.startPipelines(starts, effect);
  }

  /** Cancels a job: a queued one at once, a running one by aborting its handler; finished: 409. */
  async cancel(id: string, tenantId?: string | null): Promise<JobView> {
    return await this.#client.cancel(id, tenantId);
  }

  /** Enqueues a dead letter's message again as a new job; a dead letter replays once. */
  async replay(deadLetterId: string, tenantId?: string | null): Promise<JobView> {
    return await this.#client.replay(deadLetterId, tenantId);
  }

  /**
   * The transport gave up delivering a message (e.g. QStash's failure callback after its last
   * retry). A job still queued becomes a failed job with a dead letter, replayable like any
   * other, and its actor's `onDeadLetter` messages commit with it; a running or finished job is
   * left alone (its handler decides). Idempotent.
   */
  async giveUp(
    jobId: string,
    error: { code: string; message: string },
  ): Promise<GiveUpOutcome> {
    return await this.#client.giveUp(jobId, error);
  }

  /**
   * A schedule's slot: enqueues the run of `actor` for the minute of `at` (`fireSchedule`) unless
   * its schedule is paused (`pauseSchedule`): then no job and `paused: true`.
   */
  async fireDueSchedule(
    actor: string,
    at: Date = new Date(),
  ): Promise<{ job: JobView | null; created: boolean; paused: boolean }> {
    if (await this.#ops.schedulePaused(this.actor(actor).name)) {
      return { job: null, created: false, paused: true };
    }
    return { ...await this.#client.fireSchedule(actor, at), paused: false };
  }

  /**
   * Enqueues the scheduled run of `actor` for the minute of `at`, once across instances, paused
   * schedule or not (the slots themselves go through `fireDueSchedule`).
   */
  async fireSchedule(
    actor: string,
    at: Date = new Date(),
  ): Promise<{ job: JobView; created: boolean }> {
    return await this.#client.fireSchedule(actor, at);
  }

  /** Registers every scheduled actor with a cron function (`Deno.cron` when embedded). */
  registerSchedules(
    cron: (name: string, schedule: string, fn: () => Promise<void>) => unknown,
  ): string[] {
    return this.#client.registerSchedules(cron, (actor) => this.fireDueSchedule(actor));
  }

  /**
   * Pauses `actor` (unknown: `NotFoundError`), idempotent: enqueues are still accepted, the
   * table queue claims none of its jobs and a pushed delivery of one comes back later without
   * using an attempt, until {@link Runtime.resume}. Jobs running already run to their end.
   */
  async pause(actor: string, by: string | null = null): Promise<PauseView> {
    return await this.#ops.pause(this.actor(actor).name, by);
  }

  /**
   * Resumes `actor`; returns whether it was paused. Its waiting jobs run again: table queues
   * look at once, and a push transport that reschedules gets their messages again at once.
   */
  async resume(actor: string): Promise<boolean> {
    return await this.#ops.resume(this.actor(actor).name);
  }

  /** The paused actors, by name. */
  async paused(): Promise<PauseView[]> {
    return await this.#ops.paused();
  }

  /**
   * Pauses `actor`'s schedule (unknown actor: `NotFoundError`; no schedule: `TypeError`),
   * idempotent and held in the database: its slots make no job until
   * {@link Runtime.resumeSchedule}. The actor's other jobs run as before.
   */
  async pauseSchedule(actor: string, by: string | null = null): Promise<PauseView> {
    const def = this.actor(actor);
    if (!def.schedule) throw new TypeError(`actor ${actor} has no schedule`);
    return await this.#ops.pauseSchedule(def.name, by);
  }

  /** Resumes `actor`'s schedule; returns whether it was paused. The next slot fires. */
  async resumeSchedule(actor: string): Promise<boolean> {
    return await this.#ops.resumeSchedule(this.actor(actor).name);
  }

  /** The paused schedules, by actor. */
  async pausedSchedules(): Promise<PauseView[]> {
    return await this.#ops.pausedSchedules();
  }

  /**
   * Instances seen within `sinceSeconds` (heartbeats, or deliveries taken on a push transport)
   * with the jobs running under their leases, and the delayed jobs; `tenantId` keeps only that
   * tenant's jobs and hides hosts.
   */
  async workers(
    filter: { tenantId?: string | null; sinceSeconds?: number; limit?: number } = {},
  ): Promise<WorkersView> {
    return await this.#ops.workers(filter);
  }

  /** Outcomes and p50/p99 handler durations per actor over the last hour, bounded. */
  async actorStats(
    filter: { tenantId?: string | null; windowSeconds?: number } = {},
  ): Promise<{ actors: ActorStatsView[]; sampled: boolean }> {
    return await this.#ops.actorStats(filter);
  }

  /** The keys `actor` leased last (state, live lease holder), in key order after `after`. */
  async actorKeys(
    actor: string,
    options: { limit?: number; after?: string } = {},
  ): Promise<ActorKeyView[]> {
    return await this.#ops.actorKeys(this.actor(actor).name, options);
  }

  /** Handler slots free in this process. */
  freeSlots(): number {
    return this.#dispatcher.freeSlots();
  }

  /**
   * Opens a foreground request (an upload being received) until the returned function is
   * called (once; more calls do nothing). While any is open the pull dispatcher claims no new
   * job for `foregroundDeferMs` (from the first of them), then only while fewer than
   * `foregroundConcurrency` are in flight, so that background work does not take the thread
   * the request is read on (the embedded database runs on it too) and a stalled upload delays
   * the queue by at most that long. Jobs already running go on, and full width comes back when
   * the last request closes. Pushed deliveries (QStash) are not held back: their pace is
   * QStash's flow control.
   */
  foreground(): () => void {
    return this.#dispatcher.foreground();
  }

  /** Pull: claims up to the free capacity and starts the handlers; returns how many. */
  async pump(): Promise<number> {
    return await this.#dispatcher.pump();
  }

  /** Push: runs one message to its end (or finds it done) and says what happened. */
  async deliver(jobId: string): Promise<DeliveryOutcome> {
    return await this.#dispatcher.deliver(jobId);
  }

  /** Vacuums and analyzes the runtime's tables (for databases without autovacuum). */
  async maintain(): Promise<void> {
    const started = Date.now();
    await vacuumTables(this.db, this.tables);
    this.log.debug("maintenance done", { ms: Date.now() - started });
  }

  /** Calls `fn(jobId)` whenever a job of this process changes; returns an unsubscribe. */
  subscribe(fn: (jobId: string) => void): () => void {
    return this.#events.subscribe(fn);
  }

  /**
   * Calls `fn(jobId)` whenever a job changes in this process or in any started instance on the
   * same database (batched NOTIFYs, see `event_relay.ts`; a notification may be lost, so a watcher
   * also reads now and then); resolves once listening, to an unsubscribe.
   */
  async subscribeAll(fn: (jobId: string) => void): Promise<() => void> {
    const local = this.#events.subscribe(fn);
    try {
      const remote = await this.#relay.watch(fn);
      return () => {
        local();
        remote();
      };
    } catch (err) {
      local();
      throw err;
    }
  }

  /**
   * One job. Reads are batched (ids asked for while a read runs go together in the next one)
   * and a finished job is served from memory for up to a minute (see `reader.ts`).
   */
  async getJob(id: string, tenantId?: string | null): Promise<JobView> {
    return await this.#reader.getJob(id, tenantId);
  }

  /** Jobs, newest first, by filter, one page at a time. */
  async listJobs(filter: ListJobsFilter = {}): Promise<Page<JobView>> {
    return await this.#reader.listJobs(filter);
  }

  /** Dead letters, newest first, one page at a time. */
  async listDeadLetters(
    filter: { actor?: string; tenantId?: string | null; limit?: number; cursor?: string } = {},
  ): Promise<Page<DeadLetterView>> {
    return await this.#reader.listDeadLetters(filter);
  }

  /**
   * The failed jobs matching `filter` whose dead letter is not replayed yet, oldest first: what a
   * bulk retry replays, each once, with `replay` (a dead letter replays once, so a second retry
   * of the same filter finds none of them).
   */
  async retryableFailures(filter: RetryFilter = {}): Promise<RetryCandidate[]> {
    return await this.#reader.retryableFailures(filter);
  }

  /** How many jobs of a pipeline are in each status. */
  async pipelineJobs(pipelineId: string): Promise<Record<JobStatus, number> & { total: number }> {
    return await this.#reader.pipelineJobs(pipelineId);
  }

  /** Database reachability, queue depth, failed background tasks; throws when the db is down. */
  async health(timeoutMs = 2000): Promise<{
    queued: number;
    running: number;
    deadLetters: number;
    inFlightHere: number;
    maintenanceFailures: number;
  }> {
    const counts = await this.#reader.queueCounts(timeoutMs);
    return {
      ...counts,
      inFlightHere: this.#dispatcher.inFlight,
      maintenanceFailures: this.#background.failures,
    };
  }

  /** Queue depth and oldest due wait per actor from at most `limit` queued jobs (for metrics). */
  async queueDepths(limit = 10_000): Promise<{ actors: QueueDepth[]; capped: boolean }> {
    return await this.#reader.queueDepths(limit);
  }
}

/**
 * The default `concurrency`, `claimBatch` and `commitBatch`. On a shared database (PostgreSQL,
 * Neon) two claimed batches are in flight, so the next claim overlaps the commit of the one
 * before; PGlite runs one statement at a time: one batch. A claim of keyed actors' jobs is
 * bounded by their keys (a key's jobs wait for its running chain), so it stays at 256; a runtime
 * whose actors are all `ordered: false` claims 512 at a time: each job runs on its own, and a
 * larger batch spreads each transaction's fixed cost (round trips, a WAL flush) over more jobs.
 */
function defaultBatches(
  shared: boolean,
  allUnordered: boolean,
): { concurrency: number; claim: number; commit: number } {
  if (!shared) return { concurrency: 256, claim: 256, commit: 512 };
  return allUnordered
    ? { concurrency: 1024, claim: 512, commit: 1024 }
    : { concurrency: 512, claim: 256, commit: 512 };
}
