/**
 * The HTTP API through `app.request()` over a real runtime (embedded drivers, or with
 * TEST_API_DRIVERS=production the production drivers against the local stand-ins): every
 * endpoint's happy path and every kind of bad input.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor, NonRetryableError } from "@troupe/runtime";
import { type ApiWorld, openApiWorld } from "../tests/api_world.ts";
import { countRows, waitFor, within } from "../tests/harness.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../tests/shared_world.ts";
import { endlessBody, trickleBody } from "../tests/hostile/http_attacks.ts";
import { TROUPE_VERSION } from "./version.ts";

const echo = defineActor({
  name: "t.echo",
  input: z.object({ n: z.number().int() }),
  key: (i) => `t.echo:${i.n % 4}`,
  handler: (input) => ({ doubled: input.n * 2 }),
});

const wait = defineActor({
  name: "t.wait",
  input: z.object({ id: z.string() }),
  key: (i) => `t.wait:${i.id}`,
  handler: async (_input, ctx) => {
    for (let pct = 10; pct <= 30; pct += 10) {
      ctx.progress(pct, `step ${pct}`);
      await new Promise((r) => setTimeout(r, 60));
    }
    await new Promise((_, reject) => {
      if (ctx.signal.aborted) reject(ctx.signal.reason);
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
    });
  },
});

let failing = true;
const flaky = defineActor({
  name: "t.flaky",
  input: z.object({}),
  retries: 0,
  handler: () => {
    if (failing) throw new NonRetryableError("refused");
    return "fine";
  },
});

const internal = defineActor({
  name: "t.internal",
  input: z.object({}),
  exposed: false,
  handler: () => {},
});

interface Setup extends ApiWorld {
  /** The key `call()` sends unless told otherwise (tenant "acme"). */
  key: string;
  /** A key of another tenant ("globex"). */
  otherKey: string;
}

async function openSetup(): Promise<Setup> {
  const world = await openApiWorld([echo, wait, flaky, internal], () => ({
    perIpPerMinute: 100_000,
    perKeyPerMinute: 100_000,
    // A body is let go after 1 s without bytes, or under 2 KB/s over 500 ms.
    uploads: { idleMs: 1000, minBytesPerSecond: 2000, rateWindowMs: 500 },
  }));
  const { tenants } = world;
  const key = (await tenants.createKey((await tenants.createTenant("acme")).id)).key;
  const otherKey = (await tenants.createKey((await tenants.createTenant("globex")).id)).key;
  return { ...world, key, otherKey };
}

const shared = sharedWorld(openSetup);
const setup = shared.open;
const opts = SHARED_WORLD_TEST;

