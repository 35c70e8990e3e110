/**
 * The HTTP application: `/api/*` routes over a `Runtime`. Tested without a server through
 * `app.request()`.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { jsonLogger, type Logger } from "../actors/runtime/ports.ts";
import type { Runtime } from "../actors/runtime/runtime.ts";
import { errorResponse, onError } from "./errors.ts";
import { healthRoutes } from "./health.ts";
import { jobRoutes } from "./jobs.ts";
import { requestId } from "./request_id.ts";

export interface AppOptions {
  runtime: Runtime;
  logger?: Logger;
  /** Largest JSON body accepted, in bytes. @default 1 MiB */
  maxBodyBytes?: number;
}

export function createApp(
  { runtime, logger = jsonLogger("info"), maxBodyBytes = 1 << 20 }: AppOptions,
) {
  const app = new Hono();
  app.use("*", requestId());
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: (c) =>
        errorResponse(c, 413, "PAYLOAD_TOO_LARGE", `the body is larger than ${maxBodyBytes} bytes`),
    }),
  );
  app.route("/api", healthRoutes(runtime));
  app.route("/api", jobRoutes(runtime));
  app.notFound((c) =>
    errorResponse(c, 404, "NOT_FOUND", `no route for ${c.req.method} ${c.req.path}`)
  );
  app.onError(onError(logger));
  return app;
}
