/**
 * What the runtime shows of its jobs and dead letters, and how a database row becomes one.
 *
 * Invariants:
 * - A view is built from a whole row (`SELECT *`) and holds plain JSON values: timestamps are
 *   ISO 8601 strings, absent values are null, never undefined.
 * - A cursor is the last id of a page, base64url-encoded; lists are ordered by id, newest first,
 *   so a cursor page is `id < cursor`.
 */
import { ValidationError } from "./errors.ts";
import type { PipelineRecord } from "./sql/pipelines.ts";

/** Every status a job can have. */
export const JOB_STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;
/** A job's status. */
export type JobStatus = (typeof JOB_STATUSES)[number];
/** The final statuses. */
export const TERMINAL: ReadonlySet<string> = new Set<string>(["succeeded", "failed", "cancelled"]);

/** A job as the API shows it. */
export interface JobView {
  /** The job's id (a UUIDv7, or derived from its idempotency key). */
  id: string;
  /** The actor that runs it. */
  actor: string;
  /** The instance key. */
  key: string;
  /** The tenant, or null. */
  tenantId: string | null;
  /** Where the job is. */
  status: JobStatus;
  /** Progress 0-100 as the handler reported it. */
  progress: number;
  /** The handler's last progress message. */
  progressMessage: string | null;
  /** Attempts made so far. */
  attempts: number;
  /** Attempts allowed in all. */
  maxAttempts: number;
  /** Whether a cancellation was asked for. */
  cancelRequested: boolean;
  /** The validated input. */
  input: unknown;
  /** The handler's return value, once succeeded. */
  result: unknown;
  /** The last failure (an `ErrorRecord`), or null. */
  error: unknown;
  /** The job whose handler sent it, or null. */
  parentId: string | null;
  /** `job`, or `pipeline` for a parent that follows its jobs (see `startPipeline`). */
  kind: "job" | "pipeline";
  /** The pipeline the job belongs to. */
  pipelineId: string | null;
  /** A pipeline's progress as its workload reports it: `done` of `total` `unit`s. */
  pipeline: { done: number | null; total: number | null; unit: string | null } | null;
  /** The dead letter this job replays, or null. */
  replayOf: string | null;
  /** Not run before (ISO 8601). */
  runAt: string;
  /** When it was enqueued. */
  createdAt: string;
  /** When it last changed. */
  updatedAt: string;
  /** When its first attempt began. */
  startedAt: string | null;
  /** When it reached a terminal status. */
  finishedAt: string | null;
  /**
   * The message sent when it ends (see `Runtime.enqueue`'s `onEnd`): its job's id (a job once
   * this one has ended), actor and input (without `job`); null when it has none.
   */
  onEnd: { jobId: string; actor: string; input: unknown } | null;
}

/** A message that failed for good, kept for inspection and replay. */
export interface DeadLetterView {
  /** The dead letter's id. */
  id: string;
  /** The job that failed. */
  jobId: string;
  /** Its actor. */
  actor: string;
  /** Its instance key. */
  key: string;
  /** Its tenant, or null. */
  tenantId: string | null;
  /** Its input. */
  input: unknown;
  /** The failure (an `ErrorRecord`). */
  error: unknown;
  /** Attempts made. */
  attempts: number;
  /** When it was dead-lettered. */
  createdAt: string;
  /** When it was replayed, or null. */
  replayedAt: string | null;
  /** The job the replay created, or null. */
  replayJobId: string | null;
}

/** One page of a list, and the cursor of the next (null at the end). */
export interface Page<T> {
  /** The items, in order. */
  items: T[];
  /** Pass as `cursor` to get the next page; null when there is none. */
  nextCursor: string | null;
}

/** A database row as the driver returns it. */
export type Row = Record<string, unknown>;

function iso(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString();
}

export function jobView(r: Row): JobView {
  return {
    id: String(r.id),
    actor: String(r.actor),
    key: String(r.key),
    tenantId: (r.tenant_id as string | null) ?? null,
    status: r.status as JobStatus,
    progress: Number(r.progress),
    progressMessage: (r.progress_message as string | null) ?? null,
    attempts: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    cancelRequested: Boolean(r.cancel_requested),
    input: r.input,
    result: r.result ?? null,
    error: r.error ?? null,
    parentId: (r.parent_id as string | null) ?? null,
    kind: r.kind === "pipeline" ? "pipeline" : "job",
    pipelineId: (r.pipeline_id as string | null) ?? null,
    pipeline: r.kind === "pipeline" ? pipelineProgress(r.pipeline) : null,
    replayOf: (r.replay_of as string | null) ?? null,
    runAt: iso(r.run_at)!,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    onEnd: endOf(r.on_end),
  };
}

function endOf(v: unknown): JobView["onEnd"] {
  if (v === null || v === undefined || typeof v !== "object") return null;
  const m = v as { id: string; actor: string; input: unknown };
  return { jobId: m.id, actor: m.actor, input: m.input ?? null };
}

function pipelineProgress(
  v: unknown,
): { done: number | null; total: number | null; unit: string | null } {
  const r = (v ?? {}) as Partial<PipelineRecord>;
  return { done: r.done ?? null, total: r.total ?? null, unit: r.unit ?? null };
}

export function deadLetterView(r: Row): DeadLetterView {
  return {
    id: String(r.id),
    jobId: String(r.job_id),
    actor: String(r.actor),
    key: String(r.key),
    tenantId: (r.tenant_id as string | null) ?? null,
    input: r.input,
    error: r.error,
    attempts: Number(r.attempts),
    createdAt: iso(r.created_at)!,
    replayedAt: iso(r.replayed_at),
    replayJobId: (r.replay_job_id as string | null) ?? null,
  };
}

/** Whether `status` is final (succeeded, failed or cancelled). */
export function isTerminal(status: string): boolean {
  return TERMINAL.has(status);
}

export function encodeCursor(id: string): string {
  return btoa(id).replaceAll("=", "").replaceAll("+", "-").replaceAll("/", "_");
}

export function decodeCursor(cursor: string): string {
  try {
    const id = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    if (/^[\w-]{1,64}$/.test(id)) return id;
  } catch {
    // fall through
  }
  throw new ValidationError("cursor is not valid", { cursor });
}
