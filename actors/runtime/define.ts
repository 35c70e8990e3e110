/**
 * `defineActor()`: an actor type is a plain config object, validated once at definition.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineActor } from "./define.ts";
 *
 * export const counter = defineActor({
 *   name: "counter.add",
 *   input: z.object({ counter: z.string(), by: z.number().int() }),
 *   key: (input) => `counter:${input.counter}`,
 *   initialState: () => ({ total: 0 }),
 *   handler: (input, ctx) => {
 *     ctx.setState({ total: ctx.state.total + input.by });
 *     return { total: ctx.state.total };
 *   },
 * });
 * ```
 */
import type { z } from "zod";
import { type BackoffPolicy, DEFAULT_BACKOFF } from "./backoff.ts";
import type { ErrorRecord } from "./errors.ts";
import type { Logger, SqlExecutor } from "./ports.ts";
import type { InsertOptions } from "./sql/insert_rows.ts";

/** Options of a message sent with `ctx.send()` or enqueued over the API. */
export interface SendOptions {
  /** Run no earlier than this many ms from now. */
  delayMs?: number;
  /** Higher runs first. @default 0 */
  priority?: number;
  /** Enqueue at most once per (actor, idempotency key): a repeat returns the first job. */
  idempotencyKey?: string;
  /** The tenant the message belongs to; null for none. */
  tenantId?: string | null;
}

/** What a handler sees while it runs one message. */
export interface ActorContext<S> {
  /** The job this run belongs to. */
  readonly jobId: string;
  /** The actor's name. */
  readonly actor: string;
  /** The instance key (see `ActorConfig.key`). */
  readonly key: string;
  /** 1 on the first attempt. */
  readonly attempt: number;
  /** The message's tenant, or null. */
  readonly tenantId: string | null;
  /** The instance's durable state as of the last committed message of this key. */
  readonly state: S;
  /** Replaces the state; committed with the message, atomically. */
  setState(next: S): void;
  /**
   * Sends a message to another actor (transactional outbox: published only on commit). With a
   * reference (what `defineActor` returns), the input's type is the actor's; the input is
   * validated here, once, and a bad one throws `INVALID_INPUT` (not retried).
   */
  send<I>(actor: ActorRef<I>, input: NoInfer<I>, options?: SendOptions): void;
  /** Sends a message to the actor called `actor` (the input is validated by it, here). */
  send(actor: string, input: unknown, options?: SendOptions): void;
  /**
   * Fans out: sends every part (committed with this message, like `send()`), then sends `then`
   * once, when every part has succeeded or as soon as one has failed for good (dead-lettered,
   * failed on bad input, cancelled). `then` gets its `input` with `group` added: a
   * {@linkcode GroupOutcome} (see `groups.ts`). Returns the group's id (derived from this
   * message, so a re-run makes the same group).
   */
  group(parts: readonly Message[], then: GroupThen): string;
  /** Registers database work that commits atomically with this message, exactly once. */
  effect(fn: (tx: SqlExecutor) => Promise<void>): void;
  /**
   * Writes `row` into `table` with this message's commit, exactly once, like `effect()`. The
   * rows of every message committed together go in one statement a table (and set of columns),
   * where each `effect()` is a statement of its own: the way to write a row or a few a message
   * at the queue's speed. `row` maps column names to values that JSON carries (a `Date`, a
   * `bigint` and a `Uint8Array` too), converted to the columns' types by PostgreSQL; a column
   * left out takes its default. Rows are written before the message's effects. A row the
   * database refuses fails its message's attempt only. Throws a `TypeError` on a bad name or
   * value (see `sql/insert_rows.ts`).
   */
  insert(table: string, row: Readonly<Record<string, unknown>>, options?: InsertOptions): void;
  /** Reports progress (0-100) and a message; visible at once, throttled. */
  progress(percent: number, message?: string): void;
  /**
   * The pipeline this message belongs to (see `sql/pipelines.ts`): its calls commit with the
   * message, on success only, and do nothing outside a pipeline (`id` null).
   */
  readonly pipeline: PipelineControl;
  /** Aborted on timeout or cancellation. */
  readonly signal: AbortSignal;
  /** A logger with the job's fields. */
  readonly log: Logger;
}

