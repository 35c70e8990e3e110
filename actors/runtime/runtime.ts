/**
 * The runtime: registry of actors, enqueue, the dispatcher (claims, leases, commits), the
 * background loops (lease heartbeat, reaper, outbox relay) and the job queries the API serves.
 */
import {
  type ActorTarget,
  type AnyActor,
  type GroupThen,
  type Message,
  type SendOptions,
  targetName,
} from "./define.ts";
import {
  CancelledError,
  ConflictError,
  type ErrorRecord,
  IdempotencyKeyReusedError,
  NotFoundError,
  toErrorRecord,
  TroupeError,
  ValidationError,
} from "./errors.ts";
import { Executor, prepareJob, prepareJobNow } from "./executor.ts";
import { buildGroup, endParts, parseGroup, writeGroup } from "./groups.ts";
import { deterministicId, requestHash, uuidv7 } from "./ids.ts";
import { upgradeInput } from "./versions.ts";
import { jsonLogger, type Logger, type SqlDatabase, type SqlExecutor } from "./ports.ts";
import {
  type ClaimedJob,
  claimJobs,
  claimOne,
  extendLeases,
  releaseLeases,
} from "./sql/claim_jobs.ts";
import { type CommitResult, completeJobs, type Completion } from "./sql/complete_jobs.ts";
import { insertJobs, type NewJob, type QueuedMessage, queuedMessage } from "./sql/insert_jobs.ts";
import { reapJobs } from "./sql/reap_jobs.ts";
import { type QueueDepth, queueDepths } from "./sql/queue_depth.ts";
import { type RuntimeObserver, silentObserver } from "./observer.ts";
import {
  type AbortHook,
  dropEnded,
  endPipeline,
  lockPipelines,
  type PipelineRecord,
  rollUp,
} from "./sql/pipelines.ts";
import type { Consumer, DeliveryOutcome, Transport } from "./transport.ts";

/** Every status a job can have. */
export const JOB_STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
/** A job's status. */
export type JobStatus = (typeof JOB_STATUSES)[number];
const TERMINAL = new Set<string>(["succeeded", "failed", "cancelled"]);
const FINISHED_TTL_MS = 60_000;
/** Most ids in one batched job read. */
const READ_BATCH_MAX = 500;
/** Batched job reads running at once on a shared (pooled) database. */
const READ_BATCHES_SHARED = 4;
const FINISHED_CACHE_SIZE = 10_000;

type CachedJob = JobView & { cachedUntil: number };

/** A job as the API shows it. */
export interface JobView {
  /** The job's id (a UUIDv7, or derived from its idempotency key). */
  id: string;
  /** The actor that runs it. */
  actor: string;
  /** The instance key. */
  key: string;
  /** The tenant, or null. */
  tenantId: string | null;
  /** Where the job is. */
  status: JobStatus;
  /** Progress 0-100 as the handler reported it. */
  progress: number;
  /** The handler's last progress message. */
  progressMessage: string | null;
  /** Attempts made so far. */
  attempts: number;
  /** Attempts allowed in all. */
  maxAttempts: number;
  /** Whether a cancellation was asked for. */
  cancelRequested: boolean;
  /** The validated input. */
  input: unknown;
  /** The handler's return value, once succeeded. */
  result: unknown;
  /** The last failure (an `ErrorRecord`), or null. */
  error: unknown;
  /** The job whose handler sent it, or null. */
  parentId: string | null;
  /** `job`, or `pipeline` for a parent that follows its jobs (see `startPipeline`). */
  kind: "job" | "pipeline";
  /** The pipeline the job belongs to. */
  pipelineId: string | null;
  /** A pipeline's progress as its workload reports it: `done` of `total` `unit`s. */
  pipeline: { done: number | null; total: number | null; unit: string | null } | null;
  /** The dead letter this job replays, or null. */
  replayOf: string | null;
  /** Not run before (ISO 8601). */
  runAt: string;
  /** When it was enqueued. */
  createdAt: string;
  /** When it last changed. */
  updatedAt: string;
  /** When its first attempt began. */
  startedAt: string | null;
  /** When it reached a terminal status. */
  finishedAt: string | null;
}

/** A message that failed for good, kept for inspection and replay. */
export interface DeadLetterView {
  /** The dead letter's id. */
  id: string;
  /** The job that failed. */
  jobId: string;
  /** Its actor. */
  actor: string;
  /** Its instance key. */
  key: string;
  /** Its tenant, or null. */
  tenantId: string | null;
  /** Its input. */
  input: unknown;
  /** The failure (an `ErrorRecord`). */
  error: unknown;
  /** Attempts made. */
  attempts: number;
  /** When it was dead-lettered. */
  createdAt: string;
  /** When it was replayed, or null. */
  replayedAt: string | null;
  /** The job the replay created, or null. */
  replayJobId: string | null;
}

/** One page of a list, and the cursor of the next (null at the end). */
export interface Page<T> {
  /** The items, in order. */
  items: T[];
  /** Pass as `cursor` to get the next page; null when there is none. */
  nextCursor: string | null;
}

/** What a `Runtime` is built from. */
export interface RuntimeOptions {
  /** The database holding the runtime's tables. */
  db: SqlDatabase;
  /** The actors this process runs (names must be unique). */
  actors: readonly AnyActor[];
  /** How committed messages reach the dispatcher. */
  transport: Transport;
  /** Where the runtime logs. @default a JSON-lines logger at `info` */
  logger?: Logger;
  /** Identifies this process in leases. @default a random id */
  workerId?: string;
  /** Messages in flight in this process (claimed, running or committing). @default 256 */
  concurrency?: number;
  /** Most jobs claimed in one query. @default 256 */
  claimBatch?: number;
  /**
   * How long the pull dispatcher claims no new work while foreground requests are open (see
   * {@link Runtime.foreground}), counted from the first of them; after it, it claims only
   * below `foregroundConcurrency`. @default 2000
   */
  foregroundDeferMs?: number;
  /**
   * Messages in flight while foreground requests have been open for `foregroundDeferMs`: the
   * pull dispatcher claims new work only below this. @default 1
   */
  foregroundConcurrency?: number;
  /** A key's lease lasts this long unless renewed (renewed every third of it). @default 30000 */
  leaseMs?: number;
  /** Most completions committed in one transaction. @default 512 */
  commitBatch?: number;
  /** How often to vacuum the runtime's tables on a database without autovacuum. @default 60000 */
  maintenanceMs?: number;
  /**
   * A job that was running this many times when its process stopped (its lease lapsed and the
   * reaper took it back) is dead-lettered as `POISON_JOB` instead of being run again.
   * @default 2
   */
  maxLeaseLosses?: number;
  /** Told of each committed attempt, dead letter and heartbeat (metrics). @default none */
  observer?: RuntimeObserver;
}

type Row = Record<string, unknown>;

