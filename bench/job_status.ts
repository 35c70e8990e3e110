/**
 * `GET /api/jobs/:id` requests/s and latency under 50 connections, against the real server
 * (`main.ts` in its own process) on the embedded default and on real PostgreSQL.
 *
 *   deno run -A bench/job_status.ts [--jobs 1000] [--duration 10] [--db pglite,postgres]
 *
 * Needs `wrk` (Debian package `wrk`); wrk shares the machine's cores with the server. Every
 * request goes through the full API path: request id, per-IP and per-key rate limits (set high
 * enough never to refuse), API-key authentication, tenant scoping.
 * Two workloads per database, each spreading requests over `--jobs` distinct ids:
 * - finished: jobs that already succeeded (what a client polls last; served from the
 *   runtime's bounded cache of finished jobs after the first read);
 * - pending: jobs delayed by an hour, so every request reads the database.
 */
import { parseArgs } from "node:util";
import { createPgDatabase } from "../tests/harness.ts";
import { freePort, startTask, UNLIMITED_RATES, untilUp } from "../tests/start_task.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    jobs: { type: "string", default: "1000" },
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "50" },
    db: { type: "string", default: "pglite,postgres" },
    json: { type: "string", default: "bench/results/job_status.json" },
  },
});
const JOBS = Number(args.jobs);
const API_KEY = "troupe-bench-key-0123456789abcdef";

const headers = { "content-type": "application/json", "x-api-key": API_KEY };

async function enqueue(base: string, delayMs?: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < JOBS; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, JOBS - i) }, async (_, j) => {
        const res = await fetch(`${base}/api/actors/system.echo/jobs`, {
          method: "POST",
          headers,
          body: JSON.stringify({ input: { value: i + j }, ...(delayMs ? { delayMs } : {}) }),
        });
        if (res.status !== 202) throw new Error(`enqueue: ${res.status} ${await res.text()}`);
        return ((await res.json()) as { jobId: string }).jobId;
      }),
    );
    ids.push(...batch);
  }
  return ids;
}

async function waitSucceeded(base: string, ids: string[]): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (const id of ids) {
    while (true) {
      const res = await fetch(`${base}/api/jobs/${id}`, { headers });
      const job = await res.json() as { status: string };
      if (job.status === "succeeded") break;
      if (Date.now() > deadline) throw new Error(`job ${id} is still ${job.status}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

interface WrkResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  non2xx: number;
  errors: number;
}

function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!m) throw new Error(`cannot read latency ${text}`);
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

async function wrk(base: string, ids: string[]): Promise<WrkResult> {
  const script = await Deno.makeTempFile({ suffix: ".lua" });
  await Deno.writeTextFile(
    script,
    `local ids = {${ids.map((id) => `"${id}"`).join(",")}}
local i = 0
wrk.headers["X-API-Key"] = "${API_KEY}"
request = function()
  i = i % #ids + 1
  return wrk.format("GET", "/api/jobs/" .. ids[i])
end
`,
  );
  try {
    const out = await new Deno.Command("wrk", {
      args: [
        "-t2",
        `-c${args.connections}`,
        `-d${args.duration}s`,
        "--latency",
        "-s",
        script,
        base,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
    const p50 = /\n\s+50%\s+(\S+)/.exec(text)?.[1];
    const p99 = /\n\s+99%\s+(\S+)/.exec(text)?.[1];
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
    const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
    const errors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
    if (!p50 || !p99 || !Number.isFinite(rps)) throw new Error(`cannot read wrk output:\n${text}`);
    return { rps, p50ms: toMs(p50), p99ms: toMs(p99), non2xx, errors };
  } finally {
    await Deno.remove(script);
  }
}

interface Figure extends WrkResult {
  db: string;
  workload: "finished" | "pending";
}

async function measure(dbName: string): Promise<Figure[]> {
  const dir = await Deno.makeTempDir({ prefix: "troupe-bench-status-" });
  const pg = dbName === "postgres" ? await createPgDatabase() : null;
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const task = await startTask();
  const server = new Deno.Command(Deno.execPath(), {
    args: task.args,
    env: {
      ...task.env,
      PORT: String(port),
      DATA_DIR: dir,
      LOG_LEVEL: "warn",
      DEV_API_KEY: API_KEY,
      // The limiter still runs on every request, with limits this load never reaches.
      ...UNLIMITED_RATES,
      ...(pg ? { DATABASE_URL: pg.url } : {}),
    },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    await untilUp(`${base}/api/health`, server);
    const finished = await enqueue(base);
    await waitSucceeded(base, finished);
    const pending = await enqueue(base, 3_600_000);
    const figures: Figure[] = [];
    figures.push({ db: dbName, workload: "finished", ...await wrk(base, finished) });
    figures.push({ db: dbName, workload: "pending", ...await wrk(base, pending) });
    return figures;
  } finally {
    try {
      server.kill("SIGTERM");
    } catch { /* it exited already */ }
    await server.status;
    await pg?.drop();
    await Deno.remove(dir, { recursive: true });
  }
}

const figures: Figure[] = [];
for (const name of args.db.split(",").map((s) => s.trim()).filter(Boolean)) {
  if (name !== "pglite" && name !== "postgres") throw new Error(`unknown --db ${name}`);
  figures.push(...await measure(name));
}

const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
console.log(
  `\nGET /api/jobs/:id, wrk -t2 -c${args.connections} -d${args.duration}s over ${JOBS} ids ` +
    `(Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores shared with wrk)\n`,
);
console.log("| database | jobs polled | req/s | p50 ms | p99 ms | non-2xx | socket errors |");
console.log("|---|---|---|---|---|---|---|");
for (const f of figures) {
  console.log(
    `| ${f.db} | ${f.workload} | ${fmt(f.rps)} | ${f.p50ms.toFixed(2)} | ${
      f.p99ms.toFixed(2)
    } | ${f.non2xx} | ${f.errors} |`,
  );
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  args.json,
  JSON.stringify({ at: new Date().toISOString(), jobs: JOBS, figures }, null, 2),
);
