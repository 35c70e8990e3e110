/**
 * The console's bulk retry and cache pages.
 *
 * - Bulk retry (`/console/jobs/retry`): the jobs page's filter posts a dry run first, which lists
 *   the failed jobs a retry would replay; its Confirm posts those ids back, and only those are
 *   retried (`retryFailed` of routes/retry.ts: each failed job once, however often it is clicked).
 *   A tenant's key retries its tenant's jobs, an admin key every tenant's.
 * - Cache (`/console/cache`): hits, misses, hit ratio, keys and memory of the tenant's entries (an
 *   admin key: of all); per TTL class, the keys held (when the store counts them: the memory
 *   store) and, for an admin key, the lookups since this instance started.
 */
import type { Context, Hono } from "hono";
import type { Runtime } from "@troupe/runtime";
import { type Cache, type CacheKind, type CacheStats, TTL } from "../../db/cache/cache.ts";
import type { Principal, TenantStore } from "../../db/tenants.ts";
import { auditRetry, retryFailed, type RetryOutcome } from "../retry.ts";
import { CsrfField, ErrorPage, type Frame, Layout, page } from "./layout.tsx";

/** Jobs listed by a console dry run, and retried by its Confirm, at most. */
const CONSOLE_RETRY_LIMIT = 100;

export function RetryPage(
  p: Frame & { csrf: string; actor: string | undefined; outcome: RetryOutcome },
) {
  const { outcome } = p;
  return (
    <Layout {...p}>
      {outcome.dryRun
        ? (
          <p id="retry-count">
            {outcome.count === 0
              ? "No failed job to retry matches this filter."
              : `${outcome.count} failed job${outcome.count === 1 ? "" : "s"}${
                p.actor ? ` of ${p.actor}` : ""
              } would be retried, each once${
                outcome.count === CONSOLE_RETRY_LIMIT ? " (the oldest; confirm, then again)" : ""
              }.`}
          </p>
        )
        : <p id="retry-count" class="notice">{outcome.count} retried.</p>}
      {outcome.count > 0 && (
        <table id="retry-jobs">
          <thead>
            <tr>
              <th>Failed job</th>
              <th>Actor</th>
              <th>Dead letter</th>
              <th>{outcome.dryRun ? "" : "Retried as"}</th>
            </tr>
          </thead>
          <tbody>
            {outcome.jobs.map((j) => (
              <tr data-job={j.jobId}>
                <td>
                  <code title={j.jobId}>{j.jobId.slice(-12)}</code>
                </td>
                <td>{j.actor}</td>
                <td>
                  <code title={j.deadLetterId}>{j.deadLetterId.slice(-12)}</code>
                </td>
                <td>
                  {j.retryJobId && <code title={j.retryJobId}>{j.retryJobId.slice(-12)}</code>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {outcome.dryRun && outcome.count > 0 && (
        <form method="post" action="/console/jobs/retry" id="retry-confirm">
          <CsrfField token={p.csrf} />
          {p.actor && <input type="hidden" name="actor" value={p.actor} />}
          <input
            type="hidden"
            name="jobIds"
            value={outcome.jobs.map((j) =>
              j.jobId
            ).join(",")}
          />
          <input type="hidden" name="confirm" value="1" />
          <button type="submit" class="danger">Confirm: retry {outcome.count}</button>
        </form>
      )}
      <p>
        <a href={`/console/jobs?status=failed${p.actor ? `&actor=${p.actor}` : ""}`}>
          ← Failed jobs
        </a>
      </p>
    </Layout>
  );
}

/** The jobs page's form: a dry run of retrying the failed jobs of its actor filter. */
export function RetryForm({ csrf, actor }: { csrf: string; actor: string | undefined }) {
  return (
    <form method="post" action="/console/jobs/retry" class="filters" id="retry-form">
      <CsrfField token={csrf} />
      {actor && <input type="hidden" name="actor" value={actor} />}
      <button type="submit">
        Retry failed jobs{actor ? ` of ${actor}` : ""}…
      </button>
      <span class="muted small">a dry run lists them first</span>
    </form>
  );
}

const percent = (x: number) => `${(x * 100).toFixed(1)} %`;
const minutes = (ms: number) => ms >= 3600_000 ? `${ms / 3600_000} h` : `${ms / 60_000} min`;

/** A TTL class's row on the cache page: lookups are an admin's only, keys the store's. */
export interface KindRow {
  kind: CacheKind;
  ttlMs: number;
  keys: number | null;
  lookups: { hits: number; misses: number } | null;
}

export function CachePage(
  p: Frame & { stats: CacheStats | null; byKind: KindRow[] | null },
) {
  const s = p.stats;
  const lookups = p.byKind?.some((k) => k.lookups !== null) ?? false;
  return (
    <Layout {...p}>
      {!s ? <p class="muted">No cache is configured: every read goes to the database.</p> : (
        <>
          <table id="cache-stats">
            <tbody>
              <tr>
                <th>Scope</th>
                <td>{s.scope === "all" ? "every tenant" : "this tenant"} ({s.store} store)</td>
              </tr>
              <tr>
                <th>Hits</th>
                <td data-field="hits">{s.hits}</td>
              </tr>
              <tr>
                <th>Misses</th>
                <td data-field="misses">{s.misses}</td>
              </tr>
              <tr>
                <th>Hit ratio</th>
                <td data-field="hit-ratio">{s.hits + s.misses ? percent(s.hitRate) : "—"}</td>
              </tr>
              <tr>
                <th>Keys</th>
                <td data-field="keys">{s.keys ?? "—"}</td>
              </tr>
              <tr>
                <th>Memory</th>
                <td>{s.memoryBytes === null ? "—" : `${(s.memoryBytes / 1024).toFixed(1)} KiB`}</td>
              </tr>
              <tr>
                <th>Joined a running computation</th>
                <td>{s.coalesced}</td>
              </tr>
              <tr>
                <th>Store skipped (failing)</th>
                <td>{s.bypasses}</td>
              </tr>
              {s.errors !== null && (
                <tr>
                  <th>Store errors</th>
                  <td>{s.errors}</td>
                </tr>
              )}
              <tr>
                <th>State</th>
                <td>
                  {s.degraded ? <span class="error">degraded: the store is failing</span> : "ok"}
                </td>
              </tr>
            </tbody>
          </table>
          <p class="muted small">
            Hits and misses count the lookups this instance served since it started; keys and memory
            are the store's.
          </p>
          {p.byKind && (
            <table id="cache-kinds">
              <thead>
                <tr>
                  <th>TTL class</th>
                  <th>TTL</th>
                  <th>Keys</th>
                  {lookups && (
                    <>
                      <th>Hits</th>
                      <th>Misses</th>
                      <th>Hit ratio</th>
                    </>
                  )}
                </tr>
              </thead>
              <tbody>
                {p.byKind.map((k) => (
                  <tr data-kind={k.kind}>
                    <td>{k.kind}</td>
                    <td>{minutes(k.ttlMs)}</td>
                    <td data-field="keys">{k.keys ?? "—"}</td>
                    {k.lookups && (
                      <>
                        <td data-field="hits">{k.lookups.hits}</td>
                        <td data-field="misses">{k.lookups.misses}</td>
                        <td>
                          {k.lookups.hits + k.lookups.misses
                            ? percent(k.lookups.hits / (k.lookups.hits + k.lookups.misses))
                            : "—"}
                        </td>
                      </>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {s.keysByKind === null && (
            <p class="muted small" id="cache-kinds-note">
              {s.degraded
                ? "Keys per TTL class are unknown while the store is failing."
                : `Keys are counted per TTL class by the memory store; the ${s.store} store reports its total only (counting per class would walk its whole keyspace).`}
            </p>
          )}
        </>
      )}
    </Layout>
  );
}

export function systemPages(
  // deno-lint-ignore no-explicit-any
  app: Hono<any>,
  { runtime, tenants, cache, frame }: {
    runtime: Runtime;
    tenants: TenantStore;
    cache: Cache | undefined;
    // deno-lint-ignore no-explicit-any
    frame: (c: Context<any>, title: string, active?: string) => Frame;
  },
): void {
  const principal = (c: Context) => c.get("principal") as Principal;

  app.post("/jobs/retry", async (c) => {
    const p = principal(c);
    const form = await c.req.parseBody();
    const actor = String(form.actor ?? "").slice(0, 64) || undefined;
    if (actor && !runtime.actors.has(actor)) {
      return page(
        c,
        <ErrorPage {...frame(c, "Not found", "jobs")} message={`No actor named ${actor}.`} />,
        404,
      );
    }
    const confirm = form.confirm === "1";
    const jobIds = String(form.jobIds ?? "").split(",").map((s) => s.trim()).filter(Boolean)
      .slice(0, CONSOLE_RETRY_LIMIT);
    if (confirm && jobIds.length === 0) {
      return page(
        c,
        <ErrorPage {...frame(c, "Nothing to retry", "jobs")} message="Run the dry run first." />,
        400,
      );
    }
    const req = {
      ...(actor ? { actor } : {}),
      ...(confirm ? { jobIds } : {}),
      dryRun: !confirm,
      limit: CONSOLE_RETRY_LIMIT,
      scope: p.admin ? "all" as const : "tenant" as const,
    };
    const outcome = await retryFailed(runtime, p, req);
    await auditRetry(
      tenants,
      { tenantId: p.tenantId, apiKeyId: p.apiKeyId },
      req,
      outcome,
      "console",
    );
    return page(
      c,
      <RetryPage
        {...frame(c, confirm ? "Retried" : "Retry failed jobs: dry run", "jobs")}
        csrf={c.get("session").csrf}
        actor={actor}
        outcome={outcome}
      />,
    );
  });

  app.get("/cache", async (c) => {
    const p = principal(c);
    const stats = cache ? await cache.stats(p.admin ? undefined : p.tenantId) : null;
    // Lookups per class are counted for the whole instance: an admin's to see.
    const counts = cache && p.admin ? cache.countsByKind() : null;
    const byKind = cache && stats && (counts || stats.keysByKind)
      ? (Object.keys(TTL) as CacheKind[]).map((kind): KindRow => ({
        kind,
        ttlMs: cache.ttlOf(kind),
        keys: stats.keysByKind?.[kind] ?? null,
        lookups: counts
          ? { hits: counts.get(kind)?.hits ?? 0, misses: counts.get(kind)?.misses ?? 0 }
          : null,
      }))
      : null;
    return page(c, <CachePage {...frame(c, "Cache", "cache")} stats={stats} byKind={byKind} />);
  });
}
