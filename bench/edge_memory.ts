/**
 * Memory of the edge configuration: `deploy/edge.ts` on the production drivers (PostgreSQL
 * through the Neon bridge, the QStash stand-in, Upstash Redis through its REST bridge; the
 * stand-ins run in this process, not the server's), started with plain `deno run -A` (no V8
 * flags, no `GLIBC_TUNABLES`: the server's environment is this one's without it), one scenario
 * to a fresh server process:
 * - `dataset`: one generated CSV (bench/csv_file.ts, `--mb`, 1 GB by default) uploaded with
 *   curl, until its profile is ready;
 * - `courses`: ten generated 300-page books (bench/pdf_book.ts) uploaded at once, one course
 *   each (ten curl processes), until every course is ready.
 * The server's resident set is read from /proc every `--sample-ms` (50 by default) from its
 * spawn on; its peak is the larger of the highest sample and the kernel's high-water mark
 * (VmHWM, which no sample can miss). Target: each peak under 400 MB. Prints a table and writes
 * bench/results/edge_memory.json.
 *
 *   deno run -A bench/edge_memory.ts [--mb 1000] [--scenario dataset,courses] [--books 10]
 *     [--pages 300] [--sample-ms 50]
 */
import { parseArgs } from "node:util";
import { createPgDatabase } from "../tests/harness.ts";
import { startNeonBridge } from "../tests/fixtures/neon_bridge.ts";
import { startQStash } from "../tests/fixtures/qstash_server.ts";
import { startRedisBridge } from "../tests/fixtures/upstash_redis_bridge.ts";
import { freePort, UNLIMITED_RATES, untilUp } from "../tests/start_task.ts";
import { benchCsv } from "./csv_file.ts";
import { book } from "./pdf_book.ts";
import { peakRssMb, rssMb } from "./rss.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    mb: { type: "string", default: "1000" },
    scenario: { type: "string", default: "dataset,courses" },
    books: { type: "string", default: "10" },
    pages: { type: "string", default: "300" },
    "sample-ms": { type: "string", default: "50" },
  },
});
const ROOT = new URL("..", import.meta.url).pathname;
const KEY = "troupe-edge-mem-key-0123456789abcdef";
const headers = { "x-api-key": KEY };
const SAMPLE_MS = Number(args["sample-ms"]);

interface Figure {
  scenario: string;
  seconds: number;
  /** Peak from the spawn on: max(highest sample, VmHWM). */
  peakMb: number;
  /** The highest VmRSS sample. */
  sampledPeakMb: number;
  /** Resident set once the health check first answered (modules loaded, connected). */
  startedMb: number;
  note: string;
}

/** The server's environment: this process's, less the glibc tunables, plus `extra`. */
function serverEnv(extra: Record<string, string>): Record<string, string> {
  const { GLIBC_TUNABLES: _, ...env } = Deno.env.toObject();
  return { ...env, ...extra };
}

/** VmRSS every `SAMPLE_MS` until `stop`, which returns the highest sample (MB). */
function sample(pid: number): { stop(): number } {
  let high = 0;
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      high = Math.max(high, await rssMb(pid));
    } catch {
      /* exited */
    } finally {
      busy = false;
    }
  }, SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      return high;
    },
  };
}

