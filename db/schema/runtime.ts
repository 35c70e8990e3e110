/**
 * The runtime's core tables. The same schema and migrations run on PGlite, PostgreSQL and Neon.
 *
 * - `jobs`: one row per actor message; with the table queue it is also the queue itself.
 * - `actorState`: durable state and the lease (owner + fencing token) of each actor key.
 * - `processedMessages`: the ledger of committed pushed message ids (effectively-once after
 *   their job rows are gone; a pulled message's job row is its only copy and needs none).
 * - `outbox`: messages committed for a push transport (QStash, in-process), relayed after commit.
 * - `deadLetters`: messages that failed their last attempt, replayable.
 */
import { sql } from "drizzle-orm";
import {
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  smallint,
  text,
  timestamp,
} from "drizzle-orm/pg-core";

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

const timestamps = {
  createdAt: tz("created_at").notNull().defaultNow(),
  updatedAt: tz("updated_at").notNull().defaultNow(),
};

export const jobs = pgTable(
  "troupe_jobs",
  {
    id: text("id").primaryKey(),
    actor: text("actor").notNull(),
    key: text("key").notNull(),
    tenantId: text("tenant_id"),
    input: jsonb("input").notNull(),
    /** queued | running | succeeded | failed | cancelled */
    status: text("status").notNull().default("queued"),
    priority: integer("priority").notNull().default(0),
    attempts: integer("attempts").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull(),
    runAt: tz("run_at").notNull().defaultNow(),
    leaseOwner: text("lease_owner"),
    leaseFence: integer("lease_fence"),
    /**
     * Times the job was running when the process holding its lease stopped (crashed, or
     * stalled past the lease); at the runtime's limit the job is dead-lettered as poison.
     */
    leaseLosses: integer("lease_losses").notNull().default(0),
    /**
     * For a job that lost a lease already: the fence of the lease under which its handler last
     * began (written before it begins), so that a later stop counts only if it had begun.
     */
    startedFence: integer("started_fence"),
    cancelRequested: boolean("cancel_requested").notNull().default(false),
    /**
     * Claimed by an actor declared `ordered: false`: the job runs under the instance lease of
     * its `lease_owner` (`~instance:<worker id>`), not its key's.
     */
    unordered: boolean("unordered").notNull().default(false),
    progress: smallint("progress").notNull().default(0),
    progressMessage: text("progress_message"),
    result: jsonb("result"),
    error: jsonb("error"),
    parentId: text("parent_id"),
    /** `job` (run by its actor's handler) or `pipeline` (a parent no handler runs). */
    kind: text("kind").notNull().default("job"),
    /** The pipeline the job belongs to (inherited by every job it sends). */
    pipelineId: text("pipeline_id"),
    /** On a pipeline row: the workload's progress (`{done, total, unit}`) and abort hook. */
    pipeline: jsonb("pipeline"),
    replayOf: text("replay_of"),
    /** The group the job is a part of (see `actors/runtime/groups.ts`). */
    groupId: text("group_id"),
    /** The version of its actor's input shape the message was made with. */
    inputVersion: integer("input_version").notNull().default(1),
    /** How long the handler of the last attempt ran, in milliseconds. */
    runMs: integer("run_ms"),
    /** Hash of the first request made with the job's idempotency key (actor + input). */
    requestHash: text("request_hash"),
    /** The W3C trace context active when the message was made (its handler's span's parent). */
    traceparent: text("traceparent"),
    /** The W3C `tracestate` that goes with `traceparent`. */
    tracestate: text("tracestate"),
    /**
     * The message to send when the job (or pipeline) ends, built when it was enqueued; the
     * trigger of migration `0008_job_end` inserts it (see `actors/runtime/job_end.ts`).
     */
    onEnd: jsonb("on_end"),
    startedAt: tz("started_at"),
    finishedAt: tz("finished_at"),
    ...timestamps,
  },
  (t) => [
    /** Claims: each tenant's queued jobs in queue order (`''` for no tenant). */
    index("troupe_jobs_tenant_claim_idx").on(
      sql`coalesce(${t.tenantId}, '')`,
      t.priority.desc(),
      t.runAt,
      t.id,
    ).where(sql`${t.status} = 'queued'`),
    index("troupe_jobs_status_idx").on(t.status, t.id).where(sql`${t.status} <> 'succeeded'`),
    index("troupe_jobs_tenant_idx").on(t.tenantId, t.id).where(sql`${t.tenantId} IS NOT NULL`),
    index("troupe_jobs_finished_idx").on(t.finishedAt).where(sql`${t.finishedAt} is not null`),
    index("troupe_jobs_pipeline_open_idx").on(t.pipelineId).where(
      sql`${t.pipelineId} IS NOT NULL AND ${t.status} IN ('queued', 'running')`,
    ),
    index("troupe_jobs_pipeline_idx").on(t.pipelineId, t.id).where(
      sql`${t.pipelineId} IS NOT NULL`,
    ),
  ],
);

