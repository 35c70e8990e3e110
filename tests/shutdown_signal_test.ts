/**
 * SIGINT on the real server with a handler running: the process exits within 5 s, and the
 * handler's lease is given back (its job can be claimed at once, not after LEASE_MS).
 */
import assert from "node:assert/strict";
import pg from "pg";
import { createPgDatabase, waitFor } from "./harness.ts";
import { freePort, untilUp } from "./start_task.ts";

const SERVER = new URL("./fixtures/long_server.ts", import.meta.url).pathname;
const KEY = "trp_" + "s".repeat(32);

Deno.test({
  name: "SIGINT with a long handler running: exit under 5 s, lease given back",
}, async () => {
  const database = await createPgDatabase();
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER],
    env: {
      PORT: String(port),
      LOG_LEVEL: "warn",
      DATA_DIR: "/tmp/troupe-shutdown-unused",
      DATABASE_URL: database.url,
      DEV_API_KEY: KEY,
      LEASE_MS: "60000",
    },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    await untilUp(`${base}/api/health`, server, { timeoutMs: 90_000 });
    const res = await fetch(`${base}/api/actors/stop.long/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": KEY },
      body: JSON.stringify({ input: {} }),
    });
    assert.equal(res.status, 202);
    const { jobId } = await res.json();
    await waitFor(async () => {
      const rows = await admin.query("SELECT status FROM troupe_jobs WHERE id = $1", [jobId]);
      return rows.rows[0]?.status === "running";
    }, { timeoutMs: 30_000, what: "the long handler to start" });

    const signalled = performance.now();
    server.kill("SIGINT");
    const status = await server.status;
    const stopMs = performance.now() - signalled;
    assert.equal(status.code, 0);
    assert.ok(stopMs < 5_000, `the stop took ${stopMs.toFixed(0)} ms`);

    // Given back, not left to lapse: nobody holds the key's lease any more.
    const lease = await admin.query(
      `SELECT s.lease_owner, s.lease_until > now() AS held FROM troupe_actor_state s
       WHERE s.key = 'stop.long:one'`,
    );
    assert.equal(lease.rows[0]?.held ?? false, false, JSON.stringify(lease.rows));
  } finally {
    try {
      server.kill("SIGKILL");
    } catch { /* exited */ }
    await server.status;
    await admin.end();
    await database.drop();
  }
});
