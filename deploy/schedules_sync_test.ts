/**
 * `schedules:sync` against the QStash stand-in: creates what is missing, updates what changed,
 * deletes what Troupe no longer declares, leaves other schedules alone, and a second run
 * changes nothing.
 */
import assert from "node:assert/strict";
import { Client } from "@upstash/qstash";
import { z } from "zod";
import { defineActor } from "@troupe/runtime";
import { startQStash } from "../tests/fixtures/qstash_server.ts";
import { deployedActors } from "../main.ts";
import { loadConfig } from "./config.ts";
import { desiredSchedules, syncSchedules } from "./schedules_sync.ts";

const actor = (name: string, schedule?: string) =>
  defineActor({
    name,
    input: z.object({}),
    ...(schedule ? { schedule, scheduleInput: {} } : {}),
    handler: () => {},
  });

Deno.test({
  name: "schedules:sync reconciles QStash schedules with the actors",
  // @upstash/qstash's `schedules.delete()` never reads its response body (a request made with
  // `parseResponseAsJson: false` returns before the body), and the client takes no `fetch` of
  // ours that could: the body stays open until collected.
  sanitizeResources: false,
}, async () => {
  const qstash = await startQStash({
    token: "t",
    currentSigningKey: "sig_a",
    nextSigningKey: "sig_b",
  });
  const client = new Client({ baseUrl: qstash.url, token: "t" });
  const base = "https://troupe.example.com";
  try {
    await client.schedules.create({
      destination: "https://elsewhere.example.com/hook",
      cron: "0 * * * *",
      scheduleId: "someone-elses",
    });
    const v1 = [actor("a.daily", "17 3 * * *"), actor("b.hourly", "0 * * * *"), actor("c.none")];
    const first = await syncSchedules(client, desiredSchedules(v1, base));
    assert.deepEqual(first.created.sort(), [
      "troupe-a-daily",
      "troupe-b-hourly",
      "troupe-system-maintain",
    ]);
    assert.deepEqual([first.updated, first.deleted], [[], []]);

    const again = await syncSchedules(client, desiredSchedules(v1, base));
    assert.deepEqual(again, {
      created: [],
      updated: [],
      deleted: [],
      unchanged: ["troupe-a-daily", "troupe-b-hourly", "troupe-system-maintain"],
    });

    const v2 = [actor("a.daily", "30 4 * * *"), actor("d.new", "*/5 * * * *")];
    const third = await syncSchedules(client, desiredSchedules(v2, base));
    assert.deepEqual(third.created, ["troupe-d-new"]);
    assert.deepEqual(third.updated, ["troupe-a-daily"]);
    assert.deepEqual(third.deleted, ["troupe-b-hourly"]);

    const all = await client.schedules.list();
    const byId = new Map(all.map((s) => [s.scheduleId, s]));
    assert.deepEqual([...byId.keys()].sort(), [
      "someone-elses",
      "troupe-a-daily",
      "troupe-d-new",
      "troupe-system-maintain",
    ]);
    // The maintenance pass (reap, outbox relay, due schedules) runs every minute.
    assert.equal(byId.get("troupe-system-maintain")!.cron, "* * * * *");
    assert.equal(
      byId.get("troupe-system-maintain")!.destination,
      `${base}/schedules/system.maintain`,
    );
    assert.equal(byId.get("troupe-a-daily")!.cron, "30 4 * * *");
    assert.equal(byId.get("troupe-d-new")!.destination, `${base}/schedules/d.new`);
  } finally {
    await qstash.close();
  }
});

Deno.test("schedules:sync declares the workload actors' own schedules (the usage tick)", () => {
  const config = loadConfig({});
  const noDb = { query: () => Promise.reject(new Error("not used")) };
  const specs = desiredSchedules(deployedActors(config, noDb), "https://troupe.example.com");
  const tick = specs.find((s) => s.scheduleId === "troupe-usage-tick");
  assert.deepEqual(tick, {
    scheduleId: "troupe-usage-tick",
    cron: "* * * * *",
    destination: "https://troupe.example.com/schedules/usage.tick",
  });
});
