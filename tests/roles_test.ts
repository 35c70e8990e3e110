/**
 * ROLE with the table queue (self-hosted): an api instance claims nothing, a worker instance
 * claims and serves health only. Both composed in this process on one PostgreSQL database; the
 * same actor is registered in each with a handler naming its instance.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "@troupe/runtime";
import { compose } from "../main.ts";
import { loadConfig } from "../deploy/config.ts";
import { createPgDatabase, waitFor } from "./harness.ts";

const KEY = "roles-test-key-0123456789abcdefghij";

const recorder = (instance: string, ranOn: string[]) =>
  defineActor({
    name: "roles.where",
    input: z.object({ n: z.number() }),
    handler: (input) => {
      ranOn.push(instance);
      return Promise.resolve(input.n);
    },
  });

Deno.test({
  name: "ROLE=api claims nothing; ROLE=worker runs the jobs and serves health only",
}, async () => {
  const database = await createPgDatabase();
  const config = loadConfig({
    DATABASE_URL: database.url,
    DATABASE_DRIVER: "pg",
    DEV_API_KEY: KEY,
    LOG_LEVEL: "silent",
    DATA_DIR: "/nonexistent/troupe-roles",
  });
  const ranOn: string[] = [];
  const api = await compose(config, [recorder("api", ranOn)], { role: "api" });
  let worker: Awaited<ReturnType<typeof compose>> | null = null;
  try {
    const headers = { "content-type": "application/json", "x-api-key": KEY };
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) {
      const res = await api.fetch(
        new Request("http://api/api/actors/roles.where/jobs", {
          method: "POST",
          headers,
          body: JSON.stringify({ input: { n } }),
        }),
      );
      assert.equal(res.status, 202, await res.clone().text());
      ids.push((await res.json()).jobId);
    }
    worker = await compose(config, [recorder("worker", ranOn)], { role: "worker" });
    for (const id of ids) {
      await waitFor(async () => (await worker!.runtime.getJob(id)).status === "succeeded", {
        what: `job ${id} to succeed`,
      });
    }
    assert.deepEqual(ranOn, Array(5).fill("worker"));

    const health = await worker.fetch(new Request("http://worker/api/health"));
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const jobs = await worker.fetch(new Request("http://worker/api/jobs", { headers }));
    assert.equal(jobs.status, 404);
    assert.equal((await jobs.json()).error.code, "NOT_FOUND");
    // The api still reads what the worker did.
    const read = await api.fetch(new Request(`http://api/api/jobs/${ids[0]}`, { headers }));
    assert.equal((await read.json()).status, "succeeded");
  } finally {
    await worker?.close();
    await api.close();
    await database.drop();
  }
});
