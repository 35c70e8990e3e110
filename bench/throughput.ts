/**
 * Messages per second on the table queue, with the effectively-once guarantee kept (every
 * message goes through the lease, the fencing check and the job row), against peer queues in the
 * same run.
 *
 *   deno run -A bench/throughput.ts [--n 20000] [--keys 256] [--runs 3]
 *     [--db pglite-file,pglite-mem,postgres] [--peers] [--peer-list bullmq,graphile,...]
 *     [--floor] [--quick]
 *     [--modes end-to-end,processing]
 *     [--workloads noop,unkept,unordered,unordered-unkept,row,insert] [--row-n N/4]
 *     [--breakdown]
 *
 * Modes:
 * - end to end: a producer enqueues N messages (batches of 500) while the consumer runs; the
 *   clock stops when the last one succeeded;
 * - processing: N messages enqueued first, then the consumer starts.
 * (`--peers` runs end to end only unless `--modes` says otherwise.)
 * Workloads: `noop`; `unkept`, Troupe only, the same no-op on an actor that keeps no succeeded
 * jobs (`keepSucceeded: false`: a job's commit deletes its row, as graphile-worker deletes a
 * completed job), compared with the peers' `noop`; `unordered` and `unordered-unkept`, Troupe
 * only, the same two on actors declared `ordered: false` (no order per key, no lease per key:
 * the peers' semantics), compared with the peers' `noop`; `row`, a handler that writes one row
 * (Troupe: through `effect()`, committed with the message; the peers: in a transaction of
 * their own per job); `insert`, Troupe only, the same row declared with `ctx.insert()` (the
 * rows of a commit in one statement), compared with the peers' `row`. The two row workloads run end to end only, on `--row-n` messages (a quarter
 * of N by default).
 * Databases: `pglite-file`, `pglite-mem` (PGlite in this thread), `pglite-file-worker`,
 * `pglite-mem-worker` (PGlite in a worker of its own, `openPglite`'s `thread: "worker"`), `postgres`.
 * `--breakdown` prints the database calls and statements of each Troupe run per 1,000 messages
 * (bench/sql_timer.ts).
 *
 * `--peers` (default `--db postgres,pglite-mem`) runs, interleaved round by round (Troupe,
 * BullMQ, graphile-worker, pg-boss, ...): BullMQ 5 on Redis, graphile-worker with its local
 * queue and batched completions, the same with each key's jobs in a named queue of their own
 * (`graphile-keyed`: one at a time per key, as Troupe runs them; no-op workload only), pg-boss,
 * each under Node in a process of its own (bench/peers/peer.mjs, installed into
 * bench/peers/node_modules on first use), on a store of its own; and, on each PGlite database, the floor: the runtime's claim and commit SQL in a
 * loop without the runtime (bench/queue_floor.ts), on the same kind of database (PGlite in this
 * thread, or in its worker for `pglite-*-worker`). `--peer-list` runs only the peers it names.
 * `--floor` runs the floors without the peers. It prints medians, the ratios against the
 * targets (Troupe on PostgreSQL end to end ≥ 1.0× each peer with the same guarantees: BullMQ,
 * graphile-worker's batched mode against `unordered-unkept`, its named queues against the keyed
 * `noop`; Troupe on PGlite ≥ 0.8× the floor) and the CPU each system spent per message: the
 * client process and the server (PostgreSQL backends of the database, or redis-server), from
 * /proc.
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
import { migrate } from "../db/migrate.ts";
import { openPglite, pgliteWorkerTraffic } from "@troupe/runtime/pglite";
import { openPostgres } from "@troupe/runtime/postgres";
import { createPgDatabase } from "../tests/harness.ts";
import { backendsOf, cpuBetween, ownCpu, serverCpu } from "./proc_cpu.ts";
import { floorLoop } from "./queue_floor.ts";
import { SqlTimes, timedDb } from "./sql_timer.ts";
import { threadMeter } from "./thread_cpu.ts";
import { loadAverage, median } from "./stats.ts";
import { OtelTracing, telemetryActive } from "../db/telemetry/tracing.ts";
import { tracedDatabase } from "../db/telemetry/database.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string" },
    keys: { type: "string", default: "256" },
    runs: { type: "string" },
    db: { type: "string" },
    peers: { type: "boolean", default: false },
    "peer-list": { type: "string", default: "bullmq,graphile,graphile-keyed,pgboss" },
    floor: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    breakdown: { type: "boolean", default: false },
    "row-n": { type: "string" },
    modes: { type: "string" },
    workloads: { type: "string", default: "noop,unkept,unordered,unordered-unkept,row,insert" },
    json: { type: "string", default: "bench/results/throughput.json" },
  },
});
const N = Number(args.n ?? (args.quick ? 5000 : 20000));
/** Messages of the row workloads: a quarter of N, so a full run stays within about 5 minutes. */
const ROW_N = Number(args["row-n"] ?? Math.round(N / 4));
/** Messages of the run under way (N, or ROW_N for the row workloads). */
let n = N;
const KEYS = Number(args.keys);
const RUNS = Number(args.runs ?? (args.quick ? 1 : 3));
const DBS = (args.db ?? (args.peers ? "postgres,pglite-mem" : "pglite-file,pglite-mem,postgres"))
  .split(",").map((s) => s.trim()).filter(Boolean);