/** What a message is addressed to: an actor's reference or its name. */
export type ActorTarget<I = unknown> = ActorRef<I> | string;

/**
 * A typed handle on an actor: what `defineActor` returns (the definition is its own
 * reference). Passing it to `send`, `enqueue` or `onDeadLetter` types the input.
 */
export interface ActorRef<I> {
  /** The actor's name (what the string form of an address is). */
  readonly name: string;
  /** The actor's input schema (the current version's). */
  readonly input: z.ZodType<I>;
}

/** A message to an actor: the part of a group, or a message `onDeadLetter` sends. */
export interface Message<I = unknown> {
  /** The actor to send to. */
  actor: ActorTarget<I>;
  /** Its input (validated by that actor when the message is made). */
  input: I;
  /** Delay, priority, idempotency key, tenant. */
  options?: SendOptions;
}

/** A message made by `message()`: its input was type-checked against its actor. */
export interface TypedMessage<I = unknown> extends Message<I> {
  /** Made by `message()`. */
  readonly typed: true;
}

/** A typed message to `actor` (its input type checked against the reference). */
export function message<I>(
  actor: ActorRef<I>,
  input: NoInfer<I>,
  options?: SendOptions,
): TypedMessage<I> {
  return options ? { actor, input, options, typed: true } : { actor, input, typed: true };
}

/** The continuation of a group: its input gets `group` (a `GroupOutcome`) added. */
export interface GroupThen {
  /** The actor that runs once the group is over. */
  actor: ActorTarget;
  /** The rest of its input. @default `{}` */
  input?: Record<string, unknown>;
}

/** How a group ended, as its continuation gets it in `input.group`. */
export interface GroupOutcome {
  /** The group's id. */
  id: string;
  /** `succeeded`: every part succeeded; `failed`: one part failed for good or was cancelled. */
  status: "succeeded" | "failed";
  /** The parts in the order they were given, with their status and result. */
  parts: { jobId: string; status: string; result: unknown }[];
  /** The part that failed the group, with its error; null when the group succeeded. */
  failure: { jobId: string; status: string; error: { code: string; message: string } } | null;
}

/** A message's handle on its pipeline. */
export interface PipelineControl {
  /** The pipeline's job id; null when the message is in no pipeline. */
  readonly id: string | null;
  /** Sets the pipeline's progress: `done` of `total` (null: not known yet) `unit`s. */
  progress(done: number, total: number | null, unit: string): void;
  /** Ends the pipeline `succeeded` with `result`; work still open in it is cancelled. */
  complete(result?: unknown): void;
  /** Ends the pipeline `failed` with this error; work still open in it is cancelled. */
  fail(error: { code: string; message: string }): void;
}

/** How the runtime runs an actor's messages (from `defineActor`'s options). */
export interface ActorPolicy {
  /** Attempts in all, the first included. @default 5 */
  maxAttempts: number;
  /** Delays between attempts. */
  backoff: BackoffPolicy;
  /** Per-attempt time limit in ms. @default 60000 */
  timeoutMs: number;
  /** Handlers of this actor running at once in one process. @default 50 */
  concurrency: number;
  /** Whether a succeeded job's row is kept (see `ActorConfig.keepSucceeded`). @default true */
  keepSucceeded: boolean;
  /** Whether messages of one key run one at a time, in order (see `ActorConfig.ordered`). */
  ordered: boolean;
}

