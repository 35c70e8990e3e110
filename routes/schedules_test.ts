/**
 * `GET /api/schedules`: an admin key sees each scheduled actor's next run and the job its latest
 * slot made; other keys get 403.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor, jsonLogger, lastSlot, parseSchedule } from "@troupe/runtime";
import { openApiWorld } from "../tests/api_world.ts";
import { waitFor } from "../tests/harness.ts";
import { createApp } from "./app.ts";

const tick = defineActor({
  name: "s.tick",
  input: z.object({}),
  schedule: "*/5 * * * *",
  scheduleInput: {},
  handler: () => "ticked",
});
const plain = defineActor({ name: "s.plain", input: z.object({}), handler: () => {} });

Deno.test(
  "schedules: next run and the latest slot's job, admin only",
  async () => {
    const w = await openApiWorld([tick, plain]);
    try {
      const app = createApp({
        runtime: w.runtime,
        tenants: w.tenants,
        limiter: w.limiter,
        logger: jsonLogger("silent"),
      });
      const t = await w.tenants.createTenant("ops");
      const admin = (await w.tenants.createKey(t.id, { admin: true })).key;
      const user = (await w.tenants.createKey(t.id)).key;
      const get = async (key: string) => {
        const res = await app.request("/api/v1/schedules", { headers: { "x-api-key": key } });
        return { status: res.status, body: await res.json() };
      };
      const refused = await get(user);
      assert.equal(refused.status, 403);
      assert.equal(refused.body.error.code, "FORBIDDEN");

      const before = await get(admin);
      assert.equal(before.status, 200);
      const [entry] = before.body.items.filter((i: { actor: string }) => i.actor === "s.tick");
      assert.ok(entry, JSON.stringify(before.body));
      assert.equal(before.body.items.some((i: { actor: string }) => i.actor === "s.plain"), false);
      assert.equal(entry.cron, "*/5 * * * *");
      assert.ok(Date.parse(entry.nextRunAt) > Date.now());
      assert.equal(new Date(entry.nextRunAt).getUTCMinutes() % 5, 0);
      assert.equal(entry.lastRun, null, "the slot has not fired here");

      // The latest slot fires (as the cron would), and its job shows up.
      const slot = lastSlot(parseSchedule("*/5 * * * *"), new Date())!;
      const { job } = await w.runtime.fireSchedule("s.tick", slot);
      await waitFor(async () => (await w.runtime.getJob(job.id)).status === "succeeded", {
        what: "the scheduled job",
      });
      const after = (await get(admin)).body.items.find((i: { actor: string }) =>
        i.actor === "s.tick"
      );
      assert.equal(after.lastSlotAt, slot.toISOString());
      assert.equal(after.lastRun.jobId, job.id);
      assert.equal(after.lastRun.status, "succeeded");
      assert.ok(after.lastRun.finishedAt);
    } finally {
      await w.close();
    }
  },
);

Deno.test("schedules: pause and resume, held in the database, admin only", async () => {
  const w = await openApiWorld([tick, plain]);
  try {
    const t = await w.tenants.createTenant("ops");
    const admin = (await w.tenants.createKey(t.id, { admin: true })).key;
    const user = (await w.tenants.createKey(t.id)).key;
    const post = async (key: string, path: string) => {
      const res = await w.app.request(`/api/v1/schedules/${path}`, {
        method: "POST",
        headers: { "x-api-key": key },
      });
      return { status: res.status, body: await res.json() };
    };
    assert.equal((await post(user, "s.tick/pause")).status, 403);
    assert.equal((await post(admin, "s.plain/pause")).status, 404, "no schedule");
    assert.equal((await post(admin, "s.nope/pause")).status, 404);

    const paused = await post(admin, "s.tick/pause");
    assert.equal(paused.status, 200);
    assert.ok(paused.body.pausedAt);
    const again = await post(admin, "s.tick/pause");
    assert.equal(again.body.pausedAt, paused.body.pausedAt, "idempotent");
    const list = await w.app.request("/api/v1/schedules", { headers: { "x-api-key": admin } });
    const entry = (await list.json()).items.find((i: { actor: string }) => i.actor === "s.tick");
    assert.equal(entry.pausedAt, paused.body.pausedAt);

    // A slot of a paused schedule makes no job, on the cron's path and the maintenance pass.
    const slot = lastSlot(parseSchedule("*/5 * * * *"), new Date())!;
    const skipped = await w.runtime.fireDueSchedule("s.tick", slot);
    assert.deepEqual(skipped, { job: null, created: false, paused: true });
    const pass = await w.runtime.maintenancePass(slot);
    assert.deepEqual(pass.fired, []);
    assert.equal((await w.runtime.listJobs({ actor: "s.tick" })).items.length, 0);

    const resumed = await post(admin, "s.tick/resume");
    assert.equal(resumed.status, 200);
    assert.equal(resumed.body.pausedAt, null);
    const fired = await w.runtime.fireDueSchedule("s.tick", slot);
    assert.equal(fired.created, true);
    assert.equal(fired.paused, false);
    const audit = await w.tdb.db.query<{ action: string }>(
      "SELECT action FROM troupe_audit_log WHERE action LIKE 'schedule.%' ORDER BY id",
    );
    assert.deepEqual(audit.map((a) => a.action), [
      "schedule.pause",
      "schedule.pause",
      "schedule.resume",
    ]);
  } finally {
    await w.close();
  }
});
