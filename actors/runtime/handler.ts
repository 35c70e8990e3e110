/**
 * Pieces of a handler's run the executor shares: validating what a handler sends, JSON
 * results, and the `ctx.pipeline` calls.
 */
import type { ActorContext, AnyActor } from "./define.ts";
import { NonRetryableError, TroupeError } from "./errors.ts";
import { parseInput } from "./prepare.ts";
import type { PipelineOp } from "./sql/pipelines.ts";

/** Validates a message a handler sends; bad input fails the attempt for good. */
export function parseOnce(def: AnyActor, input: unknown): unknown {
  try {
    return parseInput(def, input);
  } catch (err) {
    throw new NonRetryableError(`message to ${def.name}: input is invalid`, {
      code: "INVALID_INPUT",
      details: err instanceof TroupeError ? err.details : undefined,
    });
  }
}

/** A handler's result or state as stored (JSON); a value JSON refuses fails for good. */
export function toJson(value: unknown): unknown {
  if (value === undefined) return null;
  try {
    return JSON.parse(JSON.stringify(value));
  } catch (err) {
    throw new NonRetryableError("handler result or state is not JSON-serializable", {
      code: "NOT_JSON",
      cause: err,
    });
  }
}

/**
 * `ctx.pipeline` of a job in pipeline `id` (null outside one): its calls fill `op`, committed
 * with the job's success. `inPipeline(call)` throws once the handler ended.
 */
export function pipelineContext(
  id: string | null,
  inPipeline: (call: string) => boolean,
  op: PipelineOp,
): ActorContext<unknown>["pipeline"] {
  return {
    id,
    progress(done, total, unit) {
      if (!inPipeline("pipeline.progress()")) return;
      op.progress = {
        done: Math.max(0, Math.floor(Number(done) || 0)),
        total: total === null ? null : Math.max(0, Math.floor(Number(total) || 0)),
        unit: String(unit),
      };
    },
    complete(result) {
      if (!inPipeline("pipeline.complete()")) return;
      op.end = { status: "succeeded", result: toJson(result) };
    },
    fail(error) {
      if (!inPipeline("pipeline.fail()")) return;
      op.end = {
        status: "failed",
        error: { code: String(error.code), message: String(error.message) },
      };
    },
  };
}
