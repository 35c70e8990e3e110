/**
 * Scaling of the table queue on one PostgreSQL:
 * 1. throughput at 1, 2 and 4 instances (processes on this machine, bench/scaling_worker.ts,
 *    default settings each) sharing one database: N no-op messages over 256 keys, enqueued by
 *    this process in batches of 500 while the instances run (end to end), or all enqueued
 *    before they start (processing); exactly-once checked after each run;
 * 2. enqueue latency as the queue grows to `--depth` waiting messages (no consumer): at each
 *    depth, `--samples` single enqueues one after another (p50, p99) and 20 batches of 500,
 *    and one claim of 256 (the runtime's claim SQL, see bench/queue_floor.ts).
 *
 *   deno run -A bench/scaling.ts [--n 20000] [--instances 1,2,4] [--runs 3]
 *     [--depth 1000000] [--samples 500] [--part instances,depth]
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import {
  defineActor,
  jsonLogger,
  Runtime,
  type SqlDatabase,
  TableQueueTransport,
} from "@troupe/runtime";
import { openPostgres } from "@troupe/runtime/postgres";
import { migrate } from "../db/migrate.ts";
import { createPgDatabase } from "../tests/harness.ts";
import { backendsOf, cpuBetween, serverCpu } from "./proc_cpu.ts";
import { claimOnce } from "./queue_floor.ts";
import { loadAverage, median, pct } from "./stats.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "20000" },
    keys: { type: "string", default: "256" },
    instances: { type: "string", default: "1,2,4" },
    runs: { type: "string", default: "3" },
    modes: { type: "string", default: "end-to-end,processing" },
    depth: { type: "string", default: "1000000" },
    samples: { type: "string", default: "500" },
    part: { type: "string", default: "instances,depth" },
    json: { type: "string", default: "bench/results/scaling.json" },
  },
});
const N = Number(args.n);
const KEYS = Number(args.keys);
const BATCH = 500;
const parts = args.part.split(",");
const fmt = (x: number) => Math.round(x).toLocaleString("en-US");

const noop = defineActor({
  name: "bench.noop",
  input: z.object({ i: z.number().int() }),
  key: (x) => `bench:${x.i % KEYS}`,
  handler: () => {},
});

/** The depth curve's messages: a key each, so that every claim finds keys not leased yet. */
const waiting = defineActor({
  name: "bench.waiting",
  input: z.object({ i: z.number().int() }),
  key: (x) => `waiting:${x.i}`,
  handler: () => {},
});

/** A runtime that only enqueues (never started). */
const producer = (db: SqlDatabase) =>
  new Runtime({
    db,
    actors: [noop, waiting],
    transport: new TableQueueTransport(db),
    logger: jsonLogger("warn"),
  });

async function enqueueAll(
  runtime: Runtime,
  n: number,
  { from = 0, batch = BATCH, actor = "bench.noop" } = {},
): Promise<void> {
  for (let start = from; start < from + n; start += batch) {
    const inputs = Array.from({ length: Math.min(batch, from + n - start) }, (_, j) => ({
      i: start + j,
    }));
    await runtime.enqueueMany(actor, inputs);
  }
}

async function count(db: SqlDatabase, sql: string): Promise<number> {
  const [r] = await db.query<{ n: number }>(sql);
  return r!.n;
}

interface Instance {
  child: Deno.ChildProcess;
  lines: ReadableStreamDefaultReader<string>;
  /** Its log (warnings and errors), read until it exits. */
  log: Promise<string>;
}

async function startInstance(url: string): Promise<Instance> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./scaling_worker.ts", import.meta.url).pathname, url, `${KEYS}`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log = new Response(child.stderr).text();
  const lines = child.stdout
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(
      new TransformStream<string, string>({
        transform(chunk, c) {
          for (const l of chunk.split("\n")) if (l.trim()) c.enqueue(l.trim());
        },
      }),
    ).getReader();
  const first = await lines.read();
  if (first.value !== "ready") throw new Error(`instance did not start: ${first.value}`);
  return { child, lines, log };
}

/** Stops an instance; returns its CPU ms and how many of its claims failed on a deadlock. */
async function stopInstance(i: Instance): Promise<{ cpuMs: number; deadlocks: number }> {
  i.child.kill("SIGTERM");
  const line = await i.lines.read();
  await i.child.status;
  const log = await i.log;
  const deadlocks = log.split("\n").filter((l) => l.includes("deadlock detected")).length;
  const other = log.split("\n").filter((l) => l.trim() && !l.includes("deadlock detected"));
  if (other.length > 0) console.error(other.join("\n"));
  return { cpuMs: (JSON.parse(line.value!) as { cpuMs: number }).cpuMs, deadlocks };
}

