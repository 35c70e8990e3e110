/**
 * The real entry point as a user runs it: `deno run -A main.ts` with env vars only.
 */
import assert from "node:assert/strict";
import { waitFor, within } from "./harness.ts";
import { slowloris } from "./hostile/http_attacks.ts";
import { freePort, startTask, untilUp } from "./start_task.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

Deno.test("a malformed variable stops the start with a message naming it", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN],
    env: { PORT: "eighty", DATABASE_URL: "mysql://nope", DATA_DIR: "/tmp/troupe-never-used" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.match(stderr, /PORT: /);
  assert.match(stderr, /DATABASE_URL: /);
  assert.doesNotMatch(stderr, /at .*\.ts:\d+/, "no stack trace");
});

Deno.test({
  name: "a port in use or a data directory in use stops the start with one line, no stack trace",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-main-busy-" });
  const port = freePort();
  const task = await startTask();
  const start = (env: Record<string, string>) =>
    new Deno.Command(Deno.execPath(), {
      args: task.args,
      cwd: new URL("..", import.meta.url).pathname,
      env: { ...task.env, DATA_DIR: dir, LOG_LEVEL: "warn", ...env },
      stdout: "piped",
      stderr: "piped",
    });
  const first = start({ PORT: String(port) }).spawn();
  try {
    await untilUp(`http://127.0.0.1:${port}/api/health`, first, { timeoutMs: 90_000 });
    const expectOneLine = async (env: Record<string, string>, pattern: RegExp) => {
      const out = await start(env).output();
      const stderr = new TextDecoder().decode(out.stderr).trim();
      assert.equal(out.code, 1, stderr);
      assert.match(stderr, pattern);
      assert.doesNotMatch(stderr, /at .*\.ts:\d+/, "no stack trace");
      assert.equal(stderr.split("\n").filter((l) => l.startsWith("troupe:")).length, 1);
    };
    // Same port, another data directory: the port is named.
    const other = await Deno.makeTempDir({ prefix: "troupe-main-busy2-" });
    await expectOneLine(
      { PORT: String(port), DATA_DIR: other },
      new RegExp(`troupe: port ${port} .*already in use`),
    );
    await Deno.remove(other, { recursive: true });
    // Another port, the same data directory: the directory and its holder are named.
    await expectOneLine(
      { PORT: String(freePort()) },
      new RegExp(`troupe: .*is in use by another Troupe process \\(pid ${first.pid}\\)`),
    );
  } finally {
    first.kill("SIGTERM");
    await first.output();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "the embedded start accepts a job over HTTP, runs it and keeps it across a restart",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-main-" });
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  // Exactly what `deno task start` runs (the README's command), from deno.json.
  const task = await startTask();
  const start = () =>
    new Deno.Command(Deno.execPath(), {
      args: task.args,
      cwd: new URL("..", import.meta.url).pathname,
      env: {
        ...task.env,
        PORT: String(port),
        DATA_DIR: dir,
        LOG_LEVEL: "warn",
        HTTP_HEADER_TIMEOUT_MS: "1000",
      },
      stdout: "null",
      stderr: "inherit",
    }).spawn();
  const healthy = () => untilUp(`${base}/api/health`, server, { timeoutMs: 90_000 });
  let server = start();
  try {
    await healthy();
    // A request head that trickles in is cut off at the configured header timeout.
    const slow = await slowloris({ port, intervalMs: 300 });
    const cut = await within(slow.closed, 20_000, "the slow connection stays open");
    assert.match(cut.response, /^HTTP\/1\.1 408/);
    // The first embedded start made a dev tenant and left its key for scripts.
    const key = (await Deno.readTextFile(`${dir}/dev-api-key`)).trim();
    assert.match(key, /^trp_[0-9A-Za-z]{32}$/);
    const headers = { "content-type": "application/json", "x-api-key": key };
    const anonymous = await fetch(`${base}/api/jobs`);
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
    const res = await fetch(`${base}/api/actors/system.echo/jobs`, {
      method: "POST",
      headers,
      body: JSON.stringify({ input: { message: "over http" } }),
    });
    assert.equal(res.status, 202);
    const { jobId } = await res.json();
    const job = await waitFor(async () => {
      const r = await fetch(`${base}/api/jobs/${jobId}`, { headers });
      const body = await r.json();
      return body.status === "succeeded" ? body : null;
    }, { what: "the job to succeed" });
    assert.equal(job.result.message, "over http");

    // The dataset workload and the cache are wired in the real server.
    const upload = await fetch(`${base}/api/datasets?name=tiny`, {
      method: "POST",
      headers: { "content-type": "text/csv", "x-api-key": key },
      body: "a,b\n1,x\n2,y\n",
    });
    assert.equal(upload.status, 202);
    const { datasetId } = await upload.json();
    const dataset = await waitFor(async () => {
      const r = await fetch(`${base}/api/datasets/${datasetId}`, { headers });
      const body = await r.json();
      return body.status === "ready" ? body : null;
    }, { what: "the dataset to be ready" });
    assert.equal(dataset.rowCount, 2);
    const rows = await (await fetch(`${base}/api/datasets/${datasetId}/rows`, { headers })).json();
    assert.deepEqual(rows.rows, [{ a: 1, b: "x" }, { a: 2, b: "y" }]);
    const stats = await (await fetch(`${base}/api/cache/stats`, { headers })).json();
    assert.equal(stats.store, "memory");

    // A stop is graceful, and bounded: a keep-alive connection the server never sees as idle
    // once held it for three minutes.
    const stopping = performance.now();
    server.kill("SIGTERM");
    assert.equal((await server.status).code, 0, "graceful shutdown");
    const stopMs = performance.now() - stopping;
    assert.ok(stopMs < 30_000, `the stop took ${stopMs.toFixed(0)} ms`);
    server = start();
    await healthy();
    const again = await (await fetch(`${base}/api/jobs/${jobId}`, { headers })).json();
    assert.equal(again.status, "succeeded");
    assert.equal(again.id, jobId);
    assert.equal((await Deno.readTextFile(`${dir}/dev-api-key`)).trim(), key, "same key");
  } finally {
    try {
      server.kill("SIGKILL");
    } catch { /* exited */ }
    await server.status;
    await Deno.remove(dir, { recursive: true });
  }
});
