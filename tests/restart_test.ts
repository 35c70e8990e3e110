/**
 * The embedded default survives a restart: jobs accepted before a stop run after the start.
 */
import assert from "node:assert/strict";
import { compose } from "../main.ts";
import { loadConfig } from "../deploy/config.ts";
import { waitFor } from "./harness.ts";

Deno.test({
  name: "jobs accepted by the embedded default survive a restart and then run",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-restart-" });
  try {
    const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: "silent" });
    let troupe = await compose(config);
    assert.ok(troupe.newDevKey, "the first embedded start makes a dev key");
    // Stop the runtime first so the job stays queued, as if the process died after accepting it.
    await troupe.runtime.stop();
    const res = await troupe.app.request("/api/actors/system.echo/jobs", {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": troupe.newDevKey! },
      body: JSON.stringify({ input: { message: "persisted" } }),
    });
    assert.equal(res.status, 202);
    const { jobId } = await res.json();
    await troupe.close();

    troupe = await compose(config);
    try {
      const job = await waitFor(async () => {
        const j = await troupe.runtime.getJob(jobId);
        return j.status === "succeeded" ? j : null;
      });
      assert.equal((job.result as { message: string }).message, "persisted");
    } finally {
      await troupe.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
