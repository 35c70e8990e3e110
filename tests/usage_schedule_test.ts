/**
 * Scheduled syncs: the tick starts a due source's sync once per slot however many instances
 * tick at once, catches a missed run up once (visible in the history), skips a slot while a
 * sync still runs, and runs as the `usage.tick` actor on the table queue and through QStash.
 */
import assert from "node:assert/strict";
import { tick } from "../actors/usage/schedule.ts";
import { generateReports, generateUsage } from "./fixtures/usage_api.ts";
import { postgresTarget, targets, waitFor } from "./harness.ts";
import { openUsageWorld, type UsageWorld } from "./usage_world.ts";

const drivers = targets.filter((t) => t.name !== "neon");

async function setNextRun(w: UsageWorld, id: string, at: Date) {
  await w.tdb.db.query("UPDATE troupe_usage_sources SET next_run_at = $2 WHERE id = $1", [
    id,
    at.toISOString(),
  ]);
}

async function nextRun(w: UsageWorld, id: string): Promise<Date> {
  const [r] = await w.tdb.db.query<{ next_run_at: string }>(
    "SELECT next_run_at FROM troupe_usage_sources WHERE id = $1",
    [id],
  );
  return new Date(r!.next_run_at);
}

for (const target of drivers) {
  const name = (what: string) => `usage schedule [${target.name}]: ${what}`;

  Deno.test(
    { name: name("a due slot starts one sync across instances ticking at once") },
    async () => {
      const w = await openUsageWorld(target, {
        messages: generateUsage({ count: 30, reports: 3 }),
        reports: generateReports(3),
      });
      try {
        const id = await w.addSource({ schedule: 30 });
        const slot = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000);
        await setNextRun(w, id, slot);
        const started = (await Promise.all([tick(w.deps), tick(w.deps), tick(w.deps)])).flat();
        assert.equal(started.length, 1, `started ${started.length}`);
        const sync = await w.settled(id, started[0]!);
        assert.equal(sync.status, "succeeded");
        assert.equal(sync.trigger, "schedule");
        assert.equal(sync.scheduledFor, slot.toISOString());
        assert.ok((await nextRun(w, id)).getTime() > Date.now(), "the next slot is ahead");
        assert.deepEqual(await tick(w.deps), [], "nothing due any more");
        const { body } = await w.call("GET", `/api/v1/sources/${id}/syncs`);
        assert.equal(body.items.length, 1);
      } finally {
        await w.close();
      }
    },
  );

  Deno.test(
    { name: name("runs missed while nothing ran are caught up once") },
    async () => {
      const w = await openUsageWorld(target, {
        messages: generateUsage({ count: 10, reports: 2 }),
      });
      try {
        const id = await w.addSource({ schedule: "*/30 * * * *" });
        const missed = new Date(Math.floor(Date.now() / 1_800_000) * 1_800_000 - 3 * 3_600_000);
        await setNextRun(w, id, missed);
        const started = await tick(w.deps);
        assert.equal(started.length, 1);
        const sync = await w.settled(id, started[0]!);
        assert.equal(sync.trigger, "catch-up");
        assert.equal(sync.scheduledFor, missed.toISOString());
        assert.deepEqual(await tick(w.deps), [], "six missed slots, one catch-up");
        const next = await nextRun(w, id);
        assert.ok(next.getTime() > Date.now() && next.getUTCMinutes() % 30 === 0);
      } finally {
        await w.close();
      }
    },
  );

  Deno.test({ name: name("a slot met by a running sync is skipped") }, async () => {
    const w = await openUsageWorld(target, {
      messages: generateUsage({ count: 200, reports: 2 }),
      latencyMs: 40,
    });
    try {
      const id = await w.addSource({ schedule: 30, pageSize: 20 });
      const running = await w.call("POST", `/api/v1/sources/${id}/sync`);
      await setNextRun(w, id, new Date(Date.now() - 60_000));
      assert.deepEqual(await tick(w.deps), []);
      assert.ok((await nextRun(w, id)).getTime() > Date.now());
      await w.settled(id, running.body.jobId);
      const { body } = await w.call("GET", `/api/v1/sources/${id}/syncs`);
      assert.equal(body.items.length, 1);
    } finally {
      await w.close();
    }
  });
}

for (const transport of ["table", "qstash"] as const) {
  Deno.test({
    name: `usage schedule [${transport}]: the usage.tick actor starts due syncs`,
  }, async () => {
    const w = await openUsageWorld(postgresTarget, {
      messages: generateUsage({ count: 40, reports: 4 }),
      reports: generateReports(4),
    }, { transport });
    try {
      const id = await w.addSource({ schedule: 30 });
      await setNextRun(w, id, new Date(Date.now() - 60_000));
      const { job } = await w.runtime.fireSchedule("usage.tick");
      const done = await waitFor(async () => {
        const j = await w.runtime.getJob(job.id);
        return j.status === "succeeded" ? j : null;
      }, { timeoutMs: 30_000, what: "the tick" });
      assert.deepEqual(done.result, { started: 1 });
      const sync = await waitFor(async () => {
        const { body } = await w.call("GET", `/api/v1/sources/${id}/syncs`);
        return body.items[0]?.status === "succeeded" ? body.items[0] : null;
      }, { timeoutMs: 30_000, what: "the scheduled sync" });
      assert.equal(sync.messages.new, 40);
      assert.equal(sync.trigger, "schedule");
    } finally {
      await w.close();
    }
  });
}
