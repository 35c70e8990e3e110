/**
 * The operator console at `/console`: server-rendered pages over the runtime's read API.
 * A login with an API key opens a session (routes/console/session.ts); every POST carries the
 * session's CSRF token. A tenant's key sees its tenant; an admin key sees every tenant.
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie, setCookie } from "hono/cookie";
import { TroupeError } from "@troupe/runtime";
import { errorStatus } from "@troupe/runtime/hono";
import { JOB_STATUSES, type Runtime } from "@troupe/runtime";
import type { Principal, TenantStore } from "../../db/tenants.ts";
import type { RateLimiter } from "../../db/ratelimit/port.ts";
import { getConnInfo } from "hono/deno";
import { scheduleItems } from "../schedules.ts";
import { ErrorPage, LoginPage, page } from "./layout.tsx";
import { type CourseSearchDeps, dataPages } from "./data.tsx";
import { operationPages } from "./operations.tsx";
import { type ActorRow, ActorsPage, DeadLettersPage, JobsPage, SchedulesPage } from "./pages.tsx";
import {
  cookieOptions,
  LOGIN_COOKIE,
  randomToken,
  sameToken,
  type Session,
  type SessionOptions,
  SessionStore,
} from "./session.ts";
import { staticAsset } from "./static.ts";
import { systemPages } from "./system.tsx";
import type { Cache } from "../../db/cache/cache.ts";
import { jobEvents } from "./events.ts";

export interface ConsoleOptions {
  runtime: Runtime;
  tenants: TenantStore;
  sessions?: SessionOptions;
  /** Counts failed logins per client address, in the API's per-IP budget. */
  limiter?: RateLimiter;
  /** The API's per-IP limit (requests a minute). @default 100 */
  perIpPerMinute?: number;
  /** Take the client address from `X-Forwarded-For`. @default false */
  trustProxy?: boolean;
  /** Present (any value) when the dataset workload runs: its pages are shown then. */
  datasets?: unknown;
  /**
   * Present when the course workload runs: the course API's vector store and embedder, which
   * the course page's search uses.
   */
  courses?: CourseSearchDeps;
  /** The query cache, for the cache page. */
  cache?: Cache;
}

type Env = { Variables: { session: Session; principal: Principal } };

const NOTICES: Record<string, string> = {
  cancelled: "Cancellation requested.",
  replayed: "Dead letter replayed as a new job.",
  paused: "Actor paused: its jobs wait until it is resumed.",
  resumed: "Actor resumed.",
  "schedule-paused": "Schedule paused: its slots make no job until it is resumed.",
  "schedule-resumed": "Schedule resumed.",
};

/** The client's address as routes/app.ts `clientIp` reads it (not imported: no import cycle). */
function addressOf(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const hop = c.req.header("x-forwarded-for")?.split(",")[0]?.trim();
    if (hop) return hop.slice(0, 64);
  }
  // `app.request()` in tests has no connection.
  if (!c.env?.remoteAddr) return "unknown";
  return getConnInfo(c).remote.address ?? "unknown";
}

/** The jobs one principal sees: its tenant's, or every tenant's for an admin key. */
export const scopeOf = (p: Principal): string | undefined => p.admin ? undefined : p.tenantId;
const tenantFilter = (p: Principal) => p.admin ? {} : { tenantId: p.tenantId };

