/**
 * Making a message's row: its input validated against its actor (the one validation a message
 * gets), keyed, versioned and given an id.
 */
import type { AnyActor, SendOptions } from "./define.ts";
import { TroupeError } from "./errors.ts";
import { deterministicId, uuidv7 } from "./ids.ts";
import type { NewJob } from "./sql/insert_jobs.ts";
import type { TraceContext } from "./tracing.ts";

/** Where a message sits among others: its sender, pipeline, group or dead letter. */
export type PrepareOptions = SendOptions & {
  parentId?: string | null;
  replayOf?: string | null;
  pipelineId?: string | null;
  groupId?: string | null;
  /** The trace the message is made in (see `tracing.ts`). */
  trace?: TraceContext | undefined;
};

/**
 * Validates a message's input against its actor: the one validation a message gets (when it is
 * made; at delivery its stored version is only upgraded and parsed, see `versions.ts`). Throws
 * `INVALID_INPUT` (400) with the issues.
 */
export function parseInput(def: AnyActor, input: unknown): unknown {
  const parsed = def.input.safeParse(input);
  if (!parsed.success) {
    throw new TroupeError("INVALID_INPUT", `input of actor ${def.name} is invalid`, {
      details: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
    });
  }
  return parsed.data;
}

/** `prepareJob` without an idempotency key: synchronous, with a fresh id. */
export function prepareJobNow(
  def: AnyActor,
  input: unknown,
  options: Omit<PrepareOptions, "idempotencyKey"> = {},
): NewJob {
  return buildJob(def, parseInput(def, input), uuidv7(), options);
}

/** Builds the row of a message about to be enqueued (validated, keyed, with an id). */
export async function prepareJob(
  def: AnyActor,
  input: unknown,
  options: PrepareOptions = {},
): Promise<NewJob> {
  return await prepareParsed(def, parseInput(def, input), options);
}

/** `prepareJob` for an input `parseInput` returned already. */
export async function prepareParsed(
  def: AnyActor,
  parsed: unknown,
  options: PrepareOptions = {},
): Promise<NewJob> {
  const id = options.idempotencyKey
    ? await deterministicId("enqueue", options.tenantId ?? "", def.name, options.idempotencyKey)
    : uuidv7();
  return buildJob(def, parsed, id, options);
}

function buildJob(def: AnyActor, parsed: unknown, id: string, options: PrepareOptions): NewJob {
  return {
    id,
    actor: def.name,
    key: def.keyOf(parsed),
    tenantId: options.tenantId ?? null,
    input: parsed,
    inputVersion: def.version,
    priority: options.priority ?? 0,
    maxAttempts: def.policy.maxAttempts,
    delayMs: Math.max(0, options.delayMs ?? 0),
    parentId: options.parentId ?? null,
    pipelineId: options.pipelineId ?? null,
    groupId: options.groupId ?? null,
    replayOf: options.replayOf ?? null,
    traceparent: options.trace?.traceparent ?? null,
    tracestate: options.trace?.tracestate ?? null,
  };
}
