/**
 * The HTTP client of an external usage API (the contract in actors/usage/README.md). Every
 * call goes through the egress rule (a tenant's `baseUrl` is a server-side request) and ends
 * in a value or one of the errors below, which tell the sync what to do:
 * - {@link UpstreamRateLimited}: a `429`; run again after its `Retry-After`;
 * - {@link UpstreamUnauthorized}: a `401`/`403`; the token is wrong, retrying cannot help;
 * - {@link UpstreamUnavailable}: `5xx`, a timeout or a network failure; retry with backoff;
 * - {@link UpstreamBadAnswer}: another status or a body off the contract; not retried.
 */
import { z } from "zod";
import { NonRetryableError, TroupeError } from "@troupe/runtime";
import type { EgressPolicy } from "../net/egress.ts";
import { toCents } from "./money.ts";
import type { UsageMessage } from "./store.ts";

/** A `429`: `retryAfterMs` from its `Retry-After` (seconds or an HTTP date; 1 s when absent). */
export class UpstreamRateLimited extends TroupeError {
  constructor(readonly retryAfterMs: number) {
    super("UPSTREAM_RATE_LIMITED", `the usage API asked to wait ${retryAfterMs} ms`);
    this.name = "UpstreamRateLimited";
  }
}

/** The token is refused. */
export class UpstreamUnauthorized extends NonRetryableError {
  constructor(status: number) {
    super(`the usage API refused the token (HTTP ${status}); update the source's token`, {
      code: "UPSTREAM_UNAUTHORIZED",
    });
    this.name = "UpstreamUnauthorized";
  }
}

/** A failure a later attempt may not meet: `5xx`, timeout, network. */
export class UpstreamUnavailable extends TroupeError {
  constructor(message: string, cause?: unknown) {
    super("UPSTREAM_UNAVAILABLE", message, { cause });
    this.name = "UpstreamUnavailable";
  }
}

/** An answer off the contract. */
export class UpstreamBadAnswer extends NonRetryableError {
  constructor(message: string) {
    super(message, { code: "UPSTREAM_BAD_ANSWER" });
    this.name = "UpstreamBadAnswer";
  }
}

const Id = z.union([z.number().int(), z.string().min(1).max(200)]).transform(String);
const PageBody = z.object({
  messages: z.array(z.object({
    id: Id,
    timestamp: z.string().refine((t) => !Number.isNaN(Date.parse(t)), "not an ISO 8601 time"),
    credits_used: z.union([z.number(), z.string()]),
    report_id: Id.nullable().optional(),
  })),
  next_cursor: z.string().min(1).max(4096).nullable().optional(),
});
const ReportBody = z.object({ name: z.string().max(1000) });

/** One page of messages as the sync keeps them. */
export interface UsagePage {
  messages: UsageMessage[];
  nextCursor: string | null;
}

/** Options of {@link UsageApiClient}. */
export interface UsageApiClientOptions {
  baseUrl: string;
  token: string;
  egress: EgressPolicy;
  /** Per-call time limit. @default 15000 */
  timeoutMs?: number;
  /** Called once per request sent (the sync counts calls made). */
  onCall?: () => void;
}

/** Calls one source's API; see the module doc for the errors. */
export class UsageApiClient {
  readonly #base: string;
  readonly #token: string;
  readonly #egress: EgressPolicy;
  readonly #timeoutMs: number;
  readonly #onCall: () => void;

  constructor({ baseUrl, token, egress, timeoutMs = 15_000, onCall }: UsageApiClientOptions) {
    this.#base = baseUrl.replace(/\/+$/, "");
    this.#token = token;
    this.#egress = egress;
    this.#timeoutMs = timeoutMs;
    this.#onCall = onCall ?? (() => {});
  }

  /** The page after `cursor` (from the beginning when null). */
  async page(cursor: string | null, limit: number, signal?: AbortSignal): Promise<UsagePage> {
    const url = new URL(`${this.#base}/usage`);
    if (cursor !== null) url.searchParams.set("cursor", cursor);
    url.searchParams.set("limit", String(limit));
    const body = PageBody.safeParse(await this.#get(url, signal, false));
    if (!body.success) throw new UpstreamBadAnswer("the usage page is not in the documented form");
    const messages = body.data.messages.map((m): UsageMessage => {
      let creditsCents: bigint;
      try {
        creditsCents = toCents(m.credits_used);
      } catch {
        throw new UpstreamBadAnswer(`message ${m.id}: credits_used is not a 2-place decimal`);
      }
      return {
        id: m.id,
        timestamp: new Date(m.timestamp),
        creditsCents,
        reportId: m.report_id ?? null,
      };
    });
    return { messages, nextCursor: body.data.next_cursor ?? null };
  }

  /** A report's name, or null when the API answers 404. */
  async report(id: string, signal?: AbortSignal): Promise<string | null> {
    const answer = await this.#get(
      new URL(`${this.#base}/reports/${encodeURIComponent(id)}`),
      signal,
      true,
    );
    if (answer === null) return null;
    const body = ReportBody.safeParse(answer);
    if (!body.success) throw new UpstreamBadAnswer(`report ${id} is not in the documented form`);
    return body.data.name;
  }

  async #get(url: URL, outer: AbortSignal | undefined, notFoundIsNull: boolean) {
    const signal = outer
      ? AbortSignal.any([outer, AbortSignal.timeout(this.#timeoutMs)])
      : AbortSignal.timeout(this.#timeoutMs);
    this.#onCall();
    let res: Response;
    try {
      res = await this.#egress.fetch(url, {
        headers: { authorization: `Bearer ${this.#token}`, accept: "application/json" },
        signal,
      });
    } catch (err) {
      if (outer?.aborted) throw outer.reason;
      if (err instanceof Error && err.name === "EgressError") {
        // The address is not callable (it may resolve elsewhere since it was checked).
        throw new NonRetryableError(`the source's URL is refused: ${err.message}`, {
          code: "EGRESS_REFUSED",
          cause: err,
        });
      }
      const what = signal.aborted ? `no answer within ${this.#timeoutMs} ms` : String(err);
      throw new UpstreamUnavailable(`the usage API did not answer: ${what}`, err);
    }
    try {
      if (res.status === 200) {
        try {
          return await res.json();
        } catch (err) {
          if (signal.aborted) throw new UpstreamUnavailable("the usage API answer timed out");
          throw new UpstreamBadAnswer(`the usage API answered no JSON: ${String(err)}`);
        }
      }
      if (res.status === 404 && notFoundIsNull) return null;
      if (res.status === 429) throw new UpstreamRateLimited(retryAfterMs(res.headers));
      if (res.status === 401 || res.status === 403) throw new UpstreamUnauthorized(res.status);
      if (res.status >= 500) {
        throw new UpstreamUnavailable(`the usage API answered HTTP ${res.status}`);
      }
      throw new UpstreamBadAnswer(`the usage API answered HTTP ${res.status} to ${url.pathname}`);
    } finally {
      if (!res.bodyUsed) await res.body?.cancel().catch(() => {});
    }
  }
}

/** `Retry-After` in ms: delta seconds or an HTTP date; 1 s when absent or unreadable. */
export function retryAfterMs(headers: Headers, now = Date.now()): number {
  const value = headers.get("retry-after")?.trim();
  if (!value) return 1000;
  if (/^\d+$/.test(value)) return Math.min(Number(value), 86_400) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? 1000 : Math.max(0, Math.min(at - now, 86_400_000));
}
