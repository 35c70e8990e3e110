/**
 * The HTTP application: `/api/*` routes over a `Runtime`. Tested without a server through
 * `app.request()`.
 *
 * Order of the middleware on `/api/*`: request id, CORS, body limit, API key (a request without a
 * valid one counts against its IP's rate limit before its 401; a read-only key's write is a
 * 403), the key's rate limit (its tenant's), then the routes. `GET /api/health` is public and not limited.
 * QStash webhooks (`/actors/*`, `/schedules/*`) sit outside `/api`: signed, not keyed.
 * With tracing on, every request is a server span first (routes/telemetry.ts); with metrics on,
 * every request is timed next, by route template; `GET /metrics` sits outside
 * `/api`, behind its own bearer token (routes/metrics.ts).
 *
 * Health, the jobs and the bulk retry are mounted at once; every other group (datasets, courses,
 * usage, sources, keys, ..., the docs, the console, the QStash webhooks) loads on its first
 * request (routes/lazy.ts), so an instance woken by a keyed request evaluates only what that
 * request needs; the OpenAPI document loads them all (`deno task deploy:check` keeps them off
 * `main.ts`'s static imports).
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { getConnInfo } from "hono/deno";
import { jsonLogger, type Logger, type Runtime } from "@troupe/runtime";
import type { RateLimiter, RateRule } from "../db/ratelimit/port.ts";
import type { TenantStore } from "../db/tenants.ts";
import { authenticate, isSafeMethod } from "./auth.ts";
import type { Cache } from "../db/cache/cache.ts";
import { corsFor } from "./cors.ts";
import type { CourseRoutesOptions } from "./courses.ts";
import type { DatasetRoutesOptions } from "./datasets.ts";
import type { AppEnv } from "./env.ts";
import { errorResponse, onError } from "./errors.ts";
import { type HealthOptions, healthRoutes } from "./health.ts";
import { jobRoutes } from "./jobs.ts";
import type { Callbacks } from "../actors/system/callback.ts";
import { retryRoutes } from "./retry.ts";
import type { StatementRoutesOptions } from "./statements.ts";
import type { UsageDeps } from "../actors/usage/sync.ts";
import { httpMetrics, type MetricsOptions, metricsRoutes } from "./metrics.ts";
import { limitByKey, type LimitOptions, limitUnauthenticated } from "./limits.ts";
import type { WebhookOptions } from "./qstash.ts";
import { requestId } from "./request_id.ts";
import { type LazyRoutes, lazyRoutes, type RouteEntry } from "./lazy.ts";
import { ALIASES_DEPRECATED_AT, API_V1, deprecatedAlias } from "./aliases.ts";
export { ALIASES_DEPRECATED_AT, API_V1 };
import { TROUPE_VERSION } from "./version.ts";
import { declaredSize, guardUpload, type UploadLimits } from "./upload.ts";

export interface AppOptions {
  runtime: Runtime;
  tenants: TenantStore;
  logger?: Logger;
  /** Largest JSON body accepted, in bytes. @default 1 MiB */
  maxBodyBytes?: number;
  /** Server spans by route template (routes/telemetry.ts), when tracing is on. @default false */
  tracing?: boolean;
  /** Counts requests against the rate limits (main.ts picks it: memory, or Redis). */
  limiter: RateLimiter;
  /** Requests per minute per client IP, of requests without a valid API key. @default 100 */
  perIpPerMinute?: number;
  /** Requests per minute per API key, unless its tenant has its own limit. @default 1000 */
  perKeyPerMinute?: number;
  /** Take the client IP from `X-Forwarded-For` (only behind a proxy you run). @default false */
  trustProxy?: boolean;
  /** Browser origins allowed to call the API (`*` for any). @default none */
  corsOrigins?: readonly string[];
  /**
   * QStash webhooks (production transport); absent when the table queue runs. Deliveries wait
   * for `ready` (the runtime's start). @default ready at once
   */
  webhooks?: Omit<WebhookOptions, "runtime"> & { ready?: Promise<unknown> };
  /** Cache-aside for query results; also behind `/api/cache/*` and the health check. */
  cache?: Cache;
  /** The course workload's routes; absent when its actors are not running. */
  courses?: Omit<CourseRoutesOptions, "runtime" | "tenants" | "callbacks">;
  /** The dataset workload's routes; absent when its actors are not running. */
  datasets?: Omit<DatasetRoutesOptions, "runtime" | "tenants" | "callbacks">;
  /** Monthly usage statements; absent when the `usage.statement` actor is not running. */
  statements?: Omit<StatementRoutesOptions, "runtime">;
  /** What the health check writes to tell a full disk from a working one. @default nothing */
  health?: HealthOptions;
  /** The embedded data directory, for `GET /api/admin/backup`; absent on an external database. */
  dataDir?: string;
  /** Upload clients' pace and form limits, for the routes not given their own. */
  uploads?: UploadLimits;
  /** Every request timed by route template; `GET /metrics` when `route` is given. @default off */
  metrics?: MetricsOptions;
  /** Report sources and syncs; absent when the usage actors are not running. */
  usage?: UsageDeps;
  /**
   * Completion callbacks (`callbackUrl`) and their signing key; absent when the
   * `system.callback` actor is not running (a `callbackUrl` is then 409 CALLBACKS_UNAVAILABLE).
   */
  callbacks?: Callbacks;
}

