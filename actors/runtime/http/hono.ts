/**
 * Job routes for a Hono app: enqueue a message to an actor and read its job back. A thin
 * adapter over {@linkcode Runtime}; authentication, tenancy and rate limits stay with the app
 * that mounts them (Troupe's own API adds them in `routes/jobs.ts`).
 *
 * @example Mount on your app
 * ```ts
 * import { Hono } from "hono";
 * import type { Runtime } from "@troupe/runtime";
 * import { jobRoutes } from "@troupe/runtime/hono";
 *
 * export function mount(app: Hono, runtime: Runtime): Hono {
 *   return app.route("/api", jobRoutes(runtime));
 * }
 * ```
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import { NotFoundError, TroupeError, ValidationError } from "../errors.ts";
import type { Runtime } from "../runtime.ts";
import { errorStatus } from "./status.ts";

export { errorStatus, RUNTIME_ERROR_STATUS } from "./status.ts";

const MAX_DELAY_MS = 7 * 24 * 3600 * 1000;

const enqueueBody = z.object({
  input: z.unknown(),
  delayMs: z.number().int().min(0).max(MAX_DELAY_MS).optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
});

/**
 * `POST /actors/:name/jobs` (body `{ input, delayMs?, priority?, idempotencyKey? }`; 202 with
 * `{ jobId, status }` when created, 200 when an idempotency key repeats) and `GET /jobs/:id`
 * (the job's view). Only actors defined with `exposed` (the default) can be enqueued. Errors
 * answer `{ error: { code, message, details? } }` with the status {@linkcode errorStatus} gives;
 * any other error is a 500 without internals.
 */
export function jobRoutes(runtime: Runtime): Hono {
  const app = new Hono();
  app.onError(function jobError(err, c) {
    const status = errorStatus(err);
    if (err instanceof TroupeError && status < 500) {
      const error: { code: string; message: string; details?: unknown } = {
        code: err.code,
        message: err.message,
      };
      if (err.details !== undefined) error.details = err.details;
      return c.json({ error }, status as ContentfulStatusCode);
    }
    runtime.log.error("job route failed", { error: String(err) });
    return c.json({ error: { code: "INTERNAL", message: "internal error" } }, 500);
  });

  app.post("/actors/:name/jobs", async function enqueueJob(c) {
    const name = c.req.param("name");
    if (!runtime.actors.get(name)?.exposed) throw new NotFoundError("actor", name);
    const body = enqueueBody.safeParse(await jsonBody(c));
    if (!body.success) throw new ValidationError("invalid body", z.treeifyError(body.error));
    const { input, ...options } = body.data;
    const { job, created } = await runtime.enqueue(name, input, {
      ...(options.delayMs !== undefined ? { delayMs: options.delayMs } : {}),
      ...(options.priority !== undefined ? { priority: options.priority } : {}),
      ...(options.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {}),
    });
    return c.json({ jobId: job.id, status: job.status }, created ? 202 : 200);
  });

  app.get("/jobs/:id", async function getJob(c) {
    const id = c.req.param("id");
    if (id.length > 200) throw new NotFoundError("job", id.slice(0, 200));
    return c.json(await runtime.getJob(id));
  });
  return app;
}

async function jsonBody(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new ValidationError("the body is not JSON");
  }
}
