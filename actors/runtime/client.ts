/**
 * The enqueue and admin client: what producers and operators call (enqueue, pipelines,
 * cancel, replay, give-up, schedules).
 *
 * Invariants:
 * - Input is validated (and keyed) before any write; a message is durable when its call
 *   resolves: its row, what the transport writes with it (an outbox row, a notification) and
 *   the caller's `effect` commit in one transaction, and the transport hears of it only after
 *   that commit.
 * - An idempotency key maps to one job id (`deterministicId`); a repeat of the same request
 *   returns the first job, another request with the same key is refused (409), another
 *   tenant's repeat too.
 * - A pipeline's jobs stop with it: cancelling a job of a running pipeline cancels the whole
 *   pipeline (see `sql/pipelines.ts`), under the pipeline's row lock.
 * - A dead letter replays at most once (the mark and the new job commit together). The new job
 *   carries the failed job's end message (`onEnd`), made again for the new job's id: its end
 *   sends it as the original's would have (a completion callback, say).
 * - A scheduled run has one job per minute slot, across instances (keyed by the slot).
 * - An end message (`onEnd`) is validated before any write, stored with its job (`job_end.ts`).
 */
import {
  type ActorTarget,
  type AnyActor,
  type GroupThen,
  type Message,
  type SendOptions,
  targetName,
} from "./define.ts";
import { CancelledError, ConflictError, NotFoundError, toErrorRecord } from "./errors.ts";
import type { Executor } from "./executor.ts";
import { prepareJob, prepareJobNow } from "./executor.ts";
import { buildGroup, endParts, parseGroup, writeGroup } from "./groups.ts";
import { deterministicId, requestHash, uuidv7 } from "./ids.ts";
import type { RuntimeObserver } from "./observer.ts";
import type { Logger, SqlDatabase, SqlExecutor } from "./ports.ts";
import type { JobEvents, Publisher } from "./publisher.ts";
import type { GiveUpOutcome } from "./transport.ts";
import type { JobReader } from "./reader.ts";
import { notifyCancel, requestCancel } from "./sql/cancel_job.ts";
import { checkRepeats } from "./sql/check_repeats.ts";
import { endOfJob, markReplayed } from "./sql/dead_letters.ts";
import { giveUpJob } from "./sql/give_up.ts";
import { insertJobs, type NewJob, type QueuedMessage } from "./sql/insert_jobs.ts";
import { endPipeline, lockPipelines, type PipelineRecord } from "./sql/pipelines.ts";
import { insertPipeline, insertPipelines } from "./sql/start_pipeline.ts";
import type { Tables } from "./sql/tables.ts";
import type { Tracing } from "./tracing.ts";
import { upgradeInput } from "./versions.ts";
import { isTerminal, type JobView, jobView } from "./views.ts";
import { endMessageId, type EndRecord, endRecord, type OnEnd } from "./job_end.ts";
export type { OnEnd };

/** Options of `enqueue`. */
export type EnqueueOptions = SendOptions & {
  /**
   * Database work committed in the same transaction as the message (e.g. the row the job
   * will process): both happen or neither. Not run when an idempotency key repeats.
   */
  effect?: (tx: SqlExecutor, jobId: string) => Promise<void>;
  /** A message sent once the job ends (see `job_end.ts`). */
  onEnd?: OnEnd;
};

/** Options of `startPipeline`. */
export interface StartPipelineOptions {
  tenantId?: string | null;
  idempotencyKey?: string;
  onAbort?: { actor: ActorTarget; input: Record<string, unknown> };
  /** A message sent once the pipeline ends (see `job_end.ts`). */
  onEnd?: OnEnd;
  effect?: (tx: SqlExecutor, ids: { pipelineId: string; jobId: string }) => Promise<void>;
}

/** One pipeline of `startPipelines`: its name, first job and options, with no idempotency key. */
export interface PipelineStart extends Omit<StartPipelineOptions, "idempotencyKey" | "effect"> {
  name: string;
  first: { actor: ActorTarget; input: unknown };
}

