/**
 * The jobs API's guards through `app.request()` (embedded drivers, or the production ones with
 * TEST_API_DRIVERS=production): an Idempotency-Key reused with another body is refused, and
 * health shows the failed background tasks.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "@troupe/runtime";
import { openApiWorld } from "../tests/api_world.ts";
import { countRows, parseSse, waitFor } from "../tests/harness.ts";

const echo = defineActor({
  name: "j.echo",
  input: z.object({ n: z.number().int(), note: z.string().default("") }),
  key: (i) => `j.echo:${i.n}`,
  handler: (input) => ({ n: input.n }),
});

Deno.test("an Idempotency-Key reused with another body is a 409", async () => {
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

/**
 * `j.step` sends itself on until `n` is 0 (from 3), reporting progress, and completes the
 * pipeline at 0; step `3 - n` waits until `gate.released` exceeds it (or its job is aborted).
 */
function stepper(gate: { released: number }) {
  return defineActor({
    name: "j.step",
    input: z.object({ n: z.number().int() }),
    key: (i) => `j.step:${i.n}`,
    handler: async ({ n }, ctx) => {
      while (gate.released <= 3 - n) {
        ctx.signal.throwIfAborted();
        await new Promise((r) => setTimeout(r, 10));
      }
      ctx.pipeline.progress(3 - n, 3, "steps");
      if (n > 0) ctx.send("j.step", { n: n - 1 });
      else ctx.pipeline.complete({ steps: 3 });
    },
  });
}

/** Reads an SSE stream to its end: the events' names and data. */
async function readEvents(res: Response) {
  return parseSse(await res.text());
}

Deno.test(
  "a pipeline's job follows its jobs: counts, list, events until it ends",
  async () => {
    const gate = { released: 0 };
    const world = await openApiWorld([stepper(gate)], () => ({
      perIpPerMinute: 100_000,
      perKeyPerMinute: 100_000,
    }));
    try {
      const { tenants, app, runtime } = world;
      const tenant = await tenants.createTenant("acme");
      const key = (await tenants.createKey(tenant.id)).key;
      const get = async (path: string) => {
        const res = await app.request(path, { headers: { "x-api-key": key } });
        return { status: res.status, body: await res.json() };
      };
      const { job } = await runtime.startPipeline("j.steps", {
        actor: "j.step",
        input: { n: 3 },
      }, { tenantId: tenant.id });
      const events = Promise.resolve(
        app.request(`/api/jobs/${job.id}/events`, { headers: { "x-api-key": key } }),
      ).then(readEvents);
      const first = await get(`/api/jobs/${job.id}`);
      assert.equal(first.status, 200);
      assert.equal(first.body.kind, "pipeline");
      assert.equal(first.body.status, "running");
      assert.equal(first.body.jobs.total, 1);
      // Step by step: the pipeline runs while its steps do.
      for (let step = 0; step < 4; step++) {
        gate.released++;
        await waitFor(async () =>
          (await get(`/api/jobs?pipelineId=${job.id}`)).body.items
            .filter((j: { status: string }) => j.status === "succeeded").length > step, {
          what: `step ${step}`,
        });
        if (step < 3) assert.equal((await get(`/api/jobs/${job.id}`)).body.status, "running");
      }
      const seen = await events;
      assert.equal(seen[0]!.event, "job");
      assert.equal(seen.at(-1)!.event, "done");
      assert.equal(seen.at(-1)!.data.status, "succeeded");
      assert.deepEqual(seen.at(-1)!.data.result, { steps: 3 });
      assert.equal(seen.at(-1)!.data.jobs.succeeded, 4);
      // Events came while it ran: the stream did not end at once.
      const running = seen.filter((e) => e.data.status === "running");
      assert.ok(running.length >= 3, `${running.length} running events`);
      const dones = running.map((e) => e.data.pipeline?.done ?? -1);
      assert.ok(dones.some((d) => d > 0), JSON.stringify(dones));
      const listed = await get(`/api/jobs?pipelineId=${job.id}`);
      assert.equal(listed.body.items.length, 4);
      assert.equal((await get("/api/jobs?pipelineId=bad%20id")).status, 400);

      // Cancel: the running step is stopped, the pipeline is cancelled, nothing runs after.
      gate.released = 0;
      const second = await runtime.startPipeline("j.steps", {
        actor: "j.step",
        input: { n: 3 },
      }, { tenantId: tenant.id });
      await waitFor(async () => (await get(`/api/jobs/${second.job.id}`)).body.jobs.running === 1, {
        what: "the first step to run",
      });
      const cancel = await app.request(`/api/jobs/${second.job.id}/cancel`, {
        method: "POST",
        headers: { "x-api-key": key },
      });
      assert.equal(cancel.status, 200);
      assert.equal((await cancel.json()).status, "cancelled");
      const stopped = await waitFor(async () => {
        const j = (await get(`/api/jobs/${second.job.id}`)).body;
        return j.jobs.running === 0 && j.jobs.queued === 0 ? j : null;
      }, { what: "the step to stop" });
      assert.equal(stopped.status, "cancelled");
      assert.equal(stopped.jobs.total, 1);
      assert.equal(stopped.jobs.cancelled, 1);
      const again = await app.request(`/api/jobs/${second.job.id}/cancel`, {
        method: "POST",
        headers: { "x-api-key": key },
      });
      assert.equal(again.status, 409);
      await again.body?.cancel();
    } finally {
      gate.released = 10;
      await world.close();
    }
  },
);
