/**
 * Groups: fan-out / fan-in as one call. A group is a set of parts (messages, sent together) and
 * a continuation, sent once when the group is over: every part succeeded, or one part failed
 * for good (dead-lettered, failed on bad input, given up by the transport, cancelled). The
 * continuation's input gets `group`: a {@linkcode GroupOutcome} with every part's status and
 * result and, when it failed, the part that failed it.
 *
 * Invariants:
 * - A group row is written in the transaction that sends its parts (an enqueue, or the commit
 *   of the message that called `ctx.group()`), with `remaining` = the number of parts.
 * - A part's end is counted in the transaction that writes it (a commit, the reaper, a
 *   transport giving up), with its group's row locked: a part's row leaves `queued`/`running`
 *   once (fencing and status checks), so a redelivered completion, refused or a duplicate,
 *   counts nothing.
 * - A group's `status` leaves `open` once, under that lock, and the continuation is inserted in
 *   the same statement sequence: it is sent exactly once, and a part that ends after a failure
 *   finds the group closed and sends nothing.
 * - The continuation was validated, keyed and versioned when the group was made (its input with
 *   a sample outcome): the fan-in never fails on it.
 * - A group whose parts belong to a pipeline that ends stops with it (the pipeline's open jobs
 *   are cancelled and its sends dropped). Within a running pipeline, a part's failure is the
 *   continuation's to handle: it does not fail the pipeline.
 *
 * The outcome carries every part's result: keep results small (ids, counts) for groups of
 * thousands of parts, and let the parts write their data through `ctx.effect`.
 */
import { z } from "zod";
import type { AnyActor, GroupOutcome, GroupThen, Message, SendOptions } from "./define.ts";
import type { ErrorRecord } from "./errors.ts";
import { parseInput, prepareParsed } from "./prepare.ts";
import type { SqlExecutor } from "./ports.ts";
import {
  insertJobs,
  type MessageWrites,
  type NewJob,
  type QueuedMessage,
} from "./sql/insert_jobs.ts";
import type { Tables } from "./sql/tables.ts";
import type { TraceContext } from "./tracing.ts";
import {
  type GroupRow,
  insertGroups,
  lockOpenGroups,
  readParts,
  updateGroups,
} from "./sql/groups.ts";

/** The schema of `input.group` in a continuation: put it in the continuation's input schema. */
export const groupOutcomeSchema: z.ZodType<GroupOutcome> = z.object({
  id: z.string(),
  status: z.enum(["succeeded", "failed"]),
  parts: z.array(z.object({ jobId: z.string(), status: z.string(), result: z.unknown() })),
  failure: z.object({
    jobId: z.string(),
    status: z.string(),
    error: z.object({ code: z.string(), message: z.string() }),
  }).nullable(),
});

/** A part that ended in a transaction. */
export interface PartEnd {
  jobId: string;
  groupId: string;
  status: "succeeded" | "failed" | "cancelled";
  error?: ErrorRecord | null;
}

/** Where the messages of a new group go. */
export interface GroupPlacement {
  id: string;
  tenantId: string | null;
  parentId: string | null;
  pipelineId: string | null;
  /** The trace the group is made in (see `tracing.ts`). */
  trace?: TraceContext | undefined;
}

/** A group ready to write: its parts, and its row (null for no parts: `then` goes at once). */
export interface PreparedGroup {
  /** The parts' rows, then (with no parts) the continuation's. */
  jobs: NewJob[];
  row: GroupRow | null;
}

/** A group's messages, validated (see `parseGroup`). */
export interface ParsedGroup {
  parts: { def: AnyActor; input: unknown; options: SendOptions }[];
  then: { def: AnyActor; input: Record<string, unknown> };
}

/**
 * Validates a group's messages, synchronously: every part's input against its actor, and the
 * continuation's input with a sample outcome. `resolve` maps an address to a registered actor.
 */
export function parseGroup(
  resolve: (actor: Message["actor"]) => AnyActor,
  parts: readonly Message[],
  then: GroupThen,
  parse: (def: AnyActor, input: unknown) => unknown = parseInput,
): ParsedGroup {
  const parsed = parts.map((p) => {
    const def = resolve(p.actor);
    return { def, input: parse(def, p.input), options: p.options ?? {} };
  });
  const def = resolve(then.actor);
  const checked = parse(def, { ...then.input, group: SAMPLE }) as Record<string, unknown>;
  return { parts: parsed, then: { def, input: checked } };
}

