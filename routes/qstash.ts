/**
 * QStash webhooks: message deliveries (`POST /actors/:name`), failure callbacks
 * (`POST /actors/:name/failure`), schedule runs (`POST /schedules/:name`) and the maintenance
 * pass (`POST /schedules/system.maintain`).
 *
 * Every request must carry a valid `Upstash-Signature` (checked with the current and the next
 * signing key, for the URL QStash was asked to call) whose id was not seen before: a missing,
 * forged, expired or replayed signature is a 401 and runs nothing.
 *
 * Answers QStash understands: 2xx = done; `489` + `Upstash-NonRetryable-Error: true` = failed
 * for good (the runtime has recorded the dead letter); `503` + `Retry-After` = not now
 * (the key is busy elsewhere, or a retry's backoff is not over).
 */
import type { Receiver } from "@upstash/qstash";
import { type Context, Hono } from "hono";
import type { AppEnv } from "./env.ts";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { DeliveryOutcome, Runtime, SqlDatabase } from "@troupe/runtime";
import { claimSignatureId } from "../db/webhook_nonces.ts";
import { errorResponse } from "./errors.ts";

/** Where QStash's maintenance schedule posts (`Runtime.maintenancePass`). */
export const MAINTENANCE_PATH = "/schedules/system.maintain";

export interface WebhookOptions {
  runtime: Runtime;
  receiver: Receiver;
  /** This service's base URL as QStash calls it (the signature names the full URL). */
  publicUrl: string;
  /** Where accepted signature ids are remembered (shared by every instance). */
  db: SqlDatabase;
}

const deliveryBody = z.object({ jobId: z.string().min(1).max(100) });
const failureBody = z.object({
  status: z.number().int().optional(),
  retried: z.number().int().optional(),
  maxRetries: z.number().int().optional(),
  sourceBody: z.string().optional(),
  dlqId: z.string().optional(),
});

export function qstashRoutes(o: WebhookOptions): Hono<AppEnv> {
  const base = o.publicUrl.replace(/\/+$/, "");
  const app = new Hono<AppEnv>();
  app.use(
    "*",
    bodyLimit({
      maxSize: 256 * 1024,
      onError: (c) => errorResponse(c, 413, "PAYLOAD_TOO_LARGE", "webhook body too large"),
    }),
  );

  /** Verifies the request; returns its body, or a 401 response. */
  async function verified(c: Context): Promise<string | Response> {
    const signature = c.req.header("upstash-signature");
    if (!signature) {
      return errorResponse(c, 401, "INVALID_SIGNATURE", "Upstash-Signature is missing");
    }
    const body = await c.req.text();
    const url = base + new URL(c.req.url).pathname;
    try {
      const ok = await o.receiver.verify({ signature, body, url });
      if (!ok) throw new Error("rejected");
    } catch {
      return errorResponse(
        c,
        401,
        "INVALID_SIGNATURE",
        "the signature is not valid for this request",
      );
    }
    const claims = decodeClaims(signature);
    if (!claims) return errorResponse(c, 401, "INVALID_SIGNATURE", "the signature has no id");
    if (!(await claimSignatureId(o.db, claims.jti, claims.exp))) {
      return errorResponse(c, 401, "REPLAYED_SIGNATURE", "this signature was used already");
    }
    return body;
  }

  app.post("/actors/:name", async function deliver(c) {
    const body = await verified(c);
    if (body instanceof Response) return body;
    const parsed = deliveryBody.safeParse(safeJson(body));
    if (!parsed.success) return nonRetryable(c, "BAD_MESSAGE", "the body is not {jobId}");
    const outcome = await o.runtime.deliver(parsed.data.jobId);
    return answer(c, outcome);
  });

  app.post("/actors/:name/failure", async function deliveryFailed(c) {
    const body = await verified(c);
    if (body instanceof Response) return body;
    const parsed = failureBody.safeParse(safeJson(body));
    const source = parsed.success && parsed.data.sourceBody
      ? deliveryBody.safeParse(safeJson(decodeBase64(parsed.data.sourceBody)))
      : null;
    if (!parsed.success || !source?.success) {
      return nonRetryable(c, "BAD_CALLBACK", "not a QStash failure callback");
    }
    const f = parsed.data;
    const outcome = await o.runtime.giveUp(source.data.jobId, {
      code: "DELIVERY_FAILED",
      message: `QStash gave up after ${f.retried ?? "?"} of ${f.maxRetries ?? "?"} retries; ` +
        `last answer ${f.status ?? "none"}`,
    });
    return c.json({ jobId: source.data.jobId, outcome });
  });

  // Every minute (see `deno task schedules:sync`): reaps, relays and fires due schedules, so
  // that nothing waits on a timer of an instance the host may have stopped.
  app.post(MAINTENANCE_PATH, async function maintenance(c) {
    const body = await verified(c);
    if (body instanceof Response) return body;
    return c.json(await o.runtime.maintenancePass());
  });

  app.post("/schedules/:name", async function scheduleRun(c) {
    const body = await verified(c);
    if (body instanceof Response) return body;
    const name = c.req.param("name");
    if (!o.runtime.actors.get(name)?.schedule) {
      return nonRetryable(c, "NOT_FOUND", `no scheduled actor ${name}`);
    }
    const { job, created } = await o.runtime.fireSchedule(name);
    return c.json({ jobId: job.id, created });
  });

  return app;
}

function answer(c: Context, outcome: DeliveryOutcome): Response {
  switch (outcome.status) {
    case "failed":
      return nonRetryable(c, "FAILED", "the handler failed for good; see the dead letters");
    case "busy":
    case "retry": {
      c.header("Retry-After", String(Math.max(1, Math.ceil(outcome.retryInMs / 1000))));
      return c.json({ status: outcome.status, retryInMs: outcome.retryInMs }, 503);
    }
    default:
      return c.json({ status: outcome.status });
  }
}

/** 489 is QStash's own status (not in Hono's list): built by hand. */
function nonRetryable(_c: Context, code: string, message: string): Response {
  return new Response(JSON.stringify({ error: { code, message } }), {
    status: 489,
    headers: { "content-type": "application/json", "Upstash-NonRetryable-Error": "true" },
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function decodeBase64(text: string): string {
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0)));
  } catch {
    return "";
  }
}

/** `jti` and `exp` of a JWT whose signature was already verified. */
function decodeClaims(jwt: string): { jti: string; exp: number } | null {
  const part = jwt.split(".")[1];
  if (!part) return null;
  const claims = safeJson(decodeBase64(part.replaceAll("-", "+").replaceAll("_", "/"))) as
    | { jti?: unknown; exp?: unknown }
    | undefined;
  if (typeof claims?.jti !== "string" || typeof claims.exp !== "number") return null;
  return { jti: claims.jti.slice(0, 200), exp: claims.exp };
}