const MODES = (args.modes ?? (args.peers ? "end-to-end" : "end-to-end,processing")).split(",").map((
  s,
) => s.trim()) as Mode[];
const WORKLOADS = args.workloads.split(",").map((s) => s.trim()) as Workload[];
const BATCH = 500;
const ALL_PEERS = ["bullmq", "graphile", "graphile-keyed", "pgboss"] as const;
const PEERS = args["peer-list"].split(",").map((s) => s.trim()).filter(Boolean).map((p) => {
  const known = ALL_PEERS.find((q) => q === p);
  if (!known) throw new Error(`unknown peer ${p} (known: ${ALL_PEERS.join(", ")})`);
  return known;
});
type Mode = "end-to-end" | "processing";
type Workload = "noop" | "unkept" | "unordered" | "unordered-unkept" | "row" | "insert";
/** The workloads that write a row a message (run on `--row-n` messages, end to end only). */
const writesRows = (w: Workload | "floor") => w === "row" || w === "insert";
/** The workloads whose actor keeps no succeeded job (`keepSucceeded: false`). */
const dropsRows = (w: Workload | "floor") => w === "unkept" || w === "unordered-unkept";

interface Opened {
  db: SqlDatabase;
  /** The PostgreSQL database's name (its backends' CPU is counted), if any. */
  pgName?: string;
  close(): Promise<void>;
}

