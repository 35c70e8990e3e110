/**
 * Dataset ingest, end to end, on one generated file (~200 MB, 1M+ rows, mixed columns):
 * - Troupe: upload to the real server (main.ts in its own process) until the profile is
 *   ready, on the embedded default and on real PostgreSQL; peak RSS of the server process;
 * - pandas `read_csv` + `describe(include="all")`, peak RSS (prerequisite: Debian's
 *   `python3-pandas`, `apt-get install -y python3-pandas`; `--peers false` runs without it);
 * - Troupe's profiling stage alone on the same file (bench/profile_file.ts: what pandas does,
 *   nothing stored), peak RSS sampled;
 * - the floor: `cat file > /dev/null`.
 *
 *   deno run -A bench/ingest.ts [--mb 200] [--db pglite,postgres] [--runs 1] [--chunk bytes]
 *     [--peers false] [--pairs 3] [--timeline]
 *
 * pandas and the profiling stage run `--pairs` times in turn (the host's speed drifts), and the
 * median of their ratios is printed. `--peers false` runs Troupe only (no pandas, profiling stage
 * or floor); `--timeline` prints the server's resident set every second while a dataset is
 * processed.
 *
 * The file is generated once under /tmp and reused.
 */
import { parseArgs } from "node:util";
import { createPgDatabase } from "../tests/harness.ts";
import { freePort, startTask, UNLIMITED_RATES, untilUp } from "../tests/start_task.ts";
import { peakRssMb, resetPeakRss, rssMb } from "./rss.ts";
import { median } from "./stats.ts";
import { ingestFile, ingestFilePath } from "./ingest_file.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    mb: { type: "string", default: "200" },
    db: { type: "string", default: "pglite,postgres" },
    runs: { type: "string", default: "1" },
    pairs: { type: "string", default: "3" },
    chunk: { type: "string" },
    json: { type: "string", default: "bench/results/ingest.json" },
    peers: { type: "string", default: "true" },
    timeline: { type: "boolean", default: false },
  },
});
const FILE = ingestFilePath(Number(args.mb));
const KEY = "troupe-bench-key-0123456789abcdef";

interface Figure {
  system: string;
  seconds: number;
  mbPerSecond: number;
  peakRssMb: number | null;
  note: string;
}

