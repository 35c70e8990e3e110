/**
 * The edge entry (deploy/edge.ts) as Deno Deploy runs it, on the production stand-ins (Neon
 * bridge, QStash, Upstash Redis bridge), on this Deno and on Deploy's pinned version, under
 * the strictest flags (`--deny-write --deny-run --deny-ffi`): before `deno task migrate` it
 * exits at once naming the missing migrations; after, it serves a job through QStash and a
 * small CSV upload.
 */
import assert from "node:assert/strict";
import { createPgDatabase, waitFor } from "./harness.ts";
import { startNeonBridge } from "./fixtures/neon_bridge.ts";
import { startQStash } from "./fixtures/qstash_server.ts";
import { startRedisBridge } from "./fixtures/upstash_redis_bridge.ts";
import { freePort, untilUp } from "./start_task.ts";
import { denoBinary, DEPLOY_DENO_VERSION } from "../deploy/deploy_check.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const KEY = "edge-test-key-0123456789abcdefghij";
const QSTASH = { token: "edge-qstash", current: "sig_edge_current", next: "sig_edge_next" };
const STRICT = ["run", "--allow-all", "--deny-write", "--deny-run", "--deny-ffi"];

let deployDeno: string | null = null;
try {
  deployDeno = await denoBinary(DEPLOY_DENO_VERSION);
} catch (err) {
  console.warn(`edge_test: Deno ${DEPLOY_DENO_VERSION} skipped: npm could not provide it (${err})`);
}

for (const [label, deno] of [["this Deno", Deno.execPath()], [DEPLOY_DENO_VERSION, deployDeno]]) {
  Deno.test({
    name:
      `edge entry on ${label}: fails fast before migrate, then serves a job and a CSV (strict flags)`,
    ignore: deno === null,
  }, async () => {
    const database = await createPgDatabase();
    const neon = await startNeonBridge();
    const redis = await startRedisBridge({ token: "edge-redis" });
    const qstash = await startQStash({
      token: QSTASH.token,
      currentSigningKey: QSTASH.current,
      nextSigningKey: QSTASH.next,
      retryDelayMs: () => 50,
    });
    const port = freePort();
    const env = {
      PORT: String(port),
      LOG_LEVEL: "warn",
      DATA_DIR: "/nonexistent/troupe-edge",
      DATABASE_URL: database.url,
      NEON_WS_PROXY: neon.wsProxy,
      QSTASH_URL: qstash.url,
      QSTASH_TOKEN: QSTASH.token,
      QSTASH_CURRENT_SIGNING_KEY: QSTASH.current,
      QSTASH_NEXT_SIGNING_KEY: QSTASH.next,
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      UPSTASH_REDIS_REST_URL: redis.url,
      UPSTASH_REDIS_REST_TOKEN: "edge-redis",
      DEV_API_KEY: KEY,
    };
    const edge = (stdout: "null" | "piped") =>
      new Deno.Command(deno!, {
        args: [...STRICT, "deploy/edge.ts"],
        cwd: ROOT,
        env,
        stdout,
        stderr: "piped",
      });
    let server: Deno.ChildProcess | null = null;
    let piping: Promise<void> = Promise.resolve();
    try {
      const early = await edge("piped").output();
      const said = new TextDecoder().decode(early.stderr);
      assert.equal(early.code, 1, said);
      assert.match(said, /lacks \d+ migration\(s\).*runtime\/0000_core.*deno task migrate/s);

      const migrated = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "deploy/migrate.ts"],
        cwd: ROOT,
        env,
      }).output();
      assert.ok(migrated.success, new TextDecoder().decode(migrated.stderr));
      assert.match(new TextDecoder().decode(migrated.stdout), /^applied \d+: runtime\/0000_core/);

      server = edge("null").spawn();
      piping = server.stderr.pipeTo(Deno.stderr.writable, { preventClose: true }).catch(() => {});
      await untilUp(`http://127.0.0.1:${port}/api/health`, server);
      const headers = { "content-type": "application/json", "x-api-key": KEY };
      const posted = await fetch(`http://127.0.0.1:${port}/api/actors/system.echo/jobs`, {
        method: "POST",
        headers,
        body: JSON.stringify({ input: { message: "at the edge" } }),
      });
      assert.equal(posted.status, 202, await posted.clone().text());
      const { jobId } = await posted.json();
      let job: { status: string; result?: unknown } | null = null;
      await waitFor(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/api/jobs/${jobId}`, { headers });
        job = await res.json();
        return job?.status === "succeeded";
      }, { timeoutMs: 30_000, intervalMs: 100, what: "the echo job to succeed" });
      assert.equal(job!.status, "succeeded");

      // A small CSV: streamed into PostgreSQL, split, parsed and profiled, no disk written.
      const csv = "id,city,amount\n" +
        Array.from({ length: 200 }, (_, i) => `${i},c${i % 7},${i * 1.5}`).join("\n") + "\n";
      const up = await fetch(`http://127.0.0.1:${port}/api/datasets?name=edge`, {
        method: "POST",
        headers: { "content-type": "text/csv", "x-api-key": KEY },
        body: csv,
      });
      assert.equal(up.status, 202, await up.clone().text());
      const { datasetId } = await up.json();
      const dataset = await waitFor(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/api/datasets/${datasetId}`, { headers });
        const d = await res.json();
        return d.status === "ready" || d.status === "failed" ? d : null;
      }, { timeoutMs: 30_000, intervalMs: 100, what: "the dataset to settle" });
      assert.equal(dataset.status, "ready", JSON.stringify(dataset.error));
      assert.equal(dataset.rowCount, 200);
    } finally {
      if (server) {
        server.kill("SIGTERM");
        await server.status;
        await piping;
      }
      await qstash.close();
      await redis.close();
      await neon.close();
      await database.drop();
    }
  });
}
