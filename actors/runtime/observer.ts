/**
 * What the runtime tells an observer (metrics, tracing) about the work it does. The core calls
 * it and knows nothing of what listens: the Prometheus adapter lives in `routes/metrics.ts` and
 * `main.ts` wires it in.
 *
 * Invariants: every method is called synchronously on the runtime's path and MUST return at
 * once without throwing (the runtime does not catch); an observer that needs I/O buffers it.
 * Each committed attempt is reported once, after its commit, with the outcome that was
 * committed (a success whose commit failed and was recorded as a failure reports `failed`).
 * Attempts that committed nothing (lease lost, stale chain) are not reported.
 */
import type { Completion } from "./sql/complete_jobs.ts";

/** How an attempt ended: `retry` is an attempt that failed and will run again. */
export type JobOutcome = Completion["outcome"];

/** Why a job became a dead letter. */
export type DeadLetterReason =
  /** Its handler failed for good (out of attempts, or a non-retryable error). */
  | "failed"
  /** Its process stopped each time it ran (the reaper gave up on it). */
  | "poison"
  /** Its lease lapsed during its last attempt (the reaper took it back, out of attempts). */
  | "lease_expired"
  /** The transport gave up delivering it (QStash's failure callback). */
  | "undeliverable";

export interface RuntimeObserver {
  /** One attempt of `actor`'s handler committed with `outcome`, after `ms` in the handler. */
  jobFinished(actor: string, outcome: JobOutcome, ms: number): void;
  /** A job of `actor` became a dead letter. */
  deadLettered(actor: string, reason: DeadLetterReason): void;
  /** This process renewed its leases and checked its running jobs (every third of a lease). */
  heartbeat(workerId: string): void;
}

/** The observer that ignores everything (the default). */
export const silentObserver: RuntimeObserver = {
  jobFinished() {},
  deadLettered() {},
  heartbeat() {},
};
