/**
 * Completion callbacks: a job, pipeline (an upload), dataset, course or sync run may name a
 * URL; when it ends, `system.callback` POSTs a signed JSON event there. For clients that do
 * not keep an SSE stream open (what Celery users did with link callbacks).
 *
 * Invariants:
 * - The callback is the job's end message (`onEnd`, see the runtime's `job_end.ts`): one
 *   message, committed in the transaction that ends the job, whichever way it ends. Delivery
 *   is that message's: retried with backoff on any failure (no answer, a timeout, a status
 *   other than 2xx), dead-lettered after the last attempt; a receiver may see an event more
 *   than once and deduplicates by its id (`Troupe-Event-Id`, the same on every attempt).
 * - The URL passes the egress rule (actors/net/egress.ts, the rule report sources follow) when
 *   the callback is asked for, and again on every attempt; a URL refused at delivery (its name
 *   now resolves to a private address) fails at once, not retried. Redirects are not followed
 *   (a 3xx is a failed attempt, as any answer other than 2xx).
 * - Each attempt is signed with the tenant's current key (see `callback_secrets.ts`):
 *   `Troupe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. A receiver
 *   checks the HMAC over the raw body and refuses a `t` far from its clock (replays).
 * - The job's view shows the callback: its URL, `pending` / `delivered` / `failed`, attempts,
 *   the receiver's last status and when it was delivered (`callbackView`).
 */
import { z } from "zod";
import {
  defineActor,
  endMessageId,
  type JobEnd,
  jobEndSchema,
  type JobView,
  NonRetryableError,
  type OnEnd,
  TroupeError,
} from "@troupe/runtime";
import { EgressError, type EgressPolicy } from "../net/egress.ts";
import type { CallbackSecrets } from "./callback_secrets.ts";

export const CALLBACK_ACTOR = "system.callback";

/**
 * What a callback event names besides the job: the dataset or course an upload made, the
 * report source a sync ran for.
 */
export const callbackSubject = z.object({
  type: z.enum(["dataset", "course", "source"]),
  id: z.string().min(1).max(200),
});
export type CallbackSubject = z.infer<typeof callbackSubject>;

const callbackInput = z.object({
  url: z.string().url().max(2048),
  tenantId: z.string().min(1).max(100),
  subject: callbackSubject.nullable().optional(),
  job: jobEndSchema,
});

/** The JSON body POSTed to a callback URL. */
export interface CallbackEvent {
  /** The event's id, the same on every attempt: deduplicate by it. */
  id: string;
  /** `job.succeeded`, `job.failed` or `job.cancelled`. */
  type: `job.${JobEnd["status"]}`;
  /** When the job ended (ISO 8601). */
  createdAt: string;
  /** The dataset, course or report source the job is about, or null. */
  subject: CallbackSubject | null;
  /** The job: id, kind, actor (a pipeline's name), status, result, error, finishedAt. */
  job: JobEnd;
}

const encoder = new TextEncoder();

