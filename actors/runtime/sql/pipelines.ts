/**
 * Pipelines: a parent job that no handler runs, whose status, progress and error follow the
 * jobs sent within it.
 *
 * Invariants:
 * - A pipeline row has `kind = 'pipeline'`, is `running` from its creation (it is never
 *   `queued`, so no dispatcher claims it) and its actor is the pipeline's name, never an
 *   actor's (so no reaper takes it). It is created with its first job, in one transaction.
 * - Every job of a pipeline carries its id in `pipeline_id`: the first job, every job a job of
 *   the pipeline sends (fan-out included, transitively) and the messages of `onDeadLetter`.
 * - A pipeline's row is locked (`FOR UPDATE`) before anything that changes its jobs: a commit
 *   of its jobs locks it before the jobs' own rows, and so does a cancel. So a commit and a
 *   cancel serialize, a job is never added to a pipeline that has ended (its sends are dropped,
 *   "no further children run"), and the roll-up reads the committed state of every job.
 * - The roll-up is written in the transaction of the job commit that causes it: no timer.
 *   - The workload reports progress (`{done, total, unit}`, absolute values: a redelivered
 *     message writes the same) and ends the pipeline: `complete()` (succeeded, with a result)
 *     or `fail()` (failed, with its error), applied with its message's commit.
 *   - A job that fails for good (last attempt, non-retryable, `InputError`, poison, given up
 *     by the transport) and whose actor sent nothing for it (`onDeadLetter`) and that is no
 *     part of a group (whose continuation hears of it) fails the pipeline with its error; a
 *     job cancelled cancels it. A failure whose `onDeadLetter`
 *     messages carry on is the workload's to handle (it ends the pipeline itself).
 *   - A pipeline with no job queued or running after a job of it ended is over: succeeded.
 *     (Sends commit with their sender, so no open job means no more work will come.)
 * - A pipeline that ends other than succeeded takes its open jobs with it: queued ones are
 *   cancelled at once, running ones get `cancel_requested` and a `troupe_cancel` notification
 *   (their handlers are aborted wherever they run). A pipeline ended by the runtime (cancel, a
 *   failed or cancelled job) sends its abort hook, if it has one, so the workload's own record
 *   (a dataset's, a course's status) follows. A pipeline that has ended never changes again.
 */
import { CancelledError, type ErrorRecord, toErrorRecord } from "../errors.ts";
import type { SqlExecutor } from "../ports.ts";
import { insertJobs, type MessageWrites, type NewJob, type QueuedMessage } from "./insert_jobs.ts";
import type { Tables } from "./tables.ts";

/** What a pipeline row keeps in its `pipeline` column. */
export interface PipelineRecord {
  done: number | null;
  total: number | null;
  unit: string | null;
  /** Sent when the runtime ends the pipeline (cancel, a job failed or cancelled). */
  onAbort: { actor: string; input: unknown } | null;
}

/** The workload's pipeline calls in one message, committed with it. */
export interface PipelineOp {
  progress?: { done: number; total: number | null; unit: string };
  end?:
    | { status: "succeeded"; result: unknown }
    | { status: "failed"; error: { code: string; message: string } };
}

/** A job of a pipeline that ended (for the roll-up). */
export interface JobEnd {
  pipelineId: string;
  status: "succeeded" | "failed" | "cancelled";
  error?: ErrorRecord | null;
  /** A failure whose `onDeadLetter` sent messages, or of a group's part: the workload carries on. */
  handled: boolean;
}

/** A locked pipeline row. */
export interface LockedPipeline {
  id: string;
  status: string;
  tenant_id: string | null;
  pipeline: PipelineRecord | null;
  /** Whether it has an end message (`on_end`, see `../job_end.ts`). */
  ends?: boolean;
}

/** Builds the abort hook's message (the runtime validates it against the actor). */
export type AbortHook = (
  pipeline: LockedPipeline,
  outcome: { status: "failed" | "cancelled"; error: ErrorRecord },
) => NewJob | null;

