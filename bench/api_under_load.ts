/**
 * `GET /api/v1/jobs/:id` latency while the server ingests a large CSV and builds courses from
 * ten 300-page PDFs, on the embedded default (PGlite) and on PostgreSQL: the real server
 * (`main.ts` in its own process, rate limits raised for the run), the load started by this
 * process (the CSV sent by `curl`, the PDFs by `fetch`), and the reads made by a poller in its
 * own process: one request every 50 ms (the next one 50 ms after the previous answer), from
 * before the CSV upload starts until the dataset and every course have ended (or `--limit`
 * seconds passed). The job read is a pending one (delayed by an hour), so every read goes to
 * the database, not the runtime's cache of finished jobs.
 *
 *   deno run -A bench/api_under_load.ts [--db pglite,postgres] [--mb 1000] [--pdfs 10]
 *     [--pages 300] [--limit 280] [--chunk-bytes N] [--quick]
 *
 * `--db`: `pglite` (the embedded default: PGlite in a thread of its own), `pglite-main` (PGlite
 * in the server's thread, `PGLITE_THREAD=main`), `postgres`.
 *
 * `--quick`: a 200 MB CSV and 3 PDFs; `--chunk-bytes` sets the server's DATASET_CHUNK_BYTES. The CSV is bench/csv_file.ts's (generated once under
 * /tmp). Target: p99 < 50 ms. Prints p50/p99/max of the reads, how many took over 50 ms,
 * the host's load average, and the slowest reads with their time in the run. Each job read is
 * sent together with a read of a static asset (`/api/docs/init.js`: no database, no key), whose
 * latency is the server's event loop and HTTP alone: a slow job read beside a fast asset read
 * waited on the database; both slow, on the event loop. On embedded PGlite the runtime's read
 * model answers the pending job without a query while its row is unchanged.
 *
 * The floor: beside every run a bare server (`Deno.serve` answering both paths with fixed
 * bodies, in its own process) is polled the same way by a poller of its own: its p99 is what
 * the host's load alone costs a process with nothing else to do, at the same time.
 *
 * `--stalls DIR`: the server runs with `--preload bench/stall_log.ts` (a long-task detector:
 * every turn of its event loop over 20 ms late, with epoch times), and the run writes the
 * poller's reads to `DIR/<db>.reads.json`; with `--cpu-prof PROF` as well,
 * `deno run -A bench/stall_attribution.ts DIR PROF --db <db>` gives each read over 50 ms the
 * cause of the stall it overlapped (what the main thread's CPU profile ran in it). On
 * PostgreSQL `--stalls` also times each job read's query in the server (`DIR/postgres.pg.jsonl`:
 * the wait for a pooled connection, the answer, the server's own duration; see
 * `bench/stall_log.ts`), which the attribution uses for reads with no stall. On PostgreSQL a
 * process of its own also sends the job read's statement every 50 ms on a connection of its
 * own (the database server's answer time, without the Troupe server).
 */
import { parseArgs } from "node:util";
import { createPgDatabase } from "../tests/harness.ts";
import { freePort, startTask, UNLIMITED_RATES, untilUp } from "../tests/start_task.ts";
import { benchCsv, benchCsvPath } from "./csv_file.ts";
import { book } from "./pdf_book.ts";
import { loadAverage, pct } from "./stats.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    db: { type: "string", default: "pglite,postgres" },
    quick: { type: "boolean", default: false },
    mb: { type: "string" },
    pdfs: { type: "string" },
    pages: { type: "string", default: "300" },
    limit: { type: "string", default: "280" },
    "chunk-bytes": { type: "string" },
    json: { type: "string", default: "bench/results/api_under_load.json" },
    "cpu-prof": { type: "string" },
    stalls: { type: "string" },
    floor: { type: "boolean", default: true },
    // Internal: run as the bare server of the floor.
    bare: { type: "string" },
    // Internal: run as the poller.
    poll: { type: "string" },
    // Internal: run as the poller of the database itself (PostgreSQL).
    "poll-db": { type: "string" },
    job: { type: "string" },
  },
});
const KEY = "troupe-bench-key-0123456789abcdef";
const headers = { "x-api-key": KEY };

/** A poller's end: `closed` turns true when the parent closes this process's stdin. */
function untilStdinCloses(): { closed: boolean } {
  const input = { closed: false };
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* until closed */ }
    input.closed = true;
  })();
  return input;
}

