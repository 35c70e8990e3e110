/**
 * Runs one claimed message through its actor's handler and turns what happened into a
 * `Completion` to commit.
 *
 * Invariants:
 * - Nothing here writes to the database but progress (and a suspect's start): state changes,
 *   sends and effects are buffered in the completion and committed by the committer, at once.
 * - `execute` never throws: every end of a handler (return, throw, timeout, abort, bad input)
 *   is a completion. A failure carries no state, sends or effects of its attempt.
 * - At most `policy.concurrency` handlers of an actor run in this process; suspects (jobs whose
 *   process stopped while they ran) run one at a time, until `leaveQuarantine`.
 * - Running handlers are reached through `abort`, `abortKey` and `runningJobs` only.
 */
import { backoffDelay } from "./backoff.ts";
import {
  type ActorContext,
  type ActorTarget,
  type AnyActor,
  type PipelineControl,
  type SendOptions,
  targetName,
} from "./define.ts";
import {
  CancelledError,
  type ErrorRecord,
  InputError,
  NonRetryableError,
  RetryLaterError,
  TimeoutError,
  toErrorRecord,
  TroupeError,
} from "./errors.ts";
import { type Deadline, Deadlines } from "./deadlines.ts";
import { buildGroup, parseGroup, type PreparedGroup } from "./groups.ts";
import { parseOnce, pipelineContext, toJson } from "./handler.ts";
import type { Logger, SqlDatabase, SqlExecutor } from "./ports.ts";
import { prepareJobNow, prepareParsed } from "./prepare.ts";
import { insertGroups } from "./sql/groups.ts";
import { type DeclaredRow, declareRow } from "./sql/insert_rows.ts";
import { decodeInput } from "./versions.ts";
import { noTracing, type TracedRow, traceOf, type Tracing } from "./tracing.ts";
import type { ClaimedJob } from "./sql/claim_jobs.ts";
import { markStarted } from "./sql/job_progress.ts";
import { type ProgressWriter, progressWriter } from "./progress.ts";
import type { Tables } from "./sql/tables.ts";
import type { Completion } from "./sql/complete_jobs.ts";
import type { PipelineOp } from "./sql/pipelines.ts";
import type { NewJob } from "./sql/insert_jobs.ts";
export { prepareJob } from "./prepare.ts";
export { prepareJobNow };

interface Slot {
  active: number;
  waiters: (() => void)[];
}

/** What an `Executor` needs. */
export interface ExecutorOptions {
  db: SqlDatabase;
  /** The runtime's table names. */
  tables: Tables;
  actors: ReadonlyMap<string, AnyActor>;
  logger: Logger;
  /** Called with each progress change, for live updates in this process. */
  onProgress?: (jobId: string, percent: number, message: string | null) => void;
  /** Spans around handlers; messages sent carry the handler's. @default {@link noTracing} */
  tracing?: Tracing;
}

/** What every run of an executor shares. */
interface RunEnv {
  readonly db: SqlDatabase;
  readonly t: Tables;
  readonly log: Logger;
  readonly onProgress: ExecutorOptions["onProgress"];
  readonly tracing: Tracing;
  /** The registered actor `actor` addresses; throws `UNKNOWN_ACTOR` for `call`. */
  readonly target: (actor: ActorTarget, call: string) => AnyActor;
}

/** Whether a handler's result is a promise (or another thenable) to wait for. */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function";
}

/** No sends or effects: shared by the completions that have none (never written to). */
const NONE: never[] = [];
Object.freeze(NONE);

/**
 * One handler's run: the context its handler sees (`ctx`), what the handler buffers for the
 * commit, and its abort. Its methods are made on first use (most handlers call few of them),
 * each bound to the run, so that a handler may take them off `ctx`.
 */
