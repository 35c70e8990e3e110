/**
 * OpenTelemetry behind the runtime's tracing port, through `@opentelemetry/api`: whatever
 * tracer provider is registered exports the spans. On Deno that is Deno's built-in OpenTelemetry
 * (`OTEL_DENO=true`, always on on Deno Deploy), which exports by OTLP to
 * `OTEL_EXPORTER_OTLP_ENDPOINT`; with no provider registered the API is a no-op and
 * {@link telemetryActive} says so, so that `main.ts` wires nothing.
 *
 * Invariants:
 * - A message's handler span is a consumer span whose parent is the span that made the message
 *   (read from its row, so the link survives any transport, a retry and a restart); without one
 *   it starts a trace of its own, never the trace of whatever request happened to wake a worker.
 * - The span active where the handler runs (a push delivery's request) is linked, not a parent.
 * - An enqueue is a producer span, a child of the active span (the HTTP request's, or a
 *   handler's); its messages carry it.
 * - A span that `fn` fails is marked as an error with the exception, and the error rethrown.
 */
import {
  type Context,
  context,
  createTraceState,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import {
  formatTraceparent,
  parseTraceparent,
  type TraceContext,
  type TracedEnqueue,
  type TracedJob,
  type Tracing,
} from "@troupe/runtime";

/** The instrumentation scope of Troupe's spans. */
export const TRACER_NAME = "troupe";

/** Whether a tracer provider is registered (else every span would be dropped). */
export function telemetryActive(): boolean {
  const provider = trace.getTracerProvider() as { getDelegate?: () => object };
  // The API's own proxy delegates to a no-op provider until one is registered.
  const delegate = provider.getDelegate?.() ?? provider;
  return delegate.constructor.name !== "NoopTracerProvider";
}

/**
 * Runs `fn` in a new span (a child of `parent`, by default the active context), ending it when
 * `fn` settles; a throw marks the span as an error and is rethrown.
 */
export async function inSpan<T>(
  tracer: Tracer,
  name: string,
  options: SpanOptions,
  fn: (span: Span) => Promise<T>,
  parent: Context = context.active(),
): Promise<T> {
  const span = tracer.startSpan(name, options, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
    throw err;
  } finally {
    span.end();
  }
}

/** The W3C context of the span active in `ctx`, or undefined. */
export function traceContextOf(ctx: Context = context.active()): TraceContext | undefined {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !isSpanContextValid(sc)) return undefined;
  const state = sc.traceState?.serialize();
  return {
    traceparent: formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags),
    ...(state ? { tracestate: state } : {}),
  };
}

/** A context whose (remote) parent is `trace`, or the root context for none or a bad one. */
export function contextFrom(
  carrier: { traceparent?: string | null; tracestate?: string | null },
): Context {
  const ids = carrier.traceparent ? parseTraceparent(carrier.traceparent) : undefined;
  if (!ids) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: ids.traceId,
    spanId: ids.spanId,
    traceFlags: ids.flags,
    isRemote: true,
    ...(carrier.tracestate ? { traceState: createTraceState(carrier.tracestate) } : {}),
  });
}

/** The runtime's tracing port over OpenTelemetry (see the invariants above). */
export class OtelTracing implements Tracing {
  readonly #tracer: Tracer;

  constructor(tracer: Tracer = trace.getTracer(TRACER_NAME)) {
    this.#tracer = tracer;
  }

  current(): TraceContext | undefined {
    return traceContextOf();
  }

  enqueue<T>(
    info: TracedEnqueue,
    fn: (trace: TraceContext | undefined) => Promise<T>,
  ): Promise<T> {
    return inSpan(this.#tracer, `send ${info.actor}`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        "messaging.system": "troupe",
        "messaging.operation.type": "send",
        "messaging.destination.name": info.actor,
        "messaging.batch.message_count": info.count,
      },
    }, () => fn(traceContextOf()));
  }

  runHandler<T>(job: TracedJob, fn: () => Promise<T>): Promise<T> {
    // The delivery that runs it (a QStash webhook's request), when there is one: a link.
    const delivery = trace.getSpanContext(context.active());
    return inSpan(
      this.#tracer,
      `process ${job.actor}`,
      {
        kind: SpanKind.CONSUMER,
        ...(delivery && isSpanContextValid(delivery) ? { links: [{ context: delivery }] } : {}),
        attributes: {
          "messaging.system": "troupe",
          "messaging.operation.type": "process",
          "messaging.destination.name": job.actor,
          "messaging.message.id": job.id,
          "troupe.key": job.key,
          "troupe.attempt": job.attempts,
        },
      },
      fn,
      contextFrom(job),
    );
  }
}
