/**
 * The HTTP surface of a worker-only instance (`ROLE=worker`): `GET /api/health` for the load
 * balancer or the service manager, and, with QStash, the signed delivery routes (deliveries
 * are how a push transport hands a worker its jobs). No tenant API: jobs are posted to the
 * `api` instances.
 */
import { Hono } from "hono";
import type { Cache } from "../db/cache/cache.ts";
import type { Runtime } from "@troupe/runtime";
import { errorResponse } from "../routes/errors.ts";
import { type HealthOptions, healthRoutes } from "../routes/health.ts";
import { qstashRoutes, type WebhookOptions } from "../routes/qstash.ts";
import { httpTracing } from "../routes/telemetry.ts";

export interface WorkerAppOptions {
  runtime: Runtime;
  cache?: Cache;
  health?: HealthOptions;
  /** QStash's delivery routes; absent with the table queue (the worker claims from the table). */
  webhooks?: Omit<WebhookOptions, "runtime">;
  /** Server spans by route template (routes/telemetry.ts), when tracing is on. @default false */
  tracing?: boolean;
}

/** The worker role's app: health (and QStash deliveries), everything else a JSON 404. */
export function workerApp(o: WorkerAppOptions): Hono {
  const app = new Hono();
  if (o.tracing) app.use("*", httpTracing());
  app.route("/api", healthRoutes(o.runtime, o.cache, o.health));
  if (o.webhooks) app.route("/", qstashRoutes({ ...o.webhooks, runtime: o.runtime }));
  app.notFound((c) =>
    errorResponse(
      c,
      404,
      "NOT_FOUND",
      `no route for ${c.req.method} ${c.req.path}: this instance runs ROLE=worker (health only)`,
    )
  );
  return app;
}