class HandlerRun implements ActorContext<unknown> {
  readonly jobId: string;
  readonly actor: string;
  readonly key: string;
  readonly attempt: number;
  readonly tenantId: string | null;
  readonly #env: RunEnv;
  readonly #job: ClaimedJob;
  readonly #def: AnyActor;
  readonly #initial: unknown;
  /** Calls are refused (or ignored) once the handler ended. */
  #open = true;
  /** The handler's copy of the state, made when it first reads it. */
  #working: unknown;
  #copied = false;
  /** The handler replaced the state. */
  changed = false;
  /** What the handler sent (its rows are made asynchronously: an idempotency key's hash). */
  pendingSends: Promise<NewJob | NewJob[]>[] | null = null;
  groups: Promise<PreparedGroup>[] | null = null;
  effects: ((tx: SqlExecutor) => Promise<void>)[] | null = null;
  /** The rows it declared with `insert()`. */
  rows: DeclaredRow[] | null = null;
  #sendIndex = 0;
  pipelineOp: PipelineOp | null = null;
  #pipeline: PipelineControl | undefined;
  #progress: ProgressWriter | undefined;
  #jobLog: Logger | undefined;
  #controller: AbortController | undefined;
  /** Set by the first abort: why the run was aborted. */
  aborted = false;
  reason: unknown;
  /** Rejects the wait for an asynchronous handler (set while it runs). */
  stop: ((reason: unknown) => void) | undefined;
  #setState: ActorContext<unknown>["setState"] | undefined;
  #send: ActorContext<unknown>["send"] | undefined;
  #group: ActorContext<unknown>["group"] | undefined;
  #effect: ActorContext<unknown>["effect"] | undefined;
  #insert: ActorContext<unknown>["insert"] | undefined;
  #progressFn: ActorContext<unknown>["progress"] | undefined;

  constructor(env: RunEnv, job: ClaimedJob, def: AnyActor, state: unknown) {
    this.#env = env;
    this.#job = job;
    this.#def = def;
    this.#initial = state;
    this.jobId = job.id;
    this.actor = job.actor;
    this.key = job.key;
    this.attempt = job.attempts;
    this.tenantId = job.tenant_id;
  }

  get state(): unknown {
    this.#stateful("ctx.state");
    if (!this.#copied) {
      this.#working = structuredClone(this.#initial ?? this.#def.initialState());
      this.#copied = true;
    }
    return this.#working;
  }

  /** The state the handler left (read after `changed`). */
  get working(): unknown {
    return this.#working;
  }

  get setState(): ActorContext<unknown>["setState"] {
    return this.#setState ??= (next) => {
      this.#stateful("ctx.setState()");
      if (!this.#open) return;
      this.#working = structuredClone(next);
      this.#copied = true;
      this.changed = true;
    };
  }

  get send(): ActorContext<unknown>["send"] {
    return this.#send ??= (actor: ActorTarget, input: unknown, options: SendOptions = {}) => {
      this.#check("send()");
      const target = this.#env.target(actor, "send()");
      const parsed = parseOnce(target, input);
      const job = this.#job;
      // Deterministic id: a re-run of this message sends the same ids (idempotent).
      const index = this.#sendIndex++;
      (this.pendingSends ??= []).push(prepareParsed(target, parsed, {
        ...options,
        idempotencyKey: options.idempotencyKey ?? `${job.id}/${index}`,
        tenantId: options.tenantId !== undefined ? options.tenantId : job.tenant_id,
        parentId: job.id,
        pipelineId: job.pipeline_id ?? null,
        trace: this.#env.tracing.current(),
      }));
    };
  }

  get group(): ActorContext<unknown>["group"] {
    return this.#group ??= (parts, then) => {
      this.#check("group()");
      const job = this.#job;
      const index = this.#sendIndex++;
      const id = `${job.id}-g${index}`;
      const checked = parseGroup((a) => this.#env.target(a, "group()"), parts, then, parseOnce);
      const made = buildGroup(
        checked,
        {
          id,
          tenantId: job.tenant_id,
          parentId: job.id,
          pipelineId: job.pipeline_id ?? null,
          trace: this.#env.tracing.current(),
        },
        (i) => `${id}/${i}`,
      );
      (this.groups ??= []).push(made);
      // Parts go with the other sends; the group row commits with them, as an effect.
      (this.pendingSends ??= []).push(made.then((g) => g.jobs));
      return id;
    };
  }

  get effect(): ActorContext<unknown>["effect"] {
    return this.#effect ??= (fn) => {
      this.#check("effect()");
      (this.effects ??= []).push(fn);
    };
  }

  get insert(): ActorContext<unknown>["insert"] {
    return this.#insert ??= (table, row, options) => {
      this.#check("insert()");
      (this.rows ??= []).push(declareRow(table, row, options));
    };
  }

  get progress(): ActorContext<unknown>["progress"] {
    return this.#progressFn ??= (percent, message) => {
      if (!this.#open) return;
      const env = this.#env;
      this.#progress ??= progressWriter(
        env.db,
        env.t,
        { id: this.#job.id, fence: this.#job.lease_fence, attempt: this.#job.attempts },
        env.log,
        env.onProgress,
      );
      this.#progress.report(percent, message ?? null);
    };
  }

  get pipeline(): PipelineControl {
    return this.#pipeline ??= pipelineContext(
      this.#job.pipeline_id ?? null,
      (call) => {
        this.#check(call);
        return this.#job.pipeline_id !== null && this.#job.pipeline_id !== undefined;
      },
      this.pipelineOp ??= {},
    );
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }

  get log(): Logger {
    return this.#jobLog ??= this.#env.log.child({
      jobId: this.#job.id,
      actor: this.#job.actor,
      key: this.#job.key,
    });
  }

  /** Aborts the run (the first reason counts): its signal, and the wait for its handler. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#controller?.abort(reason);
    this.stop?.(reason);
  }

  /** Ends the run: later calls of its context are refused or ignored. */
  close(): void {
    this.#open = false;
    this.#progress?.close();
  }

  /** Refuses `call` in a handler of an actor declared `ordered: false`: it keeps no state. */
  #stateful(call: string): void {
    if (!this.#def.policy.ordered) {
      throw new TroupeError(
        "NO_STATE",
        `${call}: actor ${this.#def.name} is declared ordered: false and keeps no state`,
      );
    }
  }

  #check(call: string): void {
    if (!this.#open) throw new TroupeError("HANDLER_FINISHED", `${call} after the handler ended`);
  }
}

