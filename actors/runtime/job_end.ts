/**
 * End messages: a job or a pipeline may name a message to send once it ends (succeeded,
 * failed or cancelled), as Celery's link callbacks do. Its input gets `job`: a
 * {@linkcode JobEnd} with the ended job's id, status, result and error.
 *
 * Invariants:
 * - The message is validated, keyed and versioned when the job is enqueued (its input with a
 *   sample `job`), and stored on the job's row (`on_end`): the end never fails on it.
 * - It is inserted by a trigger on the job's row (migration `0008_job_end`) in the transaction
 *   that moves the row from queued/running to a final status, whichever path ends it (a
 *   commit, a cancel, the reaper, a transport giving up, a pipeline's roll-up). A row leaves
 *   queued/running once and the message's id is fixed (`<job id>-end`): it is sent exactly
 *   once, committed with the end.
 * - It carries the ended job's trace context. What the transport asks every writer of
 *   messages for (`Transport.inTransaction`) was stored with it: a notification at that
 *   commit, or an outbox row: published right after the commit when a handler's completion
 *   ended the job or its pipeline (`completeJobs` returns it with what it sent), by the outbox
 *   relay when another path did (a cancel, the reaper, a transport giving up).
 * - From there it is an ordinary message: its actor's retries, backoff and dead letters apply.
 */
import { z } from "zod";
import type { ActorTarget, AnyActor } from "./define.ts";
import type { MessageWrites } from "./sql/insert_jobs.ts";
import type { Tables } from "./sql/tables.ts";

/** A message to send when a job or pipeline ends; its input gets `job` (see above). */
export interface OnEnd {
  /** The actor; its input schema must accept `job` (`jobEndSchema`). */
  actor: ActorTarget;
  /** Its input, without `job`. */
  input: Record<string, unknown>;
}
import { parseInput } from "./prepare.ts";

/** The end of a job, as an end message's `input.job` carries it. */
export interface JobEnd {
  /** The job (or pipeline) that ended. */
  id: string;
  /** `job` or `pipeline`. */
  kind: "job" | "pipeline";
  /** Its actor (a pipeline: its name). */
  actor: string;
  /** How it ended. */
  status: "succeeded" | "failed" | "cancelled";
  /** Its result, when it succeeded. */
  result: unknown;
  /** Its last error (an `ErrorRecord`), or null. */
  error: unknown;
  /** When it ended (ISO 8601). */
  finishedAt: string;
}

/** The schema of `input.job` in an end message: put it in its actor's input schema. */
export const jobEndSchema: z.ZodType<JobEnd> = z.object({
  id: z.string(),
  kind: z.enum(["job", "pipeline"]),
  actor: z.string(),
  status: z.enum(["succeeded", "failed", "cancelled"]),
  result: z.unknown(),
  error: z.unknown(),
  finishedAt: z.string(),
}) as z.ZodType<JobEnd>;

/** An end message as stored on its job's row, for the trigger that sends it. */
export interface EndRecord {
  id: string;
  actor: string;
  key: string;
  /** The validated input, without `job` (the trigger adds it). */
  input: Record<string, unknown>;
  priority: number;
  maxAttempts: number;
  inputVersion: number;
  /** Give the message an outbox row (a push transport). */
  outbox: boolean;
  /** The channel to notify at the end's commit (a transport that asks for it), or null. */
  channel: string | null;
}

/** The id of the end message of job `jobId`. */
export function endMessageId(jobId: string): string {
  return `${jobId}-end`;
}

/**
 * Validates and keys the end message of job `jobId` (`def` with `input`, and a sample `job`);
 * throws `INVALID_INPUT` (400) when its actor refuses it.
 */
export function endRecord(
  def: AnyActor,
  input: Record<string, unknown>,
  jobId: string,
  writes: MessageWrites,
  tables: Pick<Tables, "jobsChannel">,
): EndRecord {
  const delivery = { outbox: writes.outbox, channel: writes.notify ? tables.jobsChannel : null };
  const sample: JobEnd = {
    id: jobId,
    kind: "job",
    actor: def.name,
    status: "succeeded",
    result: null,
    error: null,
    finishedAt: new Date().toISOString(),
  };
  const parsed = parseInput(def, { ...input, job: sample }) as Record<string, unknown>;
  const { job: _job, ...rest } = parsed;
  return {
    id: endMessageId(jobId),
    actor: def.name,
    key: def.keyOf(parsed),
    input: rest,
    priority: 0,
    maxAttempts: def.policy.maxAttempts,
    inputVersion: def.version,
    ...delivery,
  };
}
