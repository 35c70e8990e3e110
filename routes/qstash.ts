/**
 * QStash webhooks: message deliveries and failure callbacks (`POST /actors/:name`,
 * `POST /actors/:name/failure`: the QStash transport's receiver, `qstashReceiver` of
 * `@troupe/runtime/transports/qstash`, mounted here), schedule runs (`POST /schedules/:name`)
 * and the maintenance pass (`POST /schedules/system.maintain`).
 *
 * Every request must carry a valid `Upstash-Signature` whose id was not seen before (the
 * transport's `qstashSignature` check, here for the schedule routes too): a missing, forged,
 * expired or replayed signature is a 401 and runs nothing. A schedule that names no scheduled
 * actor is a `489` + `Upstash-NonRetryable-Error: true` (QStash stops retrying it).
 */
import { Hono } from "hono";
import type { AppEnv } from "./env.ts";
import { bodyLimit } from "hono/body-limit";
import type { Runtime } from "@troupe/runtime";
import {
  MAX_WEBHOOK_BYTES,
  nonRetryable,
  qstashReceiver,
  qstashSignature,
  type QStashSignatureOptions,
} from "@troupe/runtime/transports/qstash";
import { errorResponse } from "./errors.ts";

/** Where QStash's maintenance schedule posts (`Runtime.maintenancePass`). */
export const MAINTENANCE_PATH = "/schedules/system.maintain";

export interface WebhookOptions extends QStashSignatureOptions {
  runtime: Runtime;
}

export function qstashRoutes(o: WebhookOptions): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { runtime, ...signature } = o;
  const verified = qstashSignature(signature);
  app.route("/", qstashReceiver({ ...signature, consumer: runtime }));
  app.use(
    "/schedules/*",
    bodyLimit({
      maxSize: MAX_WEBHOOK_BYTES,
      onError: (c) => errorResponse(c, 413, "PAYLOAD_TOO_LARGE", "webhook body too large"),
    }),
  );

  // Every minute (see `deno task schedules:sync`): reaps, relays and fires due schedules, so
  // that nothing waits on a timer of an instance the host may have stopped.
  app.post(MAINTENANCE_PATH, async function maintenance(c) {
    const body = await verified(c);
    if (body instanceof Response) return body;
    return c.json(await runtime.maintenancePass());
  });

  app.post("/schedules/:name", async function scheduleRun(c) {
    const body = await verified(c);
    if (body instanceof Response) return body;
    const name = c.req.param("name");
    if (!runtime.actors.get(name)?.schedule) {
      return nonRetryable("NOT_FOUND", `no scheduled actor ${name}`);
    }
    const { job, created, paused } = await runtime.fireDueSchedule(name);
    return c.json({ jobId: job?.id ?? null, created, paused });
  });

  return app;
}
