import type { ErrorRecord } from "../errors.ts";
import { endParts } from "../groups.ts";
import { uuidv7 } from "../ids.ts";
import type { SqlDatabase } from "../ports.ts";
import { insertJobs, type MessageWrites, type NewJob, type QueuedMessage } from "./insert_jobs.ts";
import { type AbortHook, dropEnded, lockPipelines, rollUp } from "./pipelines.ts";
import type { Tables } from "./tables.ts";

/** A job the transport gave up on, as its dead letter's `onDeadLetter` needs it. */
export interface GivenUpJob {
  id: string;
  input: unknown;
  tenant_id: string | null;
  pipeline_id: string | null;
  /** The trace context it was made in (its dead-letter hook's messages continue it). */
  traceparent?: string | null;
  tracestate?: string | null;
}

/** What `giveUpJob` did. */
export interface GiveUpResult {
  outcome: "dead-lettered" | "running" | "finished" | "unknown";
  /** The job's actor, when it was dead-lettered. */
  actor?: string;
  /** The job's pipeline, or null. */
  pipelineId: string | null;
  sent: QueuedMessage[];
  cancelled: string[];
}

/**
 * Fails a job still queued, with a dead letter and the messages `deadLetterSends` asks for, in
 * one transaction; a running or finished job is left alone. Its pipeline's row is locked
 * before the job's, as a commit does (see `pipelines.ts`).
 */
export async function giveUpJob(
  db: SqlDatabase,
  t: Tables,
  jobId: string,
  error: { code: string; message: string },
  options: {
    deadLetterSends: (job: GivenUpJob, actor: string, error: ErrorRecord) => NewJob[];
    writes: MessageWrites;
    hook: AbortHook;
  },
): Promise<GiveUpResult> {
  const [found] = await db.query<{ pipeline_id: string | null }>(
    `SELECT pipeline_id FROM ${t.jobs} WHERE id = $1`,
    [jobId],
  );
  const pipelineId = found?.pipeline_id ?? null;
  return await db.transaction(async (tx) => {
    const pipelines = await lockPipelines(tx, t, [found?.pipeline_id]);
    const rows = await tx.query<{ status: string }>(
      `SELECT status FROM ${t.jobs} WHERE id = $1 FOR UPDATE`,
      [jobId],
    );
    const status = rows[0]?.status;
    const none = { pipelineId, sent: [], cancelled: [] };
    if (status === undefined) return { outcome: "unknown" as const, ...none };
    if (status === "running") return { outcome: "running" as const, ...none };
    if (status !== "queued") return { outcome: "finished" as const, ...none };
    const record: ErrorRecord = { ...error, retryable: true, at: new Date().toISOString() };
    const [job] = await tx.query<
      {
        actor: string;
        tenant_id: string | null;
        input: unknown;
        group_id: string | null;
        traceparent: string | null;
        tracestate: string | null;
      }
    >(
      `WITH upd AS (
           UPDATE ${t.jobs} SET status = 'failed', error = $2::jsonb, finished_at = now(),
             updated_at = now(), lease_owner = NULL
           WHERE id = $1
           RETURNING id, actor, key, tenant_id, input, input_version, attempts, group_id,
             traceparent, tracestate
         ), dl AS (
           INSERT INTO ${t.deadLetters} (id, job_id, actor, key, tenant_id, input,
             input_version, error, attempts)
           SELECT $3, id, actor, key, tenant_id, input, input_version, $2::jsonb, attempts
           FROM upd
         )
         SELECT actor, tenant_id, input, group_id, traceparent, tracestate FROM upd`,
      [jobId, JSON.stringify(record), uuidv7()],
    );
    const sends: NewJob[] = job
      ? options.deadLetterSends(
        {
          id: jobId,
          input: job.input,
          tenant_id: job.tenant_id,
          pipeline_id: pipelineId,
          traceparent: job.traceparent,
          tracestate: job.tracestate,
        },
        job.actor,
        record,
      )
      : [];
    const { writes } = options;
    const sent = await insertJobs(tx, t, dropEnded(sends, pipelines), writes);
    if (job?.group_id) {
      const ends = [{ jobId, groupId: job.group_id, status: "failed" as const, error: record }];
      const keep = (j: NewJob) => dropEnded([j], pipelines).length > 0;
      sent.push(...await endParts(tx, t, ends, { writes, keep }));
    }
    const rolled = pipelineId
      ? await rollUp(
        tx,
        t,
        pipelines,
        [{
          pipelineId,
          status: "failed",
          error: record,
          // A part of a group is handled by the group's continuation.
          handled: sends.length > 0 || !!job?.group_id,
        }],
        options.hook,
        { writes },
      )
      : { sent: [], cancelled: [] };
    return {
      outcome: "dead-lettered" as const,
      ...(job?.actor ? { actor: job.actor } : {}),
      pipelineId,
      sent: [...sent, ...rolled.sent],
      cancelled: rolled.cancelled,
    };
  });
}