interface ScaleSample {
  instances: number;
  mode: string;
  rate: number;
  clientMs: number;
  serverMs: number;
  /** Claims that failed on a deadlock (each waits `deadlock_timeout`, 1 s by default). */
  deadlocks: number;
  check: string;
}

async function scaleRun(k: number, mode: string): Promise<ScaleSample> {
  const pg = await createPgDatabase();
  const db = openPostgres(pg.url, { max: 4 });
  const name = new URL(pg.url).pathname.slice(1);
  const instances: Instance[] = [];
  try {
    await migrate(db);
    const runtime = producer(db);
    if (mode === "processing") await enqueueAll(runtime, N);
    const s0 = serverCpu(backendsOf(name));
    let t0 = performance.now();
    for (let i = 0; i < k; i++) instances.push(await startInstance(pg.url));
    if (mode === "end-to-end") {
      t0 = performance.now();
      await enqueueAll(runtime, N);
    }
    const done = "SELECT count(*)::int AS n FROM troupe_jobs WHERE status = 'succeeded'";
    const deadline = Date.now() + 300_000;
    while (await count(db, done) < N) {
      if (Date.now() > deadline) throw new Error("scaling run did not finish in time");
      await new Promise((r) => setTimeout(r, 20));
    }
    const rate = N / ((performance.now() - t0) / 1000);
    const serverMs = cpuBetween(s0, serverCpu(backendsOf(name)));
    let clientMs = 0;
    let deadlocks = 0;
    for (const i of instances.splice(0)) {
      const r = await stopInstance(i);
      clientMs += r.cpuMs;
      deadlocks += r.deadlocks;
    }
    const [r] = await db.query<{ ok: number; retried: number }>(
      `SELECT (SELECT count(*)::int FROM troupe_jobs WHERE status = 'succeeded') AS ok,
              (SELECT count(*)::int FROM troupe_jobs WHERE attempts > 1) AS retried`,
    );
    const pass = r!.ok === N;
    return {
      instances: k,
      mode,
      rate,
      clientMs: clientMs / N * 1000,
      serverMs: serverMs / N * 1000,
      deadlocks,
      check: `${pass ? "PASS" : "FAIL"} (succeeded ${r!.ok}, retried ${r!.retried})`,
    };
  } finally {
    for (const i of instances) await stopInstance(i).catch(() => null);
    await db.close();
    await pg.drop();
  }
}

interface DepthRow {
  depth: number;
  singleP50: number;
  singleP99: number;
  batchP50: number;
  batchP99: number;
  claimMs: number;
  fillRate: number | null;
}

/**
 * Adds `n` waiting messages as copies of the last enqueued one (a key and an id of their own,
 * behind it in queue order), 100,000 a statement: enqueuing them one batch at a time would
 * take longer than the rest of the benchmark.
 */
async function fill(db: SqlDatabase, n: number): Promise<void> {
  const cols = (await db.query<{ c: string }>(
    `SELECT column_name AS c FROM information_schema.columns
     WHERE table_schema = 'public' AND table_name = 'troupe_jobs' ORDER BY ordinal_position`,
  )).map((r) => r.c);
  const made: Record<string, string> = {
    id: "t.id || '-' || g",
    key: "'filled:' || t.id || ':' || g",
    created_at: "now()",
    updated_at: "now()",
    run_at: "now()",
  };
  const select = cols.map((c) => made[c] ?? `t."${c}"`).join(", ");
  for (let done = 0; done < n; done += 100_000) {
    await db.query(
      `INSERT INTO troupe_jobs (${cols.map((c) => `"${c}"`).join(", ")})
       SELECT ${select}
       FROM (SELECT * FROM troupe_jobs WHERE status = 'queued' ORDER BY created_at DESC, id DESC
             LIMIT 1) t, generate_series(1, $1::int) g`,
      [Math.min(100_000, n - done)],
    );
  }
}