async function curl(argv: string[]): Promise<Record<string, unknown>> {
  const out = await new Deno.Command("curl", { args: ["-sS", ...argv], stdout: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`curl failed (${out.code}): ${text}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`curl: not JSON: ${text.slice(0, 300)}`);
  }
}

async function pollUntil(url: string, done: (body: Record<string, unknown>) => boolean) {
  while (true) {
    const res = await fetch(url, { headers });
    if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
    const body = await res.json();
    if (done(body)) return body;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function datasetScenario(base: string): Promise<string> {
  const csv = await benchCsv(Number(args.mb));
  const up = await curl([
    "-XPOST",
    "-H",
    `x-api-key: ${KEY}`,
    "-H",
    "content-type: text/csv",
    "--data-binary",
    `@${csv.path}`,
    `${base}/api/datasets?name=edge-memory`,
  ]);
  if (typeof up.datasetId !== "string") throw new Error(`upload: ${JSON.stringify(up)}`);
  const d = await pollUntil(
    `${base}/api/datasets/${up.datasetId}`,
    (b) => b.status === "ready" || b.status === "failed",
  );
  if (d.status !== "ready") throw new Error(`dataset ${d.status}: ${JSON.stringify(d.error)}`);
  return `${(csv.bytes / 1e6).toFixed(0)} MB, ${
    d.rowCount === csv.rows ? "all" : `${d.rowCount} of`
  } ${csv.rows.toLocaleString("en-US")} rows`;
}

async function coursesScenario(base: string, files: string[]): Promise<string> {
  const ups = await Promise.all(files.map((path, i) =>
    curl([
      "-H",
      `x-api-key: ${KEY}`,
      "-F",
      `files=@${path};filename=book-${i}.pdf`,
      `${base}/api/courses`,
    ])
  ));
  const statuses = await Promise.all(ups.map((u) => {
    if (typeof u.courseId !== "string") throw new Error(`upload: ${JSON.stringify(u)}`);
    return pollUntil(`${base}/api/courses/${u.courseId}`, (b) => b.status !== "processing")
      .then((b) => String(b.status));
  }));
  if (statuses.some((s) => s !== "ready")) throw new Error(`courses: ${statuses.join(", ")}`);
  return `${files.length} × ${args.pages}-page PDFs, all ready`;
}

const database = await createPgDatabase();
const neon = await startNeonBridge();
const redis = await startRedisBridge({ token: "edge-mem-redis" });
const qstash = await startQStash({
  token: "edge-mem",
  currentSigningKey: "m1",
  nextSigningKey: "m2",
  retryDelayMs: () => 200,
});
const stack = {
  LOG_LEVEL: "error",
  DATA_DIR: "/nonexistent/troupe-edge-memory",
  DATABASE_URL: database.url,
  NEON_WS_PROXY: neon.wsProxy,
  QSTASH_URL: qstash.url,
  QSTASH_TOKEN: "edge-mem",
  QSTASH_CURRENT_SIGNING_KEY: "m1",
  QSTASH_NEXT_SIGNING_KEY: "m2",
  UPSTASH_REDIS_REST_URL: redis.url,
  UPSTASH_REDIS_REST_TOKEN: "edge-mem-redis",
  DEV_API_KEY: KEY,
  // The status polls would run into the per-address limit; the uploads into the size limit.
  ...UNLIMITED_RATES,
  DATASET_MAX_BYTES: String(4 * Number(args.mb) * 1e6),
};
const dir = await Deno.makeTempDir({ prefix: "troupe-edge-memory-" });
const figures: Figure[] = [];
try {
  const migrated = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "deploy/migrate.ts"],
    cwd: ROOT,
    env: serverEnv({ ...stack, PUBLIC_URL: "http://127.0.0.1:1" }),
  }).output();
  if (!migrated.success) throw new Error(new TextDecoder().decode(migrated.stderr));
  const scenarios = args.scenario.split(",");
  const bookFiles: string[] = [];
  if (scenarios.includes("courses")) {
    for (let i = 0; i < Number(args.books); i++) {
      const path = `${dir}/book-${i}.pdf`;
      await Deno.writeFile(path, await book(Number(args.pages), 100 + i));
      bookFiles.push(path);
    }
  }
  if (scenarios.includes("dataset")) await benchCsv(Number(args.mb));
  for (const scenario of scenarios) {
    const port = freePort();
    const base = `http://127.0.0.1:${port}`;
    const server = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "deploy/edge.ts"],
      cwd: ROOT,
      clearEnv: true,
      env: serverEnv({ ...stack, PORT: String(port), PUBLIC_URL: base }),
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    const sampler = sample(server.pid);
    try {
      await untilUp(`${base}/api/health`, server, { intervalMs: 20 });
      const startedMb = await rssMb(server.pid);
      const t0 = performance.now();
      const note = scenario === "dataset"
        ? await datasetScenario(base)
        : scenario === "courses"
        ? await coursesScenario(base, bookFiles)
        : (() => {
          throw new Error(`--scenario: dataset or courses, not ${scenario}`);
        })();
      const seconds = (performance.now() - t0) / 1000;
      const sampledPeakMb = sampler.stop();
      const peakMb = Math.max(sampledPeakMb, await peakRssMb(server.pid));
      figures.push({ scenario, seconds, peakMb, sampledPeakMb, startedMb, note });
    } finally {
      sampler.stop();
      try {
        server.kill("SIGTERM");
      } catch { /* exited */ }
      await server.status;
    }
  }
} finally {
  await qstash.close();
  await redis.close();
  await neon.close();
  await database.drop();
  await Deno.remove(dir, { recursive: true });
}

console.log(
  `\nedge entry (deno run -A deploy/edge.ts, no V8 flags, no GLIBC_TUNABLES), Deno ${Deno.version.deno}, RSS sampled every ${SAMPLE_MS} ms\n`,
);
console.log("| scenario | seconds | peak RSS MB (< 400) | highest sample MB | after start MB | |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const f of figures) {
  console.log(
    `| ${f.scenario} | ${f.seconds.toFixed(1)} | ${f.peakMb.toFixed(0)} | ${
      f.sampledPeakMb.toFixed(0)
    } | ${f.startedMb.toFixed(0)} | ${f.note} |`,
  );
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  new URL("./results/edge_memory.json", import.meta.url),
  JSON.stringify({ deno: Deno.version.deno, sampleMs: SAMPLE_MS, figures }, null, 2),
);
