/**
 * The world an API test runs in: a database, a started runtime, the app, a tenant store.
 *
 * `TEST_API_DRIVERS=embedded` (default): PGlite, the table queue, in-memory limits and cache.
 * `TEST_API_DRIVERS=production`: the production drivers against the local stand-ins, as with
 * the production env vars: PostgreSQL through the Neon serverless driver (WebSocket bridge),
 * QStash (stand-in) delivering signed webhooks to the app served on a local port, rate limits
 * and cache in Redis through the Upstash REST bridge. The tests are the same either way.
 */
import { Client, Receiver } from "@upstash/qstash";
import { Redis } from "@upstash/redis";
import {
  type AnyActor,
  jsonLogger,
  Runtime,
  type RuntimeOptions,
  TableQueueTransport,
} from "@troupe/runtime";
import { QStashTransport } from "@troupe/runtime/transports/qstash";
import { Cache } from "../db/cache/cache.ts";
import { MemoryCacheStore } from "../db/cache/memory.ts";
import { UpstashCacheStore } from "../db/cache/upstash.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";
import type { RateLimiter } from "../db/ratelimit/port.ts";
import { UpstashRateLimiter } from "../db/ratelimit/upstash.ts";
import { TenantStore } from "../db/tenants.ts";
import { type AppOptions, createApp } from "../routes/app.ts";
import { startQStash } from "./fixtures/qstash_server.ts";
import { startRedisBridge } from "./fixtures/upstash_redis_bridge.ts";
import { neonTarget, pgliteTarget, type TestDatabase } from "./harness.ts";

export const API_DRIVERS = Deno.env.get("TEST_API_DRIVERS") === "production"
  ? "production"
  : "embedded";

export interface ApiWorld {
  tdb: TestDatabase;
  runtime: Runtime;
  tenants: TenantStore;
  cache: Cache;
  limiter: RateLimiter;
  /** A fresh limiter of the same kind, with counts of its own. */
  newLimiter(): RateLimiter;
  app: ReturnType<typeof createApp>;
  /** Stops everything the world started (runtime, servers, database). */
  close(): Promise<void>;
}

/** An answer read whole: its body parsed as JSON (null when it is not JSON) and its bytes. */
export interface ApiAnswer {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
  bytes: Uint8Array<ArrayBuffer>;
}

/**
 * Sends `path` to `app` as the tenant of `key` (its `X-API-Key`); `json`, when given, is the
 * request's JSON body. Reads the answer whole.
 */
export async function apiCall(
  app: Pick<ApiWorld["app"], "request">,
  key: string,
  path: string,
  init: RequestInit & { json?: unknown } = {},
): Promise<ApiAnswer> {
  const { json, ...rest } = init;
  const headers = new Headers(rest.headers);
  headers.set("x-api-key", key);
  if (json !== undefined) headers.set("content-type", "application/json");
  const res = await app.request(path, {
    ...rest,
    headers,
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  let body: unknown = null;
  try {
    body = JSON.parse(new TextDecoder().decode(bytes));
  } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body, bytes };
}

export type WorldOptions = Omit<
  AppOptions,
  "runtime" | "tenants" | "logger" | "webhooks" | "limiter"
>;

/** Runtime options a test may set on its world's runtime. */
export type WorldRuntimeOptions = Pick<RuntimeOptions, "pauseRecheckMs" | "workerId">;

/**
 * Builds a world for `actors`; `appOptions` go to `createApp` (limits, datasets, ...).
 * `drivers` picks the drivers for this world whatever `TEST_API_DRIVERS` says (a test that must
 * run on both transports).
 */
export async function openApiWorld(
  actors: AnyActor[] | ((tdb: TestDatabase) => AnyActor[]),
  appOptions: (tdb: TestDatabase) => WorldOptions = () => ({}),
  { drivers = API_DRIVERS, runtime = {} }: {
    drivers?: "embedded" | "production";
    runtime?: WorldRuntimeOptions;
  } = {},
): Promise<ApiWorld> {
  return drivers === "production"
    ? await productionWorld(actors, appOptions, runtime)
    : await embeddedWorld(actors, appOptions, runtime);
}

type Actors = AnyActor[] | ((tdb: TestDatabase) => AnyActor[]);

async function embeddedWorld(
  actors: Actors,
  appOptions: (tdb: TestDatabase) => WorldOptions,
  runtimeOptions: WorldRuntimeOptions,
): Promise<ApiWorld> {
  const tdb = await pgliteTarget.open();
  const runtime = new Runtime({
    ...runtimeOptions,
    db: tdb.db,
    actors: typeof actors === "function" ? actors(tdb) : actors,
    transport: new TableQueueTransport(tdb.db, { pollMs: 50 }),
    logger: jsonLogger("silent"),
  });
  await runtime.start();
  const tenants = new TenantStore(tdb.db);
  const cache = new Cache(new MemoryCacheStore());
  const limiter = new MemoryRateLimiter();
  const app = createApp({
    runtime,
    tenants,
    cache,
    limiter,
    logger: jsonLogger("silent"),
    ...appOptions(tdb),
  });
  return {
    tdb,
    runtime,
    tenants,
    cache,
    limiter,
    newLimiter: () => new MemoryRateLimiter(),
    app,
    async close() {
      await runtime.stop();
      await tdb.cleanup();
    },
  };
}

async function productionWorld(
  actors: Actors,
  appOptions: (tdb: TestDatabase) => WorldOptions,
  runtimeOptions: WorldRuntimeOptions,
): Promise<ApiWorld> {
  const tdb = await neonTarget.open();
  const keys = { token: "api-world", current: "sig_api_current", next: "sig_api_next" };
  const qstash = await startQStash({
    token: keys.token,
    currentSigningKey: keys.current,
    nextSigningKey: keys.next,
    retryDelayMs: () => 50,
  });
  const redisBridge = await startRedisBridge({ token: "api-world" });
  const redis = new Redis({ url: redisBridge.url, token: "api-world", retry: { retries: 0 } });
  const namespace = `test:${crypto.randomUUID()}`;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const publicUrl = `http://127.0.0.1:${port}`;
  const runtime = new Runtime({
    ...runtimeOptions,
    db: tdb.db,
    actors: typeof actors === "function" ? actors(tdb) : actors,
    transport: new QStashTransport({
      client: new Client({ baseUrl: qstash.url, token: keys.token }),
      publicUrl,
    }),
    logger: jsonLogger("silent"),
  });
  await runtime.start();
  const tenants = new TenantStore(tdb.db);
  const cache = new Cache(new UpstashCacheStore(redis, { namespace: `${namespace}:cache:` }));
  const limiter = new UpstashRateLimiter({ redis, prefix: `${namespace}:rl` });
  const app = createApp({
    runtime,
    tenants,
    cache,
    limiter,
    logger: jsonLogger("silent"),
    webhooks: {
      receiver: new Receiver({ currentSigningKey: keys.current, nextSigningKey: keys.next }),
      publicUrl,
      db: tdb.db,
    },
    ...appOptions(tdb),
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, app.fetch);
  return {
    tdb,
    runtime,
    tenants,
    cache,
    limiter,
    newLimiter: () =>
      new UpstashRateLimiter({ redis, prefix: `${namespace}:rl:${crypto.randomUUID()}` }),
    app,
    async close() {
      await runtime.stop();
      await server.shutdown();
      await qstash.close();
      await cache.invalidate({ prefix: "" });
      await redisBridge.close();
      await tdb.cleanup();
    },
  };
}