export const actorState = pgTable("troupe_actor_state", {
  key: text("key").primaryKey(),
  state: jsonb("state"),
  version: integer("version").notNull().default(0),
  /** Fencing token: bumped on every lease acquisition; commits check it. */
  fence: integer("fence").notNull().default(0),
  leaseOwner: text("lease_owner"),
  leaseUntil: tz("lease_until"),
  /** The actor whose job last took the lease (keys are not namespaced by actor). */
  actor: text("actor"),
  ...timestamps,
}, (t) => [
  index("troupe_actor_state_actor_idx").on(t.actor, t.key).where(sql`${t.actor} IS NOT NULL`),
]);

/** Runtime instances: written by the heartbeat (pull) or by the deliveries taken (push). */
export const workers = pgTable("troupe_workers", {
  id: text("id").primaryKey(),
  host: text("host"),
  pid: integer("pid"),
  transport: text("transport").notNull(),
  /** pull | push */
  mode: text("mode").notNull(),
  actors: jsonb("actors").notNull().default([]),
  concurrency: integer("concurrency").notNull(),
  inFlight: integer("in_flight").notNull().default(0),
  startedAt: tz("started_at").notNull().defaultNow(),
  heartbeatAt: tz("heartbeat_at").notNull().defaultNow(),
  stoppedAt: tz("stopped_at"),
}, (t) => [index("troupe_workers_heartbeat_idx").on(t.heartbeatAt)]);

/** Paused actors: none of their jobs is claimed or run until resumed. */
export const actorPauses = pgTable("troupe_actor_pauses", {
  actor: text("actor").primaryKey(),
  pausedBy: text("paused_by"),
  pausedAt: tz("paused_at").notNull().defaultNow(),
});

/** Paused schedules: their slots make no job until resumed. */
export const schedulePauses = pgTable("troupe_schedule_pauses", {
  actor: text("actor").primaryKey(),
  pausedBy: text("paused_by"),
  pausedAt: tz("paused_at").notNull().defaultNow(),
});

export const processedMessages = pgTable(
  "troupe_processed_messages",
  {
    messageId: text("message_id").primaryKey(),
    processedAt: tz("processed_at").notNull().defaultNow(),
  },
  // BRIN: read only by the retention cleanup, rows written in time order.
  (t) => [index("troupe_processed_at_idx").using("brin", t.processedAt)],
);

export const outbox = pgTable("troupe_outbox", {
  jobId: text("job_id").primaryKey(),
  createdAt: tz("created_at").notNull().defaultNow(),
});

export const deadLetters = pgTable(
  "troupe_dead_letters",
  {
    id: text("id").primaryKey(),
    jobId: text("job_id").notNull(),
    actor: text("actor").notNull(),
    key: text("key").notNull(),
    tenantId: text("tenant_id"),
    input: jsonb("input").notNull(),
    inputVersion: integer("input_version").notNull().default(1),
    error: jsonb("error").notNull(),
    attempts: integer("attempts").notNull(),
    replayedAt: tz("replayed_at"),
    replayJobId: text("replay_job_id"),
    createdAt: tz("created_at").notNull().defaultNow(),
  },
  (t) => [
    index("troupe_dead_letters_created_idx").on(t.createdAt),
    index("troupe_dead_letters_actor_idx").on(t.actor, t.id),
  ],
);

/**
 * Groups (fan-out / fan-in): a continuation sent once when every part succeeded or one failed
 * for good; `remaining` is decremented in the transaction that ends a part.
 */
export const groups = pgTable(
  "troupe_groups",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id"),
    parentId: text("parent_id"),
    /** The part job ids, in order. */
    parts: jsonb("parts").notNull(),
    remaining: integer("remaining").notNull(),
    /** open | succeeded | failed */
    status: text("status").notNull().default("open"),
    /** The continuation's job row; its input gets `group` when it is sent. */
    continuation: jsonb("continuation").notNull(),
    continuationId: text("continuation_id"),
    createdAt: tz("created_at").notNull().defaultNow(),
    finishedAt: tz("finished_at"),
  },
  (t) => [
    index("troupe_groups_finished_idx").on(t.finishedAt).where(
      sql`${t.finishedAt} IS NOT NULL`,
    ),
  ],
);

export type JobRow = typeof jobs.$inferSelect;
export type DeadLetterRow = typeof deadLetters.$inferSelect;

/**
 * Signature ids (`jti`) of webhook deliveries already accepted, until the signature expires:
 * a replayed request (same signature) is refused.
 */
export const webhookNonces = pgTable(
  "troupe_webhook_nonces",
  {
    jti: text("jti").primaryKey(),
    expiresAt: tz("expires_at").notNull(),
  },
  (t) => [index("troupe_webhook_nonces_expires_idx").on(t.expiresAt)],
);
