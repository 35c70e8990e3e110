/**
 * `GET /metrics` behind its bearer token, and requests recorded by route template through the
 * whole app (`app.request()`, embedded drivers).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "@troupe/runtime";
import { Hono } from "hono";
import { PrometheusMetrics } from "../db/metrics/prometheus.ts";
import { httpMetrics } from "./metrics.ts";
import { openApiWorld } from "../tests/api_world.ts";

const TOKEN = "metrics-token-0123456789";

const echo = defineActor({
  name: "m.echo",
  input: z.object({ n: z.number() }),
  key: (i) => `m.echo:${i.n}`,
  handler: (input) => input,
});

Deno.test({
  name: "/metrics needs its bearer token and labels requests by route template",
}, async () => {
  const sink = new PrometheusMetrics();
  const world = await openApiWorld([echo], () => ({ metrics: { sink, route: { token: TOKEN } } }));
  try {
    const { app, tenants } = world;
    for (const authorization of [undefined, "Bearer wrong", `Basic ${TOKEN}`, `Bearer ${TOKEN}x`]) {
      const res = await app.request("/metrics", {
        headers: authorization ? { authorization } : {},
      });
      assert.equal(res.status, 401, String(authorization));
      const body = await res.json();
      assert.equal(body.error.code, "UNAUTHORIZED");
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
    }

    const key = (await tenants.createKey((await tenants.createTenant("acme")).id)).key;
    const headers = { "x-api-key": key, "content-type": "application/json" };
    const posted = await app.request("/api/actors/m.echo/jobs", {
      method: "POST",
      headers,
      body: JSON.stringify({ input: { n: 1 } }),
    });
    assert.equal(posted.status, 202);
    const { jobId } = await posted.json();
    assert.equal((await app.request(`/api/jobs/${jobId}`, { headers })).status, 200);
    const missing = "01900000-0000-7000-8000-000000000000";
    assert.equal((await app.request(`/api/jobs/${missing}`, { headers })).status, 404);
    assert.equal((await app.request("/api/jobs/x", {})).status, 401);
    assert.equal((await app.request("/nowhere/123")).status, 404);

    const res = await app.request("/metrics", { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const line = (labels: string) =>
      new RegExp(`^troupe_http_requests_total\\{${labels}\\} (\\d+)$`, "m").exec(text)?.[1];
    assert.equal(line('method="POST",route="/api/actors/:name/jobs",status="202"'), "1");
    assert.equal(line('method="GET",route="/api/jobs/:id",status="200"'), "1");
    assert.equal(line('method="GET",route="/api/jobs/:id",status="404"'), "1");
    // Refused by the key middleware: recorded under the middleware's pattern.
    assert.equal(line('method="GET",route="/api/\\*",status="401"'), "1");
    assert.equal(line('method="GET",route="/\\*",status="404"'), "1");
    assert.ok(!text.includes(jobId) && !text.includes(missing) && !text.includes("nowhere"));
  } finally {
    await world.close();
  }
});

Deno.test({
  name: "without a route option the app serves no /metrics but still times requests",
}, async () => {
  const sink = new PrometheusMetrics();
  const world = await openApiWorld([echo], () => ({ metrics: { sink } }));
  try {
    const res = await world.app.request("/metrics", {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(res.status, 404);
    await res.body?.cancel();
    assert.match(
      await sink.render(),
      /troupe_http_requests_total\{method="GET",route="\/\*",status="404"\} 1/,
    );
  } finally {
    await world.close();
  }
});

Deno.test("a handler that throws is recorded with the status onError gave it", async () => {
  const sink = new PrometheusMetrics();
  const app = new Hono();
  app.use("*", httpMetrics(sink));
  app.get("/boom/:id", () => {
    throw new Error("broken");
  });
  app.onError((_err, c) => c.json({ error: { code: "INTERNAL", message: "internal" } }, 500));
  const res = await app.request("/boom/7");
  assert.equal(res.status, 500);
  await res.body?.cancel();
  assert.match(
    await sink.render(),
    /^troupe_http_requests_total\{method="GET",route="\/boom\/:id",status="500"\} 1$/m,
  );
});