/** What a `RuntimeClient` needs. */
export interface ClientOptions {
  db: SqlDatabase;
  tables: Tables;
  actors: ReadonlyMap<string, AnyActor>;
  reader: JobReader;
  publisher: Publisher;
  executor: Pick<Executor, "abort" | "deadLetterSends">;
  events: Pick<JobEvents, "emit">;
  observer: RuntimeObserver;
  log: Logger;
  /** Spans around enqueues; each message carries its enqueue's span. */
  tracing: Tracing;
}

/** Enqueues and administers jobs (see the invariants above). */
export class RuntimeClient {
  readonly #o: ClientOptions;

  constructor(options: ClientOptions) {
    this.#o = options;
  }

  /** The actor called `name`; throws `NotFoundError` when there is none. */
  actor(name: string): AnyActor {
    const def = this.#o.actors.get(name);
    if (!def) throw new NotFoundError("actor", name);
    return def;
  }

  /** Validates and enqueues a message (see `Runtime.enqueue`). */
  async enqueue<I = unknown>(
    actor: ActorTarget<I>,
    input: NoInfer<I>,
    options: EnqueueOptions = {},
  ): Promise<{ job: JobView; created: boolean }> {
    const { db, tables, publisher, tracing } = this.#o;
    const { effect, onEnd, ...sendOptions } = options;
    const def = this.actor(targetName(actor));
    return await tracing.enqueue({ actor: def.name, count: 1 }, async (trace) => {
      const row = await prepareJob(def, input, { ...sendOptions, trace });
      if (onEnd) row.onEnd = this.#endRecord(onEnd, row.id);
      const key = sendOptions.idempotencyKey;
      if (key !== undefined) row.requestHash = requestHash(row.actor, row.input);
      const created = await db.transaction(async (tx) => {
        const inserted = await insertJobs(tx, tables, [row], publisher.writes, {
          fresh: !sendOptions.idempotencyKey,
        });
        if (inserted.length && effect) await effect(tx, row.id);
        if (!inserted.length && key !== undefined) {
          await checkRepeats(tx, tables, [{ id: row.id, hash: row.requestHash!, key }]);
        }
        return inserted;
      });
      await publisher.afterCommit(created);
      const job = await this.#readBack(def, row, created[0]);
      if (!created.length && options.tenantId !== undefined && job.tenantId !== options.tenantId) {
        throw new ConflictError("idempotency key already used by another tenant");
      }
      return { job, created: created.length > 0 };
    });
  }