async function call(
  path: string,
  init: RequestInit & { json?: unknown; key?: string | null; world?: Setup } = {},
) {
  const { app, key: defaultKey } = init.world ?? await setup();
  const { json, key = defaultKey, world: _, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (json !== undefined) headers.set("content-type", "application/json");
  if (key !== null) headers.set("x-api-key", key);
  const res = await app.request(path, {
    ...rest,
    headers,
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch { /* SSE or empty */ }
  // deno-lint-ignore no-explicit-any
  return { status: res.status, headers: res.headers, body: body as any, text };
}

async function finished(id: string) {
  return await waitFor(async () => {
    const { body } = await call(`/api/jobs/${id}`);
    return ["succeeded", "failed", "cancelled"].includes(body.status) ? body : null;
  }, { what: `job ${id}` });
}

function assertError(res: { status: number; body: unknown }, status: number, code: string) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  const body = res.body as { error: { code: string; message: string } };
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, "string");
}

Deno.test({ name: "POST /api/actors/:name/jobs enqueues and the job runs", ...opts }, async () => {
  const res = await call("/api/actors/t.echo/jobs", { method: "POST", json: { input: { n: 21 } } });
  assert.equal(res.status, 202);
  assert.ok(res.body.jobId);
  assert.ok(["queued", "running", "succeeded"].includes(res.body.status));
  assert.equal(res.headers.get("location"), `/api/jobs/${res.body.jobId}`);
  const job = await finished(res.body.jobId);
  assert.equal(job.status, "succeeded");
  assert.deepEqual(job.result, { doubled: 42 });
  assert.equal(job.actor, "t.echo");
});

Deno.test(
  { name: "an Idempotency-Key repeat returns the first job with 200", ...opts },
  async () => {
    const send = () =>
      call("/api/actors/t.echo/jobs", {
        method: "POST",
        body: JSON.stringify({ input: { n: 1 } }),
        headers: { "content-type": "application/json", "idempotency-key": "abc-123" },
      });
    const first = await send();
    const second = await send();
    assert.equal(first.status, 202);
    assert.equal(second.status, 200);
    assert.equal(second.body.jobId, first.body.jobId);
  },
);

Deno.test({ name: "bad enqueue requests get a clear 4xx and store nothing", ...opts }, async () => {
  const { tdb } = await setup();
  const count = () => countRows(tdb.db, "troupe_jobs");
  const before = await count();
  assertError(
    await call("/api/actors/t.echo/jobs", { method: "POST", json: { input: { n: "x" } } }),
    400,
    "INVALID_INPUT",
  );
  const invalid = await call("/api/actors/t.echo/jobs", {
    method: "POST",
    json: { input: { n: "x" } },
  });
  assert.equal(invalid.body.error.details[0].path, "n");
  assertError(
    await call("/api/actors/nope/jobs", { method: "POST", json: { input: {} } }),
    404,
    "NOT_FOUND",
  );
  assertError(
    await call("/api/actors/t.echo/jobs", {
      method: "POST",
      body: "{not json",
      headers: { "content-type": "application/json" },
    }),
    400,
    "INVALID_JSON",
  );
  assertError(
    await call("/api/actors/t.echo/jobs", {
      method: "POST",
      body: "n=1",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    }),
    415,
    "UNSUPPORTED_MEDIA_TYPE",
  );
  assertError(
    await call("/api/actors/t.echo/jobs", { method: "POST", json: [1, 2] }),
    400,
    "VALIDATION_FAILED",
  );
  assertError(
    await call("/api/actors/t.echo/jobs", {
      method: "POST",
      json: { input: { n: 1 }, delayMs: -5 },
    }),
    400,
    "VALIDATION_FAILED",
  );
  assertError(
    await call("/api/actors/t.echo/jobs", {
      method: "POST",
      json: { input: { n: 1 }, pad: "x".repeat(2 << 20) },
    }),
    413,
    "PAYLOAD_TOO_LARGE",
  );
  assert.equal(await count(), before, "nothing was stored");
});

Deno.test(
  { name: "a JSON body that never ends is a 413 once past the cap, read no further", ...opts },
  async () => {
    const count = async () => countRows((await setup()).tdb.db, "troupe_jobs");
    const before = await count();
    // Sent chunked (no Content-Length), so only reading it can tell its size.
    const json = endlessBody({ head: '{"input":{"n":1},"pad":"', filler: "x" });
    const res = await call("/api/actors/t.echo/jobs", {
      method: "POST",
      body: json.body,
      headers: { "content-type": "application/json" },
    });
    assertError(res, 413, "PAYLOAD_TOO_LARGE");
    assert.deepEqual(res.body.error.details, { limitBytes: 1 << 20 });
    assert.ok(json.pulled() < (1 << 20) + 4 * 65_536, `read ${json.pulled()} bytes of the body`);
    assert.equal(await count(), before, "nothing was stored");
  },
);

Deno.test(
  { name: "a JSON body that trickles in under the minimum rate is a 408", ...opts },
  async () => {
    const count = async () => countRows((await setup()).tdb.db, "troupe_jobs");
    const before = await count();
    // 20 bytes every 100 ms (200 B/s), never idle for the world's 1 s.
    const json = trickleBody(JSON.stringify({ input: { n: 1 }, pad: "x".repeat(5000) }), {
      chunkBytes: 20,
      intervalMs: 100,
    });
    const res = await within(
      call("/api/actors/t.echo/jobs", {
        method: "POST",
        body: json.body,
        headers: { "content-type": "application/json" },
      }),
      20_000,
      "the slow body was not cut off",
    );
    assertError(res, 408, "UPLOAD_TOO_SLOW");
    assert.ok(!json.done(), "cut off before its end");
    assert.equal(await count(), before, "nothing was stored");
  },
);

Deno.test(
  { name: "GET /api/jobs/:id answers 404 for unknown and malformed ids", ...opts },
  async () => {
    assertError(await call("/api/jobs/01a20cf1-0000-7000-8000-000000000000"), 404, "NOT_FOUND");
    assertError(await call(`/api/jobs/${encodeURIComponent("' OR 1=1 --")}`), 404, "NOT_FOUND");
    assertError(await call(`/api/jobs/${"a".repeat(300)}`), 404, "NOT_FOUND");
    assertError(await call("/api/nothing-here"), 404, "NOT_FOUND");
  },
);

Deno.test(
  { name: "GET /api/jobs filters by actor and status and pages by cursor", ...opts },
  async () => {
    const ids: string[] = [];
    for (let n = 100; n < 105; n++) {
      const res = await call("/api/actors/t.echo/jobs", { method: "POST", json: { input: { n } } });
      ids.push(res.body.jobId);
    }
    for (const id of ids) await finished(id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/api/jobs?actor=t.echo&status=succeeded&limit=2${
        cursor ? `&cursor=${cursor}` : ""
      }`;
      const res = await call(q);
      assert.equal(res.status, 200);
      for (const job of res.body.items) {
        assert.equal(job.actor, "t.echo");
        assert.equal(job.status, "succeeded");
        seen.push(job.id);
      }
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 50);
    for (const id of ids) assert.ok(seen.includes(id), `job ${id} missing from the pages`);
    assert.equal(new Set(seen).size, seen.length, "no job twice");
    assert.ok(pages >= 3);
    const sorted = [...seen].sort().reverse();
    assert.deepEqual(seen, sorted, "newest first");
  },
);

Deno.test({ name: "bad list parameters are a 400 naming the parameter", ...opts }, async () => {
  const status = await call("/api/jobs?status=done");
  assertError(status, 400, "VALIDATION_FAILED");
  assert.match(status.body.error.message, /status/);
  const limit = await call("/api/jobs?limit=1000");
  assertError(limit, 400, "VALIDATION_FAILED");
  assert.match(limit.body.error.message, /limit/);
  assertError(await call("/api/jobs?limit=abc"), 400, "VALIDATION_FAILED");
  assertError(await call("/api/jobs?cursor=%27%20OR%201%3D1%20--"), 400, "VALIDATION_FAILED");
  const injected = await call(`/api/jobs?actor=${encodeURIComponent("x' OR '1'='1")}`);
  assert.equal(injected.status, 200);
  assert.deepEqual(injected.body.items, [], "the filter is a parameter, not SQL");
  assertError(await call("/api/dead-letters?limit=0"), 400, "VALIDATION_FAILED");
});

Deno.test({ name: "cancel stops a running job; a finished job answers 409", ...opts }, async () => {
  const res = await call("/api/actors/t.wait/jobs", {
    method: "POST",
    json: { input: { id: "c1" } },
  });
  const id = res.body.jobId;
  await waitFor(async () => (await call(`/api/jobs/${id}`)).body.status === "running");
  const cancel = await call(`/api/jobs/${id}/cancel`, { method: "POST" });
  assert.equal(cancel.status, 200);
  assert.equal((await finished(id)).status, "cancelled");
  assertError(await call(`/api/jobs/${id}/cancel`, { method: "POST" }), 409, "CONFLICT");

  const queued = await call("/api/actors/t.echo/jobs", {
    method: "POST",
    json: { input: { n: 7 }, delayMs: 60_000 },
  });
  const cancelled = await call(`/api/jobs/${queued.body.jobId}/cancel`, { method: "POST" });
  assert.equal(cancelled.body.status, "cancelled");
});

Deno.test(
  { name: "GET /api/jobs/:id/events streams progress until the end", ...opts },
  async () => {
    const res = await call("/api/actors/t.wait/jobs", {
      method: "POST",
      json: { input: { id: "s1" } },
    });
    const id = res.body.jobId;
    const { app, key } = await setup();
    const stream = await app.request(`/api/jobs/${id}/events`, { headers: { "x-api-key": key } });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get("content-type") ?? "", /text\/event-stream/);
    assert.ok(stream.headers.get("x-request-id"));
    // Read the stream as it comes; cancel once it has shown progress, so it reaches an end.
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let cancelled = false;
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      if (!cancelled && /event: progress/.test(text)) {
        cancelled = true;
        await call(`/api/jobs/${id}/cancel`, { method: "POST" });
      }
    }
    const events = text.split("\n\n").filter((b) => b.includes("data:")).map((block) => ({
      event: /event: (\w+)/.exec(block)?.[1],
      job: JSON.parse(/data: (.*)/.exec(block)![1]!),
    }));
    assert.equal(events[0]!.event, "job");
    assert.ok(events.some((e) => e.event === "progress" && e.job.progress > 0), text);
    const last = events.at(-1)!;
    assert.equal(last.event, "done");
    assert.equal(last.job.status, "cancelled");
    assertError(
      await call("/api/jobs/01a20cf1-0000-7000-8000-000000000001/events"),
      404,
      "NOT_FOUND",
    );
  },
);

Deno.test({ name: "dead letters are listed and replay once", ...opts }, async () => {
  failing = true;
  const res = await call("/api/actors/t.flaky/jobs", { method: "POST", json: { input: {} } });
  assert.equal((await finished(res.body.jobId)).status, "failed");
  const list = await call("/api/dead-letters?actor=t.flaky");
  assert.equal(list.status, 200);
  const dl = list.body.items.find((d: { jobId: string }) => d.jobId === res.body.jobId);
  assert.ok(dl, "the failed job is a dead letter");
  assert.equal(dl.error.code, "NON_RETRYABLE");
  failing = false;
  const replay = await call(`/api/dead-letters/${dl.id}/replay`, { method: "POST" });
  assert.equal(replay.status, 202);
  assert.equal((await finished(replay.body.jobId)).status, "succeeded");
  assertError(await call(`/api/dead-letters/${dl.id}/replay`, { method: "POST" }), 409, "CONFLICT");
  assertError(await call("/api/dead-letters/nope/replay", { method: "POST" }), 404, "NOT_FOUND");
});

Deno.test(
  { name: "every response carries X-Request-Id, a safe incoming one is kept", ...opts },
  async () => {
    const { app } = await setup();
    const a = await app.request("/api/health", { headers: { "x-request-id": "trace-42" } });
    assert.equal(a.headers.get("x-request-id"), "trace-42");
    await a.body?.cancel();
    const b = await app.request("/api/health", { headers: { "x-request-id": "<script>" } });
    assert.match(b.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    await b.body?.cancel();
    const c = await app.request("/api/jobs/x!/cancel", { method: "POST" });
    assert.ok(c.headers.get("x-request-id"));
    await c.body?.cancel();
  },
);

Deno.test({ name: "health is public and cheap; its details need a key", ...opts }, async () => {
  const res = await call("/api/health", { key: null });
  assert.equal(res.status, 200);
  assert.equal(res.body.status, "ok");
  assert.equal(res.body.database.status, "ok");
  assert.equal(res.body.version, TROUPE_VERSION);
  assert.equal(res.body.queue, undefined, "no count over the jobs table in the public check");
  assertError(await call("/api/health/details", { key: null }), 401, "UNAUTHENTICATED");
  const details = await call("/api/health/details");
  assert.equal(details.status, 200);
  assert.equal(details.body.status, "ok");
  for (const field of ["queued", "running", "deadLetters", "maintenanceFailures"]) {
    assert.equal(typeof details.body.queue[field], "number", field);
  }
});

Deno.test(
  { name: "every response carries X-Response-Time and X-Troupe-Version", ...opts },
  async () => {
    for (const path of ["/api/health", "/api/jobs/nope", "/api/nowhere"]) {
      const res = await call(path);
      assert.match(res.headers.get("x-response-time") ?? "", /^\d+\.\dms$/, path);
      assert.equal(res.headers.get("x-troupe-version"), TROUPE_VERSION, path);
    }
  },
);

Deno.test({
  name: "a database that is down gives health 503 and other routes a 503 without internals",
  ...opts,
}, async () => {
  const world = await openSetup();
  await world.close(); // closes the database (and everything else) under the app
  const health = await call("/api/health", { world });
  assert.equal(health.status, 503);
  assert.equal(health.body.status, "unavailable");
  const job = await call("/api/jobs/01a20cf1-0000-7000-8000-000000000002", { world });
  assert.equal(job.status, 503);
  assert.equal(job.body.error.code, "DATABASE_UNAVAILABLE");
  assert.ok(Number(job.headers.get("retry-after")) > 0);
  assert.equal(job.body.error.requestId, job.headers.get("x-request-id"));
  assert.doesNotMatch(job.text, /PGlite|closed|stack|\.ts:/i);
});
