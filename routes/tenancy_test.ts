/**
 * API keys, tenant isolation, the audit log and rate limits, through `app.request()` over a
 * real runtime (embedded drivers, or the production ones with TEST_API_DRIVERS=production).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor, jsonLogger, NonRetryableError } from "@troupe/runtime";
import { hashApiKey } from "../db/tenants.ts";
import { type ApiWorld, openApiWorld } from "../tests/api_world.ts";
import { waitFor } from "../tests/harness.ts";
import { type AppOptions, createApp } from "./app.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../tests/shared_world.ts";

const opts = SHARED_WORLD_TEST;

const work = defineActor({
  name: "t.work",
  input: z.object({ fail: z.boolean().default(false) }),
  retries: 0,
  handler: (input) => {
    if (input.fail) throw new NonRetryableError("asked to fail");
    return "done";
  },
});
const internal = defineActor({
  name: "t.internal",
  input: z.object({}),
  exposed: false,
  handler: () => {},
});

interface World extends ApiWorld {
  acme: { id: string; key: string };
  globex: { id: string; key: string };
}

function openWorld(): Promise<World> {
  return (async () => {
    const w = await openApiWorld([work, internal]);
    const make = async (name: string) => {
      const t = await w.tenants.createTenant(name);
      return { id: t.id, key: (await w.tenants.createKey(t.id)).key };
    };
    return { ...w, acme: await make("acme"), globex: await make("globex") };
  })();
}

const shared = sharedWorld(openWorld);
const open = shared.open;

/**
 * Waits until at least 5 s remain in the current minute. Both limiters weigh the previous
 * minute's count by the part of it still in the window, rounded down: a request just after a
 * minute starts sees 3 earlier ones as 2, and a test of a limit of 3 a minute would pass its
 * fourth request.
 */
async function inOneMinute(): Promise<void> {
  const left = 60_000 - Date.now() % 60_000;
  if (left < 5_000) await new Promise((r) => setTimeout(r, left + 100));
}

/** Another app over the world's runtime, with its own options (limits). */
async function appWith(options: Partial<AppOptions> = {}) {
  const w = await open();
  return createApp({
    runtime: w.runtime,
    tenants: w.tenants,
    limiter: w.limiter,
    logger: jsonLogger("silent"),
    perIpPerMinute: 100_000,
    perKeyPerMinute: 100_000,
    ...options,
  });
}

async function send(
  app: Awaited<ReturnType<typeof appWith>>,
  path: string,
  { key, method = "GET", json, headers = {} }: {
    key?: string;
    method?: string;
    json?: unknown;
    headers?: Record<string, string>;
  } = {},
) {
  const h = new Headers(headers);
  if (key) h.set("x-api-key", key);
  if (json !== undefined) h.set("content-type", "application/json");
  const res = await app.request(path, {
    method,
    headers: h,
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
  });
  // deno-lint-ignore no-explicit-any
  return { status: res.status, headers: res.headers, body: await res.json() as any };
}

Deno.test({ name: "keys are stored hashed and only the hash", ...opts }, async () => {
  const { tdb, acme } = await open();
  const rows = await tdb.db.query<{ hash: string; prefix: string }>(
    "SELECT hash, prefix FROM troupe_api_keys",
  );
  assert.equal(rows.length, 2);
  assert.ok(rows.some((r) => r.prefix === acme.key.slice(0, 12)));
  const all = JSON.stringify(await tdb.db.query("SELECT * FROM troupe_api_keys"));
  assert.ok(!all.includes(acme.key), "the key itself is nowhere in the table");
  assert.ok(all.includes(await hashApiKey(acme.key)));
  assert.match(acme.key, /^trp_[0-9A-Za-z]{32}$/);
});

Deno.test(
  { name: "a call without a valid key is a 401; health stays public", ...opts },
  async () => {
    const app = await appWith();
    const { acme } = await open();
    for (
      const headers of [
        {},
        { "x-api-key": "trp_wrongwrongwrongwrongwrongwrongwr" },
        { authorization: "Basic abc" },
        { authorization: "Bearer " },
      ]
    ) {
      const res = await send(app, "/api/jobs", { headers });
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.body.error.code, "UNAUTHENTICATED");
      assert.ok(res.headers.get("www-authenticate"));
    }
    const bearer = await send(app, "/api/jobs", {
      headers: { authorization: `Bearer ${acme.key}` },
    });
    assert.equal(bearer.status, 200);
    assert.equal((await send(app, "/api/health")).status, 200);
    const spec = await send(app, "/api/openapi.json");
    assert.equal(spec.status, 200, "the API description is public");
    assert.equal(spec.body.openapi, "3.1.0");
    // The document has the routes this app serves (this world runs no dataset workload).
    assert.ok(spec.body.paths["/api/v1/jobs/{id}"].get);
    assert.equal(spec.body.paths["/api/v1/datasets/{id}/rows"], undefined);
    const docs = await (await open()).app.request("/api/docs");
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /Troupe API/);
  },
);

