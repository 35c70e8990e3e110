/**
 * Dataset ingest, end to end, on one generated file (~200 MB, 1M+ rows, mixed columns):
 * - Troupe: upload to the real server (main.ts in its own process) until the profile is
 *   ready, on the embedded default and on real PostgreSQL; peak RSS of the server process;
 *   the stage breakdown from the server's job records (upload, split, chunks: read, parse +
 *   profile, store by COPY; chunk-done, merge);
 * - the floor: `psql \copy` of the file into a table of text columns on PostgreSQL;
 * - the work no ingest of typed, profiled rows avoids, each part measured alone on this host in
 *   the same run: Troupe's profiling stage (bench/profile_file.ts: parse, types, profile, COPY
 *   text; nothing stored) and `psql \copy` into a table of the dataset's typed columns; their
 *   sum is the second floor (the two one after the other; a pipeline overlaps them);
 * - the peer a user would write: pandas `read_csv` + `to_sql` into PostgreSQL (SQLAlchemy +
 *   psycopg2, `chunksize=10000`, the default method); Debian's `python3-pandas`,
 *   `python3-sqlalchemy` and `python3-psycopg2`, installed with apt-get when missing;
 * - pandas `read_csv` + `describe(include="all")` against Troupe's profiling stage alone
 *   (bench/profile_file.ts: nothing stored), `--pairs` times in turn; and `cat file`.
 *
 *   deno run -A bench/ingest.ts [--mb 200] [--db pglite,postgres] [--runs 1] [--chunk bytes]
 *     [--peers false] [--to-sql false] [--pairs 3] [--timeline]
 *
 * Each run times the floors, the peer and Troupe on each database in turn and prints Troupe's
 * speed over the floor's (target ≥ 0.5×), over the second floor's and over the peer's (target
 * ≥ 3×), and the CPU seconds each spent (the server's main thread and the rest of its threads,
 * PostgreSQL's backends). The median of the describe pairs' ratios is printed too. `--peers
 * false` runs Troupe only; `--to-sql false` leaves out the pandas `to_sql` peer (a minute of
 * the run); `--timeline` prints the server's resident set every second while a dataset is
 * processed.
 *
 * The file is generated once under /tmp and reused.
 */
import { parseArgs } from "node:util";
import { createPgDatabase } from "../tests/harness.ts";
import { freePort, startTask, UNLIMITED_RATES, untilUp } from "../tests/start_task.ts";
import { peakRssMb, resetPeakRss, residentByKind, rssMb } from "./rss.ts";
import { loadAverage, median } from "./stats.ts";
import { benchCsv, benchCsvPath } from "./csv_file.ts";
import { backendsOf, serverCpu } from "./proc_cpu.ts";
import { sqlType } from "../actors/datasets/query.ts";

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
    "to-sql": { type: "string", default: "true" },
    timeline: { type: "boolean", default: false },
  },
});
const FILE = benchCsvPath(Number(args.mb));
const KEY = "troupe-bench-key-0123456789abcdef";

interface Figure {
  system: string;
  seconds: number;
  mbPerSecond: number;
  peakRssMb: number | null;
  note: string;
  /** Troupe runs: where the time went, stage by stage. */
  stages?: Stages;
  /**
   * CPU seconds spent: the server's main thread and its other threads, or a whole process
   * (the profiling stage, pandas), and PostgreSQL's backends.
   */
  cpu?: { main?: number; threads?: number; process?: number; postgres?: number };
}

/**
 * CPU seconds of a run, sampled every 500 ms from /proc until `stop`: `pid`'s main thread and
 * its other threads (chunk workers, V8's and Deno's helper threads; a thread that ended counts
 * in its process's total), and the backends of PostgreSQL database `database` (each backend's
 * last sample: one that exits between samples loses its last half second).
 */
