/**
 * Troupe's actor runtime: durable, keyed actors on PostgreSQL (PGlite, node-postgres, Neon).
 *
 * An actor is a plain config object ({@linkcode defineActor}); a {@linkcode Runtime} stores each
 * message as a job in the database, runs it at least once through a {@linkcode Transport}, and
 * keeps per-key state, retries and dead letters. The runtime talks to the database through the
 * {@linkcode SqlDatabase} port; adapters ship as sub-entries so this entry imports no vendor SDK:
 *
 * - `@troupe/runtime/pglite`: embedded PostgreSQL (a directory, or memory).
 * - `@troupe/runtime/postgres`: a PostgreSQL server through node-postgres.
 * - `@troupe/runtime/neon`: Neon's serverless driver.
 * - `@troupe/runtime/transports/qstash`: push delivery through Upstash QStash, and the signed
 *   webhook it delivers to (`qstashReceiver`).
 * - `@troupe/runtime/hono`: job routes to mount on a Hono app.
 * - `@troupe/runtime/workers`: a pool of worker threads for CPU-bound work in handlers.
 * - `@troupe/runtime/testing`: an in-memory world and a fault kit to prove your actors
 *   effectively-once.
 *
 * The runtime's tables must exist before `start()`: {@linkcode migrateRuntime} makes them, in
 * the PostgreSQL schema of your choosing (default `public`); {@linkcode migrate} applies them
 * with your own migration sets.
 *
 * @example Define an actor and wire a runtime
 * ```ts
 * import { z } from "zod";
 * import {
 *   defineActor,
 *   migrateRuntime,
 *   Runtime,
 *   type SqlDatabase,
 *   TableQueueTransport,
 * } from "@troupe/runtime";
 *
 * const greet = defineActor({
 *   name: "greet",
 *   input: z.object({ name: z.string().min(1) }),
 *   handler: (input) => ({ greeting: `hello ${input.name}` }),
 * });
 *
 * export async function startGreeter(db: SqlDatabase): Promise<Runtime> {
 *   await migrateRuntime(db);
 *   const runtime = new Runtime({ db, actors: [greet], transport: new TableQueueTransport(db) });
 *   await runtime.start();
 *   const { job } = await runtime.enqueue("greet", { name: "Ada" });
 *   console.log(job.id, job.status);
 *   return runtime;
 * }
 *
 * if (greet.name !== "greet") throw new Error("unexpected name");
 * ```
 *
 * @example Fan out and fan in: a group and its continuation
 * ```ts
 * import { z } from "zod";
 * import { defineActor, groupOutcomeSchema, message, type Runtime } from "@troupe/runtime";
 *
 * const square = defineActor({
 *   name: "square",
 *   input: z.object({ n: z.number() }),
 *   key: (input) => `square:${input.n}`,
 *   handler: ({ n }) => n * n,
 * });
 * // Runs once: when every part succeeded, or as soon as one failed for good.
 * const total = defineActor({
 *   name: "total",
 *   input: z.object({ label: z.string(), group: groupOutcomeSchema }),
 *   handler: ({ label, group }) =>
 *     group.status === "succeeded"
 *       ? { label, sum: group.parts.reduce((s, p) => s + Number(p.result), 0) }
 *       : { label, failed: group.failure?.error.code },
 * });
 *
 * export async function sumOfSquares(runtime: Runtime): Promise<string> {
 *   const { continuationId } = await runtime.enqueueGroup(
 *     [1, 2, 3].map((n) => message(square, { n })),
 *     { actor: total, input: { label: "1..3" } },
 *   );
 *   return continuationId;
 * }
 * ```
 *
 * @module
 */
export {
  type ActorConfig,
  type ActorContext,
  type ActorDefinition,
  type ActorPolicy,
  type ActorRef,
  type ActorTarget,
  type AnyActor,
  type DeadLetterSend,
  defineActor,
  type GroupOutcome,
  type GroupThen,
  type Message,
  message,
  type PipelineControl,
  type SendOptions,
  type TypedMessage,
} from "./define.ts";
export { groupOutcomeSchema } from "./groups.ts";
export type { InsertOptions } from "./sql/insert_rows.ts";
export { endMessageId, type JobEnd, jobEndSchema } from "./job_end.ts";
export {
  type ActorKeyView,
  type ActorStatsView,
  type DeadLetterView,
  type EnqueueOptions,
  type InstanceView,
  isTerminal,
  JOB_STATUSES,
  type JobBriefView,
  type JobStatus,
  type JobView,
  type ListJobsFilter,
  type OnEnd,
  type Page,
  type PauseView,
  type PipelineStart,
  type RetryCandidate,
  type RetryFilter,
  Runtime,
  type RuntimeOptions,
  type StartPipelineOptions,
  type Tables,
  type WorkersView,
} from "./runtime.ts";
export {
  CancelledError,
  ConflictError,
  type ErrorRecord,
  IdempotencyKeyReusedError,
  InputError,
  NonRetryableError,
  NotFoundError,
  PayloadTooLargeError,
  RetryLaterError,
  TimeoutError,
  toErrorRecord,
  TroupeError,
  UploadStalledError,
  UploadTooSlowError,
  ValidationError,
} from "./errors.ts";
export {
  type CopyData,
  copyParts,
  copyText,
  jsonLogger,
  type Logger,
  type LogLevel,
  type QueryOptions,
  type SqlDatabase,
  type SqlExecutor,
} from "./ports.ts";
export type {
  Consumer,
  DeliveryOutcome,
  GiveUpOutcome,
  MessageWrites,
  OutgoingMessage,
  Transport,
} from "./transport.ts";
export {
  formatTraceparent,
  noTracing,
  parseTraceparent,
  type TraceContext,
  type TracedEnqueue,
  type TracedJob,
  traceLogFields,
  type Tracing,
} from "./tracing.ts";
export { type TableQueueOptions, TableQueueTransport } from "./transports/table_queue.ts";
export { InProcessTransport } from "./transports/in_process.ts";
export {
  type AppliedMigration,
  type LegacyLedger,
  migrate,
  type MigrateOptions,
  migrateRuntime,
  type Migration,
  type MigrationSet,
  migrationSet,
  runtimeMigrations,
} from "./migrate.ts";
export { type BackoffPolicy, DEFAULT_BACKOFF } from "./backoff.ts";
export { lastSlot, parseSchedule, type Schedule, ScheduleError } from "./cron.ts";
export { deterministicId, uuidv7 } from "./ids.ts";
export type { DeadLetterReason, JobOutcome, RuntimeObserver } from "./observer.ts";
export type { QueueDepth } from "./sql/queue_depth.ts";
export { type MallocTrimmer, startMallocTrim, type TrimFn } from "./malloc_trim.ts";
export { StepBudget, type StepBudgetOptions } from "./step_budget.ts";
