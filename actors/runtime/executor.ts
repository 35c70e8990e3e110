/**
 * Runs one claimed message through its actor's handler and turns what happened into a
 * `Completion` to commit. Nothing here writes to the database but progress: state changes,
 * sends and effects are buffered and committed by the committer, atomically.
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
import { buildGroup, parseGroup, type PreparedGroup } from "./groups.ts";
import type { Logger, SqlDatabase, SqlExecutor } from "./ports.ts";
import { parseInput, prepareJobNow, prepareParsed } from "./prepare.ts";
import { insertGroups } from "./sql/groups.ts";
import { decodeInput } from "./versions.ts";
import type { ClaimedJob } from "./sql/claim_jobs.ts";
import type { Completion } from "./sql/complete_jobs.ts";
import type { PipelineOp } from "./sql/pipelines.ts";
import type { NewJob } from "./sql/insert_jobs.ts";

const PROGRESS_EVERY_MS = 200;

export { prepareJob, prepareJobNow } from "./prepare.ts";

interface Slot {
  active: number;
  waiters: (() => void)[];
}

export interface ExecutorOptions {
  db: SqlDatabase;
  actors: ReadonlyMap<string, AnyActor>;
  logger: Logger;
  /** Called with each progress change, for live updates in this process. */
  onProgress?: (jobId: string, percent: number, message: string | null) => void;
}

export class Executor {
  readonly #db: SqlDatabase;
  readonly #actors: ReadonlyMap<string, AnyActor>;
  readonly #log: Logger;
  readonly #onProgress: ExecutorOptions["onProgress"];
  readonly #slots = new Map<string, Slot>();
  /** Abort controllers of the handlers running in this process. */
  readonly running = new Map<string, AbortController>();
  /** The key of each running handler. */
  readonly runningKeys = new Map<string, string>();
  /** Settles when the last suspect queued for quarantine has run. */
  #suspects: Promise<void> = Promise.resolve();
  /** The suspects running (or committing) now, with what lets the next one in. */
  readonly #quarantined = new Map<string, () => void>();

  constructor({ db, actors, logger, onProgress }: ExecutorOptions) {
    this.#db = db;
    this.#actors = actors;
    this.#log = logger;
    this.#onProgress = onProgress;
  }

  /** Aborts a running handler of this process; returns whether one was running. */
  abort(jobId: string, reason: Error): boolean {
    const controller = this.running.get(jobId);
    if (!controller) return false;
    controller.abort(reason);
    return true;
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
        await this.#db.query(
          "UPDATE troupe_jobs SET started_fence = $2 WHERE id = $1 AND lease_fence = $2",
          [job.id, job.lease_fence],
        );
      } catch (err) {
        this.#releaseSlot(def);
        return this.failure(base, job, def, err);
      }
    }
    const controller = new AbortController();
    this.running.set(job.id, controller);
    this.runningKeys.set(job.id, job.key);
    const timer = setTimeout(
      () => controller.abort(new TimeoutError(def.policy.timeoutMs)),
      def.policy.timeoutMs,
    );
    let open = true;
    let working: unknown = structuredClone(state ?? def.initialState());
    let changed = false;
    const progress = this.#progressWriter(job);
    const log = this.#log.child({ jobId: job.id, actor: job.actor, key: job.key });
    const pendingSends: Promise<NewJob | NewJob[]>[] = [];
    const groups: Promise<PreparedGroup>[] = [];
    let sendIndex = 0;
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
        return working;
      },
      setState(next) {
        if (!open) return;
        working = structuredClone(next);
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
          tenantId: options.tenantId === undefined ? job.tenant_id : options.tenantId,
          parentId: job.id,
          pipelineId: job.pipeline_id ?? null,
        }));
      },
      group: (parts, then) => {
        if (!open) throw new TroupeError("HANDLER_FINISHED", "group() after the handler ended");
        const index = sendIndex++;
        const id = `${job.id}-g${index}`;
        const checked = parseGroup((a) => this.#target(a, "group()"), parts, then, parseOnce);
        const made = buildGroup(
          checked,
          { id, tenantId: job.tenant_id, parentId: job.id, pipelineId: job.pipeline_id ?? null },
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
        if (open) progress.report(percent, message ?? null);
      },
      pipeline: {
        id: job.pipeline_id ?? null,
        progress(done, total, unit) {
          if (!inPipeline("pipeline.progress()")) return;
          pipelineOp.progress = {
            done: Math.max(0, Math.floor(Number(done) || 0)),
            total: total === null ? null : Math.max(0, Math.floor(Number(total) || 0)),
            unit: String(unit),
          };
        },
        complete(result) {
          if (!inPipeline("pipeline.complete()")) return;
          pipelineOp.end = { status: "succeeded", result: toJson(result) };
        },
        fail(error) {
          if (!inPipeline("pipeline.fail()")) return;
          pipelineOp.end = {
            status: "failed",
            error: { code: String(error.code), message: String(error.message) },
          };
        },
      },
      signal: controller.signal,
      log,
    };

    try {
      const result = await raceAbort(
        Promise.resolve().then(() => def.handler(input, ctx)),
        controller.signal,
      );
      base.sends.push(...(await Promise.all(pendingSends)).flat());
      const rows = (await Promise.all(groups)).flatMap((g) => g.row ? [g.row] : []);
      if (rows.length > 0) base.effects.unshift((tx) => insertGroups(tx, rows));
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
        log.warn("handler failed", { error: String(reason), attempt: job.attempts });
      }
      return this.failure({ ...base, effects: [], sends: [] }, job, def, reason);
    } finally {
      open = false;
      clearTimeout(timer);
      progress.close();
      this.running.delete(job.id);
      this.runningKeys.delete(job.id);
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
    job: Pick<ClaimedJob, "id" | "input" | "tenant_id"> & { pipeline_id?: string | null },
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

  #progressWriter(job: ClaimedJob) {
    let last = 0;
    let pending: { percent: number; message: string | null } | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    const write = () => {
      timer = undefined;
      if (!pending || closed) return;
      const { percent, message } = pending;
      pending = null;
      last = Date.now();
      this.#db.query(
        `UPDATE troupe_jobs SET progress = $2, progress_message = $3, updated_at = now()
         WHERE id = $1 AND status = 'running' AND lease_fence = $4`,
        [job.id, percent, message, job.lease_fence],
      ).catch((err) => this.#log.warn("progress write failed", { error: String(err) }));
    };
    return {
      report: (percent: number, message: string | null) => {
        const pct = Math.max(0, Math.min(100, Math.round(Number(percent) || 0)));
        pending = { percent: pct, message: message === null ? null : String(message) };
        this.#onProgress?.(job.id, pct, pending.message);
        if (timer !== undefined) return;
        timer = setTimeout(write, Math.max(0, last + PROGRESS_EVERY_MS - Date.now()));
      },
      close: () => {
        closed = true;
        if (timer !== undefined) clearTimeout(timer);
      },
    };
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

/** Validates a message a handler sends; bad input fails the attempt for good. */
function parseOnce(def: AnyActor, input: unknown): unknown {
  try {
    return parseInput(def, input);
  } catch (err) {
    throw new NonRetryableError(`message to ${def.name}: input is invalid`, {
      code: "INVALID_INPUT",
      details: err instanceof TroupeError ? err.details : undefined,
    });
  }
}

function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function toJson(value: unknown): unknown {
  if (value === undefined) return null;
  try {
    return JSON.parse(JSON.stringify(value));
  } catch (err) {
    throw new NonRetryableError("handler result or state is not JSON-serializable", {
      code: "NOT_JSON",
      cause: err,
    });
  }
}