if (args.bare) {
  // The floor: a server with nothing else to do, answering both reads with fixed bodies.
  const job = JSON.stringify({ id: args.job, status: "queued", attempts: 0, progress: null });
  const asset = "x".repeat(2048);
  Deno.serve(
    { hostname: "127.0.0.1", port: Number(args.bare), onListen: () => {} },
    (req) =>
      new URL(req.url).pathname.startsWith("/api/v1/jobs/")
        ? new Response(job, { headers: { "content-type": "application/json" } })
        : new Response(asset, { headers: { "content-type": "text/javascript" } }),
  );
  await new Promise<never>(() => {}); // serves until killed
} else if (args["poll-db"]) {
  // The database's own answer time: the job read's statement every 50 ms on a connection of
  // this process, which does nothing else.
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: args["poll-db"] });
  await client.connect();
  const samples: [number, number][] = [];
  const input = untilStdinCloses();
  const t0 = Date.now();
  while (!input.closed) {
    const s = performance.now();
    await client.query("SELECT * FROM troupe_jobs WHERE id = ANY($1::text[])", [[args.job]]);
    samples.push([Date.now() - t0, performance.now() - s]);
    await new Promise((r) => setTimeout(r, 50));
  }
  await client.end();
  console.log(JSON.stringify({ t0, samples }));
  Deno.exit(0);
} else if (args.poll) {
  // The poller: reads until stdin closes, then prints its samples as JSON lines.
  const url = `${args.poll}/api/v1/jobs/${args.job}`;
  // A static asset beside it: no database, no key; its latency is the event loop's and HTTP's.
  const plain = `${args.poll}/api/docs/init.js`;
  const samples: [number, number, number, number][] = [];
  const input = untilStdinCloses();
  const t0 = Date.now();
  while (!input.closed) {
    // A failed request (a kept-alive connection the server closed) counts as an error, status 0.
    const timed = async (u: string, init?: RequestInit): Promise<[number, number]> => {
      const s = performance.now();
      try {
        const res = await fetch(u, init);
        await res.arrayBuffer();
        return [performance.now() - s, res.status];
      } catch {
        return [performance.now() - s, 0];
      }
    };
    const [[ms, status], [plainMs]] = await Promise.all([timed(url, { headers }), timed(plain)]);
    samples.push([Date.now() - t0, ms, status, plainMs]);
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(JSON.stringify({ t0, samples }));
  Deno.exit(0);
}

const QUICK = args.quick;
const MB = Number(args.mb ?? (QUICK ? 200 : 1000));
const PDFS = Number(args.pdfs ?? (QUICK ? 3 : 10));
const PAGES = Number(args.pages);
const LIMIT_MS = Number(args.limit) * 1000;

interface Run {
  db: string;
  reads: number;
  p50: number;
  p99: number;
  max: number;
  over50: number;
  errors: number;
  /** The static asset read beside each job read (no database): p50, p99, max. */
  plain: [number, number, number];
  slowest: [number, number, number][];
  /** The same reads of a bare server (`--floor`) in its own process meanwhile: p50, p99, max. */
  floor: [number, number, number] | null;
  /**
   * PostgreSQL: the job read's statement sent every 50 ms by a process of its own on its own
   * connection meanwhile: p50, p99, max, reads ≥ 50 ms (the database server's answer alone).
   */
  dbFloor: [number, number, number, number] | null;
  ingest: { status: string; seconds: number; rows: number };
  courses: { statuses: string[]; seconds: number };
  loadStart: string;
  loadEnd: string;
}

/**
 * With `--stalls` on PostgreSQL: the server's connections log every statement over 5 ms to the
 * client as well (`bench/stall_log.ts` reads it as the statement's time in the server).
 */
function timedUrl(url: string): string {
  const u = new URL(url);
  u.searchParams.set("options", "-c log_min_duration_statement=5 -c client_min_messages=log");
  return u.toString();
}

/** `pglite`: the embedded default (PGlite in a thread of its own); `pglite-main`: the server's. */
const DBS = ["pglite", "pglite-main", "postgres"] as const;
type Db = (typeof DBS)[number];

async function run(db: Db, books: Uint8Array[]): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "troupe-bench-apiload-" });
  const pg = db === "postgres" ? await createPgDatabase() : null;
  const prof = args["cpu-prof"];
  const stalls = args.stalls;
  if (stalls) await Deno.mkdir(stalls, { recursive: true });
  const task = await startTask([
    ...(prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}/${db}`] : []),
    ...(stalls ? ["--preload", new URL("./stall_log.ts", import.meta.url).pathname] : []),
  ]);
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = new Deno.Command(Deno.execPath(), {
    args: task.args,
    env: {
      ...task.env,
      PORT: String(port),
      DATA_DIR: dir,
      LOG_LEVEL: "error",
      DEV_API_KEY: KEY,
      ...UNLIMITED_RATES,
      ...(pg ? { DATABASE_URL: stalls ? timedUrl(pg.url) : pg.url } : {}),
      ...(pg && stalls ? { PG_TIMING_LOG: `${stalls}/${db}.pg.jsonl` } : {}),
      ...(db === "postgres" ? {} : { PGLITE_THREAD: db === "pglite-main" ? "main" : "worker" }),
      ...(args["chunk-bytes"] ? { DATASET_CHUNK_BYTES: args["chunk-bytes"] } : {}),
      ...(stalls ? { STALL_LOG: `${stalls}/${db}.stalls.jsonl` } : {}),
    },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  let poller: Deno.ChildProcess | null = null;
  let bare: Deno.ChildProcess | null = null;
  let floorPoller: Deno.ChildProcess | null = null;
  let dbPoller: Deno.ChildProcess | null = null;
  let stopping = false;
  server.status.then((s) => {
    if (!stopping) {
      console.error(`the server exited during the run: code ${s.code}, signal ${s.signal}`);
    }
  });
  try {
    await untilUp(`${base}/api/health`, server);
    const res = await fetch(`${base}/api/v1/actors/system.echo/jobs`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ input: { value: 1 }, delayMs: 3_600_000 }),
    });
    if (res.status !== 202) throw new Error(`enqueue: ${res.status} ${await res.text()}`);
    const { jobId } = await res.json() as { jobId: string };
    // Route groups load on their first request (routes/lazy.ts): one request to each group the
    // run uses, before the reads start, so that they time the server under load, not the
    // first use of a group (a start's cost: bench/cold_start.ts).
    for (const group of ["datasets", "courses", "jobs"]) {
      const r = await fetch(`${base}/api/v1/${group}?limit=1`, { headers });
      if (!r.ok) throw new Error(`GET /api/v1/${group}: ${r.status} ${await r.text()}`);
    }
    poller = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--poll", base, "--job", jobId],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    if (args.floor) {
      const barePort = freePort();
      const self = new URL(import.meta.url).pathname;
      bare = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", self, "--bare", String(barePort), "--job", jobId],
        stdout: "null",
        stderr: "inherit",
      }).spawn();
      const bareBase = `http://127.0.0.1:${barePort}`;
      await untilUp(`${bareBase}/api/docs/init.js`, bare);
      floorPoller = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", self, "--poll", bareBase, "--job", jobId],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
    }
    if (pg) {
      dbPoller = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL(import.meta.url).pathname,
          "--poll-db",
          pg.url,
          "--job",
          jobId,
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
    }
    const loadStart = loadAverage();
    const t0 = performance.now();
    // The CSV, streamed from its file by curl; the PDFs at the same time.
    const csv = new Deno.Command("curl", {
      args: [
        "-sS",
        "-XPOST",
        "-H",
        `x-api-key: ${KEY}`,
        "-H",
        "content-type: text/csv",
        "-T",
        benchCsvPath(MB),
        `${base}/api/v1/datasets?name=big`,
      ],
      stdout: "piped",
    }).output();
    const courseIds = await Promise.all(books.map(async (b, i) => {
      const form = new FormData();
      form.append("files", new File([new Uint8Array(b)], `book-${i}.pdf`));
      const r = await fetch(`${base}/api/v1/courses`, { method: "POST", headers, body: form });
      const body = await r.json();
      if (r.status !== 202) throw new Error(`course upload ${r.status}: ${JSON.stringify(body)}`);
      return body.courseId as string;
    }));
    const coursesDone = (async () => {
      const statuses = await Promise.all(courseIds.map(async (id) => {
        while (true) {
          const c = await (await fetch(`${base}/api/v1/courses/${id}`, { headers })).json();
          if (c.status !== "processing") return c.status as string;
          if (performance.now() - t0 > LIMIT_MS) return `still ${c.status}`;
          await new Promise((r) => setTimeout(r, 500));
        }
      }));
      return { statuses, seconds: (performance.now() - t0) / 1000 };
    })();
    const up = await csv;
    const reply = new TextDecoder().decode(up.stdout);
    if (!up.success || !reply.includes("datasetId")) throw new Error(`upload failed: ${reply}`);
    const { datasetId } = JSON.parse(reply) as { datasetId: string };
    let d = { status: "", rowCount: 0 };
    while (performance.now() - t0 < LIMIT_MS) {
      d = await (await fetch(`${base}/api/v1/datasets/${datasetId}`, { headers })).json();
      if (d.status === "ready" || d.status === "failed") break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const ingest = { status: d.status, seconds: (performance.now() - t0) / 1000, rows: d.rowCount };
    const courses = await coursesDone;
    await poller.stdin.close();
    const out = await poller.output();
    poller = null;
    let floor: Run["floor"] = null;
    let dbFloor: Run["dbFloor"] = null;
    if (dbPoller) {
      await dbPoller.stdin.close();
      const dout = JSON.parse(new TextDecoder().decode((await dbPoller.output()).stdout)) as {
        t0: number;
        samples: [number, number][];
      };
      dbPoller = null;
      if (stalls) await Deno.writeTextFile(`${stalls}/${db}.db_reads.json`, JSON.stringify(dout));
      const d = dout.samples.map(([, ms]) => ms);
      dbFloor = [pct(d, 0.5), pct(d, 0.99), Math.max(...d), d.filter((ms) => ms >= 50).length];
    }
    if (floorPoller) {
      await floorPoller.stdin.close();
      const fout = await floorPoller.output();
      floorPoller = null;
      const f = (JSON.parse(new TextDecoder().decode(fout.stdout)) as {
        samples: [number, number, number, number][];
      }).samples.filter(([, , st]) => st === 200).map(([, ms]) => ms);
      floor = [pct(f, 0.5), pct(f, 0.99), Math.max(...f)];
    }
    const polled = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      t0: number;
      samples: [number, number, number, number][];
    };
    const samples = polled.samples;
    if (stalls) await Deno.writeTextFile(`${stalls}/${db}.reads.json`, JSON.stringify(polled));
    const ok = samples.filter(([, , status]) => status === 200).map(([, ms]) => ms);
    const plain = samples.map(([, , , ms]) => ms);
    const r: Run = {
      db,
      reads: samples.length,
      p50: pct(ok, 0.5),
      p99: pct(ok, 0.99),
      max: Math.max(...ok),
      over50: ok.filter((ms) => ms >= 50).length,
      errors: samples.length - ok.length,
      plain: [pct(plain, 0.5), pct(plain, 0.99), Math.max(...plain)],
      slowest: samples.toSorted((a, b) => b[1] - a[1]).slice(0, 8).map((
        [at, ms, , plain],
      ) => [at, ms, plain]),
      floor,
      dbFloor,
      ingest,
      courses,
      loadStart,
      loadEnd: loadAverage(),
    };
    console.log(
      `${db.padEnd(11)} GET /api/v1/jobs/:id every 50 ms: ${r.reads} reads, p50 ${
        r.p50.toFixed(1)
      } / p99 ${r.p99.toFixed(1)} / max ${
        r.max.toFixed(0)
      } ms, ${r.over50} ≥ 50 ms, ${r.errors} errors | ${MB} MB CSV ${ingest.status} (${ingest.rows} rows) at ${
        ingest.seconds.toFixed(0)
      } s, ${PDFS} × ${PAGES}-page PDFs ${[...new Set(courses.statuses)].join("/")} at ${
        courses.seconds.toFixed(0)
      } s | a static asset (no database) p50 ${r.plain[0].toFixed(1)} / p99 ${
        r.plain[1].toFixed(1)
      } / max ${r.plain[2].toFixed(0)} ms${
        floor
          ? ` | floor (a bare server meanwhile) p50 ${floor[0].toFixed(1)} / p99 ${
            floor[1].toFixed(1)
          } / max ${floor[2].toFixed(0)} ms`
          : ""
      }${
        dbFloor
          ? ` | the statement from a process of its own p50 ${dbFloor[0].toFixed(1)} / p99 ${
            dbFloor[1].toFixed(1)
          } / max ${dbFloor[2].toFixed(0)} ms, ${dbFloor[3]} ≥ 50 ms`
          : ""
      } | load ${loadStart} → ${r.loadEnd}`,
    );
    console.log(
      `  slowest (s into the run: job read ms (the asset read beside it)): ${
        r.slowest.map(([at, ms, plain]) =>
          `${(at / 1000).toFixed(1)} s: ${ms.toFixed(0)} (asset ${plain.toFixed(0)})`
        ).join(", ")
      }`,
    );
    return r;
  } finally {
    for (const p of [poller, floorPoller, dbPoller]) {
      if (!p) continue;
      await p.stdin.close().catch(() => {});
      await p.status;
    }
    if (bare) {
      try {
        Deno.kill(bare.pid, "SIGTERM");
      } catch { /* exited */ }
      await bare.status;
    }
    stopping = true;
    try {
      Deno.kill(server.pid, "SIGTERM");
    } catch { /* exited */ }
    await server.status;
    await pg?.drop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const dbs = args.db.split(",");
const unknown = dbs.filter((d) => !(DBS as readonly string[]).includes(d));
if (unknown.length) {
  throw new Error(`--db: unknown ${unknown.join(", ")} (one of ${DBS.join(", ")})`);
}
await benchCsv(MB);
const books = await Promise.all(Array.from({ length: PDFS }, (_, i) => book(PAGES, 100 + i)));
const runs: Run[] = [];
for (const db of dbs as Db[]) runs.push(await run(db, books));
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  args.json,
  JSON.stringify({ at: new Date().toISOString(), mb: MB, pdfs: PDFS, pages: PAGES, runs }, null, 2),
);
