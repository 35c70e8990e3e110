import type { EndRecord } from "../job_end.ts";
import type { SqlExecutor } from "../ports.ts";
import { PREPARED, type Tables } from "./tables.ts";

/** A job row to insert. */
export interface NewJob {
  id: string;
  actor: string;
  key: string;
  tenantId: string | null;
  input: unknown;
  priority: number;
  maxAttempts: number;
  delayMs: number;
  parentId: string | null;
  /** The pipeline the job belongs to (see `pipelines.ts`); null outside one. */
  pipelineId?: string | null;
  replayOf: string | null;
  /** The group the job is a part of (see `../groups.ts`); null outside one. */
  groupId?: string | null;
  /** The version of its actor's input shape (see `../versions.ts`). @default 1 */
  inputVersion?: number;
  /** The hash of the request that enqueued it with an idempotency key (see `requestHash`). */
  requestHash?: string | null;
  /** The W3C trace context it was made in (see `../tracing.ts`). */
  traceparent?: string | null;
  /** The `tracestate` that goes with `traceparent`. */
  tracestate?: string | null;
  /** The message sent when the job ends (see `../job_end.ts`). */
  onEnd?: EndRecord | null;
}

/**
 * What the transaction that commits messages writes for them besides their job rows: the
 * transport's choice (`Transport.inTransaction`), applied by every writer of messages.
 */
export interface MessageWrites {
  /**
   * An outbox row per new job, deleted once the transport holds the message: a transport that
   * only hears of messages after the commit (a publish) needs it, so that a crash in between
   * leaves the row for the relay.
   */
  readonly outbox: boolean;
  /**
   * A notification on the jobs channel (`Tables.jobsChannel`) at commit, when any job is new:
   * consumers listening in any process look for work at once.
   */
  readonly notify: boolean;
}

/**
 * Inserts jobs in one statement; an id that exists already is skipped (idempotent enqueue).
 * `writes` adds, in the same statement, an outbox row per new job and/or a notification of
 * the jobs channel at commit. Returns the ids that were new.
 *
 * `fresh`: every id was made for this insert (`uuidv7`, no idempotency key), so no row has it:
 * a plain insert, without the speculative insertion of `ON CONFLICT` (an index lookup and a
 * WAL record fewer a row); an id that exists fails the statement.
 */
export async function insertJobs(
  tx: SqlExecutor,
  t: Tables,
  jobs: readonly NewJob[],
  { outbox, notify }: MessageWrites,
  { fresh = false }: { fresh?: boolean } = {},
): Promise<QueuedMessage[]> {
  if (jobs.length === 0) return [];
  // A column left out of a row is NULL (`json_to_recordset`): the nulls are not written.
  const rows = jobs.map((j) => {
    const row: Record<string, unknown> = {
      id: j.id,
      actor: j.actor,
      key: j.key,
      input: j.input ?? null,
      priority: j.priority,
      max_attempts: j.maxAttempts,
      delay_ms: j.delayMs,
      input_version: j.inputVersion ?? 1,
    };
    if (j.tenantId != null) row.tenant_id = j.tenantId;
    if (j.parentId != null) row.parent_id = j.parentId;
    if (j.pipelineId != null) row.pipeline_id = j.pipelineId;
    if (j.replayOf != null) row.replay_of = j.replayOf;
    if (j.groupId != null) row.group_id = j.groupId;
    if (j.traceparent != null) row.traceparent = j.traceparent;
    if (j.tracestate != null) row.tracestate = j.tracestate;
    if (j.requestHash) row.request_hash = j.requestHash;
    if (j.onEnd) row.on_end = j.onEnd;
    return row;
  });
  const notifying = notify ? `, (SELECT pg_notify('${t.jobsChannel}', '')) AS notified` : "";
  // A fresh insert writes every row or fails: its messages are made here from the rows, with
  // the statement's clock read back once (`now()`, the same for every row). Otherwise the
  // rows inserted come back, `run_at` in epoch milliseconds (no date to parse).
  const select = fresh
    ? `SELECT (extract(epoch FROM now()) * 1000)::float8 AS now${notifying}`
    : `SELECT id, actor, key, (extract(epoch FROM run_at) * 1000)::float8 AS run_at,
         traceparent, tracestate${notifying} FROM ins`;
  const tail = outbox
    ? `, ob AS (INSERT INTO ${t.outbox} (job_id) SELECT id FROM ins) ${select}`
    : select;
  const inserted = await tx.query<QueuedRow & { now: number }>(
    `WITH ins AS (
      INSERT INTO ${t.jobs}
        (id, actor, key, tenant_id, input, priority, max_attempts, run_at, parent_id, replay_of,
         request_hash, pipeline_id, group_id, input_version, traceparent, tracestate,
         on_end)
      SELECT x.id, x.actor, x.key, x.tenant_id, coalesce(x.input::jsonb, 'null'::jsonb), x.priority,
        x.max_attempts, now() + make_interval(secs => x.delay_ms / 1000.0), x.parent_id, x.replay_of,
        x.request_hash, x.pipeline_id, x.group_id, x.input_version, x.traceparent, x.tracestate,
        x.on_end::jsonb
      -- JSON values read as json and cast: see X_COLUMNS in complete_jobs.ts.
      FROM json_to_recordset($1::json) AS x(id text, actor text, key text, tenant_id text,
        input json, priority int, max_attempts int, delay_ms float8, parent_id text, replay_of text,
        request_hash text, pipeline_id text, group_id text, input_version int, traceparent text,
        tracestate text, on_end json)
      ${fresh ? "" : "ON CONFLICT (id) DO NOTHING"}
      RETURNING ${fresh ? "id" : "id, actor, key, run_at, traceparent, tracestate"}
    ) ${tail}`,
    [JSON.stringify(rows)],
    PREPARED,
  );
  if (!fresh) return inserted.map(queuedMessage);
  const now = Number(inserted[0]!.now);
  return jobs.map((j) =>
    queuedMessage({
      id: j.id,
      actor: j.actor,
      key: j.key,
      run_at: now + j.delayMs,
      traceparent: j.traceparent ?? null,
      tracestate: j.tracestate ?? null,
    })
  );
}

/** A committed message as a transport hears of it. */
export interface QueuedMessage {
  id: string;
  actor: string;
  key: string;
  runAt: Date;
  /** The W3C trace context it was made in, for a transport to pass on (e.g. as a header). */
  traceparent?: string;
  /** The `tracestate` that goes with `traceparent`. */
  tracestate?: string;
}

/** A job row as `queuedMessage` reads it. */
export interface QueuedRow {
  id: string;
  actor: string;
  key: string;
  /** A timestamp, or epoch milliseconds. */
  run_at: unknown;
  traceparent?: string | null;
  tracestate?: string | null;
}

/** The message of a row read back from `troupe_jobs`. */
export function queuedMessage(r: QueuedRow): QueuedMessage {
  const runAt = r.run_at instanceof Date
    ? r.run_at
    : new Date(typeof r.run_at === "number" ? r.run_at : String(r.run_at));
  const m: QueuedMessage = { id: r.id, actor: r.actor, key: r.key, runAt };
  if (r.traceparent) m.traceparent = r.traceparent;
  if (r.tracestate) m.tracestate = r.tracestate;
  return m;
}