/** Locks pipeline rows, in id order (the order every locker uses). */
export async function lockPipelines(
  tx: SqlExecutor,
  t: Tables,
  ids: Iterable<string | null | undefined>,
): Promise<Map<string, LockedPipeline>> {
  const wanted = [...new Set([...ids].filter((id): id is string => !!id))].sort();
  if (wanted.length === 0) return new Map();
  const rows = await tx.query<LockedPipeline>(
    `SELECT id, status, tenant_id, pipeline, on_end IS NOT NULL AS ends FROM ${t.jobs}
     WHERE id = ANY($1::text[]) AND kind = 'pipeline' ORDER BY id FOR UPDATE`,
    [wanted],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/** Drops the messages addressed to a pipeline that is not running (locked in `pipelines`). */
export function dropEnded(
  sends: readonly NewJob[],
  pipelines: ReadonlyMap<string, LockedPipeline>,
): NewJob[] {
  return sends.filter((s) => !s.pipelineId || pipelines.get(s.pipelineId)?.status === "running");
}

/** Applies the workload's progress reports and ends, in message order. */
export async function applyOps(
  tx: SqlExecutor,
  t: Tables,
  pipelines: Map<string, LockedPipeline>,
  ops: readonly { pipelineId: string; op: PipelineOp }[],
  hook: AbortHook,
  options: { writes: MessageWrites },
): Promise<{ sent: QueuedMessage[]; cancelled: string[] }> {
  const sent: QueuedMessage[] = [];
  const cancelled: string[] = [];
  for (const { pipelineId, op } of ops) {
    const p = pipelines.get(pipelineId);
    if (!p || p.status !== "running") continue;
    if (op.progress) {
      const { done, total, unit } = op.progress;
      const record = { ...(p.pipeline ?? emptyRecord()), done, total, unit };
      p.pipeline = record;
      const percent = total && total > 0 ? Math.min(99, Math.floor((done / total) * 100)) : 0;
      await tx.query(
        `UPDATE ${t.jobs} SET pipeline = $2::jsonb, progress = $3, progress_message = $4,
           updated_at = now()
         WHERE id = $1`,
        [pipelineId, JSON.stringify(record), percent, progressMessage(record)],
      );
    }
    if (op.end) {
      const ended = op.end.status === "succeeded"
        ? await endPipeline(tx, t, p, { status: "succeeded", result: op.end.result }, hook, options)
        : await endPipeline(
          tx,
          t,
          p,
          {
            status: "failed",
            error: { ...op.end.error, retryable: false, at: new Date().toISOString() },
          },
          hook,
          { ...options, runtime: false },
        );
      sent.push(...ended.sent);
      cancelled.push(...ended.cancelled);
    }
  }
  return { sent, cancelled };
}

/**
 * The roll-up after jobs of pipelines ended (their rows written in this transaction): a
 * failure nobody handles or a cancel ends the pipeline so; else a pipeline with no open job
 * left has succeeded. `open`: pipelines known to have an open job (one was sent in this
 * transaction).
 */
export async function rollUp(
  tx: SqlExecutor,
  t: Tables,
  pipelines: Map<string, LockedPipeline>,
  ends: readonly JobEnd[],
  hook: AbortHook,
  options: { writes: MessageWrites; open?: ReadonlySet<string> },
): Promise<{ sent: QueuedMessage[]; cancelled: string[] }> {
  const sent: QueuedMessage[] = [];
  const cancelled: string[] = [];
  const finished = new Set<string>();
  for (const end of ends) {
    const p = pipelines.get(end.pipelineId);
    if (!p || p.status !== "running") continue;
    if (end.status === "succeeded" || (end.status === "failed" && end.handled)) {
      finished.add(p.id);
      continue;
    }
    const error = end.error ?? toErrorRecord(new CancelledError());
    const out = await endPipeline(tx, t, p, { status: end.status, error }, hook, options);
    sent.push(...out.sent);
    cancelled.push(...out.cancelled);
  }
  // A pipeline this transaction sent a job into (`options.open`) has one open: no query.
  const running = [...finished].filter((id) =>
    pipelines.get(id)?.status === "running" && !options.open?.has(id)
  );
  if (running.length > 0) {
    const open = new Set(
      (await tx.query<{ pipeline_id: string }>(
        `SELECT DISTINCT pipeline_id FROM ${t.jobs}
         WHERE pipeline_id = ANY($1::text[]) AND status IN ('queued', 'running')`,
        [running],
      )).map((r) => r.pipeline_id),
    );
    for (const id of running) {
      if (open.has(id)) continue;
      await endPipeline(
        tx,
        t,
        pipelines.get(id)!,
        { status: "succeeded", result: null },
        hook,
        options,
      );
    }
  }
  return { sent, cancelled };
}

/**
 * Ends a locked, running pipeline. Other than succeeded, its open jobs are cancelled (queued
 * ones now; running ones are asked to stop, notified at commit); returns their ids and, when
 * the runtime ended it (`runtime`, the default), the abort hook's message.
 */
export async function endPipeline(
  tx: SqlExecutor,
  t: Tables,
  p: LockedPipeline,
  outcome:
    | { status: "succeeded"; result: unknown }
    | { status: "failed" | "cancelled"; error: ErrorRecord },
  hook: AbortHook,
  { writes, runtime = true }: { writes: MessageWrites; runtime?: boolean },
): Promise<{ sent: QueuedMessage[]; cancelled: string[] }> {
  p.status = outcome.status;
  const succeeded = outcome.status === "succeeded";
  const record = p.pipeline ?? emptyRecord();
  if (succeeded && record.total !== null) record.done = record.total;
  await tx.query(
    `UPDATE ${t.jobs} SET status = $2, result = $3::jsonb, error = $4::jsonb,
       pipeline = $5::jsonb, progress = CASE WHEN $2 = 'succeeded' THEN 100 ELSE progress END,
       progress_message = CASE WHEN $2 = 'succeeded' THEN $6 ELSE progress_message END,
       cancel_requested = cancel_requested OR $2 = 'cancelled',
       finished_at = now(), updated_at = now()
     WHERE id = $1`,
    [
      p.id,
      outcome.status,
      succeeded ? JSON.stringify(outcome.result ?? null) : null,
      succeeded ? null : JSON.stringify(outcome.error),
      JSON.stringify(record),
      progressMessage(record),
    ],
  );
  // Whatever is still open stops with the pipeline (after `complete()`, work left over).
  const stopped = await tx.query<{ id: string; status: string }>(
    `UPDATE ${t.jobs} SET cancel_requested = true, updated_at = now(),
       status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
       error = CASE WHEN status = 'queued' THEN $2::jsonb ELSE error END,
       finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
     WHERE pipeline_id = $1 AND status IN ('queued', 'running')
     RETURNING id, status`,
    [p.id, JSON.stringify(toErrorRecord(new CancelledError()))],
  );
  const running = stopped.filter((r) => r.status === "running").map((r) => r.id);
  if (running.length > 0) {
    await tx.query(`SELECT pg_notify('${t.cancelChannel}', id) FROM unnest($1::text[]) AS id`, [
      running,
    ]);
  }
  let sent: QueuedMessage[] = [];
  if (!succeeded && runtime) {
    const message = hook(p, outcome);
    if (message) sent = await insertJobs(tx, t, [message], writes);
  }
  return { sent, cancelled: stopped.map((r) => r.id) };
}

function emptyRecord(): PipelineRecord {
  return { done: null, total: null, unit: null, onAbort: null };
}

function progressMessage(r: PipelineRecord): string | null {
  if (r.done === null || r.unit === null) return null;
  return r.total === null ? `${r.done} ${r.unit}` : `${r.done}/${r.total} ${r.unit}`;
}
