import { CancelledError, type ErrorRecord, toErrorRecord } from "../errors.ts";
import { endParts, type PartEnd } from "../groups.ts";
import { uuidv7 } from "../ids.ts";
import type { SqlDatabase } from "../ports.ts";
import { insertJobs, type MessageWrites, type NewJob, type QueuedMessage } from "./insert_jobs.ts";
import { LEASE_KEY } from "./claim_jobs.ts";
import type { Tables } from "./tables.ts";
import { type AbortHook, dropEnded, type JobEnd, lockPipelines, rollUp } from "./pipelines.ts";

const POISON_JOB = "POISON_JOB";

/** Most jobs reaped in one transaction; a full batch is followed by another. */
const REAP_BATCH = 500;

/** A running job whose lease is gone, as the reaper found it. */
export interface ReapedJob {
  id: string;
  actor: string;
  key: string;
  tenant_id: string | null;
  input: unknown;
  attempts: number;
  max_attempts: number;
  cancel_requested: boolean;
  /** Lease losses counting this one (when its process stopped rather than gave it back). */
  lease_losses: number;
  pipeline_id: string | null;
  /** The group the job is a part of (see `../groups.ts`). */
  group_id: string | null;
  /** The trace context it was made in (its dead-letter hook's messages continue it). */
  traceparent?: string | null;
  tracestate?: string | null;
}

export interface ReapOptions {
  /**
   * The actors this process runs: only their jobs are reaped here, since a job that dies here
   * needs its actor's `onDeadLetter`.
   */
  actors: readonly string[];
  /** A job whose lease was lost this many times is dead-lettered as poison. */
  maxLeaseLosses: number;
  /** The messages the actor's `onDeadLetter` asks for, committed with the dead letter. */
  deadLetterSends: (job: ReapedJob, error: ErrorRecord) => NewJob[];
  /** What the transport has written with each sent message (`Transport.inTransaction`). */
  writes: MessageWrites;
  /** The abort hook of pipelines that a reaped job ends (see `pipelines.ts`). */
  hook: AbortHook;
}

/**
 * Requeues running jobs whose lease is gone (their key's, or for an unordered job the instance
 * lease of its process): their process crashed or stalled past its lease, or gave the lease back
 * with the job unfinished. The attempt counts: a job out of attempts goes to the dead letters; a
 * job whose cancel was requested is cancelled.
 *
 * A lease that lapsed while its owner still held it (the job row keeps its `lease_owner`; a
 * lease given back clears it) is a lost lease. The first one counts against every job claimed
 * under it; those jobs are then suspects, whose handlers run one at a time in a process and
 * record their start (`started_fence`) before it, so a later loss counts only against the
 * suspect that had begun, not against the ones claimed beside it. A job that lost
 * `maxLeaseLosses` leases is a poison job (it brings its process down) and is dead-lettered
 * with `POISON_JOB`, attempts left or not. Every dead letter calls its actor's
 * `onDeadLetter`, in the same transaction.
 *
 * Returns the reaped jobs' ids, the poison jobs among them and the messages sent (for the
 * transport to publish).
 */
export async function reapJobs(
  db: SqlDatabase,
  t: Tables,
  options: ReapOptions,
): Promise<
  {
    reaped: string[];
    poisoned: ReapedJob[];
    /** Dead-lettered because the lease lapsed on their last attempt. */
    lapsed: ReapedJob[];
    sent: QueuedMessage[];
    cancelled: string[];
    /** Put back in the queue: handed to the transport again (a pushed message may be spent). */
    requeued: QueuedMessage[];
  }