function sampleCpu(
  pid: number | null,
  database: string | null,
): { stop(): Promise<NonNullable<Figure["cpu"]>> } {
  const TICK = 0.01; // USER_HZ is 100 on Linux
  const ticks = (path: string) => {
    const stat = Deno.readTextFileSync(path);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * TICK;
  };
  const at0 = { main: 0, all: 0 };
  const now = { main: 0, all: 0 };
  const pg0 = database ? serverCpu(backendsOf(database)) : new Map<number, number>();
  const pgLast = new Map<number, number>();
  const t0 = performance.now();
  /** Each 5 s: CPU seconds of the main thread, the other threads and PostgreSQL then. */
  const series: string[] = [];
  let mark = { at: 0, main: 0, all: 0, pg: 0 };
  const pgSum = () => {
    let ms = 0;
    for (const [p, v] of pgLast) ms += v - (pg0.get(p) ?? 0);
    return ms / 1000;
  };
  const sample = () => {
    try {
      if (pid !== null) {
        now.all = ticks(`/proc/${pid}/stat`);
        now.main = ticks(`/proc/${pid}/task/${pid}/stat`);
      }
    } catch { /* exited */ }
    if (database) { for (const [p, ms] of serverCpu(backendsOf(database))) pgLast.set(p, ms); }
    const at = (performance.now() - t0) / 1000;
    if (at >= mark.at + 5) {
      const cur = { at, main: now.main, all: now.all, pg: pgSum() };
      series.push(
        `${mark.at.toFixed(0)}–${at.toFixed(0)} s: main ${(cur.main - mark.main).toFixed(1)}, ` +
          `threads ${(cur.all - cur.main - mark.all + mark.main).toFixed(1)}, postgres ${
            (cur.pg - mark.pg).toFixed(1)
          }`,
      );
      mark = cur;
    }
  };
  sample();
  Object.assign(at0, now);
  mark = { at: 0, main: now.main, all: now.all, pg: 0 };
  const timer = setInterval(sample, 500);
  return {
    stop() {
      clearInterval(timer);
      sample();
      if (pid !== null && series.length > 1) {
        console.error(`CPU seconds by 5 s:\n  ${series.join("\n  ")}`);
      }
      let pgMs = 0;
      for (const [p, ms] of pgLast) pgMs += ms - (pg0.get(p) ?? 0);
      return Promise.resolve({
        ...(pid !== null
          ? { main: now.main - at0.main, threads: now.all - now.main - (at0.all - at0.main) }
          : {}),
        ...(database ? { postgres: pgMs / 1000 } : {}),
      });
    },
  };
}

/** The database name of a PostgreSQL URL. */
const dbName = (url: string) => new URL(url).pathname.slice(1);

/** The CPU seconds of a figure, summed (0: not measured). */
function cpuTotal(cpu: Figure["cpu"]): number {
  return Object.values(cpu ?? {}).reduce((a: number, v) => a + (v ?? 0), 0);
}