export function consoleRoutes(
  { runtime, tenants, sessions: options, ...workloads }: ConsoleOptions,
): Hono {
  const sessions = new SessionStore(tenants, options);
  const datasets = Boolean(workloads.datasets);
  const courses = Boolean(workloads.courses);
  const perIp = { name: "ip", limit: workloads.perIpPerMinute ?? 100, windowMs: 60_000 };
  const app = new Hono<Env>();
  app.use("*", bodyLimit({ maxSize: 16 * 1024 }));

  app.get("/static/:file", (c) => staticAsset(c, c.req.param("file")));
  app.get("/", (c) => c.redirect("/console/jobs", 303));

  app.get("/login", (c) => {
    const token = randomToken();
    setCookie(c, LOGIN_COOKIE, token, cookieOptions(c, 3600));
    return page(c, <LoginPage token={token} />);
  });

  app.post("/login", async (c) => {
    const form = await c.req.parseBody();
    const token = randomToken();
    const retry = (error: string, status: number) => {
      setCookie(c, LOGIN_COOKIE, token, cookieOptions(c, 3600));
      return page(c, <LoginPage token={token} error={error} />, status);
    };
    // A login form posted from elsewhere has no matching cookie (login CSRF).
    if (!sameToken(getCookie(c, LOGIN_COOKIE), String(form._csrf ?? ""))) {
      return retry("The form expired: log in again.", 403);
    }
    const key = String(form.key ?? "").trim();
    const principal = key ? await tenants.authenticate(key) : null;
    if (!principal) {
      // A wrong key counts against its address, as on the API: it slows key guessing.
      if (workloads.limiter) {
        const ip = addressOf(c, workloads.trustProxy ?? false);
        const d = await workloads.limiter.limit(perIp, ip);
        if (!d.allowed) {
          const seconds = Math.max(1, Math.ceil((d.resetAt - Date.now()) / 1000));
          c.header("Retry-After", String(seconds));
          return retry(`Too many failed logins: try again in ${seconds} s.`, 429);
        }
      }
      return retry("That API key is unknown or revoked.", 401);
    }
    await sessions.start(c, principal);
    return c.redirect("/console/jobs", 303);
  });

  // Everything below needs a session.
  app.use("*", async (c, next) => {
    const live = await sessions.resume(c);
    if (!live) {
      if (c.req.method === "GET") return c.redirect("/console/login", 303);
      return page(c, <ErrorPage title="Not logged in" message="Log in again." />, 401);
    }
    c.set("session", live.session);
    c.set("principal", live.principal);
    if (c.req.method === "POST") {
      const form = await c.req.parseBody();
      if (!sameToken(live.session.csrf, String(form._csrf ?? ""))) {
        return page(
          c,
          <ErrorPage
            {...frame(c, "Forbidden")}
            message="The form's CSRF token is missing or wrong."
          />,
          403,
        );
      }
      if (live.principal.scope === "read" && c.req.path !== "/console/logout") {
        return page(
          c,
          <ErrorPage {...frame(c, "Forbidden")} message="This key may only read." />,
          403,
        );
      }
    }
    await next();
  });

  // The runtime's refusals (a finished job, another tenant's id) as pages; the rest to the app.
  app.onError((err, c) => {
    if (!(err instanceof TroupeError)) throw err;
    const title = errorStatus(err) === 404 ? "Not found" : "Refused";
    const props = c.get("session") ? frame(c, title) : { title };
    return page(c, <ErrorPage {...props} message={err.message} />, errorStatus(err));
  });

  const frame = (c: Context<Env>, title: string, active?: string) => ({
    title,
    principal: c.get("principal"),
    csrf: c.get("session").csrf,
    ...(active ? { active } : {}),
    notice: NOTICES[c.req.query("notice") ?? ""],
    datasets,
    courses,
  });

  app.post("/logout", async (c) => {
    await sessions.end(c, c.get("session"));
    return c.redirect("/console/login", 303);
  });

  app.get("/jobs", async (c) => {
    const p = c.get("principal");
    const status = JOB_STATUSES.find((s) => s === c.req.query("status"));
    const actor = c.req.query("actor") || undefined;
    const cursor = c.req.query("cursor") || undefined;
    const list = await runtime.listJobs({
      limit: 50,
      ...tenantFilter(p),
      ...(status ? { status } : {}),
      ...(actor ? { actor: actor.slice(0, 64) } : {}),
      ...(cursor ? { cursor: cursor.slice(0, 200) } : {}),
    });
    return page(
      c,
      <JobsPage
        {...frame(c, "Jobs", "jobs")}
        jobs={list.items}
        actors={[...runtime.actors.keys()].sort()}
        filter={{ status, actor }}
        nextCursor={list.nextCursor}
        canWrite={p.scope === "full"}
        csrf={c.get("session").csrf}
      />,
    );
  });

  app.post("/jobs/:id/cancel", async (c) => {
    const p = c.get("principal");
    const job = await runtime.cancel(c.req.param("id"), scopeOf(p));
    await tenants.audit({
      tenantId: p.tenantId,
      apiKeyId: p.apiKeyId,
      action: "job.cancel",
      targetType: "job",
      targetId: job.id,
      details: { actor: job.actor, status: job.status, via: "console" },
    });
    const form = await c.req.parseBody();
    const back = String(form.back ?? "");
    const to = back.startsWith("/console/jobs") ? back : "/console/jobs";
    return c.redirect(`${to}${to.includes("?") ? "&" : "?"}notice=cancelled`, 303);
  });

  app.get("/events", (c) => jobEvents(c, runtime, scopeOf(c.get("principal"))));

  app.get("/dead-letters", async (c) => {
    const p = c.get("principal");
    const cursor = c.req.query("cursor") || undefined;
    const list = await runtime.listDeadLetters({
      limit: 50,
      ...tenantFilter(p),
      ...(cursor ? { cursor: cursor.slice(0, 200) } : {}),
    });
    return page(
      c,
      <DeadLettersPage
        {...frame(c, "Dead letters", "dead-letters")}
        items={list.items}
        nextCursor={list.nextCursor}
        canWrite={p.scope === "full"}
        csrf={c.get("session").csrf}
      />,
    );
  });

  app.post("/dead-letters/:id/replay", async (c) => {
    const p = c.get("principal");
    const id = c.req.param("id");
    const job = await runtime.replay(id, scopeOf(p));
    await tenants.audit({
      tenantId: p.tenantId,
      apiKeyId: p.apiKeyId,
      action: "dead_letter.replay",
      targetType: "dead_letter",
      targetId: id,
      details: { jobId: job.id, actor: job.actor, via: "console" },
    });
    return c.redirect("/console/dead-letters?notice=replayed", 303);
  });

  app.get("/actors", async (c) => {
    const p = c.get("principal");
    const rows = await actorRows(runtime, p);
    return page(
      c,
      <ActorsPage
        {...frame(c, "Actors", "actors")}
        {...rows}
        canPause={p.admin && p.scope === "full"}
      />,
    );
  });

  app.get("/schedules", async (c) => {
    const p = c.get("principal");
    const items = p.admin ? await scheduleItems(runtime) : null;
    return page(
      c,
      <SchedulesPage
        {...frame(c, "Schedules", "schedules")}
        items={items}
        canPause={p.admin && p.scope === "full"}
        csrf={c.get("session").csrf}
      />,
    );
  });

  dataPages(app, { runtime, datasets, courses: workloads.courses, frame });
  operationPages(app, { runtime, tenants, frame });
  systemPages(app, { runtime, tenants, cache: workloads.cache, frame });

  return app as unknown as Hono;
}

