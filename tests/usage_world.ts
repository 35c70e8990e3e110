/**
 * The world a report-sync test runs in: a database target, the usage actors in a started
 * runtime (table queue, or QStash through its stand-in delivering to the app on a local port),
 * the app with the sources routes, a tenant with a key, and the usage API stand-in.
 */
// deno-lint-ignore-file no-explicit-any
import { Client, Receiver } from "@upstash/qstash";
import { jsonLogger, Runtime, TableQueueTransport, type Transport } from "@troupe/runtime";
import { QStashTransport } from "@troupe/runtime/transports/qstash";
import { EgressPolicy } from "../actors/net/egress.ts";
import { usageActors } from "../actors/usage/actors.ts";
import { Callbacks } from "../actors/system/callback.ts";
import { CallbackSecrets } from "../actors/system/callback_secrets.ts";
import { SourceStore } from "../actors/usage/sources.ts";
import type { UsageDeps } from "../actors/usage/sync.ts";
import { Cache } from "../db/cache/cache.ts";
import { MemoryCacheStore } from "../db/cache/memory.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";
import { generateKeyText, parseKeys, SecretBox } from "../db/secrets.ts";
import { TenantStore } from "../db/tenants.ts";
import { createApp } from "../routes/app.ts";
import { startQStash } from "./fixtures/qstash_server.ts";
import { startUsageApi, type UsageApiOptions, type UsageApiStandIn } from "./fixtures/usage_api.ts";
import { type DbTarget, type TestDatabase, waitFor } from "./harness.ts";

export interface UsageWorld {
  tdb: TestDatabase;
  runtime: Runtime;
  deps: UsageDeps;
  api: UsageApiStandIn;
  app: ReturnType<typeof createApp>;
  tenantId: string;
  /** A JSON call with the tenant's key. */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** Connects the stand-in as a source; returns its id. */
  addSource(extra?: Record<string, unknown>): Promise<string>;
  /** Starts a sync over the API and waits until it ends; returns its history row. */
  sync(sourceId: string): Promise<any>;
  /** Waits until sync `id` ends; returns its history row. */
  settled(sourceId: string, id: string): Promise<any>;
  close(): Promise<void>;
}

export const TOKEN = "usage-test-token";

export async function openUsageWorld(
  target: DbTarget,
  apiOptions: Omit<UsageApiOptions, "token">,
  {
    transport = "table" as "table" | "qstash",
    deps: extra = {} as Partial<UsageDeps>,
    callbacks: withCallbacks = false,
  } = {},
): Promise<UsageWorld> {
  const tdb = await target.open();
  const api = startUsageApi({ token: TOKEN, ...apiOptions });
  const secrets = new SecretBox(parseKeys(generateKeyText("test")));
  const sources = new SourceStore(tdb.db, secrets, new EgressPolicy({ allow: ["127.0.0.1"] }));
  const ref: { runtime?: Runtime } = {};
  const deps: UsageDeps = {
    db: tdb.db,
    sources,
    limiter: new MemoryRateLimiter(),
    cache: new Cache(new MemoryCacheStore()),
    runtime: () => ref.runtime!,
    callTimeoutMs: 1000,
    backoff: { baseMs: 50, maxMs: 200 },
    // Completion callbacks, to receivers on 127.0.0.1.
    ...(withCallbacks
      ? {
        callbacks: new Callbacks({
          secrets: new CallbackSecrets(tdb.db, secrets),
          egress: new EgressPolicy({ allow: ["127.0.0.1"] }),
          backoffBaseMs: 50,
        }),
      }
      : {}),
    ...extra,
  };
  const stops: (() => Promise<void>)[] = [];
  let rt: Transport;
  let webhooks: Parameters<typeof createApp>[0]["webhooks"];
  let port = 0;
  if (transport === "qstash") {
    const keys = { token: "usage-qstash", current: "sig_usage_current", next: "sig_usage_next" };
    const qstash = await startQStash({
      token: keys.token,
      currentSigningKey: keys.current,
      nextSigningKey: keys.next,
      retryDelayMs: () => 50,
    });
    stops.push(() => qstash.close());
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const publicUrl = `http://127.0.0.1:${port}`;
    rt = new QStashTransport({
      client: new Client({ baseUrl: qstash.url, token: keys.token }),
      publicUrl,
    });
    webhooks = {
      receiver: new Receiver({ currentSigningKey: keys.current, nextSigningKey: keys.next }),
      publicUrl,
      db: tdb.db,
    };
  } else {
    rt = new TableQueueTransport(tdb.db, { pollMs: 50 });
  }
  const runtime = ref.runtime = new Runtime({
    db: tdb.db,
    actors: [...usageActors(deps), ...(deps.callbacks ? [deps.callbacks.actor()] : [])],
    transport: rt,
    logger: jsonLogger("silent"),
  });
  await runtime.start();
  const tenants = new TenantStore(tdb.db);
  const app = createApp({
    runtime,
    limiter: new MemoryRateLimiter(),
    tenants,
    logger: jsonLogger("silent"),
    perKeyPerMinute: 1_000_000,
    perIpPerMinute: 1_000_000,
    usage: deps,
    ...(deps.callbacks ? { callbacks: deps.callbacks } : {}),
    ...(webhooks ? { webhooks } : {}),
  });
  if (transport === "qstash") {
    const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, app.fetch);
    stops.unshift(() => server.shutdown());
  }
  const tenant = await tenants.createTenant(`t-${crypto.randomUUID().slice(0, 8)}`);
  const { key } = await tenants.createKey(tenant.id);
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app.request(path, {
      method,
      headers: { "x-api-key": key, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const settled = async (sourceId: string, id: string) =>
    await waitFor(async () => {
      const { body } = await call("GET", `/api/v1/sources/${sourceId}/syncs`);
      const row = body.items.find((s: { id: string }) => s.id === id);
      return row && row.status !== "running" ? row : null;
    }, { timeoutMs: 60_000, what: `sync ${id} to end` });
  return {
    tdb,
    runtime,
    deps,
    api,
    app,
    tenantId: tenant.id,
    call,
    async addSource(extra = {}) {
      const res = await call("POST", "/api/v1/sources", {
        name: "usage",
        baseUrl: api.url,
        token: TOKEN,
        ...extra,
      });
      if (res.status !== 201) throw new Error(`source: ${JSON.stringify(res.body)}`);
      return res.body.id;
    },
    async sync(sourceId) {
      const res = await call("POST", `/api/v1/sources/${sourceId}/sync`);
      if (res.status !== 202) throw new Error(`sync: ${JSON.stringify(res.body)}`);
      return await settled(sourceId, res.body.jobId);
    },
    settled,
    async close() {
      await runtime.stop();
      for (const stop of stops) await stop();
      await api.close();
      await tdb.cleanup();
    },
  };
}