/** Runs handlers (see the invariants above). */
export class Executor {
  readonly #actors: ReadonlyMap<string, AnyActor>;
  readonly #log: Logger;
  readonly #tracing: Tracing;
  readonly #env: RunEnv;
  readonly #db: SqlDatabase;
  readonly #t: Tables;
  readonly #slots = new Map<string, Slot>();
  /** The handlers running in this process, by job id. */
  readonly #running = new Map<string, HandlerRun>();
  /** The unordered jobs among them, with the instance lease token they were claimed under. */
  readonly #unordered = new Map<string, number>();
  /** The handlers' time limits. */
  readonly #deadlines = new Deadlines();
  /** Settles when the last suspect queued for quarantine has run. */
  #suspects: Promise<void> = Promise.resolve();
  /** The suspects running (or committing) now, with what lets the next one in. */
  readonly #quarantined = new Map<string, () => void>();

  constructor({ db, tables, actors, logger, onProgress, tracing = noTracing }: ExecutorOptions) {
    this.#tracing = tracing;
    this.#db = db;
    this.#t = tables;
    this.#actors = actors;
    this.#log = logger;
    this.#env = {
      db,
      t: tables,
      log: logger,
      onProgress,
      tracing,
      target: (actor, call) => this.#target(actor, call),
    };
  }

  /** Aborts a running handler of this process; returns whether one was running. */
  abort(jobId: string, reason: Error): boolean {
    const run = this.#running.get(jobId);
    if (!run) return false;
    run.abort(reason);
    return true;
  }

  /** Aborts the handlers of this process running for actor instance `key`; returns how many. */
  abortKey(key: string, reason: Error): number {
    let n = 0;
    for (const [jobId, run] of this.#running) {
      if (run.key === key && this.abort(jobId, reason)) n++;
    }
    return n;
  }

  /**
   * Aborts the handlers of unordered jobs (see `ClaimedJob.unordered`) running under an
   * instance lease token other than `fence`; returns how many.
   */
  abortUnordered(fence: number, reason: Error): number {
    let n = 0;
    for (const [jobId, at] of this.#unordered) {
      if (at !== fence && this.abort(jobId, reason)) n++;
    }
    return n;
  }

  /** The ids of the jobs whose handlers run in this process now. */
  runningJobs(): string[] {
    return [...this.#running.keys()];
  }

  /**
   * Runs `job` with the key's current `state`; never throws. A suspect job (`lease_losses` >
   * 0) runs alone among suspects, until the caller calls `leaveQuarantine(job.id)`.
   */
  async execute(job: ClaimedJob, state: unknown): Promise<Completion> {
    const def = this.#actors.get(job.actor);
    if (!def) {
      return this.failure(
        this.#base(job),
        job,
        undefined,
        new NonRetryableError(`no actor named ${job.actor} is registered`, {
          code: "UNKNOWN_ACTOR",
        }),
      );
    }
    if (job.cancel_requested) {
      return {
        ...this.#base(job),
        outcome: "cancelled",
        error: toErrorRecord(new CancelledError()),
      };
    }
    let input: unknown;
    try {
      input = decodeInput(def, job.input, job.input_version ?? 1);
    } catch (err) {
      return this.failure(this.#base(job), job, def, err);
    }

    const wait = this.#acquireSlot(def);
    if (wait) await wait;
    if (job.lease_losses > 0) {
      this.#quarantined.set(job.id, await this.#quarantine());
      try {
        await markStarted(this.#db, this.#t, {
          id: job.id,
          fence: job.lease_fence,
          attempt: job.attempts,
        });
      } catch (err) {
        this.#releaseSlot(def);
        return this.failure(this.#base(job), job, def, err);
      }
    }
    const run = new HandlerRun(this.#env, job, def, state);
    this.#running.set(job.id, run);
    if (job.unordered) this.#unordered.set(job.id, job.lease_fence);
    let deadline: Deadline | undefined;
    try {
      let result: unknown;
      if (this.#tracing === noTracing) {
        // Called here, not in a later turn: a handler that returns at once needs no time
        // limit (no timer fires while it runs) and no wait.
        const began = performance.now();
        result = def.handler(input, run);
        if (isThenable(result)) {
          const limitMs = def.policy.timeoutMs;
          deadline = this.#deadlines.set(
            limitMs,
            () => run.abort(new TimeoutError(limitMs)),
            began,
          );
          result = await this.#race(run, result);
        }
      } else {
        const limitMs = def.policy.timeoutMs;
        deadline = this.#deadlines.set(limitMs, () => run.abort(new TimeoutError(limitMs)));
        const work = this.#tracing.runHandler(
          job,
          () => Promise.resolve().then(() => def.handler(input, run)),
        );
        result = await this.#race(run, work);
      }
      const completion = this.#base(job);
      completion.outcome = "succeeded";
      if (run.pendingSends) completion.sends = (await Promise.all(run.pendingSends)).flat();
      if (run.effects) completion.effects = run.effects;
      if (run.rows) completion.rows = run.rows;
      if (run.groups) {
        const rows = (await Promise.all(run.groups)).flatMap((g) => g.row ? [g.row] : []);
        if (rows.length > 0) {
          completion.effects = [(tx) => insertGroups(tx, this.#t, rows), ...completion.effects];
        }
      }
      if (
        !def.policy.keepSucceeded && job.has_end === false && !job.pipeline_id && !job.group_id
      ) completion.keep = false;
      completion.result = toJson(result);
      if (run.changed) completion.state = { value: toJson(run.working) };
      const op = run.pipelineOp;
      if (op && (op.progress || op.end)) completion.pipeline = op;
      return completion;
    } catch (err) {
      const reason = run.aborted ? run.reason : err;
      if (reason instanceof CancelledError) {
        return { ...this.#base(job), outcome: "cancelled", error: toErrorRecord(reason) };
      }
      if (!(reason instanceof TimeoutError) && !(reason instanceof TroupeError)) {
        run.log.warn("handler failed", { error: String(reason), attempt: job.attempts });
      }
      return this.failure(this.#base(job), job, def, reason);
    } finally {
      run.close();
      deadline?.clear();
      this.#running.delete(job.id);
      this.#unordered.delete(job.id);
      this.#releaseSlot(def);
    }
  }

  /** A completion of `job` with nothing in it yet (its outcome to be set). */
  #base(job: ClaimedJob): Completion {
    return {
      id: job.id,
      key: job.key,
      fence: job.lease_fence,
      outcome: "succeeded",
      sends: NONE,
      effects: NONE,
      release: false,
      pipelineId: job.pipeline_id ?? null,
      groupId: job.group_id ?? null,
      ...(job.unordered ? { unordered: true } : {}),
    };
  }

  /** `work`, or the reason `run` is aborted with as soon as it is. */
  #race<T>(run: HandlerRun, work: PromiseLike<T>): Promise<T> {
    if (run.aborted) return Promise.reject(run.reason);
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    run.stop = reject;
    work.then(resolve, reject);
    return promise;
  }

  /** The registered actor `actor` addresses; an unknown one fails the attempt for good. */
  #target(actor: ActorTarget, call: string): AnyActor {
    const def = this.#actors.get(targetName(actor));
    if (!def) {
      throw new NonRetryableError(`${call} to unknown actor ${targetName(actor)}`, {
        code: "UNKNOWN_ACTOR",
      });
    }
    return def;
  }

  /**
   * Lets the next suspect in after `jobId` (a no-op for other jobs). Called once the outcome of
   * `execute(jobId)` is committed (or not), since a crash of the process before that commit
   * counts against it.
   */
  leaveQuarantine(jobId: string): void {
    this.#quarantined.get(jobId)?.();
    this.#quarantined.delete(jobId);
  }

  /**
   * Waits until no other suspect runs in this process (a suspect: a job that was running when
   * its process crashed); returns the function that lets the next one in. One at a time, the
   * next crash counts against the one suspect that was running, not its neighbours.
   */
  async #quarantine(): Promise<() => void> {
    const previous = this.#suspects;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#suspects = promise;
    await previous;
    return resolve;
  }

  /**
   * A failed attempt: retried with backoff while attempts remain, else dead-lettered. An
   * `InputError` fails the job at once without a dead letter (a replay would fail the same
   * way); `onDeadLetter` hears of every final failure.
   */
  failure(
    base: Omit<Completion, "outcome">,
    job: ClaimedJob,
    def: AnyActor | undefined,
    err: unknown,
  ): Completion {
    const error = toErrorRecord(err);
    const { sends: _s, effects: _e, rows: _rows, state: _st, result: _r, pipeline: _p, ...rest } =
      base;
    if (err instanceof RetryLaterError) {
      const retryInMs = Math.max(0, err.at.getTime() - Date.now());
      return { ...rest, sends: [], effects: [], outcome: "retry", error, retryInMs, refund: true };
    }
    if (error.retryable && job.attempts < job.max_attempts) {
      const retryInMs = def ? backoffDelay(job.attempts, def.policy.backoff) : 1000;
      return { ...rest, sends: [], effects: [], outcome: "retry", error, retryInMs };
    }
    return {
      ...rest,
      sends: this.deadLetterSends(job, def, error),
      effects: [],
      outcome: "failed",
      error,
      ...(err instanceof InputError ? { deadLetter: false } : {}),
    };
  }

  /**
   * The messages an actor's `onDeadLetter` asks for, to commit with the final failure of
   * `job`. A hook that throws or names an unknown actor is logged and sends nothing: the
   * failure itself must still be recorded.
   */
  deadLetterSends(
    job: Pick<ClaimedJob, "id" | "input" | "tenant_id"> & TracedRow & {
      pipeline_id?: string | null;
    },
    def: AnyActor | undefined,
    error: ErrorRecord,
  ): NewJob[] {
    if (!def?.onDeadLetter) return [];
    try {
      const wanted = def.onDeadLetter(job.input, error);
      const list = wanted === undefined ? [] : Array.isArray(wanted) ? wanted : [wanted];
      return list.map((send) => {
        const { actor, input } = send;
        const target = this.#actors.get(targetName(actor));
        if (!target) {
          throw new Error(`onDeadLetter of ${def.name}: unknown actor ${targetName(actor)}`);
        }
        // A `message()` may carry a delay and a priority; its idempotency key has no use here.
        const { idempotencyKey: _, ...options } = "options" in send ? send.options ?? {} : {};
        return prepareJobNow(target, input, {
          ...options,
          tenantId: options.tenantId === undefined ? job.tenant_id : options.tenantId,
          parentId: job.id,
          pipelineId: job.pipeline_id ?? null,
          trace: traceOf(job),
        });
      });
    } catch (err) {
      this.#log.error("onDeadLetter failed; the failure is recorded without its messages", {
        jobId: job.id,
        actor: def.name,
        error: String(err),
      });
      return [];
    }
  }

  /** Takes a slot of `def`'s concurrency; a promise to wait for when none is free. */
  #acquireSlot(def: AnyActor): Promise<void> | undefined {
    let slot = this.#slots.get(def.name);
    if (!slot) this.#slots.set(def.name, slot = { active: 0, waiters: [] });
    if (slot.active < def.policy.concurrency) {
      slot.active++;
      return undefined;
    }
    const waiters = slot.waiters;
    return new Promise<void>((resolve) => waiters.push(resolve));
  }

  #releaseSlot(def: AnyActor): void {
    const slot = this.#slots.get(def.name);
    if (!slot) return;
    const next = slot.waiters.shift();
    if (next) next();
    else slot.active--;
  }
}