const emptyRow = (actor: string): ActorRow => ({
  actor,
  queued: 0,
  running: 0,
  oldestSeconds: null,
  schedule: null,
  pausedAt: null,
  succeeded: 0,
  failed: 0,
  successRate: null,
  p50Ms: null,
  p99Ms: null,
});

/**
 * Queued and running jobs per actor, the last hour's outcomes and durations, pauses: an admin sees the whole queue (with the oldest due wait);
 * a tenant counts its own jobs.
 */
async function actorRows(runtime: Runtime, p: Principal) {
  const scope = scopeOf(p);
  const counts = await runtime.db.query<{ actor: string; status: string; n: number }>(
    `SELECT actor, status, count(*)::int AS n FROM troupe_jobs
     WHERE status IN ('queued', 'running') ${scope !== undefined ? "AND tenant_id = $1" : ""}
     GROUP BY actor, status`,
    scope !== undefined ? [scope] : [],
  );
  const depths = scope === undefined ? await runtime.queueDepths() : null;
  const [stats, paused] = await Promise.all([
    runtime.actorStats(scope === undefined ? {} : { tenantId: scope }),
    runtime.paused(),
  ]);
  const rows = new Map<string, ActorRow>();
  for (const def of runtime.actors.values()) {
    rows.set(def.name, { ...emptyRow(def.name), schedule: def.schedule?.cron ?? null });
  }
  const row = (actor: string) => {
    let r = rows.get(actor);
    if (!r) {
      r = emptyRow(actor);
      rows.set(actor, r);
    }
    return r;
  };
  for (const c of counts) {
    if (c.status === "queued") row(c.actor).queued = c.n;
    else row(c.actor).running = c.n;
  }
  for (const d of depths?.actors ?? []) row(d.actor).oldestSeconds = d.oldestSeconds;
  for (const s of stats.actors) {
    Object.assign(row(s.actor), {
      succeeded: s.succeeded,
      failed: s.failed,
      successRate: s.successRate,
      p50Ms: s.p50Ms,
      p99Ms: s.p99Ms,
    });
  }
  for (const x of paused) row(x.actor).pausedAt = x.pausedAt;
  return {
    rows: [...rows.values()].sort((a, b) => a.actor.localeCompare(b.actor)),
    capped: depths?.capped ?? false,
    sampled: stats.sampled,
  };
}
