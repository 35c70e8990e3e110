/**
 * The sync of one report source: a pipeline (its parent job is the sync's id and `jobId`) of
 * `usage.sync_page` messages, one page each, keyed by the source so one runs at a time.
 *
 * Invariants:
 * - A page's snapshots, aggregates, report names, counters and the source's cursor commit in
 *   the message's transaction (`ctx.effect`): a crash, a redelivery or a 5xx resumes at the
 *   page it stopped on, and a message is never counted twice.
 * - The last page leaves the cursor at its own request cursor: the next sync re-reads that page
 *   (deduplicated) and continues, never from the beginning.
 * - At most one running sync per source: starting one locks the source row.
 * - A `429` is `RetryLaterError` at its `Retry-After` (no attempt used, nothing sent before
 *   it); so is the source's own requests-per-minute, counted across instances by the limiter.
 * - `5xx` and timeouts retry with backoff; a `401` fails the sync at once.
 */
import { zoneForWrite } from "./zone.ts";
import { z } from "zod";
import {
  type AnyActor,
  type BackoffPolicy,
  defineActor,
  NonRetryableError,
  NotFoundError,
  RetryLaterError,
  type Runtime,
  type SqlDatabase,
} from "@troupe/runtime";
import type { Cache } from "../../db/cache/cache.ts";
import { SecretError } from "../../db/secrets.ts";
import type { RateLimiter } from "../../db/ratelimit/port.ts";
import { UpstreamRateLimited, UpstreamUnauthorized, UsageApiClient } from "./client.ts";
import { keepReports, resolveReports } from "./reports.ts";
import type { SourceStore } from "./sources.ts";
import type { Callbacks } from "../system/callback.ts";
import { recordUsage } from "./store.ts";

/** What the usage actors need. */
export interface UsageDeps {
  db: SqlDatabase;
  sources: SourceStore;
  limiter: RateLimiter;
  cache?: Cache;
  /** The runtime the actors run in (set once it is built). */
  runtime: () => Runtime;
  /** Per-call time limit, ms. @default 15000 */
  callTimeoutMs?: number;
  /** Retries of a page after a 5xx or a timeout. @default 6 */
  retries?: number;
  backoff?: Partial<BackoffPolicy>;
  /** Completion callbacks: a source's `callbackUrl` is called back when a sync ends. */
  callbacks?: Callbacks;
}

export type SyncTrigger = "manual" | "schedule" | "catch-up";

const PageInput = z.object({ tenantId: z.string(), sourceId: z.string() });
const EndInput = PageInput.extend({
  pipeline: z.object({ id: z.string(), status: z.string(), error: z.unknown() }),
});

export const sourceKey = (sourceId: string) => `usage-source:${sourceId}`;

/** The sync history row as the API shows it. */
export interface SyncView {
  id: string;
  jobId: string;
  sourceId: string;
  trigger: SyncTrigger;
  scheduledFor: string | null;
  status: "running" | "succeeded" | "failed" | "cancelled";
  pages: number;
  messages: { new: number; seen: number; changed: number };
  reports: { fetched: number; cached: number; missing: number };
  calls: number;
  errors: number;
  rateLimited: number;
  error: unknown;
  startedAt: string;
  finishedAt: string | null;
}

// deno-lint-ignore no-explicit-any
function syncView(r: any): SyncView {
  const iso = (v: unknown) => v === null ? null : new Date(v as string).toISOString();
  return {
    id: r.id,
    jobId: r.id,
    sourceId: r.source_id,
    trigger: r.trigger,
    scheduledFor: iso(r.scheduled_for),
    status: r.status,
    pages: r.pages,
    messages: { new: r.messages_new, seen: r.messages_seen, changed: r.messages_changed },
    reports: { fetched: r.reports_fetched, cached: r.reports_cached, missing: r.reports_missing },
    calls: r.calls,
    errors: r.errors,
    rateLimited: r.rate_limited,
    error: r.error ?? null,
    startedAt: iso(r.started_at)!,
    finishedAt: iso(r.finished_at),
  };
}

/** A source's syncs, newest first. */
export async function listSyncs(
  db: SqlDatabase,
  tenantId: string,
  sourceId: string,
  limit = 50,
): Promise<SyncView[]> {
  const rows = await db.query(
    `SELECT * FROM troupe_usage_syncs WHERE tenant_id = $1 AND source_id = $2
      ORDER BY started_at DESC, id DESC LIMIT $3`,
    [tenantId, sourceId, limit],
  );
  return rows.map(syncView);
}

/** A sync runs already: its id. */
class AlreadyRunning extends Error {
  constructor(readonly syncId: string) {
    super("a sync of this source is running");
  }
}

/** A scheduled slot another instance took (or the schedule moved). */
export class SlotTaken extends Error {}

/** Which slot a scheduled start claims, and the one after it. */
export interface SlotClaim {
  slot: Date;
  next: Date;
}