const SAMPLE: GroupOutcome = { id: "", status: "succeeded", parts: [], failure: null };

/**
 * Builds a validated group's rows at `at`; `partKey(i)` gives each part an idempotency key (so
 * a re-run makes the same ids) unless its options have one.
 */
export async function buildGroup(
  group: ParsedGroup,
  at: GroupPlacement,
  partKey?: (i: number) => string,
): Promise<PreparedGroup> {
  const base = {
    tenantId: at.tenantId,
    parentId: at.parentId,
    pipelineId: at.pipelineId,
    trace: at.trace,
  };
  const rows = await Promise.all(group.parts.map(({ def, input, options }, i) => {
    const key = options.idempotencyKey ?? partKey?.(i);
    return prepareParsed(def, input, {
      ...options,
      ...base,
      ...(options.tenantId !== undefined ? { tenantId: options.tenantId } : {}),
      ...(key !== undefined ? { idempotencyKey: key } : {}),
      groupId: at.id,
    });
  }));
  const { group: _, ...rest } = group.then.input;
  const continuation: NewJob = {
    ...await prepareParsed(group.then.def, group.then.input, base),
    id: `${at.id}-then`,
    input: rest,
  };
  if (rows.length === 0) {
    const outcome: GroupOutcome = { ...SAMPLE, id: at.id };
    return { jobs: [{ ...continuation, input: { ...rest, group: outcome } }], row: null };
  }
  return {
    jobs: rows,
    row: {
      id: at.id,
      tenantId: at.tenantId,
      parentId: at.parentId,
      parts: rows.map((r) => r.id),
      continuation,
    },
  };
}

/**
 * Counts the parts that ended in this transaction against their open groups, and sends the
 * continuation of each group that is over (all parts succeeded, or this end is a failure).
 * `keep` may drop a continuation (one addressed into a pipeline that has ended).
 */
export async function endParts(
  tx: SqlExecutor,
  t: Tables,
  ends: readonly PartEnd[],
  { writes, keep = () => true }: { writes: MessageWrites; keep?: (job: NewJob) => boolean },
): Promise<QueuedMessage[]> {
  if (ends.length === 0) return [];
  const groups = await lockOpenGroups(tx, t, ends.map((e) => e.groupId));
  if (groups.length === 0) return [];
  const updates: Parameters<typeof updateGroups>[2][number][] = [];
  const sends: NewJob[] = [];
  for (const g of groups) {
    const mine = ends.filter((e) => e.groupId === g.id);
    const failed = mine.find((e) => e.status !== "succeeded");
    const remaining = g.remaining - mine.length;
    if (!failed && remaining > 0) {
      updates.push({ id: g.id, remaining, status: "open", continuation_id: null });
      continue;
    }
    const parts = await readParts(tx, t, g.parts);
    const outcome: GroupOutcome = {
      id: g.id,
      status: failed ? "failed" : "succeeded",
      parts: g.parts.map((id) => {
        const p = parts.get(id);
        return { jobId: id, status: p?.status ?? "missing", result: p?.result ?? null };
      }),
      failure: failed
        ? {
          jobId: failed.jobId,
          status: failed.status,
          error: {
            code: failed.error?.code ?? "CANCELLED",
            message: failed.error?.message ?? "cancelled",
          },
        }
        : null,
    };
    const continuation = {
      ...g.continuation,
      input: { ...(g.continuation.input as Record<string, unknown>), group: outcome },
    };
    const sent = keep(continuation);
    if (sent) sends.push(continuation);
    updates.push({
      id: g.id,
      remaining: Math.max(0, remaining),
      status: outcome.status,
      continuation_id: sent ? continuation.id : null,
    });
  }
  await updateGroups(tx, t, updates);
  return await insertJobs(tx, t, sends, writes);
}

/** Writes a built group in `tx`: its jobs, then its row. Returns the jobs that were new. */
export async function writeGroup(
  tx: SqlExecutor,
  t: Tables,
  group: PreparedGroup,
  writes: MessageWrites,
): Promise<QueuedMessage[]> {
  const sent = await insertJobs(tx, t, group.jobs, writes);
  if (group.row) await insertGroups(tx, t, [group.row]);
  return sent;
}
