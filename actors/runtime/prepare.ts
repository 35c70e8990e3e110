/**
 * The row of a message about to be enqueued: its input validated against its actor's schema,
 * its instance key, its id (fresh, or derived from an idempotency key) and its policy.
 */
import type { AnyActor, SendOptions } from "./define.ts";
import { TroupeError } from "./errors.ts";
import { deterministicId, uuidv7 } from "./ids.ts";
import type { NewJob } from "./sql/insert_jobs.ts";

/** Where a prepared job comes from, besides its send options. */
export type PrepareOptions = SendOptions & {
  parentId?: string | null;
  replayOf?: string | null;
  pipelineId?: string | null;
};

/** `prepareJob` without an idempotency key: synchronous, with a fresh id. */
export function prepareJobNow(
  def: AnyActor,
  input: unknown,
  options: Omit<PrepareOptions, "idempotencyKey"> = {},
): NewJob {
  return buildJob(def, input, uuidv7(), options);
}

/** Builds the row of a message about to be enqueued (validated, keyed, with an id). */
export async function prepareJob(
  def: AnyActor,
  input: unknown,
  options: PrepareOptions = {},
): Promise<NewJob> {
  const id = options.idempotencyKey
    ? await deterministicId("enqueue", options.tenantId ?? "", def.name, options.idempotencyKey)
    : uuidv7();
  return buildJob(def, input, id, options);
}

function buildJob(def: AnyActor, input: unknown, id: string, options: PrepareOptions): NewJob {
  const parsed = def.input.safeParse(input);
  if (!parsed.success) {
    throw new TroupeError("INVALID_INPUT", `input of actor ${def.name} is invalid`, {
      status: 400,
      details: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
    });
  }
  return {
    id,
    actor: def.name,
    key: def.keyOf(parsed.data),
    tenantId: options.tenantId ?? null,
    input: parsed.data,
    priority: options.priority ?? 0,
    maxAttempts: def.policy.maxAttempts,
    delayMs: Math.max(0, options.delayMs ?? 0),
    parentId: options.parentId ?? null,
    pipelineId: options.pipelineId ?? null,
    replayOf: options.replayOf ?? null,
  };
}
