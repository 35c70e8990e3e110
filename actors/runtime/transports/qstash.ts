/**
 * The QStash push transport: every committed message is published to Upstash QStash, which
 * delivers it as a signed webhook to `POST {publicUrl}/actors/:name` on any instance, at least
 * once.
 *
 * Its three parts (see `../transport.ts`):
 * - in the transaction: an outbox row per message, no notification;
 * - after the commit: a publish (the outbox row goes once QStash accepted it; the runtime's
 *   relay publishes rows a crash left behind);
 * - the consumer side: QStash calls the webhook `receiver()` returns (a
 *   {@linkcode qstashReceiver}, `qstash_receiver.ts`, for this `publicUrl`), which checks the
 *   signature and its nonce (`qstash_nonces.ts`, tables in {@linkcode qstashMigrations}) and
 *   calls the consumer's `deliver` or `giveUp`; `start` and `stop` have nothing to run.
 *
 * What each publish carries:
 * - the job id as the body and as the deduplication id (a message re-published by the outbox
 *   relay after a crash is not delivered twice by QStash; the runtime's ledger is the real
 *   guarantee either way);
 * - `Upstash-Flow-Control-Key` = the actor key with `parallelism=1`: QStash itself keeps one
 *   delivery per key in flight; the runtime's lease + fencing stays the backstop;
 * - retries = the actor's own retries + `retrySlack` (deliveries answered "busy" or lost to
 *   infrastructure errors use QStash retries without being attempts), and a retry delay
 *   expression mirroring the actor's backoff; the endpoint also answers `Retry-After` with the
 *   exact due time;
 * - a timeout above the actor's, a failure callback that turns a message QStash gave up on
 *   into a dead letter, and `notBefore` for delayed messages;
 * - the message's trace context as a `traceparent` header, forwarded to the delivery.
 *
 * A job that asked to run again later (`RetryLaterError`) is committed back to `queued` first;
 * then `reschedule` publishes a new message for it, deduplicated by job id and due time (one
 * message per reschedule, yet a retried publish of the same one is not delivered twice), and
 * the delivery that ran it is answered 2xx: QStash's retry counter never advances on it.
 * Fan-out (many messages committed together) goes through `/v2/batch`, 100 per request.
 */
import type { Client, PublishRequest } from "@upstash/qstash";
import type { Hono } from "hono";
import type { Consumer, MessageWrites, OutgoingMessage, Transport } from "../transport.ts";
import { qstashReceiver, type QStashReceiverOptions } from "./qstash_receiver.ts";

export {
  MAX_WEBHOOK_BYTES,
  nonRetryable,
  qstashReceiver,
  type QStashReceiverOptions,
  qstashSignature,
  type QStashSignatureOptions,
  type SignatureCheck,
} from "./qstash_receiver.ts";

/** Options of the QStash transport. */
export interface QStashTransportOptions {
  /** A QStash client (`new Client({ token })`). */
  client: Client;
  /** This service's base URL as QStash reaches it, e.g. `https://troupe.example.com`. */
  publicUrl: string;
  /** QStash retries beyond the actor's own. @default 3 */
  retrySlack?: number;
}

const BATCH = 100;

/** Push delivery through QStash: each message becomes a signed HTTP callback to this service. */
export class QStashTransport implements Transport {
  /** The transport's name. */
  readonly name = "qstash";
  /** An outbox row: a message is published after its commit. */
  readonly inTransaction: MessageWrites = { outbox: true, notify: false };
  readonly #client: Client;
  readonly #base: string;
  readonly #slack: number;

  /** A transport publishing through `client` to callbacks under `publicUrl`. */
  constructor({ client, publicUrl, retrySlack = 3 }: QStashTransportOptions) {
    this.#client = client;
    this.#base = publicUrl.replace(/\/+$/, "");
    this.#slack = retrySlack;
  }

  /**
   * The webhook this transport's messages are delivered to (`qstashReceiver` for its
   * `publicUrl`): mount it at the root of the service that URL names.
   */
  receiver(options: Omit<QStashReceiverOptions, "publicUrl">): Hono {
    return qstashReceiver({ ...options, publicUrl: this.#base });
  }

  /** Where QStash delivers messages of `actor`. */
  destination(actor: string): string {
    return `${this.#base}/actors/${encodeURIComponent(actor)}`;
  }

  /** Publishes the messages, one request per 100 (resolves once QStash accepted them all). */
  async afterCommit(messages: readonly OutgoingMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += BATCH) {
      const requests = await Promise.all(
        messages.slice(i, i + BATCH).map((m) => this.request(m)),
      );
      if (requests.length === 1) await this.#client.publishJSON(requests[0]!);
      else await this.#client.batchJSON(requests);
    }
  }

  /** Publishes a new message for a job put back to `queued` at `m.runAt` (see above). */
  async reschedule(m: OutgoingMessage): Promise<void> {
    const request = await this.request(m);
    await this.#client.publishJSON({ ...request, deduplicationId: `${m.id}:${m.runAt.getTime()}` });
  }

  /** The publish request of one message (exposed for tests). */
  async request(m: OutgoingMessage): Promise<PublishRequest<{ jobId: string }> & { url: string }> {
    const url = this.destination(m.actor);
    const { backoff, maxAttempts, timeoutMs } = m.policy;
    const notBefore = m.runAt.getTime() > Date.now() + 1000
      ? { notBefore: Math.ceil(m.runAt.getTime() / 1000) }
      : {};
    return {
      url,
      body: { jobId: m.id },
      deduplicationId: m.id,
      retries: maxAttempts - 1 + this.#slack,
      retryDelay: `min(${backoff.maxMs}, ${backoff.baseMs} * pow(${backoff.factor}, retried))`,
      flowControl: { key: await flowControlKey(m.key), parallelism: 1 },
      timeout: Math.ceil(timeoutMs / 1000) + 30,
      failureCallback: `${url}/failure`,
      ...notBefore,
      ...(m.traceparent ? { headers: { traceparent: m.traceparent } } : {}),
    };
  }

  wake(): void {}

  /** Nothing to start: QStash calls the webhook `qstashReceiver` mounts. */
  start(_consumer: Consumer): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A flow-control key QStash accepts for any actor key: the readable part of the key plus a
 * hash of all of it, so keys that differ only in other characters stay apart.
 */
export async function flowControlKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  const hash = [...new Uint8Array(digest).slice(0, 6)]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const readable = key.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 48);
  return `${readable}-${hash}`;
}

export { qstashMigrations } from "./qstash_schema.ts";