/** `/api/v1/x` as `/api/x`, for the checks that name paths. */
const unversioned = (path: string) =>
  path.startsWith(`${API_V1}/`) ? `/api${path.slice(API_V1.length)}` : path;

/** Upload routes stream their bodies with their own size limits. */
const UPLOADS = new Set(["/api/datasets", "/api/courses"]);

export type { AppEnv } from "./env.ts";

const PUBLIC = new Set(["/api/health", "/api/docs", "/api/openapi.json"]);
const isPublic = (path: string) => {
  const p = unversioned(path);
  return PUBLIC.has(p) || p.startsWith("/api/docs/");
};

/** POST routes that only read: a question to a course. */
const READ_POSTS = /^\/api\/courses\/[^/]+\/ask$/;
const isRead = (c: Context<AppEnv>) =>
  isSafeMethod(c) || (c.req.method === "POST" && READ_POSTS.test(unversioned(c.req.path)));

/** The client's address: the connection's, or the first `X-Forwarded-For` hop when trusted. */
export function clientIp(trustProxy: boolean): (c: Context<AppEnv>) => string {
  return (c) => {
    if (trustProxy) {
      const hop = c.req.header("x-forwarded-for")?.split(",")[0]?.trim();
      if (hop) return hop.slice(0, 64);
    }
    // `app.request()` in tests has no connection.
    if (!c.env?.remoteAddr) return "unknown";
    return getConnInfo(c).remote.address ?? "unknown";
  };
}

/**
 * The OpenAPI 3.1 document of the API's route groups (`createApp`'s, in their order), every
 * lazy one loaded, mounted at `/api/v1` as the app mounts them.
 */
async function fullDocument(
  groups: readonly (OpenAPIHono<AppEnv> | { lazy: LazyRoutes })[],
): Promise<unknown> {
  const api = new OpenAPIHono<AppEnv>();
  for (const group of groups) {
    api.route("/", "lazy" in group ? await group.lazy.load() : group);
  }
  return openApiDocument(new OpenAPIHono<AppEnv>().route(API_V1, api));
}

/** The OpenAPI 3.1 document of every route `app` declared. */
export function openApiDocument(app: OpenAPIHono<AppEnv>) {
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", {
    type: "apiKey",
    in: "header",
    name: "X-API-Key",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });
  return app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "Troupe API",
      version: TROUPE_VERSION,
      description: "Send `X-API-Key: <key>` (or `Authorization: Bearer <key>`) on every call but " +
        "health and the docs. Errors are `{ error: { code, message, details? } }`.",
    },
    security: [{ apiKey: [] }, { bearer: [] }],
  });
}

/** The lazy route groups of each app {@link createApp} made. */
const LAZY = new WeakMap<Hono<AppEnv>, readonly LazyRoutes[]>();

/**
 * Every route `app` (made by {@link createApp}) serves, the lazy groups' loaded: their routes
 * in place of the handlers that load them.
 */