async function depthCurve(maxDepth: number, samples: number): Promise<DepthRow[]> {
  const pg = await createPgDatabase();
  const db = openPostgres(pg.url, { max: 4 });
  const rows: DepthRow[] = [];
  try {
    await migrate(db);
    const runtime = producer(db);
    const checkpoints = [0, 10_000, 100_000, 1_000_000, 10_000_000].filter((d) => d <= maxDepth);
    if (!checkpoints.includes(maxDepth)) checkpoints.push(maxDepth);
    const queued = "SELECT count(*)::int AS n FROM troupe_jobs WHERE status = 'queued'";
    let i = 0;
    for (const target of checkpoints) {
      const depth = await count(db, queued);
      let fillRate: number | null = null;
      if (target > depth) {
        const f0 = performance.now();
        await fill(db, target - depth);
        fillRate = (target - depth) / ((performance.now() - f0) / 1000);
      }
      const measuredAt = await count(db, queued);
      const single: number[] = [];
      for (let s = 0; s < samples; s++) {
        const t0 = performance.now();
        await runtime.enqueue("bench.waiting", { i: i++ });
        single.push(performance.now() - t0);
      }
      const batch: number[] = [];
      for (let b = 0; b < 20; b++) {
        const t0 = performance.now();
        await enqueueAll(runtime, BATCH, { from: i, actor: "bench.waiting" });
        batch.push(performance.now() - t0);
        i += BATCH;
      }
      const c0 = performance.now();
      const claimed = await claimOnce(db, "bench.waiting", 256, `depth-${target}`);
      const claimMs = performance.now() - c0;
      if (claimed.length === 0) throw new Error("the claim found nothing");
      const row = {
        depth: measuredAt,
        singleP50: median(single),
        singleP99: pct(single, 0.99),
        batchP50: median(batch),
        batchP99: pct(batch, 0.99),
        claimMs,
        fillRate,
      };
      rows.push(row);
      console.error(`depth ${fmt(row.depth)}: single p99 ${row.singleP99.toFixed(2)} ms`);
    }
    return rows;
  } finally {
    await db.close();
    await pg.drop();
  }
}

const started = performance.now();
const out: { scale: ScaleSample[]; depth: DepthRow[] } = { scale: [], depth: [] };
if (parts.includes("instances")) {
  const ks = args.instances.split(",").map(Number);
  const modes = args.modes.split(",");
  for (let run = 0; run < Number(args.runs); run++) {
    for (const mode of modes) {
      for (const k of ks) {
        const s = await scaleRun(k, mode);
        out.scale.push(s);
        console.error(
          `run ${run + 1}: ${k} instance(s) ${mode}: ${
            fmt(s.rate)
          } msgs/s, ${s.deadlocks} deadlocks`,
        );
      }
    }
  }
  console.log(
    `\n${
      fmt(N)
    } no-op messages over ${KEYS} keys, ${args.runs} interleaved runs (Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, load ${loadAverage()})\n`,
  );
  console.log(
    "| instances | mode | msgs/s median | min | max | instances' CPU ms/1k msgs | PostgreSQL CPU ms/1k msgs | claims failed on a deadlock | check |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const mode of modes) {
    for (const k of ks) {
      const ss = out.scale.filter((s) => s.instances === k && s.mode === mode);
      const rates = ss.map((s) => s.rate);
      console.log(
        `| ${k} | ${mode} | ${fmt(median(rates))} | ${fmt(Math.min(...rates))} | ${
          fmt(Math.max(...rates))
        } | ${median(ss.map((s) => s.clientMs)).toFixed(0)} | ${
          median(ss.map((s) => s.serverMs)).toFixed(0)
        } | ${ss.map((s) => s.deadlocks).join(", ")} | ${
          ss.every((s) => s.check.startsWith("PASS")) ? "PASS" : ss.map((s) => s.check)
        } |`,
      );
    }
  }
}
if (parts.includes("depth")) {
  out.depth = await depthCurve(Number(args.depth), Number(args.samples));
  console.log(
    `\nEnqueue latency by queue depth (no consumer; ${args.samples} single enqueues, 20 batches of 500 a depth)\n`,
  );
  console.log(
    "| waiting messages | single enqueue p50 ms | p99 ms | batch of 500 p50 ms | p99 ms | claim of 256 ms | fill rows/s (SQL copies) |",
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const r of out.depth) {
    console.log(
      `| ${fmt(r.depth)} | ${r.singleP50.toFixed(2)} | ${r.singleP99.toFixed(2)} | ${
        r.batchP50.toFixed(1)
      } | ${r.batchP99.toFixed(1)} | ${r.claimMs.toFixed(1)} | ${
        r.fillRate === null ? "-" : fmt(r.fillRate)
      } |`,
    );
  }
}
console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  args.json,
  JSON.stringify({ at: new Date().toISOString(), n: N, ...out }, null, 2),
);
