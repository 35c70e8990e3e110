/**
 * HTTP server spans named by route template (`POST /api/v1/actors/:actor/jobs`), so a trace
 * reads by route and not by id.
 *
 * When the server already made a span for the request (Deno's built-in OpenTelemetry does for
 * `Deno.serve`), that span is named and given `http.route`; otherwise this middleware makes the
 * server span itself, continuing the caller's W3C `traceparent` header. Either way the routes
 * run inside it: the enqueues, statements and calls they make are its children.
 */
import { context, SpanKind, SpanStatusCode, trace, type Tracer } from "@opentelemetry/api";
import type { MiddlewareHandler } from "hono";
import { routeTemplate } from "./lazy.ts";
import { contextFrom, TRACER_NAME } from "../db/telemetry/tracing.ts";

/** Server spans by route template (see the module doc). */
export function httpTracing(tracer: Tracer = trace.getTracer(TRACER_NAME)): MiddlewareHandler {
  return async function httpTracing(c, next) {
    const method = c.req.method;
    const existing = trace.getActiveSpan();
    if (existing?.isRecording()) {
      await next();
      existing.updateName(`${method} ${routeTemplate(c)}`);
      existing.setAttribute("http.route", routeTemplate(c));
      return;
    }
    const remote = contextFrom({
      traceparent: c.req.header("traceparent") ?? null,
      tracestate: c.req.header("tracestate") ?? null,
    });
    const parent = trace.getSpanContext(remote) ? remote : context.active();
    const span = tracer.startSpan(method, {
      kind: SpanKind.SERVER,
      attributes: { "http.request.method": method, "url.path": c.req.path },
    }, parent);
    try {
      await context.with(trace.setSpan(parent, span), next);
      const status = c.res.status;
      span.setAttribute("http.response.status_code", status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
      throw err;
    } finally {
      span.updateName(`${method} ${routeTemplate(c)}`);
      span.setAttribute("http.route", routeTemplate(c));
      span.end();
    }
  };
}