Deno.test({ name: "another tenant's jobs and dead letters answer 404", ...opts }, async () => {
  const app = await appWith();
  const { acme, globex, runtime } = await open();
  const mine = await send(app, "/api/actors/t.work/jobs", {
    key: acme.key,
    method: "POST",
    json: { input: { fail: true } },
  });
  assert.equal(mine.status, 202);
  const id = mine.body.jobId;
  await waitFor(async () => (await runtime.getJob(id)).status === "failed");

  const probes: [string, string][] = [
    ["GET", `/api/jobs/${id}`],
    ["POST", `/api/jobs/${id}/cancel`],
    ["GET", `/api/jobs/${id}/events`],
  ];
  for (const [method, path] of probes) {
    const res = await send(app, path, { key: globex.key, method });
    assert.equal(res.status, 404, path);
    assert.equal(res.body.error.code, "NOT_FOUND");
  }
  assert.equal((await send(app, `/api/jobs/${id}`, { key: acme.key })).status, 200);

  const theirs = await send(app, "/api/jobs?limit=100", { key: globex.key });
  assert.ok(!theirs.body.items.some((j: { id: string }) => j.id === id));
  const ours = await send(app, "/api/jobs?limit=100", { key: acme.key });
  assert.ok(ours.body.items.some((j: { id: string }) => j.id === id));

  const dls = await send(app, "/api/dead-letters", { key: acme.key });
  const dl = dls.body.items.find((d: { jobId: string }) => d.jobId === id);
  assert.ok(dl);
  assert.equal(
    (await send(app, "/api/dead-letters", { key: globex.key })).body.items.length,
    0,
  );
  const replay = await send(app, `/api/dead-letters/${dl.id}/replay`, {
    key: globex.key,
    method: "POST",
  });
  assert.equal(replay.status, 404);
});

Deno.test({ name: "an idempotency key is per tenant", ...opts }, async () => {
  const app = await appWith();
  const { acme, globex } = await open();
  const post = (key: string) =>
    send(app, "/api/actors/t.work/jobs", {
      key,
      method: "POST",
      json: { input: {}, idempotencyKey: "same-key" },
    });
  const a = await post(acme.key);
  const b = await post(globex.key);
  assert.equal(a.status, 202);
  assert.equal(b.status, 202);
  assert.notEqual(a.body.jobId, b.body.jobId);
});

Deno.test({ name: "internal actors cannot be enqueued over HTTP", ...opts }, async () => {
  const app = await appWith();
  const { acme } = await open();
  const res = await send(app, "/api/actors/t.internal/jobs", {
    key: acme.key,
    method: "POST",
    json: { input: {} },
  });
  assert.equal(res.status, 404);
  assert.equal(res.body.error.code, "NOT_FOUND");
});

Deno.test({ name: "cancels and replays are in the tenant's audit log", ...opts }, async () => {
  const app = await appWith();
  const { acme, globex, runtime } = await open();
  const delayed = await send(app, "/api/actors/t.work/jobs", {
    key: acme.key,
    method: "POST",
    json: { input: {}, delayMs: 3_600_000 },
    headers: { "x-request-id": "audit-trace-1" },
  });
  const cancel = await send(app, `/api/jobs/${delayed.body.jobId}/cancel`, {
    key: acme.key,
    method: "POST",
    headers: { "x-request-id": "audit-trace-2" },
  });
  assert.equal(cancel.body.status, "cancelled");
  const failed = await send(app, "/api/actors/t.work/jobs", {
    key: acme.key,
    method: "POST",
    json: { input: { fail: true } },
  });
  await waitFor(async () => (await runtime.getJob(failed.body.jobId)).status === "failed");
  const dl = (await send(app, "/api/dead-letters", { key: acme.key })).body.items.find((
    d: { jobId: string },
  ) => d.jobId === failed.body.jobId);
  await send(app, `/api/dead-letters/${dl.id}/replay`, { key: acme.key, method: "POST" });

  const log = await send(app, "/api/audit", { key: acme.key });
  assert.equal(log.status, 200);
  const actions = log.body.items.map((e: { action: string }) => e.action);
  assert.ok(actions.includes("job.cancel"));
  assert.ok(actions.includes("dead_letter.replay"));
  assert.ok(actions.includes("api_key.create"));
  const cancelEntry = log.body.items.find((e: { targetId: string }) =>
    e.targetId === delayed.body.jobId
  );
  assert.equal(cancelEntry.requestId, "audit-trace-2");
  assert.ok(cancelEntry.apiKeyId);
  const other = await send(app, "/api/audit", { key: globex.key });
  assert.ok(!other.body.items.some((e: { action: string }) => e.action === "job.cancel"));
});