/** PGlite in a directory (`file`) or in memory, in this thread or a worker of its own. */
const pglite = (where: "file" | "mem", thread: "main" | "worker") => async (): Promise<Opened> => {
  if (where === "mem") {
    const db = await openPglite(undefined, { thread });
    await migrate(db);
    return { db, close: () => db.close() };
  }
  const dir = await Deno.makeTempDir({ prefix: "troupe-bench-" });
  const db = await openPglite(dir, { thread });
  await migrate(db);
  return {
    db,
    close: async () => {
      await db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
};

const databases: Record<string, () => Promise<Opened>> = {
  "pglite-file": pglite("file", "main"),
  "pglite-mem": pglite("mem", "main"),
  "pglite-file-worker": pglite("file", "worker"),
  "pglite-mem-worker": pglite("mem", "worker"),
  postgres: async () => {
    const pg = await createPgDatabase();
    const db = openPostgres(pg.url, { max: 10 });
    await migrate(db);
    return {
      db,
      pgName: new URL(pg.url).pathname.slice(1),
      close: async () => {
        await db.close();
        await pg.drop();
      },
    };
  },
};

const input = z.object({ i: z.number().int() });
const key = (x: { i: number }) => `bench:${x.i % KEYS}`;
/** Handler runs of the run under way: `untilDone` reads the database once they reach N. */
let handled = 0;
const noop = defineActor({
  name: "bench.noop",
  input,
  key,
  handler: () => {
    handled++;
  },
});
const unkept = defineActor({
  name: "bench.unkept",
  input,
  key,
  keepSucceeded: false,
  handler: () => {
    handled++;
  },
});
// No order per key (`ordered: false`): graphile-worker's and BullMQ's semantics.
const unordered = defineActor({
  name: "bench.unordered",
  input,
  key,
  ordered: false,
  handler: () => {
    handled++;
  },
});
const unorderedUnkept = defineActor({
  name: "bench.unordered-unkept",
  input,
  key,
  ordered: false,
  keepSucceeded: false,
  handler: () => {
    handled++;
  },
});
const row = defineActor({
  name: "bench.row",
  input,
  key,
  handler: (x, ctx) => {
    handled++;
    ctx.effect(async (tx) => {
      await tx.query("INSERT INTO bench_rows (i, key) VALUES ($1, $2)", [x.i, key(x)]);
    });
  },
});
const inserts = defineActor({
  name: "bench.insert",
  input,
  key,
  handler: (x, ctx) => {
    handled++;
    ctx.insert("bench_rows", { i: x.i, key: key(x) });
  },
});
const actorOf = {
  noop: "bench.noop",
  unkept: "bench.unkept",
  unordered: "bench.unordered",
  "unordered-unkept": "bench.unordered-unkept",
  row: "bench.row",
  insert: "bench.insert",
} as const;

async function count(db: SqlDatabase, sql: string): Promise<number> {
  const [r] = await db.query<{ n: number }>(sql);
  return r!.n;
}

/**
 * Until N messages succeeded: the handlers' count first (no query while the run is under
 * way, as the peers' harness does), then the job rows, every 5 ms, until their commits land
 * (`unkept`, `unordered-unkept`: until their commits deleted them).
 */
async function untilDone(
  db: SqlDatabase,
  workload: Workload,
  timeoutMs = 300_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const sql = dropsRows(workload)
    ? `SELECT (${n} - count(*))::int AS n FROM troupe_jobs`
    : "SELECT count(*)::int AS n FROM troupe_jobs WHERE status = 'succeeded'";
  while (handled < n || await count(db, sql) < n) {
    if (Date.now() > deadline) throw new Error("benchmark did not finish in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Every message committed exactly once: N successes, each claimed once (one attempt), no dead
 * letter, and with the row workloads N rows, one for each message. With `unkept` and
 * `unordered-unkept`, whose successes leave no row: N handler runs in all (a second run of a
 * message would count), no job row left and no dead letter.
 */
async function verify(db: SqlDatabase, workload: Workload | "floor"): Promise<string> {
  if (dropsRows(workload)) {
    const [r] = await db.query<{ left: number; dead: number }>(
      `SELECT (SELECT count(*)::int FROM troupe_jobs) AS left,
              (SELECT count(*)::int FROM troupe_dead_letters) AS dead`,
    );
    const pass = handled === n && r!.left === 0 && r!.dead === 0;
    return `${pass ? "PASS" : "FAIL"} (handler runs ${handled}, job rows left ${r!.left}, dead ${
      r!.dead
    })`;
  }
  const [r] = await db.query<
    { ok: number; retried: number; dead: number; rows: number; uniq: number }
  >(
    `SELECT (SELECT count(*)::int FROM troupe_jobs WHERE status = 'succeeded') AS ok,
            (SELECT count(*)::int FROM troupe_jobs WHERE attempts > 1) AS retried,
            (SELECT count(*)::int FROM troupe_dead_letters) AS dead,
            (SELECT count(*)::int FROM bench_rows) AS rows,
            (SELECT count(DISTINCT i)::int FROM bench_rows) AS uniq`,
  );
  const rowsOk = !writesRows(workload) || (r!.rows === n && r!.uniq === n);
  const pass = r!.ok === n && r!.retried === 0 && r!.dead === 0 && rowsOk;
  return `${pass ? "PASS" : "FAIL"} (succeeded ${r!.ok}, retried ${r!.retried}, dead ${r!.dead}${
    writesRows(workload) ? `, rows ${r!.rows}` : ""
  })`;
}

async function enqueueAll(runtime: Runtime, actor: string): Promise<void> {
  for (let start = 0; start < n; start += BATCH) {
    const inputs = Array.from({ length: Math.min(BATCH, n - start) }, (_, j) => ({
      i: start + j,
    }));
    await runtime.enqueueMany(actor, inputs);
  }
}

const tracing = telemetryActive() ? new OtelTracing() : null;
if (tracing) {
  console.log("tracing on (OTEL_DENO=true): handler, enqueue and statement spans exported");
}

/**
 * A runtime of the keyed actors, or of the unordered ones for the unordered workloads: a runtime
 * whose actors are all keyed claims with the statements it has always had, one that mixes both
 * kinds with statements that tell them apart row by row.
 */
function runtimeFor(db: SqlDatabase, workload: Workload): Runtime {
  return new Runtime({
    db: tracing ? tracedDatabase(db) : db,
    actors: workload.startsWith("unordered")
      ? [unordered, unorderedUnkept]
      : [noop, unkept, row, inserts],
    transport: new TableQueueTransport(db),
    logger: jsonLogger("warn"),
    ...(tracing ? { tracing } : {}),
  });
}

/** One run's result: msgs/s and CPU ms per 1,000 messages (client process, server). */
interface Sample {
  rate: number;
  clientMs: number;
  serverMs: number | null;
  /** This process's CPU ms per 1,000 messages by thread: main, PGlite's worker, V8's, other. */
  threads?: { main: number; worker: number; v8: number; other: number };
  /** Messages to and from PGlite's worker, and statements they carried, per 1,000 messages. */
  traffic?: { sent: number; received: number; statements: number };
}

interface Figure {
  system: string;
  mode: Mode;
  workload: Workload;
  samples: Sample[];
  check: string;
  settings: string;
}

/** CPU meter of this process (and its threads) and the server a run talks to. */
function meter(pgName?: string): () => Sample {
  const match = pgName ? backendsOf(pgName) : null;
  const c0 = ownCpu();
  const s0 = match ? serverCpu(match) : null;
  const threads = threadMeter();
  const t0 = pgliteWorkerTraffic();
  const per1k = (x: number) => x / n * 1000;
  return () => {
    const t = threads();
    const t1 = pgliteWorkerTraffic();
    return {
      rate: 0,
      clientMs: per1k(ownCpu() - c0),
      serverMs: match ? per1k(cpuBetween(s0!, serverCpu(match))) : null,
      threads: {
        main: per1k(t.main.cpuMs),
        worker: per1k(t.worker.cpuMs),
        v8: per1k(t.v8.cpuMs),
        other: per1k(t.other.cpuMs),
      },
      traffic: {
        sent: per1k(t1.sent - t0.sent),
        received: per1k(t1.received - t0.received),
        statements: per1k(t1.statements - t0.statements),
      },
    };
  };
}

/** With `--breakdown`: the database calls of each Troupe entry's last run. */
const breakdowns = new Map<string, { times: SqlTimes; wallMs: number; n: number }>();

async function troupeRun(
  name: string,
  mode: Mode,
  workload: Workload,
): Promise<{ sample: Sample; check: string }> {
  const { db: raw, pgName, close } = await databases[name]!();
  await raw.query("CREATE TABLE bench_rows (i int NOT NULL, key text NOT NULL)");
  const times = new SqlTimes();
  const db = args.breakdown ? timedDb(raw, times) : raw;
  const runtime = runtimeFor(db, workload);
  handled = 0;
  try {
    let t0: number;
    let cpu: ReturnType<typeof meter>;
    if (mode === "end-to-end") {
      await runtime.start();
      times.clear();
      cpu = meter(pgName);
      t0 = performance.now();
      await enqueueAll(runtime, actorOf[workload]);
    } else {
      await enqueueAll(runtime, actorOf[workload]);
      if (!db.autovacuum) await runtime.maintain();
      times.clear();
      cpu = meter(pgName);
      t0 = performance.now();
      await runtime.start();
    }
    await untilDone(raw, workload);
    const rate = n / ((performance.now() - t0) / 1000);
    const used = cpu();
    await runtime.stop();
    if (args.breakdown) {
      breakdowns.set(`troupe ${name} ${workload} ${mode}`, { times, wallMs: n / rate * 1000, n });
    }
    return { sample: { ...used, rate }, check: await verify(raw, workload) };
  } finally {
    await runtime.stop();
    await close();
  }
}

/** The floor: claim and commit SQL in a loop, no runtime (the enqueues are the runtime's). */
async function floorRun(name: string, mode: Mode): Promise<{ sample: Sample; check: string }> {
  const { db, pgName, close } = await databases[name]!();
  await db.query("CREATE TABLE bench_rows (i int NOT NULL, key text NOT NULL)");
  const runtime = runtimeFor(db, "noop"); // never started: enqueues only
  try {
    let t0: number;
    let cpu: ReturnType<typeof meter>;
    if (mode === "end-to-end") {
      cpu = meter(pgName);
      t0 = performance.now();
      await Promise.all([enqueueAll(runtime, "bench.noop"), floorLoop(db, n)]);
    } else {
      await enqueueAll(runtime, "bench.noop");
      if (!db.autovacuum) await runtime.maintain();
      cpu = meter(pgName);
      t0 = performance.now();
      await floorLoop(db, n);
    }
    const rate = n / ((performance.now() - t0) / 1000);
    return { sample: { ...cpu(), rate }, check: await verify(db, "floor") };
  } finally {
    await close();
  }
}

const peersDir = new URL("./peers/", import.meta.url).pathname;

async function installPeers(): Promise<void> {
  try {
    await Deno.stat(`${peersDir}node_modules/pg-boss`);
    return;
  } catch {
    // First use: install the pinned versions.
  }
  console.error("installing the peers into bench/peers/node_modules (npm ci)");
  const out = await new Deno.Command("npm", {
    args: ["ci", "--no-audit", "--no-fund"],
    cwd: peersDir,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("npm ci in bench/peers failed");
}

const peerSettings = new Map<string, string>();

async function peerRun(
  peer: typeof ALL_PEERS[number],
  mode: Mode,
  workload: Workload,
): Promise<{ sample: Sample; check: string }> {
  const out = await new Deno.Command("node", {
    args: [`${peersDir}peer.mjs`, peer, mode, workload, String(n), String(KEYS)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr).trim();
  if (!out.success) throw new Error(`peer ${peer} failed:\n${err}`);
  const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!) as {
    rate: number;
    clientMs: number;
    serverMs: number;
    settings: Record<string, unknown>;
    versions: Record<string, string>;
  };
  peerSettings.set(
    `${peer} ${workload}`,
    `${JSON.stringify(r.versions)} ${JSON.stringify(r.settings)}`,
  );
  return {
    sample: { rate: r.rate, clientMs: r.clientMs / n * 1000, serverMs: r.serverMs / n * 1000 },
    check: workload === "row" ? "rows = n" : "n/a",
  };
}

// The plan: one entry per (system, mode, workload); rounds run every entry once, in order.
interface Entry {
  system: string;
  mode: Mode;
  workload: Workload;
  settings: string;
  run: () => Promise<{ sample: Sample; check: string }>;
}
const plan: Entry[] = [];
const troupeSettings = "concurrency 512 (PGlite 256), claimBatch 256, commitBatch 512; " +
  "workloads unordered*: 1024 / 512 / 1024 on PostgreSQL (defaults)";
for (const workload of WORKLOADS) {
  for (const mode of MODES) {
    if (writesRows(workload) && mode === "processing") continue;
    for (const name of DBS) {
      if (!databases[name]) throw new Error(`unknown --db ${name}`);
      plan.push({
        system: `troupe ${name}`,
        mode,
        workload,
        settings: troupeSettings,
        run: () => troupeRun(name, mode, workload),
      });
      if ((args.peers || args.floor) && workload === "noop" && name.startsWith("pglite")) {
        plan.push({
          system: `floor ${name}`,
          mode,
          workload,
          settings: "claimJobs + completeJobs, batches of 256, one loop",
          run: () => floorRun(name, mode),
        });
      }
    }
    // The peers' row workload is the one to compare `insert` with (see the ratios).
    if (!args.peers || !(workload === "noop" || workload === "row")) continue;
    for (const peer of PEERS) {
      // Named queues with batched completions deadlock in graphile-worker 0.17.3 when each job
      // writes a row ("Failed to complete jobs ...: deadlock detected", jobs left locked).
      if (peer === "graphile-keyed" && workload === "row") continue;
      plan.push({
        system: peer,
        mode,
        workload,
        settings: "",
        run: () => peerRun(peer, mode, workload),
      });
    }
  }
}

if (args.peers) await installPeers();
const started = performance.now();
const figures: Figure[] = plan.map((e) => ({
  system: e.system,
  mode: e.mode,
  workload: e.workload,
  samples: [],
  check: "",
  settings: e.settings,
}));
for (let round = 0; round < RUNS; round++) {
  for (const [i, entry] of plan.entries()) {
    n = writesRows(entry.workload) ? ROW_N : N;
    const { sample, check } = await entry.run();
    figures[i]!.samples.push(sample);
    // The check of every run must pass: keep the first failure.
    if (!figures[i]!.check.startsWith("FAIL")) figures[i]!.check = check;
    console.error(
      `round ${round + 1}/${RUNS} ${entry.system} ${entry.workload} ${entry.mode}: ${
        fmt(sample.rate)
      } msgs/s`,
    );
  }
}
for (const f of figures) {
  if (PEERS.includes(f.system as typeof ALL_PEERS[number])) {
    f.settings = peerSettings.get(`${f.system} ${f.workload}`)!;
  }
}

function fmt(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}
const med = (f: Figure, k: keyof Sample) => {
  const xs = f.samples.map((s) => s[k]).filter((x): x is number => x !== null);
  return xs.length ? median(xs) : null;
};

console.log(
  `\n${N.toLocaleString("en-US")} messages (row workload: ${
    ROW_N.toLocaleString("en-US")
  }) over ${KEYS} keys, ${RUNS} interleaved rounds ` +
    `(Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, load ${loadAverage()}, ${
      ((performance.now() - started) / 1000).toFixed(0)
    } s)\n`,
);
console.log(
  "| system | workload | mode | msgs/s median | min | max | client CPU ms/1k msgs | " +
    "server CPU ms/1k msgs | check |",
);
console.log("|---|---|---|---|---|---|---|---|---|");
for (const f of figures) {
  const rates = f.samples.map((s) => s.rate);
  const c = med(f, "clientMs");
  const s = med(f, "serverMs");
  console.log(
    `| ${f.system} | ${f.workload} | ${f.mode} | ${fmt(median(rates))} | ${
      fmt(Math.min(...rates))
    } | ${fmt(Math.max(...rates))} | ${c === null ? "-" : c.toFixed(0)} | ${
      s === null ? "-" : s.toFixed(0)
    } | ${f.check} |`,
  );
}
console.log(
  "\nThis process's CPU by thread, ms per 1,000 messages (medians), and the messages to and from " +
    "PGlite's worker per 1,000 messages (statements they carried)\n",
);
console.log(
  "| system | workload | mode | main | worker | V8 | other | msgs to / from worker (statements) |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const f of figures) {
  if (!f.samples[0]?.threads) continue;
  const th = (k: "main" | "worker" | "v8" | "other") =>
    median(f.samples.map((s) => s.threads![k])).toFixed(0);
  const tr = (k: "sent" | "received" | "statements") =>
    median(f.samples.map((s) => s.traffic![k])).toFixed(1);
  console.log(
    `| ${f.system} | ${f.workload} | ${f.mode} | ${th("main")} | ${th("worker")} | ${th("v8")} | ${
      th("other")
    } | ${tr("sent")} / ${tr("received")} (${tr("statements")}) |`,
  );
}
console.log("\nSettings:");
for (const f of figures) {
  // Troupe's settings are one for every workload; a peer's row workload adds its pool.
  if (f.mode !== MODES[0] || (f.workload !== WORKLOADS[0] && !PEERS.includes(f.system as never))) {
    continue;
  }
  const workload = f.workload === WORKLOADS[0] ? "" : ` (${f.workload})`;
  console.log(`- ${f.system}${workload}: ${f.settings}`);
}

if (args.breakdown) {
  console.log(
    "\nDatabase calls per 1,000 messages, last run (transaction time includes waiting for a " +
      "connection)\n",
  );
  console.log("| run | wall ms | kind | calls | items a call | ms |");
  console.log("|---|---|---|---|---|---|");
  for (const [run, { times, wallMs, n }] of breakdowns) {
    for (const [kind, k] of times.kinds) {
      console.log(
        `| ${run} | ${(wallMs / n * 1000).toFixed(0)} | ${kind} | ${
          (k.calls / n * 1000).toFixed(1)
        } | ${k.items ? (k.items / k.calls).toFixed(0) : "-"} | ${(k.ms / n * 1000).toFixed(1)} |`,
      );
    }
  }
  console.log("\nStatements inside those transactions, per 1,000 messages\n");
  console.log("| run | statement | calls | ms |");
  console.log("|---|---|---|---|");
  for (const [run, { times, n }] of breakdowns) {
    const sorted = [...times.statements].sort((a, b) => a[0].localeCompare(b[0]));
    for (const [name, k] of sorted) {
      console.log(
        `| ${run} | ${name} | ${(k.calls / n * 1000).toFixed(1)} | ${
          (k.ms / n * 1000).toFixed(1)
        } |`,
      );
    }
  }
}

// Targets, on the medians.
const find = (system: string, workload: Workload, mode: Mode) =>
  figures.find((f) => f.system === system && f.workload === workload && f.mode === mode);
const targets: string[] = [];
/** The ratio of two medians, against `goal` when it has one. */
const ratio = (a: Figure | undefined, b: Figure | undefined, what: string, goal?: number) => {
  if (!a || !b) return;
  const r = median(a.samples.map((s) => s.rate)) / median(b.samples.map((s) => s.rate));
  const judged = goal === undefined
    ? ""
    : ` (target ≥ ${goal.toFixed(1)}×: ${r >= goal ? "met" : "NOT MET"})`;
  targets.push(`- ${what}: ${r.toFixed(2)}×${judged}`);
};
/**
 * The no-op targets, each against the peer that gives the same guarantees: BullMQ (no order per
 * key) against Troupe's keyed `noop` and its unordered workloads, graphile-worker's batched mode (no order per key, a
 * completed job deleted) against `unordered-unkept`, graphile-worker's named queues (one job at a
 * time per key) against the keyed `noop`.
 */
function judged(workload: Workload, peer: string): boolean {
  if (peer === "bullmq") return workload === "noop" || workload.startsWith("unordered");
  if (peer === "graphile") return workload === "unordered-unkept";
  return peer === "graphile-keyed" && workload === "noop";
}
if (args.peers || args.floor) {
  for (const workload of WORKLOADS) {
    for (const mode of MODES) {
      const t = find("troupe postgres", workload, mode);
      // Rows (`ctx.insert()` too) against the peers writing theirs a transaction a job; every
      // no-op workload (kept or not, in order or not) against the peers' no-op.
      const theirs = writesRows(workload) ? "row" : "noop";
      for (const peer of PEERS) {
        const goal = mode === "end-to-end" && judged(workload, peer) ? 1.0 : undefined;
        ratio(
          t,
          find(peer, theirs, mode),
          `troupe postgres / ${peer}, ${workload}${
            theirs === workload ? "" : ` (theirs: ${theirs})`
          } ${mode}`,
          goal,
        );
      }
      if (workload !== "noop") continue;
      for (const name of DBS.filter((d) => d.startsWith("pglite"))) {
        const what = `troupe ${name} / its floor, ${mode}`;
        ratio(
          find(`troupe ${name}`, workload, mode),
          find(`floor ${name}`, workload, mode),
          what,
          0.8,
        );
        // PGlite in its worker against the floor in this thread, when both ran.
        if (name.endsWith("-worker") && DBS.includes(name.slice(0, -"-worker".length))) {
          ratio(
            find(`troupe ${name}`, workload, mode),
            find(`floor ${name.slice(0, -"-worker".length)}`, workload, mode),
            `troupe ${name} / the floor of ${name.slice(0, -"-worker".length)}, ${mode}`,
          );
        }
      }
    }
  }
  console.log(`\nRatios of medians:\n${targets.join("\n")}`);
}

await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  args.json,
  JSON.stringify(
    { at: new Date().toISOString(), n: N, rowN: ROW_N, keys: KEYS, figures, targets },
    null,
    2,
  ),
);