  /**
   * The job `row` just enqueued, read back. A job of an actor that keeps no successes
   * (`keepSucceeded: false`) may have run, succeeded and been deleted by then: it is shown as
   * this enqueue made it (`made`, its message).
   */
  async #readBack(def: AnyActor, row: NewJob, made: QueuedMessage | undefined): Promise<JobView> {
    try {
      return await this.#o.reader.getJob(row.id);
    } catch (err) {
      if (!(err instanceof NotFoundError) || def.policy.keepSucceeded || !made) throw err;
      // The row as inserted, with the columns' defaults.
      return jobView({
        id: row.id,
        actor: row.actor,
        key: row.key,
        tenant_id: row.tenantId,
        status: "queued",
        progress: 0,
        attempts: 0,
        max_attempts: row.maxAttempts,
        input: row.input,
        parent_id: row.parentId,
        pipeline_id: row.pipelineId,
        replay_of: row.replayOf,
        run_at: made.runAt,
        created_at: new Date(made.runAt.getTime() - row.delayMs),
        updated_at: made.runAt,
      });
    }
  }

  /** The stored form of an end message of job `jobId` (validated and keyed). */
  #endRecord(onEnd: OnEnd, jobId: string): EndRecord {
    const def = this.actor(targetName(onEnd.actor));
    return endRecord(def, onEnd.input, jobId, this.#o.publisher.writes, this.#o.tables);
  }

  /**
   * The end message `stored` (another job's) for the job `jobId` replaying it: built again for
   * `jobId` as an enqueue builds it (its actor's current version and key, this transport's
   * writes); with the stored input as it was when its actor is no longer defined here.
   */
  #replayedEnd(stored: EndRecord, jobId: string): EndRecord {
    const def = this.#o.actors.get(stored.actor);
    if (!def) {
      const { writes } = this.#o.publisher;
      return {
        ...stored,
        id: endMessageId(jobId),
        outbox: writes.outbox,
        channel: writes.notify ? this.#o.tables.jobsChannel : null,
      };
    }
    const input = upgradeInput(def, stored.input, stored.inputVersion ?? def.version);
    return this.#endRecord({ actor: def.name, input: input as Record<string, unknown> }, jobId);
  }

  /** Enqueues many messages to one actor in one transaction (see `Runtime.enqueueMany`). */
  async enqueueMany<I = unknown>(
    actor: ActorTarget<I>,
    inputs: readonly NoInfer<I>[],
    options: Omit<SendOptions, "idempotencyKey"> & { idempotencyKeys?: readonly string[] } = {},
  ): Promise<string[]> {
    const { db, tables, publisher, tracing } = this.#o;
    const def = this.actor(targetName(actor));
    const { idempotencyKeys, ...rest } = options;
    return await tracing.enqueue({ actor: def.name, count: inputs.length }, async (trace) => {
      const common = { ...rest, trace };
      // Without idempotency keys each row is made at once (a fresh id, nothing to hash).
      const rows = idempotencyKeys
        ? await Promise.all(inputs.map((input, i) => {
          const idempotencyKey = idempotencyKeys[i];
          return prepareJob(def, input, idempotencyKey ? { ...common, idempotencyKey } : common);
        }))
        : inputs.map((input) => prepareJobNow(def, input, common));
      const keyed: { id: string; hash: string; key: string }[] = [];
      if (idempotencyKeys) {
        for (const [i, row] of rows.entries()) {
          const key = idempotencyKeys[i];
          if (!key) continue;
          row.requestHash = requestHash(row.actor, row.input);
          keyed.push({ id: row.id, hash: row.requestHash, key });
        }
      }
      const created = await db.transaction(async (tx) => {
        const inserted = await insertJobs(tx, tables, rows, publisher.writes, {
          fresh: keyed.length === 0,
        });
        if (inserted.length < rows.length) {
          const fresh = new Set(inserted.map((m) => m.id));
          await checkRepeats(tx, tables, keyed.filter((k) => !fresh.has(k.id)));
        }
        return inserted;
      });
      await publisher.afterCommit(created);
      return rows.map((r) => r.id);
    });
  }

  /** Fans out with a continuation (see `Runtime.enqueueGroup`). */
  async enqueueGroup(
    parts: readonly Message[],
    then: GroupThen,
    options: { tenantId?: string | null; idempotencyKey?: string } = {},
  ): Promise<{ groupId: string; jobIds: string[]; continuationId: string }> {
    const { db, tables, publisher } = this.#o;
    const tenantId = options.tenantId ?? null;
    const key = options.idempotencyKey;
    const groupId = key ? await deterministicId("group", tenantId ?? "", key) : uuidv7();
    const parsed = parseGroup((a) => this.actor(targetName(a)), parts, then);
    const first = parsed.parts[0]?.def ?? parsed.then.def;
    return await this.#o.tracing.enqueue(
      { actor: first.name, count: parts.length },
      async (trace) => {
        const made = await buildGroup(
          parsed,
          { id: groupId, tenantId, parentId: null, pipelineId: null, trace },
          key ? (i) => `${groupId}/${i}` : undefined,
        );
        const writes = publisher.writes;
        const sent = await db.transaction((tx) => writeGroup(tx, tables, made, writes));
        await publisher.afterCommit(sent);
        return { groupId, jobIds: made.row?.parts ?? [], continuationId: `${groupId}-then` };
      },
    );
  }

  /** Cancels a job or a pipeline (see `Runtime.cancel`). */
  async cancel(id: string, tenantId?: string | null): Promise<JobView> {
    const { db, tables, publisher, reader } = this.#o;
    const job = await reader.getJob(id, tenantId);
    if (job.kind === "pipeline") return await this.#cancelPipeline(id, tenantId);
    if (job.pipelineId !== null && !isTerminal(job.status)) {
      // A pipeline stops as a whole: its jobs' ends roll up into it.
      await this.#cancelPipeline(job.pipelineId).catch((err) => {
        if (!(err instanceof ConflictError)) throw err;
      });
      return await reader.getJob(id);
    }
    const error = toErrorRecord(new CancelledError());
    const writes = publisher.writes;
    const { status, sent } = await db.transaction(async (tx) => {
      const row = await requestCancel(tx, tables, id, error);
      // A queued part cancelled here ends its group (a running one ends at its commit).
      const groupId = row?.status === "cancelled" ? row.group_id : null;
      const ends = groupId ? [{ jobId: id, groupId, status: "cancelled" as const, error }] : [];
      return { status: row?.status, sent: await endParts(tx, tables, ends, { writes }) };
    });
    await publisher.afterCommit(sent);
    if (status === undefined) {
      throw new ConflictError(`job ${id} is already ${job.status}`, { status: job.status });
    }
    if (status === "running") {
      this.#o.executor.abort(id, new CancelledError());
      await notifyCancel(db, tables, id);
    }
    this.#o.events.emit(id);
    return await reader.getJob(id);
  }

  /** Cancels a running pipeline (see `endPipeline`); a pipeline that has ended: 409. */
  async #cancelPipeline(id: string, tenantId?: string | null): Promise<JobView> {
    const { db, tables, publisher, reader } = this.#o;
    const out = await db.transaction(async (tx) => {
      const locked = await lockPipelines(tx, tables, [id]);
      const p = locked.get(id);
      if (!p || (tenantId !== undefined && p.tenant_id !== tenantId)) {
        throw new NotFoundError("job", id);
      }
      if (p.status !== "running") {
        throw new ConflictError(`job ${id} is already ${p.status}`, { status: p.status });
      }
      return await endPipeline(
        tx,
        tables,
        p,
        { status: "cancelled", error: toErrorRecord(new CancelledError()) },
        publisher.hook,
        { writes: publisher.writes },
      );
    });
    reader.forget(id);
    publisher.stopped(out.cancelled, [id]);
    await publisher.afterCommitOrLog(out.sent);
    return await reader.getJob(id);
  }

  /** Enqueues a dead letter's message again as a new job; a dead letter replays once. */
  async replay(deadLetterId: string, tenantId?: string | null): Promise<JobView> {
    const { db, tables, publisher, reader } = this.#o;
    const dl = await reader.deadLetter(deadLetterId, tenantId);
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
      trace: this.#o.tracing.current(),
    });
    const ended = await endOfJob(db, tables, String(dl.job_id));
    if (ended) row.onEnd = this.#replayedEnd(ended, row.id);
    const created = await db.transaction(async (tx) => {
      if (!await markReplayed(tx, tables, deadLetterId, row.id)) {
        throw new ConflictError(`dead letter ${deadLetterId} was replayed already`);
      }
      return await insertJobs(tx, tables, [row], publisher.writes);
    });
    await publisher.afterCommit(created);
    return await reader.getJob(row.id);
  }

  /** Dead-letters a message the transport gave up on (see `Runtime.giveUp`). */
  async giveUp(
    jobId: string,
    error: { code: string; message: string },
  ): Promise<GiveUpOutcome> {
    const { db, tables, publisher, executor } = this.#o;
    const out = await giveUpJob(db, tables, jobId, error, {
      deadLetterSends: (job, actor, record) =>
        executor.deadLetterSends(job, this.#o.actors.get(actor), record),
      writes: publisher.writes,
      hook: publisher.hook,
    });
    if (out.outcome === "dead-lettered") {
      if (out.actor) this.#o.observer.deadLettered(out.actor, "undeliverable");
      this.#o.reader.forget(jobId);
      this.#o.events.emit(jobId);
      publisher.stopped(out.cancelled, [out.pipelineId]);
      await publisher.afterCommitOrLog(out.sent);
    }
    return out.outcome;
  }

  /** Starts a pipeline with its first job (see `Runtime.startPipeline`). */
  async startPipeline(
    name: string,
    first: { actor: ActorTarget; input: unknown },
    options: StartPipelineOptions = {},
  ): Promise<{ job: JobView; firstJobId: string; created: boolean }> {
    const { db, tables, publisher, reader } = this.#o;
    const p = await this.#preparePipeline({ name, first, ...options });
    const sent = await db.transaction(async (tx) => {
      const made = await insertPipeline(tx, tables, p.pipeline);
      if (!made) return null;
      const inserted = await insertJobs(tx, tables, [p.row], publisher.writes);
      await options.effect?.(tx, { pipelineId: p.pipeline.id, jobId: p.row.id });
      return inserted;
    });
    await publisher.afterCommit(sent ?? []);
    const job = await reader.getJob(p.pipeline.id);
    if (sent === null && job.tenantId !== p.pipeline.tenantId) {
      throw new ConflictError("idempotency key already used by another tenant");
    }
    return { job, firstJobId: p.row.id, created: sent !== null };
  }

  /** Starts several pipelines in one transaction (see `Runtime.startPipelines`). */
  async startPipelines(
    starts: readonly PipelineStart[],
    effect?: (tx: SqlExecutor, ids: { pipelineId: string; jobId: string }[]) => Promise<void>,
  ): Promise<{ pipelineId: string; firstJobId: string }[]> {
    const { db, tables, publisher } = this.#o;
    const prepared = await Promise.all(starts.map((start) => this.#preparePipeline(start)));
    const ids = prepared.map((p) => ({ pipelineId: p.pipeline.id, jobId: p.row.id }));
    if (prepared.length === 0) return [];
    const sent = await db.transaction(async (tx) => {
      await insertPipelines(tx, tables, prepared.map((p) => p.pipeline));
      const inserted = await insertJobs(tx, tables, prepared.map((p) => p.row), publisher.writes);
      await effect?.(tx, ids);
      return inserted;
    });
    await publisher.afterCommit(sent);
    return ids.map(({ pipelineId, jobId }) => ({ pipelineId, firstJobId: jobId }));
  }

  /** A pipeline's row and its first job's, validated (nothing written). */
  async #preparePipeline(
    { name, first, tenantId = null, idempotencyKey, onAbort, onEnd }: PipelineStart & {
      idempotencyKey?: string;
    },
  ) {
    if (!/^[a-z][a-z0-9._-]{0,63}$/.test(name) || this.#o.actors.has(name)) {
      throw new TypeError(`pipeline name ${JSON.stringify(name)} is invalid or an actor's`);
    }
    const abort = onAbort
      ? { actor: this.actor(targetName(onAbort.actor)).name, input: onAbort.input }
      : null;
    const pipelineId = idempotencyKey
      ? await deterministicId("pipeline", tenantId ?? "", name, idempotencyKey)
      : uuidv7();
    const def = this.actor(targetName(first.actor));
    const row = await prepareJob(def, first.input, {
      tenantId,
      parentId: pipelineId,
      pipelineId,
      ...(idempotencyKey ? { idempotencyKey: `pipeline:${pipelineId}` } : {}),
      trace: this.#o.tracing.current(),
    });
    const record: PipelineRecord = { done: null, total: null, unit: null, onAbort: abort };
    return {
      row,
      pipeline: {
        id: pipelineId,
        name,
        tenantId,
        input: { first: { actor: def.name, input: first.input } },
        record,
        onEnd: onEnd ? this.#endRecord(onEnd, pipelineId) : null,
      },
    };
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
    fire: (actor: string) => Promise<unknown> = (actor) => this.fireSchedule(actor),
  ): string[] {
    const names: string[] = [];
    for (const def of this.#o.actors.values()) {
      if (!def.schedule) continue;
      // Deno.cron names allow letters, digits, whitespace, "-" and "_" only.
      cron(`troupe_${def.name.replace(/[^A-Za-z0-9_-]/g, "_")}`, def.schedule.cron, async () => {
        try {
          await fire(def.name);
        } catch (err) {
          this.#o.log.error("scheduled enqueue failed", { actor: def.name, error: String(err) });
        }
      });
      names.push(def.name);
    }
    return names;
  }
}
