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
import { Deadlines } from "./deadlines.ts";
import { buildGroup, parseGroup, type PreparedGroup } from "./groups.ts";
import { parseOnce, pipelineContext, raceAbort, toJson } from "./handler.ts";
import type { Logger, SqlDatabase, SqlExecutor } from "./ports.ts";
import { prepareJobNow, prepareParsed } from "./prepare.ts";
import { insertGroups } from "./sql/groups.ts";
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

/** Runs handlers (see the invariants above). */
export class Executor {
  readonly #db: SqlDatabase;
  readonly #t: Tables;
  readonly #actors: ReadonlyMap<string, AnyActor>;
  readonly #log: Logger;
  readonly #onProgress: ExecutorOptions["onProgress"];
  readonly #tracing: Tracing;
  readonly #slots = new Map<string, Slot>();
  /** Abort controllers of the handlers running in this process. */
  readonly #running = new Map<string, AbortController>();
  /** The handlers' time limits. */
  readonly #deadlines = new Deadlines();
  /** The key of each running handler. */
  readonly #runningKeys = new Map<string, string>();
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
    this.#onProgress = onProgress;
  }

  /** Aborts a running handler of this process; returns whether one was running. */
  abort(jobId: string, reason: Error): boolean {
    const controller = this.#running.get(jobId);
    if (!controller) return false;
    controller.abort(reason);
    return true;
  }

  /** Aborts the handlers of this process running for actor instance `key`; returns how many. */
  abortKey(key: string, reason: Error): number {
    let n = 0;
    for (const [jobId, k] of this.#runningKeys) {
      if (k === key && this.abort(jobId, reason)) n++;
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
    const base = {
      id: job.id,
      key: job.key,
      fence: job.lease_fence,
      sends: [] as NewJob[],
      effects: [] as ((tx: SqlExecutor) => Promise<void>)[],
      release: false,
      pipelineId: job.pipeline_id ?? null,
      groupId: job.group_id ?? null,
    };
    const def = this.#actors.get(job.actor);
    if (!def) {
      return this.failure(
        base,
        job,
        undefined,
        new NonRetryableError(`no actor named ${job.actor} is registered`, {
          code: "UNKNOWN_ACTOR",
        }),
      );
    }
    if (job.cancel_requested) {
      return { ...base, outcome: "cancelled", error: toErrorRecord(new CancelledError()) };
    }
    let input: unknown;
    try {
      input = decodeInput(def, job.input, job.input_version ?? 1);
    } catch (err) {
      return this.failure(base, job, def, err);
    }

    await this.#acquireSlot(def);
    if (job.lease_losses > 0) {
      this.#quarantined.set(job.id, await this.#quarantine());
      try {
        await markStarted(this.#db, this.#t, { id: job.id, fence: job.lease_fence });
      } catch (err) {
        this.#releaseSlot(def);
        return this.failure(base, job, def, err);
      }
    }
    const controller = new AbortController();
    this.#running.set(job.id, controller);
    this.#runningKeys.set(job.id, job.key);
    const limitMs = def.policy.timeoutMs;
    const deadline = this.#deadlines.set(
      limitMs,
      () => controller.abort(new TimeoutError(limitMs)),
    );
    let open = true;
    // The handler's copy of the state, made when it first reads it.
    let working: unknown;
    let copied = false;
    let changed = false;
    // The progress writer and the job's logger are made on first use: most handlers use neither.
    let progress: ProgressWriter | undefined;
    let jobLog: Logger | undefined;
    const log = () => jobLog ??= this.#log.child({ jobId: job.id, actor: job.actor, key: job.key });
    const pendingSends: Promise<NewJob | NewJob[]>[] = [];
    const groups: Promise<PreparedGroup>[] = [];
    let sendIndex = 0;
    const at = { tenantId: job.tenant_id, parentId: job.id, pipelineId: job.pipeline_id ?? null };
    const pipelineOp: PipelineOp = {};
    const inPipeline = (call: string) => {
      if (!open) throw new TroupeError("HANDLER_FINISHED", `${call} after the handler ended`);
      return job.pipeline_id !== null && job.pipeline_id !== undefined;
    };
    const ctx: ActorContext<unknown> = {
      jobId: job.id,
      actor: job.actor,
      key: job.key,
      attempt: job.attempts,
      tenantId: job.tenant_id,
      get state() {
        if (!copied) {
          working = structuredClone(state ?? def.initialState());
          copied = true;
        }
        return working;
      },
      setState(next) {
        if (!open) return;
        working = structuredClone(next);
        copied = true;
        changed = true;
      },
      send: (actor: ActorTarget, input: unknown, options: SendOptions = {}) => {
        if (!open) throw new TroupeError("HANDLER_FINISHED", "send() after the handler ended");
        const target = this.#target(actor, "send()");
        const parsed = parseOnce(target, input);
        // Deterministic id: a re-run of this message sends the same ids (idempotent).
        const index = sendIndex++;
        pendingSends.push(prepareParsed(target, parsed, {
          ...options,
          idempotencyKey: options.idempotencyKey ?? `${job.id}/${index}`,
          ...at,
          ...(options.tenantId !== undefined ? { tenantId: options.tenantId } : {}),
          trace: this.#tracing.current(),
        }));
      },
      group: (parts, then) => {
        if (!open) throw new TroupeError("HANDLER_FINISHED", "group() after the handler ended");
        const index = sendIndex++;
        const id = `${job.id}-g${index}`;
        const checked = parseGroup((a) => this.#target(a, "group()"), parts, then, parseOnce);
        const made = buildGroup(
          checked,
          { id, ...at, trace: this.#tracing.current() },
          (i) => `${id}/${i}`,
        );
        groups.push(made);
        // Parts go with the other sends; the group row commits with them, as an effect.
        pendingSends.push(made.then((g) => g.jobs));
        return id;
      },
      effect(fn) {
        if (!open) throw new TroupeError("HANDLER_FINISHED", "effect() after the handler ended");
        base.effects.push(fn);
      },
      progress: (percent, message) => {
        if (!open) return;
        progress ??= progressWriter(
          this.#db,
          this.#t,
          { id: job.id, fence: job.lease_fence },
          this.#log,
          this.#onProgress,
        );
        progress.report(percent, message ?? null);
      },
      pipeline: pipelineContext(job.pipeline_id ?? null, inPipeline, pipelineOp),
      signal: controller.signal,
      get log() {
        return log();
      },
    };

    try {
      const run = () => Promise.resolve().then(() => def.handler(input, ctx));
      const result = await raceAbort(this.#tracing.runHandler(job, run), controller.signal);
      if (pendingSends.length > 0) base.sends.push(...(await Promise.all(pendingSends)).flat());
      if (groups.length > 0) {
        const rows = (await Promise.all(groups)).flatMap((g) => g.row ? [g.row] : []);
        if (rows.length > 0) base.effects.unshift((tx) => insertGroups(tx, this.#t, rows));
      }
      const json = toJson(result);
      return {
        ...base,
        outcome: "succeeded",
        result: json,
        ...(changed ? { state: { value: toJson(working) } } : {}),
        ...(pipelineOp.progress || pipelineOp.end ? { pipeline: pipelineOp } : {}),
      };
    } catch (err) {
      const reason = controller.signal.aborted ? controller.signal.reason : err;
      if (reason instanceof CancelledError) {
        return { ...base, outcome: "cancelled", error: toErrorRecord(reason) };
      }
      if (!(reason instanceof TimeoutError) && !(reason instanceof TroupeError)) {
        log().warn("handler failed", { error: String(reason), attempt: job.attempts });
      }
      return this.failure({ ...base, effects: [], sends: [] }, job, def, reason);
    } finally {
      open = false;
      deadline.clear();
      progress?.close();
      this.#running.delete(job.id);
      this.#runningKeys.delete(job.id);
      this.#releaseSlot(def);
    }
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
    const { sends: _s, effects: _e, state: _st, result: _r, pipeline: _p, ...rest } = base;
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

  async #acquireSlot(def: AnyActor): Promise<void> {
    let slot = this.#slots.get(def.name);
    if (!slot) this.#slots.set(def.name, slot = { active: 0, waiters: [] });
    if (slot.active < def.policy.concurrency) {
      slot.active++;
      return;
    }
    await new Promise<void>((resolve) => slot.waiters.push(resolve));
  }

  #releaseSlot(def: AnyActor): void {
    const slot = this.#slots.get(def.name);
    if (!slot) return;
    const next = slot.waiters.shift();
    if (next) next();
    else slot.active--;
  }
}
