/**
 * Cold start: time from process start to the first `200`, on the production drivers (the
 * local stand-ins: PostgreSQL through the Neon bridge, QStash, Upstash Redis), for
 * - the floor: a bare Hono app (bench/cold_start_floor.ts), `GET /`;
 * - the edge entry (deploy/edge.ts: migrations checked), `GET /api/health`;
 * - the edge entry again, `GET /api/v1/jobs` with an API key: the first answer that needs the
 *   app (the entry answers its health check before the workloads and routes load);
 * - the edge entry again, `GET /api/v1/datasets` with an API key: the same, with a route group
 *   loaded on its first request (routes/lazy.ts) on top;
 * - main.ts (self-hosted: migrations applied at start, nothing to apply here), `GET /api/health`;
 * - with `--before DIR`, the edge entry of another checkout (e.g. `git archive` of an earlier
 *   commit, `deno install`ed), `GET /api/health` and the two keyed requests, in the same run;
 * each with a cold module cache (a fresh DENO_DIR: no transpile or V8 code cache) and warm,
 * under the same flags (`deno run -A`, no V8 flags), in one run. Prints a table (medians,
 * min–max, and the CPU time each process had used by its first 200, which the host's other
 * jobs move less than the wall time) and writes bench/results/cold_start.json.
 *
 *   deno run -A bench/cold_start.ts [--runs 5] [--deno /path/to/deno] [--before DIR]
 */
import { parseArgs } from "node:util";
import { createPgDatabase } from "../tests/harness.ts";
import { startNeonBridge } from "../tests/fixtures/neon_bridge.ts";
import { startQStash } from "../tests/fixtures/qstash_server.ts";
import { startRedisBridge } from "../tests/fixtures/upstash_redis_bridge.ts";
import { freePort } from "../tests/start_task.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "5" },
    deno: { type: "string" },
    before: { type: "string" },
  },
});
const RUNS = Number(values.runs);
const DENO = values.deno ?? Deno.execPath();
const ROOT = new URL("..", import.meta.url).pathname;

const KEY = "troupe-cold-key-0123456789abcdef";

interface Subject {
  name: string;
  entry: string;
  path: string;
  /** The checkout it runs in. @default this one */
  cwd?: string;
  headers?: Record<string, string>;
}

/**
 * The CPU time (user + system, every thread) the process has used, in ms, from
 * /proc/<pid>/stat (clock ticks of 10 ms): a figure other jobs on the host move far less than
 * the wall time.
 */
