/**
 * `GET /api/v1/workers`, `POST /api/v1/actors/:name/pause|resume`, `GET /api/v1/actors/stats`
 * and `GET .../keys`, on the table queue (embedded world) and on QStash (production world: the
 * QStash stand-in delivering signed webhooks to the app). A paused actor's enqueues are accepted and wait without using an
 * attempt; after a resume they run.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "@troupe/runtime";
import { openApiWorld } from "../tests/api_world.ts";
import { sleep, waitFor } from "../tests/harness.ts";

let release: () => void = () => {};
const slow = defineActor({
  name: "op.slow",
  input: z.object({ tenantId: z.string().optional() }),
  retries: 0,
  handler: async () => {
    await new Promise<void>((r) => release = r);
    return "released";
  },
});
const work = defineActor({
  name: "op.work",
  input: z.object({ n: z.number().int() }),
  key: (i) => `op.work:${i.n}`,
  initialState: () => ({ runs: 0 }),
  handler: (input, ctx) => {
    ctx.setState({ runs: ctx.state.runs + 1 });
    return input.n;
  },
});

for (const drivers of ["embedded", "production"] as const) {
  Deno.test(`operations (${drivers}): workers, pause and resume, keys`, async () => {
    const w = await openApiWorld([slow, work], () => ({}), {
      drivers,
      runtime: { pauseRecheckMs: 1000 },
    });
    try {
      const a = await w.tenants.createTenant("ops-a");
      const b = await w.tenants.createTenant("ops-b");
      const admin = (await w.tenants.createKey(a.id, { admin: true })).key;
      const userA = (await w.tenants.createKey(a.id)).key;
      const userB = (await w.tenants.createKey(b.id)).key;
      const call = async (method: string, path: string, key: string, body?: unknown) => {
        const res = await w.app.request(`/api/v1${path}`, {
          method,
          headers: { "x-api-key": key, "content-type": "application/json" },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        return { status: res.status, body: await res.json() };
      };

      // A job running under this instance's lease, and a delayed one.
      const running = await call("POST", "/actors/op.slow/jobs", userA, { input: {} });
      assert.equal(running.status, 202);
      const runningId = running.body.jobId;
      await waitFor(async () => (await w.runtime.getJob(runningId)).status === "running", {
        what: "op.slow running",
        timeoutMs: 20_000,
      });
      const delayed = await call("POST", "/actors/op.work/jobs", userA, {
        input: { n: 99 },
        delayMs: 600_000,
      });
      assert.equal(delayed.status, 202);
      const delayedId = delayed.body.jobId;

      const all = await call("GET", "/workers", admin);
      assert.equal(all.status, 200, JSON.stringify(all.body));
      const me = all.body.instances.find((i: { id: string }) => i.id === w.runtime.workerId);
      assert.ok(me, JSON.stringify(all.body.instances));
      assert.equal(me.mode, drivers === "embedded" ? "pull" : "push");
      assert.ok(me.idleSeconds < 60);
      assert.ok(typeof me.pid === "number", "an admin sees the pid");
      assert.deepEqual(me.active.map((j: { id: string }) => j.id), [runningId]);
      assert.ok(all.body.scheduled.some((j: { id: string }) => j.id === delayedId));

      const mine = await call("GET", "/workers", userA);
      const meA = mine.body.instances.find((i: { id: string }) => i.id === w.runtime.workerId);
      assert.equal(meA.pid, null, "a tenant key sees no pid");
      assert.equal(meA.host, null);
      assert.deepEqual(meA.active.map((j: { id: string }) => j.id), [runningId]);
      const theirs = await call("GET", "/workers", userB);
      const meB = theirs.body.instances.find((i: { id: string }) => i.id === w.runtime.workerId);
      assert.deepEqual(meB.active, [], "another tenant's running job is not shown");
      assert.deepEqual(theirs.body.scheduled, []);
      assert.equal((await call("GET", "/workers?limit=0", admin)).status, 400);
      release();

      // Pause: admin only; unknown actor 404; enqueues still accepted and wait.
      assert.equal((await call("POST", "/actors/op.work/pause", userA)).status, 403);
      assert.equal((await call("POST", "/actors/op.nope/pause", admin)).status, 404);
      const paused = await call("POST", "/actors/op.work/pause", admin);
      assert.equal(paused.status, 200, JSON.stringify(paused.body));
      assert.equal(paused.body.paused, true);
      const queued = await call("POST", "/actors/op.work/jobs", userA, { input: { n: 1 } });
      assert.equal(queued.status, 202, "enqueues are accepted while paused");
      const jobId = queued.body.jobId;
      await sleep(2500); // past two rechecks of a pushed delivery
      const waiting = await w.runtime.getJob(jobId);
      assert.equal(waiting.status, "queued");
      assert.equal(waiting.attempts, 0, "no attempt used while paused");
      const listed = await call("GET", "/workers", admin);
      assert.deepEqual(listed.body.paused.map((p: { actor: string }) => p.actor), ["op.work"]);

      assert.equal((await call("POST", "/actors/op.work/resume", userA)).status, 403);
      const resumed = await call("POST", "/actors/op.work/resume", admin);
      assert.equal(resumed.status, 200);
      assert.equal(resumed.body.paused, false);
      const done = await waitFor(async () => {
        const j = await w.runtime.getJob(jobId);
        return j.status === "succeeded" ? j : null;
      }, { what: "the job after resume", timeoutMs: 20_000 });
      assert.equal(done.attempts, 1);
      assert.deepEqual((await call("GET", "/workers", admin)).body.paused, []);

      // The hour's figures: op.work's job counted for tenant A and the admin, not tenant B.
      const statsOf = async (key: string) =>
        (await call("GET", "/actors/stats", key)).body.actors.find((s: { actor: string }) =>
          s.actor === "op.work"
        );
      const forA = await statsOf(userA);
      assert.equal(forA.succeeded, 1);
      assert.equal(forA.successRate, 1);
      assert.ok(forA.p50Ms >= 0 && forA.p99Ms >= forA.p50Ms);
      assert.equal((await statsOf(admin)).succeeded, 1);
      assert.equal(await statsOf(userB), undefined);

      // The actor's keys: admin only, with state and no live lease once done.
      assert.equal((await call("GET", "/actors/op.work/keys", userA)).status, 403);
      const keys = await call("GET", "/actors/op.work/keys", admin);
      assert.equal(keys.status, 200);
      assert.deepEqual(keys.body.items.map((k: { key: string }) => k.key), ["op.work:1"]);
      assert.deepEqual(keys.body.items[0].state, { runs: 1 });
      assert.equal(keys.body.items[0].leaseOwner, null);
    } finally {
      release();
      await w.close();
    }
  });
}