/** What `defineActor()` takes: an actor type as a plain object. */
export interface ActorConfig<I, S, R, D = unknown> {
  /** Unique name: lowercase letters, digits, `.`, `_`, `-`. */
  name: string;
  /** Validates every message when it is sent; the parsed value is what the handler gets. */
  input: z.ZodType<I>;
  /**
   * The version of `input`'s shape, stored with every message. Raise it when the shape
   * changes and give an `upgrade` from the previous version: messages queued before the
   * deploy are upgraded when they run, not dead-lettered. @default 1
   */
  version?: number;
  /**
   * `upgrade[n]` turns a message of version `n` into one of version `n + 1` (applied in turn
   * up to `version`, then validated by `input`).
   */
  upgrade?: Readonly<Record<number, (old: unknown) => unknown>>;
  /**
   * The actor instance a message addresses, e.g. `dataset:<id>`. Messages with the same key
   * never run at once, across processes. Keys are global: prefix them with the domain.
   * @default the actor name (one instance)
   */
  key?: (input: I) => string;
  /** The state of a new instance. @default `{}` */
  initialState?: () => S;
  /**
   * Whether the messages of one key run one at a time, in queue order, each on the state the
   * previous one left (the default). With `false` the actor has no instances: its messages
   * run in parallel, whatever their key, as Celery tasks or graphile-worker jobs do, and are
   * claimed without a lease per key (faster, and no state row is kept per key). Such an actor
   * keeps no state: `initialState` is refused, and `ctx.state`/`ctx.setState` throw. The
   * guarantees that remain are the message's own: one commit of its effects, retries, dead
   * letters, cancels; a process that stops has its messages requeued by the reaper, as ever.
   * @default true
   */
  ordered?: boolean;
  /** Runs one message; its return value is the job's result. Throw to fail the attempt. */
  handler: (input: I, ctx: ActorContext<S>) => Promise<R> | R;
  /** Attempts after the first one. @default 4 */
  retries?: number;
  /** Overrides of the retry delays (see `DEFAULT_BACKOFF`). */
  backoff?: Partial<BackoffPolicy>;
  /** Per-attempt time limit in ms; `ctx.signal` aborts at it. @default 60000 */
  timeoutMs?: number;
  /** Handlers of this actor running at once in one process. @default 50 */
  concurrency?: number;
  /**
   * Whether a succeeded job keeps its row (status, result, timestamps) until the cleanup's
   * retention. With `false`, the commit that ends a job well deletes its row, in the same
   * transaction: a read of the job answers 404, its result is not kept, and the actor's stats
   * count it no more (as BullMQ's `removeOnComplete` or Celery's `ignore_result`), for
   * high-volume messages nobody reads back. Failed, cancelled and dead-lettered jobs are kept
   * whatever this says, and so are the jobs of a pipeline or a group and jobs that carry an
   * end message. @default true
   */
  keepSucceeded?: boolean;
  /** A cron expression (5 fields, UTC); a scheduled run gets `scheduleInput` as input. */
  schedule?: string;
  /** The input of a scheduled run. */
  scheduleInput?: I;
  /** Whether API callers may enqueue it (`POST /api/actors/:name/jobs`). @default true */
  exposed?: boolean;
  /**
   * Messages to send when a message of this actor fails for good, whichever way it dies (last
   * attempt, non-retryable error, `InputError`, timeout on the last attempt, a lease lost on
   * the last attempt, a poison job, a transport giving up), committed with the failure: how a
   * fan-in learns that a part failed instead of waiting forever. Gets the stored input.
   */
  onDeadLetter?: (
    input: I,
    error: ErrorRecord,
  ) => DeadLetterSend<D> | DeadLetterSend<D>[] | void;
}

/**
 * A message `onDeadLetter` sends: to an actor's reference (its input typed by it; one
 * reference per hook, or `message()` for several) or to an actor's name.
 */
export type DeadLetterSend<D = unknown> =
  | { actor: ActorRef<D>; input: NoInfer<D> }
  | { actor: string; input: unknown }
  | TypedMessage;