/** CPU seconds as `main 1.2 + threads 3.4 + postgres 5.6 = 10.2 s`. */
function cpuText(cpu: Figure["cpu"]): string {
  if (!cpu) return "-";
  const parts = Object.entries(cpu).filter(([, v]) => v !== undefined) as [string, number][];
  const total = parts.reduce((a, [, v]) => a + v, 0);
  return `${parts.map(([k, v]) => `${k} ${v.toFixed(1)}`).join(" + ")} = ${total.toFixed(1)}`;
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
    // A loaded host can take over a minute to start it (initdb of a fresh PGlite directory).
    await untilUp(`${base}/api/health`, server, { timeoutMs: 180_000 });
    // Peak RSS from here on: the start (PGlite's first initdb peaks at ~640 MB, once per
    // data directory) is reported apart.
    const startPeak = await peakRssMb(server.pid);
    await resetPeakRss(server.pid);
    const headers = { "x-api-key": KEY };
    const t0 = performance.now();
    const wallT0 = Date.now();
    const timeline = args.timeline ? sampleRss(server.pid, t0) : null;
    const cpu = sampleCpu(server.pid, pg ? dbName(pg.url) : null);
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
    let resets = 0;
    while (true) {
      let res: Response;
      try {
        res = await fetch(`${base}/api/datasets/${datasetId}`, { headers });
      } catch (err) {
        // A pooled keep-alive connection the server closed as the poll reused it ("connection
        // reset by peer"; seen when the server's main thread is busy for seconds): poll again
        // on a new connection, a few times in a row at most.
        if (!(err instanceof TypeError) || ++resets > 5) throw err;
        console.error(`status poll: ${err.cause ?? err}; again`);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      resets = 0;
      if (!res.ok) throw new Error(`status poll: ${res.status} ${await res.text()}`);
      d = await res.json();
      if (d.status === "ready" || d.status === "failed") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpuSeconds = await cpu.stop();
    if (d.status !== "ready") throw new Error(`dataset ${d.status}: ${JSON.stringify(d.error)}`);
    const peak = await peakRssMb(server.pid);
    if (timeline) console.error(`RSS MB by second: ${timeline.stop()}`);
    const breakdown = await stageBreakdown(base, headers, wallT0, (uploaded - t0) / 1000, seconds);
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
      stages: breakdown,
      cpu: cpuSeconds,
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
 * there), until `stop`. Every 10 s, and at each rise, where the resident set lives
 * ({@link residentByKind}: the binary, PGlite's WebAssembly heap, V8's heaps, malloc).
 */
function sampleRss(pid: number, t0: number): { stop(): string } {
  const samples: number[] = [];
  const rises: string[] = [];
  const kinds: string[] = [];
  let lastPeak = 0;
  let lastKinds = -Infinity;
  const timer = setInterval(async () => {
    try {
      const [mb, peak] = await Promise.all([rssMb(pid), peakRssMb(pid)]);
      const second = Math.floor((performance.now() - t0) / 1000);
      samples[second] = Math.round(mb);
      const rose = peak >= lastPeak + 2;
      if (rose) rises.push(`${second}s:${Math.round(peak)}`);
      lastPeak = Math.max(lastPeak, peak);
      if (rose || second >= lastKinds + 10) {
        lastKinds = second;
        const k = await residentByKind(pid);
        kinds.push(
          `${second}s ${Math.round(mb)}${rose ? "*" : ""}: ` +
            Object.entries(k).map(([name, v]) => `${name} ${Math.round(v)}`).join(", "),
        );
      }
    } catch { /* exited */ }
  }, 1000);
  return {
    stop() {
      clearInterval(timer);
      return `${Array.from(samples, (s) => s ?? 0).join(" ")}\npeak rose at: ${
        rises.join(" ")
      }\nresident MB by kind (* a rise of the peak):\n  ${kinds.join("\n  ")}`;
    },
  };
}

/** One stage of the pipeline: its actor's jobs, seconds from the upload's start. */
interface Stage {
  actor: string;
  jobs: number;
  attempts: number;
  /** First start and last end, seconds after the upload began. */
  from: number;
  to: number;
  /** Summed claim-to-finish time, seconds (a claimed job may wait for a free slot). */
  busy: number;
}

interface Stages {
  upload: number;
  ready: number;
  steps: Stage[];
  /** Chunks only: summed seconds reading the blob, parsing + profiling, storing (COPY). */
  chunk: { read: number; parse: number; store: number } | null;
}

/**
 * Where the time went, from the server's own job records (`GET /api/jobs?actor=`, on either
 * database): per pipeline actor its span and summed handler time; for chunks, the read, parse
 * + profile and store (COPY) times each chunk's result reports.
 */
async function stageBreakdown(
  base: string,
  headers: Record<string, string>,
  wallT0: number,
  upload: number,
  ready: number,
): Promise<Stages> {
  const steps: Stage[] = [];
  const chunk = { read: 0, parse: 0, store: 0 };
  let chunkTimed = false;
  for (const actor of ["dataset.split", "dataset.chunk", "dataset.chunk-done", "dataset.merge"]) {
    const s: Stage = { actor, jobs: 0, attempts: 0, from: Infinity, to: 0, busy: 0 };
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams({ actor, limit: "100", ...(cursor ? { cursor } : {}) });
      const res = await fetch(`${base}/api/jobs?${q}`, { headers });
      if (!res.ok) throw new Error(`jobs: ${res.status} ${await res.text()}`);
      const page = await res.json() as {
        items: {
          attempts: number;
          startedAt: string | null;
          finishedAt: string | null;
          result: { ms?: { read: number; parse: number; store: number } } | null;
        }[];
        nextCursor: string | null;
      };
      for (const j of page.items) {
        if (!j.startedAt || !j.finishedAt) continue;
        const a = (Date.parse(j.startedAt) - wallT0) / 1000;
        const b = (Date.parse(j.finishedAt) - wallT0) / 1000;
        s.jobs++;
        s.attempts += j.attempts;
        s.from = Math.min(s.from, a);
        s.to = Math.max(s.to, b);
        s.busy += b - a;
        const ms = j.result?.ms;
        if (ms) {
          chunkTimed = true;
          chunk.read += ms.read / 1000;
          chunk.parse += ms.parse / 1000;
          chunk.store += ms.store / 1000;
        }
      }
      cursor = page.nextCursor;
    } while (cursor);
    if (s.jobs) steps.push(s);
  }
  console.error(`stages (seconds after the upload began; ready at ${ready.toFixed(1)} s):`);
  console.error(`  upload (blob stored, durable): 0 → ${upload.toFixed(1)}`);
  for (const s of steps) {
    console.error(
      `  ${s.actor}: ${s.jobs} jobs (${s.attempts} attempts), ${s.from.toFixed(1)} → ${
        s.to.toFixed(1)
      }, claimed → finished ${s.busy.toFixed(1)} (summed)`,
    );
  }
  if (chunkTimed) {
    console.error(
      `  in the chunks, summed: read ${chunk.read.toFixed(1)}, parse + profile ${
        chunk.parse.toFixed(1)
      }, store (COPY) ${chunk.store.toFixed(1)}`,
    );
  }
  return { upload, ready, steps, chunk: chunkTimed ? chunk : null };
}

/**
 * The floor: `psql \copy` of the file into a table of text columns, on PostgreSQL; with
 * `types` (column name → dataset type), into a table of those columns' SQL types.
 */
async function psqlCopy(bytes: number, types?: Record<string, string>): Promise<Figure> {
  const pg = await createPgDatabase();
  try {
    const header = (await readFirstLine()).split(",");
    const ddl = `CREATE TABLE floor (${
      header.map((h) => `"${h}" ${types ? sqlType(types[h] ?? "string") : "text"}`).join(", ")
    })`;
    const psql = (cmd: string) =>
      new Deno.Command("psql", {
        args: ["-q", "-v", "ON_ERROR_STOP=1", pg.url, "-c", cmd],
        stdout: "null",
        stderr: "inherit",
      }).output();
    if (!(await psql(ddl)).success) throw new Error("psql: CREATE TABLE failed");
    const cpu = sampleCpu(null, dbName(pg.url));
    const t0 = performance.now();
    const out = await psql(`\\copy floor FROM '${FILE}' WITH (FORMAT csv, HEADER)`);
    const seconds = (performance.now() - t0) / 1000;
    const cpuSeconds = await cpu.stop();
    if (!out.success) throw new Error("psql \\copy failed");
    return {
      system: types
        ? "psql \\copy into typed columns"
        : "psql \\copy into text columns (the floor)",
      seconds,
      mbPerSecond: bytes / 1e6 / seconds,
      peakRssMb: null,
      note: types
        ? `PostgreSQL; ${header.map((h) => sqlType(types[h] ?? "string")).join(", ")}; no profile`
        : "PostgreSQL; untyped, no profile",
      cpu: cpuSeconds,
    };
  } finally {
    await pg.drop();
  }
}

async function readFirstLine(): Promise<string> {
  const f = await Deno.open(FILE);
  try {
    const buf = new Uint8Array(4096);
    const n = (await f.read(buf)) ?? 0;
    return new TextDecoder().decode(buf.subarray(0, n)).split("\n")[0]!;
  } finally {
    f.close();
  }
}

/** Debian's pandas, SQLAlchemy and psycopg2, installed when missing. */
async function ensurePandas(): Promise<void> {
  const probe = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import pandas, sqlalchemy, psycopg2"],
    stderr: "null",
  }).output();
  if (probe.success) return;
  console.error("installing python3-pandas python3-sqlalchemy python3-psycopg2 (apt-get)");
  const out = await new Deno.Command("apt-get", {
    args: ["install", "-y", "python3-pandas", "python3-sqlalchemy", "python3-psycopg2"],
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("apt-get install failed (root needed, or --peers false)");
}

/**
 * The peer a user would write: pandas `read_csv` + `to_sql` into PostgreSQL (SQLAlchemy +
 * psycopg2, `chunksize=10000`, the default method), timed from the read to the last insert.
 */
async function pandasToSql(bytes: number): Promise<Figure> {
  const pg = await createPgDatabase();
  try {
    const url = pg.url.replace(/^postgres(ql)?:/, "postgresql+psycopg2:");
    const script = `
import json, resource, time
import pandas as pd
from sqlalchemy import create_engine
engine = create_engine(${JSON.stringify(url)})
t = time.time()
df = pd.read_csv(${JSON.stringify(FILE)})
df.to_sql("peer", engine, index=False, chunksize=10000)
s = time.time() - t
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": s, "rows": len(df), "rss": u.ru_maxrss, "cpu": u.ru_utime + u.ru_stime}))
`;
    const cpu = sampleCpu(null, dbName(pg.url));
    const out = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", script],
      stdout: "piped",
    }).output();
    const pgCpu = await cpu.stop();
    if (!out.success) throw new Error("pandas to_sql run failed");
    const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      seconds: number;
      rss: number;
      cpu: number;
    };
    return {
      system: "pandas read_csv + to_sql (chunksize=10000)",
      seconds: r.seconds,
      mbPerSecond: bytes / 1e6 / r.seconds,
      peakRssMb: r.rss / 1024,
      note: "PostgreSQL; typed by pandas, no profile",
      cpu: { process: r.cpu, ...pgCpu },
    };
  } finally {
    await pg.drop();
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

/**
 * Troupe's profiling stage alone (no upload, no storage), like for like with pandas; `types`:
 * the columns' merged types.
 */
async function profilingStage(
  bytes: number,
): Promise<Figure & { types: Record<string, string> }> {
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
    types: Record<string, string>;
    cpu: number;
  };
  return {
    types: r.types,
    cpu: { process: r.cpu },
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

const { bytes, rows } = await benchCsv(Number(args.mb));
const figures: Figure[] = [];
/** Profiling stage speed over pandas', one per interleaved pair. */
const ratios: number[] = [];
/**
 * Per run: the floor, the second floor's two parts (the profiling stage alone, the typed
 * COPY), the pandas peer and Troupe on each database, run in turn.
 */
const stored: {
  floor: Figure | null;
  stage: Figure | null;
  typedCopy: Figure | null;
  peer: Figure | null;
  troupe: Figure[];
}[] = [];
const loads = [loadAverage()];
if (args.peers !== "false") await ensurePandas();
for (let run = 0; run < Number(args.runs); run++) {
  const r: (typeof stored)[number] = {
    floor: null,
    stage: null,
    typedCopy: null,
    peer: null,
    troupe: [],
  };
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
    r.floor = await psqlCopy(bytes);
    figures.push(r.floor);
    // The second floor: the work every typed, profiled ingest does, each part alone.
    const stage = await profilingStage(bytes);
    r.stage = stage;
    r.typedCopy = await psqlCopy(bytes, stage.types);
    figures.push(r.stage, r.typedCopy);
    if (args["to-sql"] !== "false") {
      r.peer = await pandasToSql(bytes);
      figures.push(r.peer);
    }
  }
  for (const db of args.db.split(",").map((s) => s.trim()).filter(Boolean)) {
    const f = await troupe(db as "pglite" | "postgres", bytes, rows);
    figures.push(f);
    r.troupe.push(f);
  }
  stored.push(r);
  loads.push(loadAverage());
}
console.log(
  `\n${(bytes / 1e6).toFixed(0)} MB CSV, ${rows.toLocaleString("en-US")} rows, 9 mixed columns ` +
    `(Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores; load ${
      loads.join(" → ")
    })\n`,
);
console.log("| system | seconds | MB/s | peak RSS MB | CPU s | note |");
console.log("|---|---|---|---|---|---|");
for (const f of figures) {
  console.log(
    `| ${f.system} | ${f.seconds.toFixed(1)} | ${f.mbPerSecond.toFixed(1)} | ${
      f.peakRssMb === null ? "-" : f.peakRssMb.toFixed(0)
    } | ${cpuText(f.cpu)} | ${f.note} |`,
  );
}
// Upload → profile ready, every row stored typed: ≥ 0.5× the floor's MB/s, ≥ 3× the peer's.
for (const [i, r] of stored.entries()) {
  for (const t of r.troupe) {
    const parts = [];
    if (r.floor) {
      const x = t.mbPerSecond / r.floor.mbPerSecond;
      parts.push(
        `${x.toFixed(2)}× the psql floor (target ≥ 0.5×: ${x >= 0.5 ? "met" : "not met"})`,
      );
    }
    if (r.stage && r.typedCopy) {
      // Troupe's time over the two parts' summed time: 1× does them in the time they take one
      // after the other.
      const x = (r.stage.seconds + r.typedCopy.seconds) / t.seconds;
      parts.push(
        `${x.toFixed(2)}× the second floor (profiling stage ${r.stage.seconds.toFixed(1)} s + ` +
          `typed \\copy ${r.typedCopy.seconds.toFixed(1)} s)`,
      );
    }
    if (r.peer) {
      const x = t.mbPerSecond / r.peer.mbPerSecond;
      parts.push(`${x.toFixed(2)}× pandas to_sql (target ≥ 3×: ${x >= 3 ? "met" : "not met"})`);
      const [mine, theirs] = [cpuTotal(t.cpu), cpuTotal(r.peer.cpu)];
      if (mine && theirs) {
        parts.push(`CPU s ${mine.toFixed(1)} against pandas' ${theirs.toFixed(1)}`);
      }
    }
    if (parts.length) console.log(`run ${i + 1}, ${t.system}: ${parts.join("; ")}`);
  }
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
      stored,
      profilingOverPandas: { ratios, median: ratioMedian },
    },
    null,
    2,
  ),
);