Deno.test(
  {
    name: "per-IP limit counts requests without a valid key: 429 with Retry-After and headers",
    ...opts,
  },
  async () => {
    const app = await appWith({
      limiter: (await open()).newLimiter(),
      perIpPerMinute: 3,
      trustProxy: true,
    });
    const from = (ip: string, key?: string) =>
      send(app, "/api/jobs", {
        ...(key ? { key } : {}),
        headers: { "x-forwarded-for": `${ip}, 10.0.0.1` },
      });
    const guess = "trp_guessguessguessguessguessguessgu";
    const seen = [
      await from("203.0.113.7"),
      await from("203.0.113.7", guess),
      await from("203.0.113.7"),
      await from("203.0.113.7", guess),
    ];
    assert.deepEqual(seen.map((r) => r.status), [401, 401, 401, 429]);
    assert.deepEqual(seen.map((r) => r.headers.get("ratelimit-remaining")), ["2", "1", "0", "0"]);
    assert.equal(seen[0]!.headers.get("ratelimit-limit"), "3");
    assert.equal(seen[0]!.headers.get("ratelimit-policy"), "3;w=60");
    const refused = seen[3]!;
    assert.equal(refused.body.error.code, "RATE_LIMITED");
    assert.match(refused.body.error.message, /address/);
    const retryAfter = Number(refused.headers.get("retry-after"));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal((await from("198.51.100.9")).status, 401, "another address has its own budget");
    assert.equal(
      (await send(app, "/api/health", { headers: { "x-forwarded-for": "203.0.113.7" } }))
        .status,
      200,
      "health is not limited",
    );
  },
);

Deno.test(
  { name: "an authenticated client is held to its key's limit, not its address's", ...opts },
  async () => {
    const app = await appWith({
      limiter: (await open()).newLimiter(),
      perIpPerMinute: 2,
      perKeyPerMinute: 100,
      trustProxy: true,
    });
    const { acme } = await open();
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      const res = await send(app, "/api/jobs", {
        key: acme.key,
        headers: { "x-forwarded-for": "203.0.113.8" },
      });
      statuses.push(res.status);
      assert.equal(res.headers.get("ratelimit-limit"), "100", "the key's limit is reported");
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
  },
);

Deno.test({ name: "per-key limit applies across addresses", ...opts }, async () => {
  const app = await appWith({
    limiter: (await open()).newLimiter(),
    perKeyPerMinute: 2,
    trustProxy: true,
  });
  const { acme, globex } = await open();
  await inOneMinute();
  const statuses = [];
  for (const ip of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) {
    const res = await send(app, "/api/jobs", { key: acme.key, headers: { "x-forwarded-for": ip } });
    statuses.push(res.status);
    if (res.status === 429) assert.match(res.body.error.message, /API key/);
  }
  assert.deepEqual(statuses, [200, 200, 429]);
  assert.equal((await send(app, "/api/jobs", { key: globex.key })).status, 200);
});

Deno.test(
  {
    name: "a tenant's own limit applies to its keys, is shared across instances and can change",
    ...opts,
  },
  async () => {
    const w = await open();
    const limiter = w.newLimiter();
    // Two instances of the API over one shared limiter (Upstash with the production drivers).
    const one = await appWith({ limiter, perKeyPerMinute: 100 });
    const two = await appWith({ limiter, perKeyPerMinute: 100 });
    const tenant = await w.tenants.createTenant(`limited-${crypto.randomUUID().slice(0, 8)}`, {
      rateLimitPerMinute: 3,
    });
    assert.equal(tenant.rateLimitPerMinute, 3);
    const key = (await w.tenants.createKey(tenant.id)).key;
    await inOneMinute();
    const statuses = [];
    for (const app of [one, two, one, two]) {
      const res = await send(app, "/api/jobs", { key });
      statuses.push(res.status);
      assert.equal(res.headers.get("ratelimit-limit"), "3");
    }
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    // Other tenants keep the server's default.
    assert.equal(
      (await send(one, "/api/jobs", { key: w.acme.key })).headers.get("ratelimit-limit"),
      "100",
    );

    const raised = await w.tenants.setRateLimit(tenant.id, 50, { requestId: "test" });
    assert.equal(raised.rateLimitPerMinute, 50);
    const after = await send(two, "/api/jobs", { key });
    assert.equal(after.status, 200);
    assert.equal(after.headers.get("ratelimit-limit"), "50");
    await w.tenants.setRateLimit(tenant.id, null);
    assert.equal((await w.tenants.getTenant(tenant.id)).rateLimitPerMinute, null);
    await assert.rejects(() => w.tenants.setRateLimit(tenant.id, 0), /rate limit/);
  },
);
