/**
 * A run-again-later, committed (a `RetryLaterError`, or a paused actor's delivery): a new
 * message carries the job to its due time and the delivery that ran it is done. A failed
 * publish leaves it a `retry` (the transport redelivers it; a delivery before the job's
 * `run_at` is answered busy, never run early).
 */
import type { ActorPolicy } from "./define.ts";
import type { Logger } from "./ports.ts";
import type { ClaimedJob } from "./sql/claim_jobs.ts";
import type { DeliveryOutcome, Transport } from "./transport.ts";

/** Publishes the job's new message through `transport.reschedule` (see above). */
export async function reschedule(
  o: {
    transport: Pick<Transport, "reschedule">;
    policy: (actor: string) => ActorPolicy;
    log: Logger;
  },
  job: Pick<ClaimedJob, "id" | "actor" | "key">,
  retryInMs: number,
): Promise<DeliveryOutcome> {
  const runAt = new Date(Date.now() + retryInMs);
  try {
    await o.transport.reschedule!({
      id: job.id,
      actor: job.actor,
      key: job.key,
      runAt,
      policy: o.policy(job.actor),
    });
    return { status: "rescheduled" };
  } catch (err) {
    o.log.warn("rescheduling failed; the delivery comes again", {
      jobId: job.id,
      error: String(err),
    });
    return { status: "retry", retryInMs };
  }
}
