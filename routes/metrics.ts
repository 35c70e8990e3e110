/**
 * `GET /metrics` in the Prometheus text format, and the middleware that times every request by
 * its route template (`routeTemplate(c)` of the handler that answered: `/api/jobs/:id`, never
 * the raw path, so ids do not become series). See deploy/README.md, "Metrics".
 */
import { Hono, type MiddlewareHandler } from "hono";
import type { AppEnv } from "./env.ts";
import { routeTemplate } from "./lazy.ts";
import type { PrometheusMetrics } from "../db/metrics/prometheus.ts";
import { errorResponse } from "./errors.ts";

/**
 * Times each request and records it under its method, route template and status. A request
 * that no route matched records the pattern of the middleware that answered (e.g. `/api/*`).
 * The time runs to the response's headers, not to the end of a streamed body.
 */
export function httpMetrics(metrics: PrometheusMetrics): MiddlewareHandler {
  return async function httpMetrics(c, next) {
    const began = performance.now();
    await next();
    metrics.request(c.req.method, routeTemplate(c), c.res.status, performance.now() - began);
  };
}

/** Metrics on an app: the sink of its request timings, and whether it serves `/metrics`. */
export interface MetricsOptions {
  sink: PrometheusMetrics;
  /** Serve `GET /metrics` on this app; absent: it is served elsewhere (a separate port). */
  route?: {
    /** `Authorization: Bearer <token>` required; absent: open (only on a private port). */
    token?: string | undefined;
  };
}

/** `GET /metrics`; with a token, a request without it gets a 401 JSON error. */
export function metricsRoutes({ sink: metrics, route: { token } = {} }: MetricsOptions) {
  const expected = token === undefined ? null : new TextEncoder().encode(`Bearer ${token}`);
  const app = new Hono<AppEnv>();
  app.get("/metrics", async (c) => {
    if (expected && !sameBytes(c.req.header("authorization") ?? "", expected)) {
      c.header("WWW-Authenticate", 'Bearer realm="metrics"');
      return errorResponse(c, 401, "UNAUTHORIZED", "a valid metrics bearer token is required");
    }
    return c.body(await metrics.render(), 200, { "content-type": metrics.contentType });
  });
  return app;
}

/** Compares in time independent of where the bytes differ. */
function sameBytes(given: string, expected: Uint8Array): boolean {
  const bytes = new TextEncoder().encode(given);
  let diff = bytes.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= (bytes[i] ?? 0) ^ expected[i]!;
  return diff === 0;
}