interface PendingCommit {
  completion: Completion;
  actor: string;
  /** Time in the handler, for the observer. */
  ms: number;
  fallback: (err: unknown) => Completion | null;
  resolve: (r: CommitResult) => void;
  reject: (e: unknown) => void;
}

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
  readonly #executor: Executor;
  readonly #concurrency: number;
  readonly #claimBatch: number;
  readonly #leaseMs: number;
  readonly #commitBatch: number;
  readonly #refillAt: number;
  readonly #maintenanceMs: number;
  readonly #maxLeaseLosses: number;
  readonly #observer: RuntimeObserver;
  /** Background tasks (reaper, heartbeat, relay, vacuum) that failed since the start. */
  #maintenanceFailures = 0;
  readonly #actorNames: string[];
  /** Keys whose lease this process holds, with the fencing token. */
  readonly #held = new Map<string, number>();
  readonly #groups = new Set<Promise<void>>();
  readonly #listeners = new Set<(jobId: string) => void>();
  #inFlight = 0;
  #foreground = 0;
  /** When the open foreground requests began (the first of those that overlap). */
  #heldSince = 0;
  #deferTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #foregroundConcurrency: number;
  readonly #foregroundDeferMs: number;
  #timers: ReturnType<typeof setInterval>[] = [];
  #unlisten: (() => Promise<void>) | undefined;
  #started = false;
  #stopping = false;
  #queue: PendingCommit[] = [];
  #flushing: Promise<void> | null = null;
  readonly #finished = new Map<string, CachedJob>();
  /** Job reads waiting for the next batched query, by id. */
  readonly #readQueue = new Map<string, PromiseWithResolvers<CachedJob | null>>();
  #readsInFlight = 0;
  /** Chains (key + fence) with a link that did not commit as computed. */
  readonly #broken = new Set<string>();

  /** Builds a runtime; nothing runs before `start()`. */
  constructor(options: RuntimeOptions) {
    this.db = options.db;
    this.transport = options.transport;
    this.workerId = options.workerId ?? `w-${uuidv7().slice(-12)}`;
    this.log = options.logger ?? jsonLogger("info");
    const actors = new Map<string, AnyActor>();
    for (const def of options.actors) {
      if (actors.has(def.name)) throw new TypeError(`actor ${def.name} is defined twice`);
      actors.set(def.name, def);
    }
    this.actors = actors;
    this.#actorNames = [...actors.keys()];
    this.#concurrency = options.concurrency ?? 256;
    this.#claimBatch = options.claimBatch ?? 256;
    this.#foregroundConcurrency = Math.max(1, options.foregroundConcurrency ?? 1);
    this.#foregroundDeferMs = Math.max(0, options.foregroundDeferMs ?? 2000);
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#commitBatch = options.commitBatch ?? 512;
    this.#maintenanceMs = options.maintenanceMs ?? 60_000;
    this.#maxLeaseLosses = Math.max(1, options.maxLeaseLosses ?? 2);
    this.#observer = options.observer ?? silentObserver;
    this.#refillAt = Math.max(1, Math.min(this.#claimBatch, Math.floor(this.#concurrency / 4)));
    this.#executor = new Executor({
      db: this.db,
      actors,
      logger: this.log,
      onProgress: (id) => this.#emit(id),
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Starts the transport and the background loops. A background task that fails (the reaper,
   * the lease heartbeat, the outbox relay, the vacuum, the first reap here) never stops the
   * process: it is logged, counted in {@link Runtime.maintenanceFailures} and runs again on
   * its next tick.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#unlisten = await this.db.listen("troupe_cancel", (id) => {
      this.#executor.abort(id, new CancelledError());
    });
    const every = (task: string, ms: number, fn: () => Promise<unknown>) => {
      let busy = false;
      this.#timers.push(setInterval(() => {
        if (busy || this.#stopping) return;
        busy = true;
        this.#guard(task, fn).finally(() => busy = false);
      }, ms));
    };
    every("heartbeat", Math.max(100, Math.floor(this.#leaseMs / 3)), () => this.#heartbeat());
    every("reaper", Math.max(200, Math.floor(this.#leaseMs / 2)), () => this.reap());
    if (this.transport.mode === "push") every("outbox relay", 2000, () => this.relayOutbox());
    if (!this.db.autovacuum) every("vacuum", this.#maintenanceMs, () => this.maintain());
    await this.#guard("reaper", () => this.reap());
    await this.transport.start(this);
    if (this.transport.mode === "push") await this.#guard("outbox relay", () => this.relayOutbox());
  }

  /** Background tasks that failed since this runtime was made (each retried on its next tick). */
  get maintenanceFailures(): number {
    return this.#maintenanceFailures;
  }

  /** Runs a background task; a failure is logged and counted, never thrown. */
  async #guard(task: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#maintenanceFailures++;
      this.log.error("background task failed; it runs again on its next tick", {
        task,
        error: String(err),
        failures: this.#maintenanceFailures,
      });
    }
  }

  /**
   * Takes back the jobs of this runtime's actors whose lease is gone (see `reapJobs`): requeued,
   * or dead-lettered with their actor's `onDeadLetter` messages. Returns how many were reaped.
   */
  async reap(): Promise<number> {
    const { reaped, poisoned, lapsed, sent, cancelled } = await reapJobs(this.db, {
      actors: this.#actorNames,
      maxLeaseLosses: this.#maxLeaseLosses,
      outbox: this.transport.mode === "push",
      hook: this.#hook,
      deadLetterSends: (job, error) =>
        this.#executor.deadLetterSends(job, this.actors.get(job.actor), error),
    });
    for (const job of lapsed) this.#observer.deadLettered(job.actor, "lease_expired");
    for (const job of poisoned) {
      this.#observer.deadLettered(job.actor, "poison");
      this.log.error("poison job dead-lettered: its process stopped each time it ran", {
        jobId: job.id,
        actor: job.actor,
        key: job.key,
        leaseLosses: job.lease_losses,
      });
    }
    for (const id of reaped) {
      this.#finished.delete(id);
      this.#emit(id);
    }
    this.#stopped(cancelled, []);
    await this.#afterCommit(sent);
    if (reaped.length > 0) this.transport.wake();
    return reaped.length;
  }

  /** Stops claiming, waits up to `graceMs` for running handlers, then stops the loops. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.#started || this.#stopping) return;
    this.#stopping = true;
    await this.transport.stop();
    const deadline = new Promise((r) => {
      const t = setTimeout(r, graceMs);
      Deno.unrefTimer(t);
    });
    await Promise.race([Promise.allSettled([...this.#groups]), deadline]);
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    clearTimeout(this.#deferTimer);
    await this.#flushing;
    // Handlers still running past the grace stop with this process: give their leases back so
    // that their jobs are requeued at once, and not counted as lost to a crash.
    const held = [...this.#held].map(([key, fence]) => ({ key, fence }));
    await releaseLeases(this.db, this.workerId, held).catch((err) =>
      this.log.warn("leases not given back at stop; they lapse", { error: String(err) })
    );
    await this.#unlisten?.();
    this.#started = false;
    this.#stopping = false;
  }

  // ---------------------------------------------------------------- enqueue

  /** The actor called `name`; throws `NotFoundError` when there is none. */
  actor(name: string): AnyActor {
    const def = this.actors.get(name);
    if (!def) throw new NotFoundError("actor", name);
    return def;
  }

  /**
   * Validates and enqueues a message; durable when it resolves. With an idempotency key, a
   * repeat of the same request (actor and input) returns the first job (`created: false`); a
   * different request with the same key throws `IdempotencyKeyReusedError` (409).
   */
  async enqueue<I = unknown>(
    actor: ActorTarget<I>,
    input: NoInfer<I>,
    options: SendOptions & {
      /**
       * Database work committed in the same transaction as the message (e.g. the row the job
       * will process): both happen or neither. Not run when an idempotency key repeats.
       */
      effect?: (tx: SqlExecutor, jobId: string) => Promise<void>;
    } = {},
  ): Promise<{ job: JobView; created: boolean }> {
    const { effect, ...sendOptions } = options;
    const row = await prepareJob(this.actor(targetName(actor)), input, sendOptions);
    const key = sendOptions.idempotencyKey;
    if (key !== undefined) row.requestHash = requestHash(row.actor, row.input);
    const push = this.transport.mode === "push";
    const created = await this.db.transaction(async (tx) => {
      const inserted = await insertJobs(tx, [row], { outbox: push });
      if (inserted.length && effect) await effect(tx, row.id);
      if (!inserted.length && key !== undefined) {
        await checkRepeats(tx, [{ id: row.id, hash: row.requestHash!, key }]);
      }
      return inserted;
    });
    await this.#afterCommit(created);
    const job = await this.getJob(row.id);
    if (!created.length && options.tenantId !== undefined && job.tenantId !== options.tenantId) {
      throw new ConflictError("idempotency key already used by another tenant");
    }
    return { job, created: created.length > 0 };
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
    const def = this.actor(targetName(actor));
    const { idempotencyKeys, ...rest } = options;
    const rows = await Promise.all(inputs.map((input, i) => {
      const idempotencyKey = idempotencyKeys?.[i];
      return prepareJob(def, input, idempotencyKey ? { ...rest, idempotencyKey } : rest);
    }));
    const keyed = rows.flatMap((row, i) => {
      const key = idempotencyKeys?.[i];
      if (!key) return [];
      row.requestHash = requestHash(row.actor, row.input);
      return [{ id: row.id, hash: row.requestHash, key }];
    });
    const push = this.transport.mode === "push";
    const created = await this.db.transaction(async (tx) => {
      const inserted = await insertJobs(tx, rows, { outbox: push });
      if (inserted.length < rows.length) {
        const fresh = new Set(inserted.map((m) => m.id));
        await checkRepeats(tx, keyed.filter((k) => !fresh.has(k.id)));
      }
      return inserted;
    });
    await this.#afterCommit(created);
    return rows.map((r) => r.id);
  }

  /**
   * Fans out: enqueues every part and, in the same transaction, a group that sends `then` once
   * when all parts have succeeded or one has failed for good (see `groups.ts`): `then`'s input
   * gets `group` (a `GroupOutcome`). Every input is validated here (400). With an idempotency
   * key, a repeat makes nothing new and returns the same ids.
   */
  async enqueueGroup(
    parts: readonly Message[],
    then: GroupThen,
    options: { tenantId?: string | null; idempotencyKey?: string } = {},
  ): Promise<{ groupId: string; jobIds: string[]; continuationId: string }> {
    const tenantId = options.tenantId ?? null;
    const key = options.idempotencyKey;
    const groupId = key ? await deterministicId("group", tenantId ?? "", key) : uuidv7();
    const made = await buildGroup(
      parseGroup((a) => this.actor(targetName(a)), parts, then),
      { id: groupId, tenantId, parentId: null, pipelineId: null },
      key ? (i) => `${groupId}/${i}` : undefined,
    );
    const outbox = this.transport.mode === "push";
    const sent = await this.db.transaction((tx) => writeGroup(tx, made, { outbox }));
    await this.#afterCommit(sent);
    return {
      groupId,
      jobIds: made.row?.parts ?? [],
      continuationId: `${groupId}-then`,
    };
  }

  async #afterCommit(sent: readonly QueuedMessage[]): Promise<void> {
    if (sent.length === 0) return;
    if (this.transport.mode === "pull") {
      this.transport.wake();
      return;
    }
    await this.transport.publish(
      sent.map((m) => ({ ...m, policy: this.actor(m.actor).policy })),
    );
    await this.db.query("DELETE FROM troupe_outbox WHERE job_id = ANY($1::text[])", [
      sent.map((m) => m.id),
    ]);
  }

  /** Publishes outbox rows left behind (a crash between commit and publish). */
  async relayOutbox(): Promise<number> {
    const rows = await this.db.query<{ id: string; actor: string; key: string; run_at: unknown }>(
      `SELECT j.id, j.actor, j.key, j.run_at
       FROM troupe_outbox o JOIN troupe_jobs j ON j.id = o.job_id
       WHERE o.created_at < now() - interval '1 second'
       ORDER BY o.created_at LIMIT 500`,
    );
    await this.#afterCommit(rows.filter((r) => this.actors.has(r.actor)).map(queuedMessage));
    return rows.length;
  }

  // ---------------------------------------------------------------- dispatch (pull)

  freeSlots(): number {
    return this.#stopping ? 0 : this.#concurrency - this.#inFlight;
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
    if (this.#foreground++ === 0) {
      this.#heldSince = performance.now();
      if (this.#foregroundDeferMs > 0) {
        // Wakes the dispatcher when the pause ends, as a closing request does.
        this.#deferTimer = setTimeout(() => this.transport.wake(), this.#foregroundDeferMs);
        Deno.unrefTimer(this.#deferTimer);
      }
    }
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      if (--this.#foreground === 0) {
        clearTimeout(this.#deferTimer);
        this.transport.wake();
      }
    };
  }

  /** New messages the dispatcher may claim now (see {@link Runtime.foreground}). */
  #claimable(): number {
    if (this.#foreground === 0) return this.freeSlots();
    if (performance.now() - this.#heldSince < this.#foregroundDeferMs) return 0;
    return Math.min(this.freeSlots(), this.#foregroundConcurrency - this.#inFlight);
  }

  async pump(): Promise<number> {
    const held = this.#foreground > 0;
    const free = this.#claimable();
    // Refill in batches: claiming one job per freed slot costs a query per job.
    if (free <= 0 || (!held && this.#inFlight > 0 && free < this.#refillAt)) return 0;
    const limit = Math.min(free, this.#claimBatch);
    this.#inFlight += limit;
    let jobs: ClaimedJob[] = [];
    try {
      jobs = await claimJobs(this.db, {
        actors: this.#actorNames,
        limit,
        workerId: this.workerId,
        leaseMs: this.#leaseMs,
      });
    } finally {
      this.#inFlight -= limit - jobs.length;
    }
    const groups = new Map<string, ClaimedJob[]>();
    for (const job of jobs) {
      const group = groups.get(job.key);
      if (group) group.push(job);
      else groups.set(job.key, [job]);
    }
    for (const group of groups.values()) this.#track(this.#runGroup(group));
    return jobs.length;
  }

  #track(p: Promise<void>): void {
    this.#groups.add(p);
    p.finally(() => {
      this.#groups.delete(p);
      this.transport.wake();
    });
  }

  /**
   * Runs the claimed jobs of one key in order, under the one lease they were claimed with.
   * Pipelined: the next handler runs on the state the previous one left while that one is
   * still being committed; if a commit does not go through as computed, the jobs after it
   * come back `stale` and run again on the committed state.
   */
  async #runGroup(jobs: ClaimedJob[]): Promise<void> {
    const first = jobs[0]!;
    const { key, lease_fence: fence } = first;
    this.#held.set(key, fence);
    let state: unknown = first.state;
    let next = 0;
    let settled = 0;
    try {
      while (next < jobs.length) {
        const window = jobs.slice(next);
        const pending: Promise<CommitResult>[] = [];
        let speculative = state;
        for (const [i, job] of window.entries()) {
          const began = performance.now();
          const completion = await this.#executor.execute(job, speculative);
          completion.release = next + i === jobs.length - 1;
          const committed = this.#commit(completion, job, performance.now() - began);
          committed.catch(() => {}).finally(() => this.#executor.leaveQuarantine(job.id));
          pending.push(committed);
          if (completion.outcome === "succeeded" && completion.state) {
            speculative = completion.state.value;
          }
        }
        const results = await Promise.allSettled(pending);
        let restartAt = -1;
        let stop = false;
        for (const [i, r] of results.entries()) {
          const job = window[i]!;
          if (r.status === "rejected") {
            this.log.error("commit failed", { jobId: job.id, error: String(r.reason) });
            stop = true;
            break;
          }
          if (r.value === "fenced") {
            this.log.warn("lease lost; leaving the rest to the new owner", { key });
            stop = true;
            break;
          }
          if (r.value === "stale") {
            restartAt = next + i;
            break;
          }
          settled++;
          this.#inFlight--;
          this.#emit(job.id);
          if (r.value === "duplicate" && i < window.length - 1) {
            restartAt = next + i + 1;
            break;
          }
        }
        if (stop || restartAt < 0) break;
        this.#broken.delete(`${key}\u0000${fence}`);
        state = await this.#loadState(key);
        next = restartAt;
      }
    } finally {
      this.#inFlight -= jobs.length - settled;
      this.#broken.delete(`${key}\u0000${fence}`);
      if (this.#held.get(key) === fence) this.#held.delete(key);
      if (settled < jobs.length) {
        // Give the lease back so the reaper requeues the rest at once.
        await releaseLeases(this.db, this.workerId, [{ key, fence }]).catch(() => {});
      }
    }
  }

  async #loadState(key: string): Promise<unknown> {
    const rows = await this.db.query<{ state: unknown }>(
      "SELECT state FROM troupe_actor_state WHERE key = $1",
      [key],
    );
    return rows[0]?.state ?? null;
  }

  // ---------------------------------------------------------------- dispatch (push)

  async deliver(jobId: string): Promise<DeliveryOutcome> {
    const rows = await this.db.query<
      { key: string; status: string; processed: boolean; wait_ms: number }
    >(
      `SELECT j.key, j.status, EXISTS (
         SELECT 1 FROM troupe_processed_messages p WHERE p.message_id = j.id) AS processed,
         greatest(0, ceil(extract(epoch FROM j.run_at - now()) * 1000))::int AS wait_ms
       FROM troupe_jobs j WHERE j.id = $1`,
      [jobId],
    );
    const row = rows[0];
    if (!row) {
      const seen = await this.db.query(
        "SELECT 1 FROM troupe_processed_messages WHERE message_id = $1",
        [jobId],
      );
      return { status: seen.length ? "duplicate" : "unknown" };
    }
    if (TERMINAL.has(row.status)) return { status: row.status as "succeeded" };
    // Redelivered while running: its process may have stopped (a lost lease is counted, and a
    // poison job dead-lettered, only by the reaper), so reap before trying to claim it.
    if (row.status === "running") await this.reap();
    // Early (a retry's backoff or a delay not over yet): come back when it is due.
    if (row.status === "queued" && row.wait_ms > 50) {
      return { status: "busy", retryInMs: row.wait_ms };
    }
    if (this.freeSlots() <= 0) return { status: "busy", retryInMs: 100 };
    this.#inFlight++;
    try {
      const { job } = await claimOne(this.db, {
        id: jobId,
        key: row.key,
        workerId: this.workerId,
        leaseMs: this.#leaseMs,
      });
      if (!job) {
        const now = await this.db.query<{ status: string }>(
          "SELECT status FROM troupe_jobs WHERE id = $1",
          [jobId],
        );
        const status = now[0]?.status ?? "unknown";
        return TERMINAL.has(status)
          ? { status: status as "succeeded" }
          : { status: "busy", retryInMs: 250 };
      }
      this.#held.set(job.key, job.lease_fence);
      try {
        const began = performance.now();
        const completion = await this.#executor.execute(job, job.state);
        completion.release = true;
        const result = await this.#commit(completion, job, performance.now() - began)
          .finally(() => this.#executor.leaveQuarantine(job.id));
        this.#emit(job.id);
        if (result === "fenced") return { status: "busy", retryInMs: 250 };
        if (result === "duplicate") return { status: "duplicate" };
        if (completion.outcome === "retry") {
          return { status: "retry", retryInMs: completion.retryInMs ?? 1000 };
        }
        return { status: completion.outcome };
      } finally {
        this.#broken.delete(`${job.key}\u0000${job.lease_fence}`);
        if (this.#held.get(job.key) === job.lease_fence) this.#held.delete(job.key);
      }
    } finally {
      this.#inFlight--;
    }
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
  ): Promise<"dead-lettered" | "running" | "finished" | "unknown"> {
    // Its pipeline's row is locked before the job's, as a commit does (see `sql/pipelines.ts`).
    const [found] = await this.db.query<{ pipeline_id: string | null }>(
      "SELECT pipeline_id FROM troupe_jobs WHERE id = $1",
      [jobId],
    );
    const outcome = await this.db.transaction(async (tx) => {
      const pipelines = await lockPipelines(tx, [found?.pipeline_id]);
      const rows = await tx.query<{ status: string }>(
        "SELECT status FROM troupe_jobs WHERE id = $1 FOR UPDATE",
        [jobId],
      );
      const status = rows[0]?.status;
      const none = { sent: [], cancelled: [] };
      if (status === undefined) return { outcome: "unknown" as const, ...none };
      if (status === "running") return { outcome: "running" as const, ...none };
      if (status !== "queued") return { outcome: "finished" as const, ...none };
      const record: ErrorRecord = { ...error, retryable: true, at: new Date().toISOString() };
      const [job] = await tx.query<
        { actor: string; tenant_id: string | null; input: unknown; group_id: string | null }
      >(
        `WITH upd AS (
           UPDATE troupe_jobs SET status = 'failed', error = $2::jsonb, finished_at = now(),
             updated_at = now(), lease_owner = NULL
           WHERE id = $1
           RETURNING id, actor, key, tenant_id, input, input_version, attempts, group_id
         ), dl AS (
           INSERT INTO troupe_dead_letters (id, job_id, actor, key, tenant_id, input,
             input_version, error, attempts)
           SELECT $3, id, actor, key, tenant_id, input, input_version, $2::jsonb, attempts
           FROM upd
         )
         SELECT actor, tenant_id, input, group_id FROM upd`,
        [jobId, JSON.stringify(record), uuidv7()],
      );
      const pipelineId = found?.pipeline_id ?? null;
      const sends: NewJob[] = job
        ? this.#executor.deadLetterSends(
          { id: jobId, input: job.input, tenant_id: job.tenant_id, pipeline_id: pipelineId },
          this.actors.get(job.actor),
          record,
        )
        : [];
      const outbox = this.transport.mode === "push";
      const sent = await insertJobs(tx, dropEnded(sends, pipelines), { outbox });
      if (job?.group_id) {
        const ends = [{ jobId, groupId: job.group_id, status: "failed" as const, error: record }];
        const keep = (j: NewJob) => dropEnded([j], pipelines).length > 0;
        sent.push(...await endParts(tx, ends, { outbox, keep }));
      }
      const rolled = pipelineId
        ? await rollUp(
          tx,
          pipelines,
          [{
            pipelineId,
            status: "failed",
            error: record,
            handled: sends.length > 0 || !!job?.group_id,
          }],
          this.#hook,
          { outbox },
        )
        : { sent: [], cancelled: [] };
      return {
        outcome: "dead-lettered" as const,
        actor: job?.actor,
        sent: [...sent, ...rolled.sent],
        cancelled: rolled.cancelled,
      };
    });
    if (outcome.outcome === "dead-lettered") {
      if (outcome.actor) this.#observer.deadLettered(outcome.actor, "undeliverable");
      this.#finished.delete(jobId);
      this.#emit(jobId);
      this.#stopped(outcome.cancelled, [found?.pipeline_id]);
      await this.#afterCommit(outcome.sent).catch((err) =>
        this.log.warn("publish after commit failed; the relay will retry", { error: String(err) })
      );
    }
    return outcome.outcome;
  }

  // ---------------------------------------------------------------- commit

  /** Queues a completion for the next group commit. */
  #commit(completion: Completion, job: ClaimedJob, ms: number): Promise<CommitResult> {
    const def = this.actors.get(job.actor);
    const fallback = (err: unknown): Completion | null =>
      completion.outcome === "succeeded"
        ? { ...this.#executor.failure(completion, job, def, err), release: completion.release }
        : null;
    return new Promise((resolve, reject) => {
      this.#queue.push({ completion, actor: job.actor, ms, fallback, resolve, reject });
      this.#flushing ??= this.#flush().finally(() => this.#flushing = null);
    });
  }

  async #flush(): Promise<void> {
    const push = this.transport.mode === "push";
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#commitBatch).filter((item) => {
        if (!this.#broken.has(chainOf(item.completion))) return true;
        item.resolve("stale");
        return false;
      });
      if (batch.length === 0) continue;
      try {
        const { results, sent, cancelled } = await this.db.transaction((tx) =>
          completeJobs(tx, this.workerId, batch.map((b) => b.completion), {
            outbox: push,
            hook: this.#hook,
          })
        );
        batch.forEach((b, i) => this.#settle(b, results[i]!));
        this.#stopped(cancelled, batch.map((b) => b.completion.pipelineId));
        await this.#afterCommit(sent).catch((err) =>
          this.log.warn("publish after commit failed; the relay will retry", {
            error: String(err),
          })
        );
      } catch {
        // Commit one by one so one bad completion (a failing effect) does not sink the rest.
        for (const item of batch) await this.#commitAlone(item, push);
      }
    }
  }

  /** Resolves a commit; a chain whose link did not commit as computed is broken after it. */
  #settle(item: PendingCommit, result: CommitResult, committed?: Completion): void {
    if (result !== "committed" || committed) this.#broken.add(chainOf(item.completion));
    if (result === "committed") {
      const { outcome, deadLetter } = committed ?? item.completion;
      this.#observer.jobFinished(item.actor, outcome, item.ms);
      if (outcome === "failed" && deadLetter !== false) {
        this.#observer.deadLettered(item.actor, "failed");
      }
    }
    item.resolve(result);
  }

  async #commitAlone(item: PendingCommit, push: boolean) {
    if (this.#broken.has(chainOf(item.completion))) {
      item.resolve("stale");
      return;
    }
    try {
      const { results, sent, cancelled } = await this.db.transaction((tx) =>
        completeJobs(tx, this.workerId, [item.completion], { outbox: push, hook: this.#hook })
      );
      this.#settle(item, results[0]!);
      this.#stopped(cancelled, [item.completion.pipelineId]);
      await this.#afterCommit(sent).catch(() => {});
      return;
    } catch (err) {
      const failed = item.fallback(err);
      if (!failed) {
        this.#broken.add(chainOf(item.completion));
        item.reject(err);
        return;
      }
      this.log.warn("commit of a success failed; recording the attempt as failed", {
        jobId: item.completion.id,
        error: String(err),
      });
      try {
        const { results, sent, cancelled } = await this.db.transaction((tx) =>
          completeJobs(tx, this.workerId, [failed], { outbox: push, hook: this.#hook })
        );
        this.#settle(item, results[0]!, failed);
        this.#stopped(cancelled, [failed.pipelineId]);
        await this.#afterCommit(sent).catch(() => {});
      } catch (err2) {
        this.#broken.add(chainOf(item.completion));
        item.reject(err2);
      }
    }
  }

  // ---------------------------------------------------------------- pipelines

  /**
   * The abort hook of a pipeline the runtime ended (see `sql/pipelines.ts`): its message, with
   * the pipeline's id, status and error added to the stored input. A hook that names an
   * unknown actor or an input it refuses is logged and sends nothing: the end still commits.
   */
  readonly #hook: AbortHook = (p, outcome) => {
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
      return prepareJobNow(this.actor(onAbort.actor), input, {
        tenantId: p.tenant_id,
        parentId: p.id,
      });
    } catch (err) {
      this.log.error("pipeline abort hook failed; the pipeline ends without it", {
        pipelineId: p.id,
        error: String(err),
      });
      return null;
    }
  };

  /** After a commit: jobs its pipelines' ends cancelled stop here, and watchers hear of it. */
  #stopped(cancelled: readonly string[], pipelines: readonly (string | null | undefined)[]) {
    for (const id of cancelled) {
      this.#executor.abort(id, new CancelledError());
      this.#finished.delete(id);
      this.#emit(id);
    }
    for (const id of new Set(pipelines)) {
      if (!id) continue;
      this.#emit(id);
    }
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
    options: {
      tenantId?: string | null;
      idempotencyKey?: string;
      onAbort?: { actor: ActorTarget; input: Record<string, unknown> };
      effect?: (tx: SqlExecutor, ids: { pipelineId: string; jobId: string }) => Promise<void>;
    } = {},
  ): Promise<{ job: JobView; firstJobId: string; created: boolean }> {
    if (!/^[a-z][a-z0-9._-]{0,63}$/.test(name) || this.actors.has(name)) {
      throw new TypeError(`pipeline name ${JSON.stringify(name)} is invalid or an actor's`);
    }
    const onAbort = options.onAbort
      ? { actor: this.actor(targetName(options.onAbort.actor)).name, input: options.onAbort.input }
      : null;
    const tenantId = options.tenantId ?? null;
    const pipelineId = options.idempotencyKey
      ? await deterministicId("pipeline", tenantId ?? "", name, options.idempotencyKey)
      : uuidv7();
    const def = this.actor(targetName(first.actor));
    const row = await prepareJob(def, first.input, {
      tenantId,
      parentId: pipelineId,
      pipelineId,
      ...(options.idempotencyKey ? { idempotencyKey: `pipeline:${pipelineId}` } : {}),
    });
    const record: PipelineRecord = {
      done: null,
      total: null,
      unit: null,
      onAbort,
    };
    const push = this.transport.mode === "push";
    const sent = await this.db.transaction(async (tx) => {
      const made = await tx.query(
        `INSERT INTO troupe_jobs (id, actor, key, tenant_id, input, status, kind, max_attempts,
           pipeline, started_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, 'running', 'pipeline', 1, $6::jsonb, now())
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        [
          pipelineId,
          name,
          `pipeline:${pipelineId}`,
          tenantId,
          JSON.stringify({ first: { actor: def.name, input: first.input } }),
          JSON.stringify(record),
        ],
      );
      if (!made[0]) return null;
      const inserted = await insertJobs(tx, [row], { outbox: push });
      await options.effect?.(tx, { pipelineId, jobId: row.id });
      return inserted;
    });
    await this.#afterCommit(sent ?? []);
    const job = await this.getJob(pipelineId);
    if (sent === null && job.tenantId !== tenantId) {
      throw new ConflictError("idempotency key already used by another tenant");
    }
    return { job, firstJobId: row.id, created: sent !== null };
  }

  /** How many jobs of a pipeline are in each status. */
  async pipelineJobs(pipelineId: string): Promise<Record<JobStatus, number> & { total: number }> {
    const rows = await this.db.query<{ status: JobStatus; n: number }>(
      `SELECT status, count(*)::int AS n FROM troupe_jobs WHERE pipeline_id = $1 GROUP BY status`,
      [pipelineId],
    );
    const counts = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, total: 0 };
    for (const r of rows) {
      counts[r.status] = r.n;
      counts.total += r.n;
    }
    return counts;
  }

  /** Cancels a running pipeline (see `endPipeline`); a pipeline that has ended: 409. */
  async #cancelPipeline(id: string, tenantId?: string | null): Promise<JobView> {
    const push = this.transport.mode === "push";
    const out = await this.db.transaction(async (tx) => {
      const locked = await lockPipelines(tx, [id]);
      const p = locked.get(id);
      if (!p || (tenantId !== undefined && p.tenant_id !== tenantId)) {
        throw new NotFoundError("job", id);
      }
      if (p.status !== "running") {
        throw new ConflictError(`job ${id} is already ${p.status}`, { status: p.status });
      }
      return await endPipeline(
        tx,
        p,
        {
          status: "cancelled",
          error: toErrorRecord(new CancelledError()),
        },
        this.#hook,
        { outbox: push },
      );
    });
    this.#finished.delete(id);
    this.#stopped(out.cancelled, [id]);
    await this.#afterCommit(out.sent).catch((err) =>
      this.log.warn("publish after commit failed; the relay will retry", { error: String(err) })
    );
    return await this.getJob(id);
  }

  // ---------------------------------------------------------------- background

  async #heartbeat(): Promise<void> {
    const held = [...this.#held.entries()];
    if (held.length > 0) {
      const keys = held.map(([key]) => key);
      const current = await extendLeases(this.db, {
        workerId: this.workerId,
        keys,
        leaseMs: this.#leaseMs,
      });
      for (const [key, fence] of held) {
        if (current.get(key) === fence) continue;
        // Another worker took the key over: stop our handler, its commit would be fenced.
        this.log.warn("lease lost", { key });
        for (const [jobId, k] of this.#executor.runningKeys) {
          if (k === key) this.#executor.abort(jobId, new TroupeError("LEASE_LOST", "lease lost"));
        }
      }
    }
    const running = [...this.#executor.running.keys()];
    if (running.length > 0) {
      const cancelled = await this.db.query<{ id: string }>(
        "SELECT id FROM troupe_jobs WHERE id = ANY($1::text[]) AND cancel_requested",
        [running],
      );
      for (const { id } of cancelled) this.#executor.abort(id, new CancelledError());
    }
    this.#observer.heartbeat(this.workerId);
  }

  /** Vacuums and analyzes the runtime's tables (for databases without autovacuum). */
  async maintain(): Promise<void> {
    const started = Date.now();
    await this.db.query(
      `VACUUM (ANALYZE) troupe_jobs, troupe_actor_state, troupe_processed_messages,
         troupe_outbox, troupe_dead_letters, troupe_groups`,
    );
    this.log.debug("maintenance done", { ms: Date.now() - started });
  }

  // ---------------------------------------------------------------- queries

  /** Calls `fn(jobId)` whenever a job of this process changes; returns an unsubscribe. */
  subscribe(fn: (jobId: string) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #emit(jobId: string): void {
    for (const fn of this.#listeners) fn(jobId);
  }

  /**
   * One job. Reads are batched: while a read query runs, the ids asked for meanwhile wait and
   * go together in the next one (`WHERE id = ANY($1)`), so 50 pollers cost one query, not
   * 50, and a lone read waits for nothing. Reads of one id share a result. A finished job
   * (which no longer changes) is served from memory for up to a minute.
   */
  async getJob(id: string, tenantId?: string | null): Promise<JobView> {
    let view: CachedJob | null | undefined = this.#finished.get(id);
    if (view && view.cachedUntil < Date.now()) {
      this.#finished.delete(id);
      view = undefined;
    }
    if (!view) {
      view = await this.#readJob(id);
      if (view && TERMINAL.has(view.status)) this.#remember(view);
    }
    if (!view || (tenantId !== undefined && view.tenantId !== tenantId)) {
      throw new NotFoundError("job", id);
    }
    const { cachedUntil: _, ...job } = view;
    return job;
  }

  #readJob(id: string): Promise<CachedJob | null> {
    let waiting = this.#readQueue.get(id);
    if (!waiting) {
      waiting = Promise.withResolvers<CachedJob | null>();
      this.#readQueue.set(id, waiting);
      // An embedded database runs each query synchronously on this thread, so nothing queues
      // up while it runs: start the batch after the event loop has read pending requests.
      if (this.db.shared) this.#drainReads();
      else if (this.#readQueue.size === 1) setTimeout(() => this.#drainReads(), 0);
    }
    return waiting.promise;
  }

  #drainReads(): void {
    const parallel = this.db.shared ? READ_BATCHES_SHARED : 1;
    while (this.#readQueue.size > 0 && this.#readsInFlight < parallel) {
      const batch = new Map<string, PromiseWithResolvers<CachedJob | null>>();
      for (const [id, waiting] of this.#readQueue) {
        batch.set(id, waiting);
        this.#readQueue.delete(id);
        if (batch.size === READ_BATCH_MAX) break;
      }
      this.#readsInFlight++;
      this.db.query<Row>("SELECT * FROM troupe_jobs WHERE id = ANY($1::text[])", [[
        ...batch.keys(),
      ]])
        .then((rows) => {
          const cachedUntil = Date.now() + FINISHED_TTL_MS;
          for (const row of rows) {
            batch.get(String(row.id))?.resolve({ ...jobView(row), cachedUntil });
            batch.delete(String(row.id));
          }
          for (const waiting of batch.values()) waiting.resolve(null);
        })
        .catch((err) => {
          for (const waiting of batch.values()) waiting.reject(err);
        })
        .finally(() => {
          this.#readsInFlight--;
          this.#drainReads();
        });
    }
  }

  #remember(view: CachedJob): void {
    this.#finished.delete(view.id);
    this.#finished.set(view.id, view);
    if (this.#finished.size > FINISHED_CACHE_SIZE) {
      this.#finished.delete(this.#finished.keys().next().value!);
    }
  }

  /** Jobs, newest first, by filter, one page at a time. */
  async listJobs(
    filter: {
      actor?: string;
      status?: JobStatus;
      tenantId?: string | null;
      /** Only the jobs of this pipeline. */
      pipelineId?: string;
      limit?: number;
      cursor?: string;
    } = {},
  ): Promise<Page<JobView>> {
    const limit = filter.limit ?? 20;
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace("?", `$${params.length}`));
    };
    if (filter.actor !== undefined) add("actor = ?", filter.actor);
    if (filter.status !== undefined) add("status = ?", filter.status);
    if (filter.pipelineId !== undefined) add("pipeline_id = ?", filter.pipelineId);
    if (filter.tenantId !== undefined) {
      if (filter.tenantId === null) where.push("tenant_id IS NULL");
      else add("tenant_id = ?", filter.tenantId);
    }
    if (filter.cursor !== undefined) add("id < ?", decodeCursor(filter.cursor));
    params.push(limit + 1);
    const rows = await this.db.query<Row>(
      `SELECT * FROM troupe_jobs ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    const items = rows.slice(0, limit).map(jobView);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
  }

  /**
   * Cancels a job: a queued one at once, a running one by aborting its handler (wherever it
   * runs). A finished job cannot be cancelled (409).
   */
  async cancel(id: string, tenantId?: string | null): Promise<JobView> {
    const job = await this.getJob(id, tenantId);
    if (job.kind === "pipeline") return await this.#cancelPipeline(id, tenantId);
    if (job.pipelineId !== null && !isTerminal(job.status)) {
      // A pipeline stops as a whole: its jobs' ends roll up into it.
      await this.#cancelPipeline(job.pipelineId).catch((err) => {
        if (!(err instanceof ConflictError)) throw err;
      });
      return await this.getJob(id);
    }
    const error = toErrorRecord(new CancelledError());
    const outbox = this.transport.mode === "push";
    const { rows, sent } = await this.db.transaction(async (tx) => {
      const rows = await tx.query<{ status: string; group_id: string | null }>(
        `UPDATE troupe_jobs SET cancel_requested = true, updated_at = now(),
           status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
           error = CASE WHEN status = 'queued' THEN $2::jsonb ELSE error END,
           finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
         WHERE id = $1 AND status IN ('queued', 'running') RETURNING status, group_id`,
        [id, JSON.stringify(error)],
      );
      // A queued part cancelled here ends its group (a running one ends at its commit).
      const groupId = rows[0]?.status === "cancelled" ? rows[0].group_id : null;
      const ends = groupId ? [{ jobId: id, groupId, status: "cancelled" as const, error }] : [];
      return { rows, sent: await endParts(tx, ends, { outbox }) };
    });
    await this.#afterCommit(sent);
    if (!rows[0]) {
      throw new ConflictError(`job ${id} is already ${job.status}`, { status: job.status });
    }
    if (rows[0].status === "running") {
      this.#executor.abort(id, new CancelledError());
      await this.db.query("SELECT pg_notify('troupe_cancel', $1)", [id]);
    }
    this.#emit(id);
    return await this.getJob(id);
  }

  /** Dead letters, newest first, one page at a time. */
  async listDeadLetters(
    filter: { actor?: string; tenantId?: string | null; limit?: number; cursor?: string } = {},
  ): Promise<Page<DeadLetterView>> {
    const limit = filter.limit ?? 20;
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.actor !== undefined) {
      params.push(filter.actor);
      where.push(`actor = $${params.length}`);
    }
    if (filter.tenantId !== undefined) {
      if (filter.tenantId === null) where.push("tenant_id IS NULL");
      else {
        params.push(filter.tenantId);
        where.push(`tenant_id = $${params.length}`);
      }
    }
    if (filter.cursor !== undefined) {
      params.push(decodeCursor(filter.cursor));
      where.push(`id < $${params.length}`);
    }
    params.push(limit + 1);
    const rows = await this.db.query<Row>(
      `SELECT * FROM troupe_dead_letters ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    const items = rows.slice(0, limit).map(deadLetterView);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
  }

  /** Enqueues a dead letter's message again as a new job; a dead letter replays once. */
  async replay(deadLetterId: string, tenantId?: string | null): Promise<JobView> {
    const rows = await this.db.query<Row>("SELECT * FROM troupe_dead_letters WHERE id = $1", [
      deadLetterId,
    ]);
    const dl = rows[0];
    if (!dl || (tenantId !== undefined && dl.tenant_id !== tenantId)) {
      throw new NotFoundError("dead letter", deadLetterId);
    }
    if (dl.replayed_at) {
      throw new ConflictError(`dead letter ${deadLetterId} was replayed already`, {
        replayJobId: dl.replay_job_id,
      });
    }
    const def = this.actor(String(dl.actor));
    const input = upgradeInput(def, dl.input, Number(dl.input_version ?? def.version));
    const row = await prepareJob(def, input, {
      tenantId: (dl.tenant_id as string | null) ?? null,
      replayOf: String(dl.job_id),
    });
    const push = this.transport.mode === "push";
    const created = await this.db.transaction(async (tx) => {
      const marked = await tx.query(
        `UPDATE troupe_dead_letters SET replayed_at = now(), replay_job_id = $2
         WHERE id = $1 AND replayed_at IS NULL RETURNING id`,
        [deadLetterId, row.id],
      );
      if (!marked[0]) throw new ConflictError(`dead letter ${deadLetterId} was replayed already`);
      return await insertJobs(tx, [row], { outbox: push });
    });
    await this.#afterCommit(created);
    return await this.getJob(row.id);
  }

  /**
   * Database reachability, queue depth and this process's failed background tasks; throws
   * when the database does not answer.
   */
  async health(timeoutMs = 2000): Promise<{
    queued: number;
    running: number;
    deadLetters: number;
    inFlightHere: number;
    maintenanceFailures: number;
  }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TroupeError("DB_TIMEOUT", "database did not answer")),
        timeoutMs,
      );
    });
    try {
      const [counts] = await Promise.race([
        this.db.query<{ queued: number; running: number; dead: number }>(
          `SELECT
             (SELECT count(*)::int FROM troupe_jobs WHERE status = 'queued') AS queued,
             (SELECT count(*)::int FROM troupe_jobs WHERE status = 'running' AND kind = 'job')
               AS running,
             (SELECT count(*)::int FROM troupe_dead_letters WHERE replayed_at IS NULL) AS dead`,
        ),
        timeout,
      ]);
      return {
        queued: counts?.queued ?? 0,
        running: counts?.running ?? 0,
        deadLetters: counts?.dead ?? 0,
        inFlightHere: this.#inFlight,
        maintenanceFailures: this.#maintenanceFailures,
      };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Queue depth and oldest due wait per actor, reading at most `limit` queued jobs (see
   * `sql/queue_depth.ts`): cheap enough for a metrics scrape.
   */
  async queueDepths(limit = 10_000): Promise<{ actors: QueueDepth[]; capped: boolean }> {
    return await queueDepths(this.db, limit);
  }

  /** Enqueues the scheduled run of `actor` for the minute of `at`, once across instances. */
  async fireSchedule(
    actor: string,
    at: Date = new Date(),
  ): Promise<{ job: JobView; created: boolean }> {
    const def = this.actor(actor);
    if (!def.schedule) throw new TypeError(`actor ${actor} has no schedule`);
    const minute = new Date(Math.floor(at.getTime() / 60_000) * 60_000).toISOString();
    return await this.enqueue(actor, def.schedule.input, {
      idempotencyKey: `schedule:${minute}`,
    });
  }

  /** Registers every scheduled actor with a cron function (`Deno.cron` when embedded). */
  registerSchedules(
    cron: (name: string, schedule: string, fn: () => Promise<void>) => unknown,
  ): string[] {
    const names: string[] = [];
    for (const def of this.actors.values()) {
      if (!def.schedule) continue;
      // Deno.cron names allow letters, digits, whitespace, "-" and "_" only.
      cron(`troupe_${def.name.replace(/[^A-Za-z0-9_-]/g, "_")}`, def.schedule.cron, async () => {
        try {
          await this.fireSchedule(def.name);
        } catch (err) {
          this.log.error("scheduled enqueue failed", { actor: def.name, error: String(err) });
        }
      });
      names.push(def.name);
    }
    return names;
  }
}

/**
 * Refuses repeats of idempotency keys whose first request was another one: each row's job
 * exists already (its insert was skipped) and must carry the same request hash. A job stored
 * without a hash (enqueued before hashes were kept) accepts any repeat.
 */
async function checkRepeats(
  tx: SqlExecutor,
  repeats: readonly { id: string; hash: string; key: string }[],
): Promise<void> {
  if (repeats.length === 0) return;
  const stored = await tx.query<{ id: string; request_hash: string | null }>(
    "SELECT id, request_hash FROM troupe_jobs WHERE id = ANY($1::text[])",
    [repeats.map((r) => r.id)],
  );
  const byId = new Map(stored.map((r) => [r.id, r.request_hash]));
  for (const { id, hash, key } of repeats) {
    const first = byId.get(id);
    if (first && first !== hash) throw new IdempotencyKeyReusedError(key);
  }
}

function chainOf(c: Completion): string {
  return `${c.key}\u0000${c.fence}`;
}

function iso(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString();
}

function jobView(r: Row): JobView {
  return {
    id: String(r.id),
    actor: String(r.actor),
    key: String(r.key),
    tenantId: (r.tenant_id as string | null) ?? null,
    status: r.status as JobStatus,
    progress: Number(r.progress),
    progressMessage: (r.progress_message as string | null) ?? null,
    attempts: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    cancelRequested: Boolean(r.cancel_requested),
    input: r.input,
    result: r.result ?? null,
    error: r.error ?? null,
    parentId: (r.parent_id as string | null) ?? null,
    kind: r.kind === "pipeline" ? "pipeline" : "job",
    pipelineId: (r.pipeline_id as string | null) ?? null,
    pipeline: r.kind === "pipeline" ? pipelineProgress(r.pipeline) : null,
    replayOf: (r.replay_of as string | null) ?? null,
    runAt: iso(r.run_at)!,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
  };
}

function pipelineProgress(
  v: unknown,
): { done: number | null; total: number | null; unit: string | null } {
  const r = (v ?? {}) as Partial<PipelineRecord>;
  return { done: r.done ?? null, total: r.total ?? null, unit: r.unit ?? null };
}

function deadLetterView(r: Row): DeadLetterView {
  return {
    id: String(r.id),
    jobId: String(r.job_id),
    actor: String(r.actor),
    key: String(r.key),
    tenantId: (r.tenant_id as string | null) ?? null,
    input: r.input,
    error: r.error,
    attempts: Number(r.attempts),
    createdAt: iso(r.created_at)!,
    replayedAt: iso(r.replayed_at),
    replayJobId: (r.replay_job_id as string | null) ?? null,
  };
}

/** Whether `status` is final (succeeded, failed or cancelled). */
export function isTerminal(status: string): boolean {
  return TERMINAL.has(status);
}

function encodeCursor(id: string): string {
  return btoa(id).replaceAll("=", "").replaceAll("+", "-").replaceAll("/", "_");
}

function decodeCursor(cursor: string): string {
  try {
    const id = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    if (/^[\w-]{1,64}$/.test(id)) return id;
  } catch {
    // fall through
  }
  throw new ValidationError("cursor is not valid", { cursor });
}
