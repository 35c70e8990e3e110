/**
 * The tracing port: how a message carries the trace it was made in to its handler.
 *
 * Invariants every adapter keeps:
 * - `current()` is the W3C trace context of the span active in the caller's async context, or
 *   undefined when none is (or tracing is off). The runtime stores it on every message it
 *   makes (enqueue, `ctx.send`, groups, pipelines), in the job's row.
 * - `enqueue(info, fn)` runs `fn` inside a producer span and hands it that span's context,
 *   which the messages `fn` inserts carry; it rethrows what `fn` throws.
 * - `runHandler(job, fn)` runs `fn` inside a consumer span whose parent is `job.traceparent`
 *   (the span that made the message, in whatever process), or a new trace without one; `fn`'s
 *   own async work (its `ctx.send`, database and fetch calls) happens inside that span. It
 *   rethrows what `fn` throws, and ends the span when `fn` settles.
 * - Nothing here may fail a message: an adapter that cannot trace runs `fn` as is.
 *
 * {@link noTracing} is the default: it adds nothing and costs one call.
 */

/** A W3C trace context (`traceparent`, and `tracestate` when there is one). */
export interface TraceContext {
  /** `00-<trace id>-<span id>-<flags>`. */
  traceparent: string;
  /** Vendor entries, as received. */
  tracestate?: string;
}

/** What a handler span is about: the job, and the context it was made in. */
export interface TracedJob {
  /** The job's id. */
  id: string;
  /** Its actor. */
  actor: string;
  /** Its instance key. */
  key: string;
  /** Its attempt (1 for the first run). */
  attempts: number;
  /** The context the message was made in, if any. */
  traceparent?: string | null;
  /** Its `tracestate`, if any. */
  tracestate?: string | null;
}

/** What an enqueue span is about. */
export interface TracedEnqueue {
  /** The first message's actor. */
  actor: string;
  /** How many messages the call makes. */
  count: number;
}

/** Spans around enqueues and handlers (see the invariants above). */
export interface Tracing {
  /** The context of the span active now, to stamp on a message made now. */
  current(): TraceContext | undefined;
  /** Runs `fn` in a producer span; `fn` gets the context its messages carry. */
  enqueue<T>(info: TracedEnqueue, fn: (trace: TraceContext | undefined) => Promise<T>): Promise<T>;
  /** Runs `fn` in a consumer span, a child of the span that made `job`. */
  runHandler<T>(job: TracedJob, fn: () => Promise<T>): Promise<T>;
}

/** Tracing off: no spans, no context on messages. */
export const noTracing: Tracing = {
  current: () => undefined,
  enqueue: (_info, fn) => fn(undefined),
  runHandler: (_job, fn) => fn(),
};

/** A row that may carry a trace context (`troupe_jobs`' columns). */
export interface TracedRow {
  traceparent?: string | null;
  tracestate?: string | null;
}

/** The trace context a row carries, or undefined. */
export function traceOf(row: TracedRow): TraceContext | undefined {
  if (!row.traceparent) return undefined;
  return {
    traceparent: row.traceparent,
    ...(row.tracestate ? { tracestate: row.tracestate } : {}),
  };
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The trace id, span id and flags of a `traceparent`, or undefined for a malformed one (or the
 * all-zero ids the W3C format calls invalid).
 */
export function parseTraceparent(
  traceparent: string,
): { traceId: string; spanId: string; flags: number } | undefined {
  const m = TRACEPARENT.exec(traceparent.trim());
  if (!m || m[1] === "ff") return undefined;
  const traceId = m[2]!;
  const spanId = m[3]!;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, flags: parseInt(m[4]!, 16) };
}

/** The `traceparent` of a span (version 00). */
export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${(flags & 0xff).toString(16).padStart(2, "0")}`;
}

/**
 * The ids of the span active now, as log fields (`traceId`, `spanId`), or undefined when none
 * is: give it to `jsonLogger` as its `context` so that log lines join their traces.
 */
export function traceLogFields(
  tracing: Pick<Tracing, "current">,
): () => { traceId: string; spanId: string } | undefined {
  return () => {
    const now = tracing.current();
    const ids = now && parseTraceparent(now.traceparent);
    return ids ? { traceId: ids.traceId, spanId: ids.spanId } : undefined;
  };
}