/**
 * Starts a sync of the source, or returns the one running (`created: false`). With `claim`
 * (the tick), the source's `next_run_at` must still be `claim.slot`; it moves to `claim.next`
 * in the same transaction, so a slot starts one sync across instances.
 */
export async function startSync(
  deps: UsageDeps,
  p: {
    tenantId: string;
    sourceId: string;
    trigger: SyncTrigger;
    claim?: SlotClaim;
    /** A URL (accepted already) to call back when the sync ends. */
    callbackUrl?: string | null;
  },
): Promise<{ jobId: string; created: boolean }> {
  const input = { tenantId: p.tenantId, sourceId: p.sourceId };
  try {
    const { job, created } = await deps.runtime().startPipeline("usage.sync", {
      actor: "usage.sync_page",
      input,
    }, {
      tenantId: p.tenantId,
      ...(p.claim
        ? { idempotencyKey: `usage-schedule:${p.sourceId}:${p.claim.slot.toISOString()}` }
        : {}),
      onAbort: { actor: "usage.sync_end", input },
      ...(p.callbackUrl && deps.callbacks
        ? {
          onEnd: deps.callbacks.onEnd(p.tenantId, p.callbackUrl, {
            type: "source",
            id: p.sourceId,
          }),
        }
        : {}),
      effect: async (tx, { pipelineId }) => {
        const [s] = await tx.query<
          { current_sync_id: string | null; cursor: string | null; next_run_at: Date | null }
        >(
          `SELECT current_sync_id, cursor, next_run_at FROM troupe_usage_sources
            WHERE id = $1 AND tenant_id = $2 FOR UPDATE`,
          [p.sourceId, p.tenantId],
        );
        if (!s) throw new NotFoundError("source", p.sourceId);
        if (
          p.claim &&
          (s.next_run_at === null || new Date(s.next_run_at).getTime() !== p.claim.slot.getTime())
        ) throw new SlotTaken();
        if (s.current_sync_id) {
          // A sync whose pipeline ended (or was purged) without its end recorded is over.
          const [running] = await tx.query<{ live: boolean }>(
            `SELECT j.status IS NOT NULL AND j.status IN ('queued', 'running') AS live
               FROM troupe_usage_syncs s LEFT JOIN troupe_jobs j ON j.id = s.id
              WHERE s.id = $1 AND s.status = 'running'`,
            [s.current_sync_id],
          );
          if (running?.live) throw new AlreadyRunning(s.current_sync_id);
          if (running) {
            await endSync(tx, s.current_sync_id, p.sourceId, "failed", {
              code: "SYNC_ABANDONED",
              message: "the sync's job ended without finishing the sync",
            });
          }
        }
        await tx.query(
          `INSERT INTO troupe_usage_syncs (id, tenant_id, source_id, trigger, scheduled_for,
             status, start_cursor, cursor)
           VALUES ($1, $2, $3, $4, $5, 'running', $6, $6)`,
          [
            pipelineId,
            p.tenantId,
            p.sourceId,
            p.trigger,
            p.claim?.slot.toISOString() ?? null,
            s.cursor,
          ],
        );
        await tx.query(
          `UPDATE troupe_usage_sources SET current_sync_id = $2,
             next_run_at = coalesce($3, next_run_at) WHERE id = $1`,
          [p.sourceId, pipelineId, p.claim?.next.toISOString() ?? null],
        );
      },
    });
    return { jobId: job.id, created };
  } catch (err) {
    if (err instanceof AlreadyRunning) return { jobId: err.syncId, created: false };
    throw err;
  }
}

/** Counters of calls that did not end in a committed page (kept even though it failed). */
async function countFailure(
  db: SqlDatabase,
  syncId: string,
  f: { calls: number; errors: number; rateLimited: number },
): Promise<void> {
  await db.query(
    `UPDATE troupe_usage_syncs SET calls = calls + $2, errors = errors + $3,
       rate_limited = rate_limited + $4 WHERE id = $1`,
    [syncId, f.calls, f.errors, f.rateLimited],
  );
}

