/**
 * `deno task start` with METRICS_PORT: `/metrics` on its own listener (with METRICS_TOKEN, the
 * token is needed there too), not on PORT; the process stops both on SIGTERM.
 */
import assert from "node:assert/strict";
import { freePort, startTask, untilUp } from "./start_task.ts";

Deno.test({
  name: "METRICS_PORT serves /metrics on its own port and not on PORT",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-metrics-port-" });
  const port = freePort();
  let metricsPort = freePort();
  while (metricsPort === port) metricsPort = freePort();
  const token = "metrics-port-token-0123456789";
  const task = await startTask();
  const server = new Deno.Command(Deno.execPath(), {
    args: task.args,
    cwd: new URL("..", import.meta.url).pathname,
    env: {
      ...task.env,
      DATA_DIR: dir,
      LOG_LEVEL: "warn",
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      METRICS_TOKEN: token,
      EXTRACT_WORKERS: "0",
      DATASET_WORKERS: "0",
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(server.stderr).text();
  try {
    await untilUp(`http://127.0.0.1:${port}/api/health`, server);
    const metrics = `http://127.0.0.1:${metricsPort}/metrics`;
    const refused = await fetch(metrics);
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    // The health check above was timed by the main app.
    const res = await fetch(metrics, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(
      text,
      /^troupe_http_requests_total\{method="GET",route="\/api\/health",status="200"\} \d+$/m,
    );
    assert.match(text, /^troupe_queue_depth\{actor="system\.echo"\} 0$/m);
    const onMain = await fetch(`http://127.0.0.1:${port}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(onMain.status, 404, "not on PORT");
    await onMain.body?.cancel();
  } finally {
    server.kill("SIGTERM");
    const status = await server.status;
    const log = await stderr;
    assert.equal(status.code, 0, log);
    await Deno.remove(dir, { recursive: true });
  }
});
