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
