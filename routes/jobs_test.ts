/**
 * The jobs API's guards through `app.request()` (embedded drivers, or the production ones with
 * TEST_API_DRIVERS=production): an Idempotency-Key reused with another body is refused, and
 * health shows the failed background tasks.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "../actors/runtime/define.ts";
import { openApiWorld } from "../tests/api_world.ts";
import { countRows } from "../tests/harness.ts";

const echo = defineActor({
  name: "j.echo",
  input: z.object({ n: z.number().int(), note: z.string().default("") }),
  key: (i) => `j.echo:${i.n}`,
  handler: (input) => ({ n: input.n }),
});

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({ name: "an Idempotency-Key reused with another body is a 409", ...opts }, async () => {
  const world = await openApiWorld([echo], () => ({
    perIpPerMinute: 100_000,
    perKeyPerMinute: 100_000,
  }));
  try {
    const { tenants, app } = world;
    const key = (await tenants.createKey((await tenants.createTenant("acme")).id)).key;
    const post = async (body: unknown, idempotencyKey?: string) => {
      const headers = new Headers({ "content-type": "application/json", "x-api-key": key });
      if (idempotencyKey) headers.set("idempotency-key", idempotencyKey);
      const res = await app.request("/api/actors/j.echo/jobs", {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };

    const first = await post({ input: { n: 1, note: "a" } }, "order-1");
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const jobs = await countRows(world.tdb.db, "troupe_jobs");

    const repeat = await post({ input: { note: "a", n: 1 } }, "order-1");
    assert.equal(repeat.status, 200, "the same body in another key order is a repeat");
    assert.equal(repeat.body.jobId, first.body.jobId);

    const reused = await post({ input: { n: 2, note: "a" } }, "order-1");
    assert.equal(reused.status, 409, JSON.stringify(reused.body));
    assert.equal(reused.body.error.code, "IDEMPOTENCY_KEY_REUSED");
    assert.equal(typeof reused.body.error.message, "string");
    assert.deepEqual(reused.body.error.details, { idempotencyKey: "order-1" });

    // The key in the body is the same key.
    const inBody = await post({ input: { n: 1, note: "b" }, idempotencyKey: "order-1" });
    assert.equal(inBody.status, 409);
    assert.equal(inBody.body.error.code, "IDEMPOTENCY_KEY_REUSED");
    assert.equal(await countRows(world.tdb.db, "troupe_jobs"), jobs, "nothing was enqueued");

    const health = await app.request("/api/health/details", { headers: { "x-api-key": key } });
    const status = await health.json();
    assert.equal(health.status, 200, JSON.stringify(status));
    assert.equal(status.queue.maintenanceFailures, 0);
  } finally {
    await world.close();
  }
});