> {
  const requeued: QueuedMessage[] = [];
  const cancelled: string[] = [];
  const reaped: string[] = [];
  const poisoned: ReapedJob[] = [];
  const lapsed: ReapedJob[] = [];
  const sent: QueuedMessage[] = [];
  for (;;) {
    const batch = await db.transaction(async (tx) => {
      const jobs = await tx.query<ReapedJob>(
        `SELECT j.id, j.actor, j.key, j.tenant_id, j.input, j.attempts, j.max_attempts,
           j.cancel_requested, j.pipeline_id, j.group_id, j.traceparent, j.tracestate,
           j.lease_losses + CASE WHEN j.lease_owner IS NOT NULL
             AND (j.lease_losses = 0 OR j.started_fence = j.lease_fence) THEN 1 ELSE 0 END
             AS lease_losses
         FROM ${t.jobs} j
         WHERE j.status = 'running' AND j.actor = ANY($1::text[]) AND NOT EXISTS (
           SELECT 1 FROM ${t.actorState} s
           WHERE s.key = ${LEASE_KEY("j")} AND s.fence = j.lease_fence
             AND s.lease_until > now())
         ORDER BY j.id
         LIMIT $2
         FOR UPDATE OF j SKIP LOCKED`,
        [options.actors, REAP_BATCH],
      );
      if (jobs.length === 0) {
        return { ids: [], poisoned: [], lapsed: [], sent: [], cancelled: [] };
      }
      const sends: NewJob[] = [];
      const poison: ReapedJob[] = [];
      const lastAttempt: ReapedJob[] = [];
      const ends: JobEnd[] = [];
      const partEnds: PartEnd[] = [];
      const rows = jobs.map((job) => {
        const { status, error } = outcome(job, options.maxLeaseLosses);
        if (error.code === POISON_JOB) poison.push(job);
        else if (status === "failed") lastAttempt.push(job);
        if (status === "queued") {
          requeued.push({ id: job.id, actor: job.actor, key: job.key, runAt: new Date() });
        }
        const dead = status === "failed";
        const mine = dead ? options.deadLetterSends(job, error) : [];
        sends.push(...mine);
        if (job.group_id && status !== "queued") {
          partEnds.push({ jobId: job.id, groupId: job.group_id, status, error });
        }
        if (job.pipeline_id && status !== "queued") {
          const handled = mine.length > 0 || !!job.group_id;
          ends.push({ pipelineId: job.pipeline_id, status, error, handled });
        }
        return {
          id: job.id,
          status,
          error,
          lease_losses: job.lease_losses,
          // Made here, one per row: an id made in SQL by an uncorrelated expression is
          // computed once per statement, and two dead letters of one reap would share it.
          dead_letter_id: dead ? uuidv7() : null,
        };
      });
      await tx.query(
        `WITH x AS (
           SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id text, status text, error jsonb,
             lease_losses int, dead_letter_id text)
         ), upd AS (
           UPDATE ${t.jobs} j SET status = x.status, error = x.error,
             lease_losses = x.lease_losses, lease_owner = NULL, run_at = now(),
             updated_at = now(),
             finished_at = CASE WHEN x.status = 'queued' THEN NULL ELSE now() END
           FROM x WHERE j.id = x.id
           RETURNING j.id, j.actor, j.key, j.tenant_id, j.input, j.input_version, j.attempts,
             x.error, x.dead_letter_id
         )
         INSERT INTO ${t.deadLetters} (id, job_id, actor, key, tenant_id, input,
           input_version, error, attempts)
         SELECT dead_letter_id, id, actor, key, tenant_id, input, input_version, error, attempts
         FROM upd WHERE dead_letter_id IS NOT NULL`,
        [JSON.stringify(rows)],
      );
      // Pipelines whose jobs end here (locked after the jobs, unlike a commit: a deadlock with
      // a late commit of the same job aborts one of them, and the reaper runs again).
      const pipelines = await lockPipelines(tx, t, ends.map((e) => e.pipelineId));
      const sent = await insertJobs(tx, t, dropEnded(sends, pipelines), options.writes);
      sent.push(
        ...await endParts(tx, t, partEnds, {
          writes: options.writes,
          keep: (j) => dropEnded([j], pipelines).length > 0,
        }),
      );
      const rolled = await rollUp(tx, t, pipelines, ends, options.hook, { writes: options.writes });
      return {
        ids: jobs.map((j) => j.id),
        poisoned: poison,
        lapsed: lastAttempt,
        sent: [...sent, ...rolled.sent],
        cancelled: rolled.cancelled,
      };
    });
    cancelled.push(...batch.cancelled);
    reaped.push(...batch.ids);
    poisoned.push(...batch.poisoned);
    lapsed.push(...batch.lapsed);
    sent.push(...batch.sent);
    if (batch.ids.length < REAP_BATCH) {
      return { reaped, poisoned, lapsed, sent, cancelled, requeued };
    }
  }
}

function outcome(
  job: ReapedJob,
  maxLeaseLosses: number,
): { status: "queued" | "failed" | "cancelled"; error: ErrorRecord } {
  const at = new Date().toISOString();
  const expired: ErrorRecord = {
    code: "LEASE_EXPIRED",
    message: "the worker running this job stopped renewing its lease (crashed or stalled)",
    retryable: true,
    at,
  };
  if (job.cancel_requested) {
    return { status: "cancelled", error: toErrorRecord(new CancelledError()) };
  }
  if (job.lease_losses >= maxLeaseLosses) {
    return {
      status: "failed",
      error: {
        code: POISON_JOB,
        message: `the process running this job stopped ${job.lease_losses} times while it ran ` +
          "(crashed, or stalled past its lease): it is not run again",
        retryable: false,
        at,
      },
    };
  }
  return { status: job.attempts >= job.max_attempts ? "failed" : "queued", error: expired };
}