async function hmacHex(secret: string, text: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(text)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The `Troupe-Signature` header of `body` sent at `t` (unix seconds). */
export async function signCallback(secret: string, t: number, body: string): Promise<string> {
  return `t=${t},v1=${await hmacHex(secret, `${t}.${body}`)}`;
}

/**
 * Whether `header` (a `Troupe-Signature`) signs `body` with `secret`, made within
 * `toleranceSeconds` of `now`: what a receiver runs on the raw body it got.
 */
export async function verifyCallback(
  secret: string,
  header: string,
  body: string,
  { toleranceSeconds = 300, now = Date.now() }: { toleranceSeconds?: number; now?: number } = {},
): Promise<boolean> {
  const parts = new Map(
    header.split(",").map((p) => {
      const i = p.indexOf("=");
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get("t"));
  const v1 = parts.get("v1");
  if (!Number.isInteger(t) || !v1) return false;
  if (Math.abs(now / 1000 - t) > toleranceSeconds) return false;
  const expected = await hmacHex(secret, `${t}.${body}`);
  // Compare in constant time over equal lengths.
  if (expected.length !== v1.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ v1.charCodeAt(i);
  return diff === 0;
}

/** What the callback actor and the routes need. */
export interface CallbackOptions {
  secrets: CallbackSecrets;
  /** The rule every callback URL passes (the report sources' rule). */
  egress: EgressPolicy;
  /** Time a receiver has to answer one attempt. @default 10000 */
  timeoutMs?: number;
  /** Attempts after the first. @default 8 (about 4 minutes of backoff in all) */
  retries?: number;
  /** Delay before the first retry, doubling. @default 1000 */
  backoffBaseMs?: number;
}

/** Callbacks: the actor that delivers them, the checks when one is asked for, their view. */
export class Callbacks {
  readonly secrets: CallbackSecrets;
  readonly egress: EgressPolicy;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #backoffBaseMs: number;

  constructor(
    { secrets, egress, timeoutMs = 10_000, retries = 8, backoffBaseMs = 1000 }: CallbackOptions,
  ) {
    this.secrets = secrets;
    this.egress = egress;
    this.#timeoutMs = timeoutMs;
    this.#retries = retries;
    this.#backoffBaseMs = backoffBaseMs;
  }

  /**
   * `url` as a callback of `tenantId`'s, normalised, when it may be one. Throws
   * `CALLBACK_URL_NOT_ALLOWED` (400) for a URL the egress rule refuses, and
   * `SECRET_KEYS_MISSING` (409) when this deployment cannot seal a signing key: nothing is
   * accepted that could not be delivered.
   */
  async accept(tenantId: string, url: string): Promise<string> {
    let checked: URL;
    try {
      checked = await this.egress.check(url);
    } catch (err) {
      if (err instanceof EgressError) {
        throw new TroupeError(
          "CALLBACK_URL_NOT_ALLOWED",
          `callbackUrl is not allowed: ${err.message}`,
          { details: { field: "callbackUrl", reason: err.code } },
        );
      }
      throw err;
    }
    await this.secrets.current(tenantId);
    return checked.toString();
  }

  /** The end message that calls `url` (accepted by {@link accept}) back for `tenantId`. */
  onEnd(tenantId: string, url: string, subject: CallbackSubject | null = null): OnEnd {
    return { actor: CALLBACK_ACTOR, input: { url, tenantId, subject } };
  }

  /** The `system.callback` actor (not enqueued by API callers). */
  actor() {
    const { secrets, egress } = this;
    const timeoutMs = this.#timeoutMs;
    return defineActor({
      name: CALLBACK_ACTOR,
      exposed: false,
      input: callbackInput,
      key: (input) => `callback:${input.job.id}`,
      retries: this.#retries,
      backoff: { baseMs: this.#backoffBaseMs, maxMs: 120_000 },
      timeoutMs: timeoutMs + 5_000,
      handler: async (input, ctx) => {
        const event: CallbackEvent = {
          id: endMessageId(input.job.id),
          type: `job.${input.job.status}`,
          createdAt: input.job.finishedAt,
          subject: input.subject ?? null,
          job: input.job,
        };
        const body = JSON.stringify(event);
        const { secret } = await secrets.current(input.tenantId);
        const signature = await signCallback(secret, Math.floor(Date.now() / 1000), body);
        let res: Response;
        try {
          // Redirects are not followed: a POST turned into a GET would count as delivered.
          res = await fetch(await egress.check(input.url), {
            redirect: "manual",
            method: "POST",
            headers: {
              "content-type": "application/json",
              "user-agent": "Troupe-Callback/1",
              "troupe-event-id": event.id,
              "troupe-event-type": event.type,
              "troupe-signature": signature,
            },
            body,
            signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]),
          });
        } catch (err) {
          if (err instanceof EgressError) {
            throw new NonRetryableError(`callback URL refused: ${err.message}`, {
              code: "CALLBACK_URL_NOT_ALLOWED",
            });
          }
          if (ctx.signal.aborted) throw err;
          throw new TroupeError(
            "CALLBACK_UNREACHABLE",
            `the callback URL did not answer: ${err instanceof Error ? err.message : err}`,
          );
        }
        await res.body?.cancel();
        if (res.status < 200 || res.status > 299) {
          throw new TroupeError(
            `CALLBACK_HTTP_${res.status}`,
            `the callback URL answered ${res.status}`,
          );
        }
        return { status: res.status, deliveredAt: new Date().toISOString() };
      },
    });
  }
}

/** A job's callback as its view shows it. */
export interface CallbackView {
  url: string;
  /** `pending` until delivered or given up. */
  status: "pending" | "delivered" | "failed";
  /** Attempts made. */
  attempts: number;
  /** The receiver's status on the last attempt that got an answer, or null. */
  lastResponseStatus: number | null;
  /** The last failure's code and message, or null. */
  lastError: { code: string; message: string } | null;
  /** When the receiver accepted it (ISO 8601), or null. */
  deliveredAt: string | null;
  /** The event's id (`Troupe-Event-Id`), also the id of the delivering job. */
  eventId: string;
}

/**
 * The callback of `job`, or null when it has none: from its delivering job once the job has
 * ended (`getJob` reads it), from the stored end message before.
 */
export async function callbackView(
  job: JobView,
  getJob: (id: string) => Promise<JobView>,
): Promise<CallbackView | null> {
  if (job.onEnd?.actor !== CALLBACK_ACTOR) return null;
  const url = String((job.onEnd.input as { url?: unknown } | null)?.url ?? "");
  const eventId = job.onEnd.jobId;
  const pending: CallbackView = {
    url,
    status: "pending",
    attempts: 0,
    lastResponseStatus: null,
    lastError: null,
    deliveredAt: null,
    eventId,
  };
  if (job.finishedAt === null) return pending;
  const delivery = await getJob(eventId).catch(() => null);
  if (!delivery) return pending;
  const error = delivery.error as { code?: string; message?: string } | null;
  const result = delivery.result as { status?: number; deliveredAt?: string } | null;
  const failedStatus = Number(/^CALLBACK_HTTP_(\d{3})$/.exec(error?.code ?? "")?.[1]);
  return {
    url,
    status: delivery.status === "succeeded"
      ? "delivered"
      : delivery.status === "failed" || delivery.status === "cancelled"
      ? "failed"
      : "pending",
    attempts: delivery.attempts,
    lastResponseStatus: delivery.status === "succeeded"
      ? result?.status ?? null
      : Number.isInteger(failedStatus)
      ? failedStatus
      : null,
    lastError: delivery.status !== "succeeded" && error?.code
      ? { code: error.code, message: error.message ?? "" }
      : null,
    deliveredAt: delivery.status === "succeeded" ? result?.deliveredAt ?? null : null,
    eventId,
  };
}
