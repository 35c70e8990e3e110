/**
 * The resident set of an idle server (PGlite, the default) of the tree at TREE: 4 s after it
 * answers, and 4 s after a small CSV (20,000 rows) and a 20-page PDF have been processed (its
 * pools' workers started, then idle); with its thread count.
 *
 *   deno run -A bench/server_idle_rss.ts TREE
 */
import { freePort, startTask, untilUp } from "../tests/start_task.ts";
import { book } from "./pdf_book.ts";
const tree = Deno.args[0] ?? Deno.cwd();
const task = await startTask([], `${tree}/main.ts`);
const port = freePort();
const dir = await Deno.makeTempDir();
const KEY = "troupe-bench-key-0123456789abcdef";
const server = new Deno.Command(Deno.execPath(), {
  args: task.args,
  cwd: tree,
  env: { ...task.env, PORT: String(port), DATA_DIR: dir, LOG_LEVEL: "error", DEV_API_KEY: KEY },
  stdout: "null",
  stderr: "inherit",
}).spawn();
const rss = () =>
  Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${server.pid}/status`))![1]) / 1024;
const threads = () =>
  Number(/Threads:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${server.pid}/status`))![1]);
const base = `http://127.0.0.1:${port}`;
try {
  await untilUp(`${base}/api/health`, server);
  await new Promise((r) => setTimeout(r, 4000));
  const idle = rss(), t0 = threads();
  const headers = { "x-api-key": KEY };
  const csv = "a,b\n" + Array.from({ length: 20000 }, (_, i) => `${i},x${i}`).join("\n");
  const r1 = await fetch(`${base}/api/v1/datasets?name=s`, {
    method: "POST",
    headers: { ...headers, "content-type": "text/csv" },
    body: csv,
  });
  const { datasetId } = await r1.json();
  const form = new FormData();
  form.append("files", new File([new Uint8Array(await book(20, 1))], "b.pdf"));
  const r2 = await fetch(`${base}/api/v1/courses`, { method: "POST", headers, body: form });
  const { courseId } = await r2.json();
  for (let i = 0; i < 120; i++) {
    const d = await (await fetch(`${base}/api/v1/datasets/${datasetId}`, { headers })).json();
    const c = await (await fetch(`${base}/api/v1/courses/${courseId}`, { headers })).json();
    if (d.status !== "processing" && d.status !== "pending" && c.status !== "processing") break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await new Promise((r) => setTimeout(r, 4000));
  console.log(
    JSON.stringify({
      tree,
      idleAtStartMb: +idle.toFixed(1),
      threadsAtStart: t0,
      afterWorkIdleMb: +rss().toFixed(1),
      threadsAfter: threads(),
      load: Deno.readTextFileSync("/proc/loadavg").trim(),
      at: new Date().toISOString(),
    }),
  );
} finally {
  Deno.kill(server.pid, "SIGTERM");
  await server.status;
  await Deno.remove(dir, { recursive: true });
}