async function troupe(db: "pglite" | "postgres", bytes: number, rows: number): Promise<Figure> {
  const dir = await Deno.makeTempDir({ prefix: "troupe-bench-ingest-" });
  const pg = db === "postgres" ? await createPgDatabase() : null;
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  // BENCH_DENO_FLAGS: extra flags for the server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
  const task = await startTask(Deno.env.get("BENCH_DENO_FLAGS")?.split(" ").filter(Boolean) ?? []);
  const server = new Deno.Command(Deno.execPath(), {
    args: task.args,
    env: {
      ...task.env,
      PORT: String(port),
      DATA_DIR: dir,
      LOG_LEVEL: "error",
      DEV_API_KEY: KEY,
      // The status poll (4 a second) would run into the per-address limit (100 a minute)
      // and see "ready" late.
      ...UNLIMITED_RATES,
      DATASET_MAX_BYTES: String(4 * bytes),
      ...(args.chunk ? { DATASET_CHUNK_BYTES: args.chunk } : {}),
      ...(pg ? { DATABASE_URL: pg.url } : {}),
    },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    await untilUp(`${base}/api/health`, server);
    // Peak RSS from here on: the start (PGlite's first initdb peaks at ~640 MB, once per
    // data directory) is reported apart.
    const startPeak = await peakRssMb(server.pid);
    await resetPeakRss(server.pid);
    const headers = { "x-api-key": KEY };
    const t0 = performance.now();
    const timeline = args.timeline ? sampleRss(server.pid, t0) : null;
    // curl as the client: Deno's fetch streams a file body far slower than the server takes
    // it, which would measure the client, not the server.
    const up = await new Deno.Command("curl", {
      args: [
        "-sS",
        "-XPOST",
        "-H",
        `x-api-key: ${KEY}`,
        "-H",
        "content-type: text/csv",
        "--data-binary",
        `@${FILE}`,
        `${base}/api/datasets?name=bench`,
      ],
      stdout: "piped",
    }).output();
    const reply = new TextDecoder().decode(up.stdout);
    if (!up.success || !reply.includes("datasetId")) throw new Error(`upload failed: ${reply}`);
    const { datasetId } = JSON.parse(reply) as { datasetId: string };
    const uploaded = performance.now();
    let d: { status: string; rowCount: number; error: unknown } = {
      status: "",
      rowCount: 0,
      error: null,
    };
    while (true) {
      const res = await fetch(`${base}/api/datasets/${datasetId}`, { headers });
      if (!res.ok) throw new Error(`status poll: ${res.status} ${await res.text()}`);
      d = await res.json();
      if (d.status === "ready" || d.status === "failed") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const seconds = (performance.now() - t0) / 1000;
    if (d.status !== "ready") throw new Error(`dataset ${d.status}: ${JSON.stringify(d.error)}`);
    const peak = await peakRssMb(server.pid);
    if (timeline) console.error(`RSS MB by second: ${timeline.stop()}`);
    if (pg) await printSteps(pg.url, t0);
    return {
      system: `troupe ${db}`,
      seconds,
      mbPerSecond: bytes / 1e6 / seconds,
      peakRssMb: peak,
      note: `upload durable after ${((uploaded - t0) / 1000).toFixed(1)} s; start peak ${
        startPeak.toFixed(0)
      } MB; ${d.rowCount === rows ? "all" : `${d.rowCount} of`} ${
        rows.toLocaleString("en-US")
      } rows`,
    };
  } finally {
    try {
      server.kill("SIGTERM");
    } catch { /* exited */ }
    await server.status;
    await pg?.drop();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The process's resident set (VmRSS) each second from now, in MB, and the seconds at which its
 * peak (VmHWM) rose by 2 MB or more since the last sample (a spike shorter than a second shows
 * there), until `stop`.
 */
function sampleRss(pid: number, t0: number): { stop(): string } {
  const samples: number[] = [];
  const rises: string[] = [];
  let lastPeak = 0;
  const timer = setInterval(async () => {
    try {
      const [mb, peak] = await Promise.all([rssMb(pid), peakRssMb(pid)]);
      const second = Math.floor((performance.now() - t0) / 1000);
      samples[second] = Math.round(mb);
      if (peak >= lastPeak + 2) rises.push(`${second}s:${Math.round(peak)}`);
      lastPeak = Math.max(lastPeak, peak);
    } catch { /* exited */ }
  }, 1000);
  return {
    stop() {
      clearInterval(timer);
      return `${Array.from(samples, (s) => s ?? 0).join(" ")}\npeak rose at: ${rises.join(" ")}`;
    },
  };
}

/** Where the time went (PostgreSQL runs): per actor, busy span and summed handler time. */
async function printSteps(url: string, t0: number): Promise<void> {
  const { default: pgLib } = await import("pg");
  const c = new pgLib.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query(
      `SELECT actor, count(*)::int AS n,
         extract(epoch FROM max(finished_at) - min(started_at))::float8 AS span,
         extract(epoch FROM sum(finished_at - started_at))::float8 AS busy,
         extract(epoch FROM min(started_at))::float8 AS first,
         sum(attempts)::int AS attempts
       FROM troupe_jobs WHERE actor LIKE 'dataset.%' GROUP BY actor ORDER BY min(started_at)`,
    );
    const start = Math.min(...rows.map((r) => r.first as number));
    const [ds] = (await c.query(
      `SELECT extract(epoch FROM created_at)::float8 AS created,
         extract(epoch FROM updated_at)::float8 AS ready FROM troupe_datasets`,
    )).rows;
    console.error(
      `steps (t0 = first step, ${((performance.now() - t0) / 1000).toFixed(1)} s in all):`,
    );
    console.error(
      `  dataset row created at ${(ds.created - start).toFixed(1)} s, ready at +${
        (ds.ready - start).toFixed(1)
      } s`,
    );
    for (const r of rows) {
      console.error(
        `  ${r.actor}: ${r.n} jobs (${r.attempts} attempts), from +${
          (r.first - start).toFixed(1)
        } s, span ${r.span.toFixed(1)} s, handler time ${r.busy.toFixed(1)} s`,
      );
    }
  } finally {
    await c.end();
  }
}

async function pandas(bytes: number): Promise<Figure> {
  const script = `
import json, resource, time
import pandas as pd
t = time.time()
df = pd.read_csv(${JSON.stringify(FILE)})
d = df.describe(include="all")
s = time.time() - t
print(json.dumps({"seconds": s, "rows": len(df), "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
`;
  const out = await new Deno.Command("/usr/bin/python3", { args: ["-c", script], stdout: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      "pandas run failed (apt-get install -y python3-pandas, or --peers false)",
    );
  }
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as { seconds: number; rss: number };
  return {
    system: "pandas read_csv + describe(include='all')",
    seconds: r.seconds,
    mbPerSecond: bytes / 1e6 / r.seconds,
    peakRssMb: r.rss / 1024,
    note: "one process, in memory",
  };
}

/** Troupe's profiling stage alone (no upload, no storage), like for like with pandas. */
async function profilingStage(bytes: number): Promise<Figure> {
  const script = new URL("./profile_file.ts", import.meta.url).pathname;
  // The server's runtime flags and environment (deno.json's start task), so memory compares
  // like for like.
  const task = await startTask([], script);
  const child = new Deno.Command(Deno.execPath(), {
    args: [...task.args, FILE],
    env: task.env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let peak = 0;
  const sampler = setInterval(async () => {
    try {
      peak = Math.max(peak, await peakRssMb(child.pid));
    } catch { /* exited */ }
  }, 100);
  const out = await child.output();
  clearInterval(sampler);
  if (!out.success) throw new Error("profile_file.ts failed");
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    seconds: number;
    rows: number;
    workers: number;
  };
  return {
    system: `troupe profiling stage only (${r.workers} workers)`,
    seconds: r.seconds,
    mbPerSecond: bytes / 1e6 / r.seconds,
    peakRssMb: peak || null,
    note: `parse, types, clean, profile, merge; nothing stored; ${
      r.rows.toLocaleString("en-US")
    } rows`,
  };
}

async function cat(bytes: number): Promise<Figure> {
  const t0 = performance.now();
  const out = await new Deno.Command("sh", { args: ["-c", `cat ${FILE} > /dev/null`] }).output();
  if (!out.success) throw new Error("cat failed");
  const seconds = (performance.now() - t0) / 1000;
  return {
    system: "cat file > /dev/null",
    seconds,
    mbPerSecond: bytes / 1e6 / seconds,
    peakRssMb: null,
    note: "the floor (page cache)",
  };
}

const { bytes, rows } = await ingestFile(Number(args.mb));
const figures: Figure[] = [];
/** Profiling stage speed over pandas', one per interleaved pair. */
const ratios: number[] = [];
for (let run = 0; run < Number(args.runs); run++) {
  if (args.peers !== "false") {
    figures.push(await cat(bytes));
    // This host's speed drifts by a third within minutes: pandas and the profiling stage run
    // in turn, pair after pair, and the target is judged on the median of the pairs' ratios.
    for (let pair = 0; pair < Number(args.pairs); pair++) {
      const p = await pandas(bytes);
      const t = await profilingStage(bytes);
      figures.push(p, t);
      ratios.push(p.seconds / t.seconds);
    }
  }
  for (const db of args.db.split(",").map((s) => s.trim()).filter(Boolean)) {
    figures.push(await troupe(db as "pglite" | "postgres", bytes, rows));
  }
}
console.log(
  `\n${(bytes / 1e6).toFixed(0)} MB CSV, ${rows.toLocaleString("en-US")} rows, 9 mixed columns ` +
    `(Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores)\n`,
);
console.log("| system | seconds | MB/s | peak RSS MB | note |");
console.log("|---|---|---|---|---|");
for (const f of figures) {
  console.log(
    `| ${f.system} | ${f.seconds.toFixed(1)} | ${f.mbPerSecond.toFixed(1)} | ${
      f.peakRssMb === null ? "-" : f.peakRssMb.toFixed(0)
    } | ${f.note} |`,
  );
}
const ratioMedian = ratios.length ? median(ratios) : null;
if (ratioMedian !== null) {
  console.log(
    `\nprofiling stage vs pandas, ${ratios.length} interleaved pairs: ${
      ratios.map((r) => `${r.toFixed(3)}×`).join(", ")
    }; median ${ratioMedian.toFixed(3)}× (target ≥ 1×: ${ratioMedian >= 1 ? "met" : "not met"})`,
  );
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  args.json,
  JSON.stringify(
    {
      at: new Date().toISOString(),
      bytes,
      rows,
      figures,
      profilingOverPandas: { ratios, median: ratioMedian },
    },
    null,
    2,
  ),
);