async function cpuMs(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command's ")".
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Spawns the subject and polls its `path` every 5 ms; ms from spawn to the first 200, and the
 * CPU ms the process had used by then.
 */
async function timeToFirst200(
  { entry, path, cwd = ROOT, headers = {} }: Subject,
  env: Record<string, string>,
): Promise<{ ms: number; cpu: number }> {
  const port = freePort();
  const started = performance.now();
  const child = new Deno.Command(DENO, {
    args: ["run", "-A", entry],
    cwd,
    env: { ...env, PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}` },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const errors = new Response(child.stderr).text();
  child.status.then(() => exited = true);
  try {
    for (;;) {
      if (exited) throw new Error(`${entry} exited: ${await errors}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
        await res.body?.cancel();
        if (res.status === 200) {
          return { ms: performance.now() - started, cpu: await cpuMs(child.pid) };
        }
      } catch { /* not listening yet */ }
      if (performance.now() - started > 60_000) throw new Error(`${entry}: no 200 in 60 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    if (!exited) child.kill("SIGKILL");
    await child.status;
  }
}

const database = await createPgDatabase();
const neon = await startNeonBridge();
const redis = await startRedisBridge({ token: "cold-redis" });
const qstash = await startQStash({ token: "cold", currentSigningKey: "c1", nextSigningKey: "c2" });
const env: Record<string, string> = {
  LOG_LEVEL: "warn",
  DATA_DIR: "/nonexistent/troupe-cold",
  DATABASE_URL: database.url,
  NEON_WS_PROXY: neon.wsProxy,
  QSTASH_URL: qstash.url,
  QSTASH_TOKEN: "cold",
  QSTASH_CURRENT_SIGNING_KEY: "c1",
  QSTASH_NEXT_SIGNING_KEY: "c2",
  UPSTASH_REDIS_REST_URL: redis.url,
  UPSTASH_REDIS_REST_TOKEN: "cold-redis",
  DEV_API_KEY: KEY,
};
const rows: { name: string; cache: string; ms: number[]; cpu: number[] }[] = [];
try {
  const migrated = await new Deno.Command(DENO, {
    args: ["run", "-A", "deploy/migrate.ts"],
    cwd: ROOT,
    env: { ...env, PUBLIC_URL: "http://127.0.0.1:1" },
  }).output();
  if (!migrated.success) throw new Error(new TextDecoder().decode(migrated.stderr));
  const subjects: Subject[] = [
    { name: "bare Hono (floor)", entry: "bench/cold_start_floor.ts", path: "/" },
    { name: "deploy/edge.ts", entry: "deploy/edge.ts", path: "/api/health" },
    {
      name: "deploy/edge.ts, first keyed request",
      entry: "deploy/edge.ts",
      path: "/api/v1/jobs",
      headers: { "x-api-key": KEY },
    },
    {
      name: "deploy/edge.ts, first keyed dataset list",
      entry: "deploy/edge.ts",
      path: "/api/v1/datasets",
      headers: { "x-api-key": KEY },
    },
    { name: "main.ts (migrates at start)", entry: "main.ts", path: "/api/health" },
  ];
  const before = values.before;
  if (before) {
    // The same edge subjects, in the other checkout.
    const edge = subjects.filter((s) => s.entry === "deploy/edge.ts");
    subjects.push(
      ...edge.map((s) => ({ ...s, name: `${s.name} (${before})`, cwd: before })),
    );
  }
  for (const cache of ["cold", "warm"] as const) {
    const warmDir = await Deno.makeTempDir({ prefix: "troupe-cold-warm-" });
    for (const s of subjects) rows.push({ name: s.name, cache, ms: [], cpu: [] });
    // Interleaved, so a drift of the host's speed touches every subject alike.
    for (let run = 0; run < RUNS; run++) {
      for (const [i, s] of subjects.entries()) {
        const dir = cache === "cold" ? await Deno.makeTempDir({ prefix: "troupe-cold-" }) : warmDir;
        if (cache === "warm" && run === 0) {
          await timeToFirst200(s, { ...env, DENO_DIR: dir });
        }
        const { ms, cpu } = await timeToFirst200(s, { ...env, DENO_DIR: dir });
        rows[rows.length - subjects.length + i]!.ms.push(ms);
        rows[rows.length - subjects.length + i]!.cpu.push(cpu);
        if (cache === "cold") await Deno.remove(dir, { recursive: true });
      }
    }
    await Deno.remove(warmDir, { recursive: true });
  }
} finally {
  await qstash.close();
  await redis.close();
  await neon.close();
  await database.drop();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const floor = (cache: string) => median(rows.find((r) => r.cache === cache)!.ms);
const version = Deno.version.deno === ""
  ? "?"
  : DENO === Deno.execPath()
  ? Deno.version.deno
  : DENO;
console.log(`\ncold start to the first 200, ${RUNS} runs each, Deno ${version}\n`);
console.log(
  "| subject | module cache | median ms | min–max ms | over the floor ms | CPU ms (median) |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const r of rows) {
  const m = median(r.ms);
  console.log(
    `| ${r.name} | ${r.cache} | ${m.toFixed(0)} | ${Math.min(...r.ms).toFixed(0)}–${
      Math.max(...r.ms).toFixed(0)
    } | ${(m - floor(r.cache)).toFixed(0)} | ${median(r.cpu).toFixed(0)} |`,
  );
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  new URL("./results/cold_start.json", import.meta.url),
  JSON.stringify({ deno: version, runs: RUNS, rows }, null, 2),
);
