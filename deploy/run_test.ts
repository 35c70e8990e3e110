/**
 * `deno task run` as a user runs it: a child process on a temporary data directory, embedded
 * and through a running server, with its exit status, stdout and stderr.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, startTask, untilUp } from "../tests/start_task.ts";
import { parseRequest } from "./run.ts";
import { ProgressView } from "./run_follow.ts";
import { readServerFile } from "./server_file.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const RUN = new URL("./run.ts", import.meta.url).pathname;

async function cli(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", RUN, ...args],
    cwd: ROOT,
    env: { LOG_LEVEL: "error", ...env },
    clearEnv: false,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** A data directory with a CSV and a broken NDJSON file beside it. */
async function workspace() {
  const dir = await Deno.makeTempDir({ prefix: "troupe-run-" });
  const csv = join(dir, "sales.csv");
  await Deno.writeTextFile(csv, "region,amount\nnorth,10\nsouth,32\nnorth,5\n");
  const broken = join(dir, "broken.ndjson");
  await Deno.writeTextFile(broken, '{"a":1}\n{"a":\n');
  return { dir, csv, broken, data: join(dir, "data") };
}

Deno.test("parseRequest() refuses bad usage and reads uploads and inputs", () => {
  assert.throws(() => parseRequest([]), /name one actor/);
  assert.throws(() => parseRequest(["system.echo", "{nope"]), /not JSON/);
  assert.throws(() => parseRequest(["system.echo", "[1]"]), /JSON object/);
  assert.throws(() => parseRequest(["system.echo", "--file", "x.csv"]), /--file goes with/);
  assert.throws(() => parseRequest(["dataset"]), /give --file/);
  assert.throws(() => parseRequest(["dataset", "--file", "a", "--file", "b"]), /one --file/);
  assert.throws(() => parseRequest(["--list", "x"]), /--list takes nothing/);
  assert.throws(() => parseRequest(["--bogus"]), /bogus/);
  const upload = parseRequest(["course", "--file", "a.pdf", "--file", "b.pdf", '{"title":"T"}']);
  assert.deepEqual(upload.input, { title: "T" });
  assert.ok(upload.target && "upload" in upload.target);
  assert.deepEqual(upload.target.files, ["a.pdf", "b.pdf"]);
  assert.deepEqual(parseRequest(["system.echo"]).target, { actor: "system.echo" });
});

Deno.test("ProgressView redraws one line on a terminal and writes lines otherwise", () => {
  const job = (progress: number, progressMessage: string | null) => ({
    id: "j",
    status: "running",
    progress,
    progressMessage,
  });
  let tty = "";
  const bar = new ProgressView({ write: (s) => tty += s, tty: true, width: 10 });
  bar.update(job(50, "half"));
  bar.update(job(50, "half")); // unchanged: not drawn again
  bar.update(job(100, "all"));
  bar.end();
  assert.equal(tty.split("\r\x1b[2K").length - 1, 2);
  assert.ok(tty.includes("█████░░░░░ running  50%  half"), tty);
  assert.ok(tty.endsWith("██████████ running 100%  all\n"), tty);
  let plain = "";
  const lines = new ProgressView({ write: (s) => plain += s, tty: false });
  lines.update(job(10, "a"));
  lines.update({ ...job(20, null), pipeline: { done: 1, total: 4, unit: "chunks" } });
  lines.end();
  assert.equal(plain, "running  10%  a\nrunning  20% (1/4 chunks)\n");
});

Deno.test({
  name: "embedded: runs an actor and an upload, reports failures with codes, lists, refuses usage",
}, async () => {
  const w = await workspace();
  const env = { DATA_DIR: w.data };
  try {
    const ok = await cli(["system.echo", '{"message":"hello","ms":1500}'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).message, "hello");
    assert.match(ok.stderr, /via embedded \(pglite\)/);
    assert.match(
      ok.stderr,
      /running +\d+% {2}step \d+ of 10/,
      "the handler's progress messages are shown",
    );

    const upload = await cli(["dataset", "--file", w.csv, '{"name":"sales"}'], env);
    assert.equal(upload.code, 0, upload.stderr);
    const uploaded = JSON.parse(upload.stdout);
    assert.equal(uploaded.result.rows, 3);
    assert.equal(uploaded.result.datasetId, uploaded.datasetId);

    const failed = await cli(["dataset", "--file", w.broken, '{"errorPolicy":"fail"}'], env);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /failed: BAD_ROW: .*line 2/);
    assert.equal(failed.stdout, "");

    const refused = await cli(["system.echo", '{"ms":-1}'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /INVALID_INPUT/);

    const list = await cli(["--list"], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /system\.echo +\{.*"message":\{"type":"string"/);
    assert.match(list.stdout, /dataset \| datasets/);
    assert.match(list.stdout, /Internal .*dataset\.chunk/);

    for (
      const args of [[], ["system.echo", "{oops"], ["nope"], ["dataset.chunk", "{}"], ["--bad"]]
    ) {
      const bad = await cli(args, env);
      assert.equal(bad.code, 2, `${args.join(" ")}: ${bad.stderr}`);
      assert.match(bad.stderr, /usage: deno task run/);
    }
  } finally {
    await Deno.remove(w.dir, { recursive: true });
  }
});

Deno.test({
  name: "with a server holding the data directory: goes through its API with the saved key",
}, async () => {
  const w = await workspace();
  const port = freePort();
  const task = await startTask();
  const server = new Deno.Command(Deno.execPath(), {
    args: task.args,
    cwd: ROOT,
    env: { ...task.env, DATA_DIR: w.data, PORT: String(port), LOG_LEVEL: "warn" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await untilUp(`http://127.0.0.1:${port}/api/health`, server, { timeoutMs: 90_000 });
    // The server says where it listens; the CLI is given nothing else.
    assert.equal((await readServerFile(w.data))?.url, `http://127.0.0.1:${port}`);
    const env = { DATA_DIR: w.data };
    const ok = await cli(["system.echo", '{"message":"via server"}'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, new RegExp(`via http://127\\.0\\.0\\.1:${port}`));
    assert.equal(JSON.parse(ok.stdout).message, "via server");

    const upload = await cli(["dataset", "--file", w.csv], env);
    assert.equal(upload.code, 0, upload.stderr);
    assert.equal(JSON.parse(upload.stdout).result.rows, 3);

    const failed = await cli(["dataset", "--file", w.broken, '{"errorPolicy":"fail"}'], env);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /failed: BAD_ROW/);

    const badKey = await cli(["system.echo"], { ...env, TROUPE_API_KEY: "trp_" + "x".repeat(32) });
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /UNAUTHENTICATED/);
  } finally {
    server.kill("SIGTERM");
    await server.status;
  }
  // A stopped server takes its file with it: the next run is embedded.
  assert.equal(await readServerFile(w.data), null);
  const after = await cli(["system.echo", "{}"], { DATA_DIR: w.data });
  assert.equal(after.code, 0, after.stderr);
  assert.match(after.stderr, /via embedded/);
  await Deno.remove(w.dir, { recursive: true });
});
