/**
 * The consumer side of the QStash transport: the signed webhooks QStash calls, as a Hono app
 * to mount at the root of the service whose `publicUrl` the transport publishes to.
 *
 * - `POST /actors/:name` (body `{ jobId }`): one delivery; runs it through
 *   `Consumer.deliver`.
 * - `POST /actors/:name/failure`: QStash's failure callback after its last retry; the job is
 *   given up (`Consumer.giveUp`: dead-lettered if still queued).
 *
 * Invariants:
 * - Every request must carry a valid `Upstash-Signature` (checked with the current and the
 *   next signing key, for the URL QStash was asked to call: `publicUrl` + the path) whose id
 *   (`jti`) was not accepted before (`qstash_nonces.ts`, shared by every instance): a missing,
 *   forged, expired or replayed signature is a 401 and runs nothing.
 * - Answers QStash understands: 2xx = done; `489` + `Upstash-NonRetryable-Error: true` = failed
 *   for good (the runtime has recorded the dead letter) or not a message at all; `503` +
 *   `Retry-After` = not now (the key is busy elsewhere, or a retry's backoff is not over).
 * - A body over {@linkcode MAX_WEBHOOK_BYTES} is a 413 and is not read further.
 *
 * @module
 */
import type { Receiver } from "@upstash/qstash";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { SqlExecutor } from "../ports.ts";
import type { Consumer, DeliveryOutcome } from "../transport.ts";
import { claimSignatureId, nonceTable } from "./qstash_nonces.ts";

/** The largest webhook body read (QStash's own messages are far smaller). */
export const MAX_WEBHOOK_BYTES = 256 * 1024;

/** What checking QStash's signatures needs. */
export interface QStashSignatureOptions {
  /** The QStash signature verifier (`new Receiver({ currentSigningKey, nextSigningKey })`). */
  receiver: Receiver;
  /** This service's base URL as QStash calls it (the signature names the full URL). */
  publicUrl: string;
  /** Where accepted signature ids are remembered (shared by every instance). */
  db: SqlExecutor;
  /** The schema `qstashMigrations` were applied in. @default "public" */
  schema?: string;
}

/** What the QStash webhook needs: the signature check and the consumer it delivers to. */
export interface QStashReceiverOptions extends QStashSignatureOptions {
  /** The runtime the deliveries run on. */
  consumer: Pick<Consumer, "deliver" | "giveUp">;
}

/** Checks a request's QStash signature: its body when valid and new, else a 401 response. */
export type SignatureCheck = (c: Context) => Promise<string | Response>;

const deliveryBody = z.object({ jobId: z.string().min(1).max(100) });
const failureBody = z.object({
  status: z.number().int().optional(),
  retried: z.number().int().optional(),
  maxRetries: z.number().int().optional(),
  sourceBody: z.string().optional(),
  dlqId: z.string().optional(),
});

/**
 * The signature check of every QStash-signed route (the deliveries here, and an application's
 * own, e.g. schedule runs): verifies `Upstash-Signature` for `publicUrl` + the request's path,
 * then claims its id once; resolves to the body, or to a 401 JSON response.
 */
export function qstashSignature(o: QStashSignatureOptions): SignatureCheck {
  const base = o.publicUrl.replace(/\/+$/, "");
  const table = nonceTable(o.schema);
  return async function verified(c: Context): Promise<string | Response> {
    const signature = c.req.header("upstash-signature");
    if (!signature) return unauthorized(c, "INVALID_SIGNATURE", "Upstash-Signature is missing");
    const body = await c.req.text();
    const url = base + new URL(c.req.url).pathname;
    try {
      const ok = await o.receiver.verify({ signature, body, url });
      if (!ok) throw new Error("rejected");
    } catch {
      return unauthorized(c, "INVALID_SIGNATURE", "the signature is not valid for this request");
    }
    const claims = decodeClaims(signature);
    if (!claims) return unauthorized(c, "INVALID_SIGNATURE", "the signature has no id");
    if (!(await claimSignatureId(o.db, claims.jti, claims.exp, table))) {
      return unauthorized(c, "REPLAYED_SIGNATURE", "this signature was used already");
    }
    return body;
  };
}

/** The webhook QStash delivers messages to (see the routes and invariants above). */
export function qstashReceiver(o: QStashReceiverOptions): Hono {
  const verified = qstashSignature(o);
  const app = new Hono();
  app.use("/actors/*", webhookBodyLimit());

  app.post("/actors/:name", async function deliver(c) {
    const body = await verified(c);
    if (body instanceof Response) return body;
    const parsed = deliveryBody.safeParse(safeJson(body));
    if (!parsed.success) return nonRetryable("BAD_MESSAGE", "the body is not {jobId}");
    return answer(c, await o.consumer.deliver(parsed.data.jobId));
  });

  app.post("/actors/:name/failure", async function deliveryFailed(c) {
    const body = await verified(c);
    if (body instanceof Response) return body;
    const parsed = failureBody.safeParse(safeJson(body));
    const source = parsed.success && parsed.data.sourceBody
      ? deliveryBody.safeParse(safeJson(decodeBase64(parsed.data.sourceBody)))
      : null;
    if (!parsed.success || !source?.success) {
      return nonRetryable("BAD_CALLBACK", "not a QStash failure callback");
    }
    const f = parsed.data;
    const outcome = await o.consumer.giveUp(source.data.jobId, {
      code: "DELIVERY_FAILED",
      message: `QStash gave up after ${f.retried ?? "?"} of ${f.maxRetries ?? "?"} retries; ` +
        `last answer ${f.status ?? "none"}`,
    });
    return c.json({ jobId: source.data.jobId, outcome });
  });

  return app;
}

/**
 * A 489 with `Upstash-NonRetryable-Error: true`: QStash stops retrying (489 is QStash's own
 * status, not in Hono's list, so the response is built by hand).
 */
export function nonRetryable(code: string, message: string): Response {
  return new Response(JSON.stringify({ error: { code, message } }), {
    status: 489,
    headers: { "content-type": "application/json", "Upstash-NonRetryable-Error": "true" },
  });
}

function webhookBodyLimit() {
  return bodyLimit({
    maxSize: MAX_WEBHOOK_BYTES,
    onError: (c) =>
      c.json({ error: { code: "PAYLOAD_TOO_LARGE", message: "webhook body too large" } }, 413),
  });
}

function unauthorized(c: Context, code: string, message: string): Response {
  return c.json({ error: { code, message } }, 401);
}

function answer(c: Context, outcome: DeliveryOutcome): Response {
  switch (outcome.status) {
    case "failed":
      return nonRetryable("FAILED", "the handler failed for good; see the dead letters");
    case "busy":
    case "retry": {
      c.header("Retry-After", String(Math.max(1, Math.ceil(outcome.retryInMs / 1000))));
      return c.json({ status: outcome.status, retryInMs: outcome.retryInMs }, 503);
    }
    default:
      return c.json({ status: outcome.status });
  }
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