export async function servedRoutes(app: Hono<AppEnv>): Promise<RouteEntry[]> {
  const lazy = LAZY.get(app) ?? [];
  const loaders = new Set<unknown>(lazy.map((g) => g.handler));
  return [
    ...app.routes.filter((r) => !loaders.has(r.handler)).map(({ method, path }) => ({
      method,
      path,
    })),
    ...(await Promise.all(lazy.map((g) => g.routes()))).flat(),
  ];
}

export function createApp(options: AppOptions) {
  const { runtime, tenants, logger = jsonLogger("info"), maxBodyBytes = 1 << 20 } = options;
  const minute = 60_000;
  const perIp: RateRule = { name: "ip", limit: options.perIpPerMinute ?? 100, windowMs: minute };
  const perKey: RateRule = {
    name: "key",
    limit: options.perKeyPerMinute ?? 1000,
    windowMs: minute,
  };
  const ipOf = clientIp(options.trustProxy ?? false);
  const limits: LimitOptions = {
    limiter: options.limiter,
    perIp,
    perKey,
    isExempt: isPublic,
    clientIp: ipOf,
  };

  const app = new OpenAPIHono<AppEnv>();
  if (options.tracing) {
    let tracing: MiddlewareHandler | null = null;
    app.use("*", async function traced(c, next) {
      tracing ??= (await import("./telemetry.ts")).httpTracing();
      return await tracing(c, next);
    });
  }
  if (options.metrics) app.use("*", httpMetrics(options.metrics.sink));
  app.use("*", requestId());
  app.use("/api/*", corsFor(options.corsOrigins ?? []));
  app.use("/api/*", async function rememberClientIp(c, next) {
    c.set("clientIp", ipOf(c));
    await next();
  });
  const jsonLimit = bodyLimit({
    maxSize: maxBodyBytes,
    onError: (c) =>
      errorResponse(c, 413, "PAYLOAD_TOO_LARGE", `the body is larger than ${maxBodyBytes} bytes`, {
        limitBytes: maxBodyBytes,
      }),
  });
  app.use("/api/*", async function limitBodies(c, next) {
    if (c.req.method === "POST" && UPLOADS.has(unversioned(c.req.path))) return await next();
    const body = c.req.raw.body;
    if (body) {
      // A body that trickles in holds its connection as a slow upload does: the same pace rules.
      const size = declaredSize(c.req.header("content-length"), maxBodyBytes);
      c.req.raw = new Request(c.req.raw, {
        body: guardUpload(body, options.uploads, size),
        duplex: "half",
      } as RequestInit);
    }
    return await jsonLimit(c, next);
  });
  app.use(
    "/api/*",
    authenticate(tenants, { isPublic, isRead, onRefused: limitUnauthenticated(limits) }),
  );
  app.use("/api/*", limitByKey(limits));
  // Every route once, mounted at /api/v1 (documented) and at /api (deprecated aliases); the
  // groups a keyed request to the jobs needs not are loaded on their first request
  // (routes/lazy.ts), all of them for the OpenAPI document.
  const handleError = onError(logger);
  const api = new OpenAPIHono<AppEnv>();
  const groups: (OpenAPIHono<AppEnv> | { lazy: LazyRoutes })[] = [];
  const lazyGroups: LazyRoutes[] = [];
  const lazy = (prefixes: readonly string[], build: () => Promise<OpenAPIHono<AppEnv>>) => {
    const routes = lazyRoutes(prefixes, [API_V1, "/api"], build, handleError, [
      ["/api/*", deprecatedAlias],
    ]);
    for (const pattern of routes.patterns) api.all(pattern, routes.handler);
    groups.push({ lazy: routes });
    lazyGroups.push(routes);
  };
  const eager = (routes: OpenAPIHono<AppEnv>) => {
    api.route("/", routes);
    groups.push(routes);
  };
  eager(healthRoutes(runtime, options.cache, options.health));
  let document: Promise<unknown> | null = null;
  lazy(
    ["/openapi.json", "/docs"],
    async () => (await import("./docs.ts")).docsRoutes(() => document ??= fullDocument(groups)),
  );
  eager(retryRoutes(runtime, tenants));
  eager(jobRoutes(runtime, tenants, options.callbacks));
  const callbacks = options.callbacks;
  if (callbacks) {
    lazy(
      ["/callbacks"],
      async () => (await import("./callbacks.ts")).callbackRoutes(callbacks, tenants),
    );
  }
  lazy(["/audit"], async () => (await import("./audit.ts")).auditRoutes(tenants));
  lazy(["/keys"], async () => (await import("./keys.ts")).keyRoutes(tenants));
  lazy(
    ["/schedules"],
    async () => (await import("./schedules.ts")).scheduleRoutes(runtime, tenants),
  );
  lazy(
    ["/actors", "/workers"],
    async () => (await import("./operations.ts")).operationRoutes(runtime, tenants),
  );
  lazy(["/tenants"], async () => (await import("./tenants.ts")).tenantRoutes(runtime, tenants));
  lazy(
    ["/tenant", "/usage"],
    async () => (await import("./usage.ts")).usageRoutes({ runtime, tenants }),
  );
  lazy(["/admin"], async () =>
    (await import("./backup.ts")).backupRoutes({
      db: runtime.db,
      tenants,
      ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    }));
  const cache = options.cache;
  if (cache) lazy(["/cache"], async () => (await import("./cache.ts")).cacheRoutes(cache, tenants));
  const datasets = options.datasets;
  if (datasets) {
    lazy(["/datasets"], async () =>
      (await import("./datasets.ts")).datasetRoutes({
        ...(options.uploads ? { uploads: options.uploads } : {}),
        ...datasets,
        runtime,
        tenants,
        ...(options.callbacks ? { callbacks: options.callbacks } : {}),
        ...(options.cache ? { cache: options.cache } : {}),
      }));
  }
  lazy(["/uploads"], async () =>
    (await import("./uploads.ts")).uploadRoutes(
      options.datasets?.directUploads ?? { db: runtime.db, bucket: null },
    ));
  const courses = options.courses;
  if (courses) {
    lazy(["/courses"], async () =>
      (await import("./courses.ts")).courseRoutes({
        ...(options.uploads ? { uploads: options.uploads } : {}),
        ...courses,
        runtime,
        tenants,
        ...(options.callbacks ? { callbacks: options.callbacks } : {}),
        ...(options.cache ? { cache: options.cache } : {}),
      }));
  }
  const statements = options.statements;
  if (statements) {
    lazy(
      ["/usage"],
      async () => (await import("./statements.ts")).statementRoutes({ ...statements, runtime }),
    );
  }
  const usage = options.usage;
  if (usage) lazy(["/sources"], async () => (await import("./sources.ts")).sourceRoutes(usage));
  if (options.metrics?.route) app.route("/", metricsRoutes(options.metrics));
  app.use("/api/*", deprecatedAlias);
  app.route(API_V1, api);
  app.route("/api", new Hono<AppEnv>().route("/", api));
  const webhooks = options.webhooks;
  let qstashGroup: LazyRoutes | null = null;
  if (webhooks) {
    qstashGroup = lazyRoutes(
      ["/actors", "/schedules"],
      [""],
      async () => {
        const { ready, ...signature } = webhooks;
        const [{ qstashRoutes }] = await Promise.all([import("./qstash.ts"), ready]);
        return qstashRoutes({ ...signature, runtime });
      },
      handleError,
    );
    for (const pattern of qstashGroup.patterns) app.all(pattern, qstashGroup.handler);
  }
  const consoleGroup = lazyRoutes(
    ["/console"],
    [""],
    async () =>
      new Hono().route("/console", (await import("./console/mod.tsx")).consoleRoutes(options)),
    handleError,
  );
  for (const pattern of consoleGroup.patterns) app.all(pattern, consoleGroup.handler);
  LAZY.set(app, [...lazyGroups, ...(qstashGroup ? [qstashGroup] : []), consoleGroup]);
  app.notFound((c) =>
    errorResponse(c, 404, "NOT_FOUND", `no route for ${c.req.method} ${c.req.path}`)
  );
  app.onError(handleError);
  return app;
}