/** A validated actor type, as `defineActor()` returns it. */
export interface ActorDefinition<I = unknown, S = unknown, R = unknown> extends ActorRef<I> {
  /** Unique name. */
  readonly name: string;
  /** Validates every message. */
  readonly input: z.ZodType<I>;
  /** The version of the input's shape (see `ActorConfig.version`). */
  readonly version: number;
  /** Upgrades of stored messages from older versions (see `ActorConfig.upgrade`). */
  readonly upgrade: Readonly<Record<number, (old: unknown) => unknown>>;
  /** The instance key of an input. */
  readonly keyOf: (input: I) => string;
  /** The state of a new instance. */
  readonly initialState: () => S;
  /** Runs one message. */
  readonly handler: (input: I, ctx: ActorContext<S>) => Promise<R> | R;
  /** Attempts, delays, time limit and concurrency. */
  readonly policy: ActorPolicy;
  /** The cron schedule and its input, when the actor has one. */
  readonly schedule?: { cron: string; input: I };
  /** Whether API callers may enqueue it. */
  readonly exposed: boolean;
  /** Messages to send when a message fails for good (see `ActorConfig.onDeadLetter`). */
  readonly onDeadLetter?: (
    input: I,
    error: ErrorRecord,
  ) => DeadLetterSend | DeadLetterSend[] | void;
}

/** An actor definition of any input, state and result (what a runtime takes). */
// deno-lint-ignore no-explicit-any
export type AnyActor = ActorDefinition<any, any, any>;

const NAME = /^[a-z][a-z0-9._-]{0,63}$/;
const CRON_FIELD = /^[\d*/,-]+$/;

/** Validates `config` and returns the actor definition; throws `TypeError` on a bad name, cron or limit. */
export function defineActor<I, S = Record<string, never>, R = unknown, D = unknown>(
  config: ActorConfig<I, S, R, D>,
): ActorDefinition<I, S, R> {
  if (!NAME.test(config.name)) {
    throw new TypeError(
      `actor name ${JSON.stringify(config.name)} must match ${NAME} (lowercase, digits, . _ -)`,
    );
  }
  const retries = config.retries ?? 4;
  const timeoutMs = config.timeoutMs ?? 60_000;
  const concurrency = config.concurrency ?? 50;
  const version = config.version ?? 1;
  for (
    const [field, value, min] of [
      ["retries", retries, 0],
      ["timeoutMs", timeoutMs, 1],
      ["concurrency", concurrency, 1],
      ["version", version, 1],
    ] as const
  ) {
    if (!Number.isInteger(value) || value < min) {
      throw new TypeError(`actor ${config.name}: ${field} must be an integer >= ${min}`);
    }
  }
  if (config.schedule !== undefined) {
    const fields = config.schedule.trim().split(/\s+/);
    if (fields.length !== 5 || !fields.every((f) => CRON_FIELD.test(f))) {
      throw new TypeError(`actor ${config.name}: schedule must be a 5-field cron expression`);
    }
  }
  const upgrade = { ...config.upgrade };
  for (const from of Object.keys(upgrade)) {
    const n = Number(from);
    if (!Number.isInteger(n) || n < 1 || n >= version) {
      throw new TypeError(
        `actor ${config.name}: upgrade[${from}] must be from a version below ${version}`,
      );
    }
  }
  const name = config.name;
  const ordered = config.ordered ?? true;
  if (!ordered && config.initialState) {
    throw new TypeError(
      `actor ${name}: an actor with ordered: false keeps no state (drop initialState)`,
    );
  }
  return {
    name,
    input: config.input,
    version,
    upgrade,
    keyOf: config.key ?? (() => name),
    initialState: config.initialState ?? (() => ({}) as S),
    handler: config.handler,
    exposed: config.exposed ?? true,
    ...(config.onDeadLetter ? { onDeadLetter: config.onDeadLetter } : {}),
    policy: {
      maxAttempts: retries + 1,
      backoff: { ...DEFAULT_BACKOFF, ...config.backoff },
      timeoutMs,
      concurrency,
      keepSucceeded: config.keepSucceeded ?? true,
      ordered,
    },
    ...(config.schedule !== undefined
      ? { schedule: { cron: config.schedule, input: config.scheduleInput as I } }
      : {}),
  };
}

/** The name of the actor `target` addresses. */
export function targetName(target: ActorTarget): string {
  return typeof target === "string" ? target : target.name;
}
