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
 * - `@troupe/runtime/transports/qstash`: push delivery through Upstash QStash.
 * - `@troupe/runtime/hono`: job routes to mount on a Hono app.
 * - `@troupe/runtime/workers`: a pool of worker threads for CPU-bound work in handlers.
 *
 * The runtime's tables must exist before `start()`: today they come with the Troupe
 * application's migrations (`db/migrations/`, the `troupe_*` tables).
 *
 * @example Define an actor and wire a runtime
 * ```ts
 * import { z } from "zod";
 * import { defineActor, Runtime, type SqlDatabase, TableQueueTransport } from "@troupe/runtime";
 *
 * const greet = defineActor({
 *   name: "greet",
 *   input: z.object({ name: z.string().min(1) }),
 *   handler: (input) => ({ greeting: `hello ${input.name}` }),
 * });
 *
 * // Call with a database that has the runtime's tables.
 * export async function startGreeter(db: SqlDatabase): Promise<Runtime> {
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
 * @module
 */
export {
  type ActorConfig,
  type ActorContext,
  type ActorDefinition,
  type ActorPolicy,
  type AnyActor,
  type DeadLetterSend,
  defineActor,
  type PipelineControl,
  type SendOptions,
} from "./define.ts";
export {
  type DeadLetterView,
  type EnqueueOptions,
  isTerminal,
  JOB_STATUSES,
  type JobStatus,
  type JobView,
  type ListJobsFilter,
  type Page,
  Runtime,
  type RuntimeOptions,
  type StartPipelineOptions,
  type Tables,
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
  type SqlDatabase,
  type SqlExecutor,
} from "./ports.ts";
export type { Consumer, DeliveryOutcome, OutgoingMessage, Transport } from "./transport.ts";
export { type TableQueueOptions, TableQueueTransport } from "./transports/table_queue.ts";
export { InProcessTransport } from "./transports/in_process.ts";
export { type BackoffPolicy, DEFAULT_BACKOFF } from "./backoff.ts";
export { lastSlot, parseSchedule, type Schedule, ScheduleError } from "./cron.ts";
export { deterministicId, uuidv7 } from "./ids.ts";