/** The actors of a sync: one page, and the end of a sync the runtime ended. */
export function syncActors(deps: UsageDeps): AnyActor[] {
  const page = defineActor({
    name: "usage.sync_page",
    input: PageInput,
    key: (i) => sourceKey(i.sourceId),
    exposed: false,
    retries: deps.retries ?? 6,
    backoff: { baseMs: 1000, maxMs: 60_000, ...deps.backoff },
    timeoutMs: 10 * (deps.callTimeoutMs ?? 15_000),
    concurrency: 64,
    handler: async ({ tenantId, sourceId }, ctx) => {
      const syncId = ctx.pipeline.id;
      if (!syncId) throw new NonRetryableError("usage.sync_page runs inside a sync pipeline");
      const [sync] = await deps.db.query<{ status: string; pages: number }>(
        "SELECT status, pages FROM troupe_usage_syncs WHERE id = $1",
        [syncId],
      );
      if (sync?.status !== "running") return { skipped: true };
      const source = await deps.sources.forSync(tenantId, sourceId).catch((err) => {
        // A source deleted, or a token sealed with a key no longer configured: retrying is vain.
        if (err instanceof NotFoundError || err instanceof SecretError) {
          throw new NonRetryableError(err.message, { code: "SOURCE_UNUSABLE", cause: err });
        }
        throw err;
      });
      let calls = 0;
      const rule = { name: "usage-source", limit: source.requestsPerMinute, windowMs: 60_000 };
      const gate = async () => {
        const d = await deps.limiter.limit(rule, sourceId);
        if (!d.allowed) {
          throw new RetryLaterError(
            new Date(d.resetAt),
            "the source's requests-per-minute is used up",
          );
        }
      };
      const client = new UsageApiClient({
        baseUrl: source.baseUrl,
        token: source.token,
        egress: deps.sources.egress,
        timeoutMs: deps.callTimeoutMs ?? 15_000,
        onCall: () => calls++,
      });
      try {
        await gate();
        const got = await client.page(source.cursor, source.pageSize, ctx.signal);
        const reports = await resolveReports({
          db: deps.db,
          cache: deps.cache,
          tenantId,
          sourceId,
          ids: got.messages.flatMap((m) => m.reportId === null ? [] : [m.reportId]),
          concurrency: source.concurrency,
          fetch: async (id) => {
            await gate();
            return await client.report(id, ctx.signal);
          },
        });
        const stuck = got.nextCursor === source.cursor && got.messages.length === 0;
        const last = got.nextCursor === null || stuck;
        ctx.effect(async (tx) => {
          const rec = await recordUsage(tx, {
            tenantId,
            sourceId,
            // Read again under a share lock: a zone change waits for this page, or this page
            // for it, so no page is written in the old zone after the aggregates were rebuilt.
            timeZone: await zoneForWrite(tx, tenantId),
            messages: got.messages,
            reportNames: reports.names,
          });
          await keepReports(tx, tenantId, sourceId, reports.fetched);
          const cursor = last ? source.cursor : got.nextCursor;
          await tx.query(
            `UPDATE troupe_usage_sources SET cursor = $2,
               current_sync_id = CASE WHEN $3 THEN NULL ELSE current_sync_id END
             WHERE id = $1`,
            [sourceId, cursor, last],
          );
          await tx.query(
            `UPDATE troupe_usage_syncs SET pages = pages + 1, cursor = $2,
               messages_new = messages_new + $3, messages_seen = messages_seen + $4,
               messages_changed = messages_changed + $5, reports_fetched = reports_fetched + $6,
               reports_cached = reports_cached + $7, reports_missing = reports_missing + $8,
               calls = calls + $9,
               status = CASE WHEN $10 THEN 'succeeded' ELSE status END,
               finished_at = CASE WHEN $10 THEN now() ELSE finished_at END
             WHERE id = $1`,
            [
              syncId,
              cursor,
              rec.inserted,
              rec.unchanged,
              rec.changed,
              reports.fetched.size,
              reports.cached,
              reports.missing,
              calls,
              last,
            ],
          );
        });
        ctx.pipeline.progress(sync.pages + 1, null, "pages");
        if (last) ctx.pipeline.complete({ syncId });
        else ctx.send("usage.sync_page", { tenantId, sourceId }, { tenantId });
        return { messages: got.messages.length, last };
      } catch (err) {
        const limited = err instanceof UpstreamRateLimited;
        const own = err instanceof RetryLaterError;
        await countFailure(deps.db, syncId, {
          calls,
          errors: limited || own ? 0 : 1,
          rateLimited: limited ? 1 : 0,
        });
        if (limited) {
          throw new RetryLaterError(err.retryAfterMs, "the usage API answered 429", err);
        }
        if (err instanceof UpstreamUnauthorized) {
          const error = { code: err.code, message: err.message };
          ctx.effect(async (tx) => await endSync(tx, syncId, sourceId, "failed", error));
          ctx.pipeline.fail(error);
          return { failed: error.code };
        }
        throw err;
      }
    },
  });
  const end = defineActor({
    name: "usage.sync_end",
    input: EndInput,
    key: (i) => sourceKey(i.sourceId),
    exposed: false,
    handler: ({ sourceId, pipeline }, ctx) => {
      const status = pipeline.status === "cancelled" ? "cancelled" : "failed";
      ctx.effect(async (tx) => await endSync(tx, pipeline.id, sourceId, status, pipeline.error));
    },
  });
  return [page, end];
}

async function endSync(
  tx: Pick<SqlDatabase, "query">,
  syncId: string,
  sourceId: string,
  status: "failed" | "cancelled",
  error: unknown,
): Promise<void> {
  await tx.query(
    `UPDATE troupe_usage_syncs SET status = $2, error = $3::jsonb, finished_at = now()
      WHERE id = $1 AND status = 'running'`,
    [syncId, status, JSON.stringify(error ?? null)],
  );
  await tx.query(
    "UPDATE troupe_usage_sources SET current_sync_id = NULL WHERE id = $1 AND current_sync_id = $2",
    [sourceId, syncId],
  );
}
