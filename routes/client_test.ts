/**
 * The typed client (deploy/client.ts) against the server, and its generated types
 * (deploy/api_types.ts) up to date with the document.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "@troupe/runtime";
import { troupeClient } from "../deploy/client.ts";
import { fullDocument, TYPES_FILE, typesOf } from "../deploy/client_generate.ts";
import { openApiWorld } from "../tests/api_world.ts";
import { waitFor } from "../tests/harness.ts";

const echo = defineActor({
  name: "client.echo",
  input: z.object({ text: z.string() }),
  key: (i) => `client.echo:${i.text}`,
  handler: (input) => ({ echoed: input.text }),
});

Deno.test(
  { name: "deploy/api_types.ts is generated from the current document" },
  async () => {
    const expected = await typesOf(await fullDocument());
    const current = await Deno.readTextFile(TYPES_FILE);
    assert.ok(
      current === expected,
      "deploy/api_types.ts is out of date: deno task client:generate",
    );
  },
);

Deno.test({
  name: "the typed client enqueues, reads and lists jobs, and gets typed errors",
}, async () => {
  const w = await openApiWorld([echo]);
  try {
    const tenant = await w.tenants.createTenant("client");
    const { key } = await w.tenants.createKey(tenant.id);
    const api = troupeClient({
      baseUrl: "http://troupe.test",
      apiKey: key,
      fetch: (request) => Promise.resolve(w.app.fetch(request)),
    });
    const health = await api.GET("/api/v1/health");
    assert.equal(health.response.status, 200);

    const queued = await api.POST("/api/v1/actors/{name}/jobs", {
      params: { path: { name: "client.echo" } },
      body: { input: { text: "hi" } },
    });
    assert.equal(queued.response.status, 202);
    const jobId = queued.data!.jobId;
    assert.equal(queued.response.headers.get("location"), `/api/v1/jobs/${jobId}`);

    const done = await waitFor(async () => {
      const { data } = await api.GET("/api/v1/jobs/{id}", { params: { path: { id: jobId } } });
      return data?.status === "succeeded" ? data : undefined;
    });
    assert.deepEqual(done.result, { echoed: "hi" });
    assert.equal(done.actor, "client.echo");

    const page = await api.GET("/api/v1/jobs", {
      params: { query: { actor: "client.echo", limit: 5 } },
    });
    assert.deepEqual(page.data!.items.map((j) => j.id), [jobId]);

    const bad = await api.GET("/api/v1/jobs", { params: { query: { limit: 0 } } });
    assert.equal(bad.response.status, 400);
    assert.equal(bad.error?.error.code, "VALIDATION_FAILED");

    const missing = await api.GET("/api/v1/jobs/{id}", { params: { path: { id: "nope" } } });
    assert.equal(missing.response.status, 404);
    assert.equal(missing.error?.error.code, "NOT_FOUND");
  } finally {
    await w.close();
  }
});
