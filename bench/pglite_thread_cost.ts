/**
 * What a statement costs with PGlite in the calling thread and in a worker of its own
 * (`openPglite`'s `thread`), by shape of workload: CPU per statement on each thread of the
 * process (bench/thread_cpu.ts), wall time, and the messages to and from the worker.
 *
 *   deno run -A bench/pglite_thread_cost.ts [--n 3000] [--rounds 3] [--threads main,worker]
 *
 * Workloads, on PGlite in memory:
 * - `select`: `SELECT $1::int`, one after the other, outside a transaction;
 * - `tx inserts`: one transaction of N single-row INSERTs, each awaited before the next (as the
 *   committer runs the effects of a batch of messages);
 * - `tx inserts at once`: the same INSERTs made at once (no caller waits for one before the
 *   next: what the committer's effects would cost if they did not wait on each other);
 * - `rows 256`: a query returning 256 rows of five columns (text, int, timestamptz, jsonb), as
 *   a claim does, N/32 times;
 * - `concurrent`: 64 `SELECT $1::int` at once (callers that do not wait on each other), N/64 times.
 * Rounds alternate the threads; the medians are printed.
 */
import { parseArgs } from "node:util";
import { openPglite, pgliteWorkerTraffic } from "@troupe/runtime/pglite";
import type { SqlDatabase } from "@troupe/runtime";
import { type ThreadCpu, threadMeter } from "./thread_cpu.ts";
import { loadAverage, median } from "./stats.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "3000" },
    rounds: { type: "string", default: "3" },
    threads: { type: "string", default: "main,worker" },
    workloads: { type: "string" },
  },
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);
const THREADS = args.threads.split(",") as ("main" | "worker")[];

/** A workload: runs its statements on `db`, resolves to how many it ran. */
const workloads: Record<string, (db: SqlDatabase) => Promise<number>> = {
  async select(db) {
    for (let i = 0; i < N; i++) await db.query("SELECT $1::int AS v", [i]);
    return N;
  },
  async "tx inserts"(db) {
    await db.transaction(async (tx) => {
      for (let i = 0; i < N; i++) {
        await tx.query("INSERT INTO r (i, key) VALUES ($1, $2)", [i, `k${i % 256}`]);
      }
    });
    return N;
  },
  async "tx inserts at once"(db) {
    await db.transaction(async (tx) => {
      await Promise.all(
        Array.from(
          { length: N },
          (_, i) => tx.query("INSERT INTO r (i, key) VALUES ($1, $2)", [i, `k${i % 256}`]),
        ),
      );
    });
    return N;
  },
  async "rows 256"(db) {
    const m = Math.max(1, Math.round(N / 32));
    for (let i = 0; i < m; i++) {
      await db.query(
        `SELECT md5(i::text) AS id, i AS n, 'bench:' || (i % 64) AS key,
                now() AS at, jsonb_build_object('i', i, 's', 'x') AS input
           FROM generate_series(1, 256) i`,
      );
    }
    return m;
  },
  async concurrent(db) {
    const m = Math.max(1, Math.round(N / 64));
    for (let i = 0; i < m; i++) {
      await Promise.all(
        Array.from({ length: 64 }, (_, j) => db.query("SELECT $1::int AS v", [j])),
      );
    }
    return m * 64;
  },
};
const chosen = args.workloads ? args.workloads.split(",") : Object.keys(workloads);

interface Sample {
  wallUs: number;
  cpu: ThreadCpu;
  sent: number;
  received: number;
}

async function once(thread: "main" | "worker", name: string): Promise<Sample> {
  const db = await openPglite(undefined, { thread });
  try {
    await db.query("CREATE TABLE r (i int NOT NULL, key text NOT NULL)");
    await workloads[name]!(db); // warm-up: JIT, PGlite's caches
    await db.query("TRUNCATE r");
    const t0 = pgliteWorkerTraffic();
    const cpu = threadMeter();
    const w0 = performance.now();
    const count = await workloads[name]!(db);
    const wallUs = (performance.now() - w0) * 1000 / count;
    const used = cpu();
    const t1 = pgliteWorkerTraffic();
    for (const k of Object.values(used)) k.cpuMs = k.cpuMs * 1000 / count; // µs a statement
    for (const k of Object.values(used)) k.switches /= count;
    return {
      wallUs,
      cpu: used,
      sent: (t1.sent - t0.sent) / count,
      received: (t1.received - t0.received) / count,
    };
  } finally {
    await db.close();
  }
}

console.log(
  `PGlite statement costs, N ${N}, ${ROUNDS} rounds, load ${loadAverage()} at ${
    new Date().toISOString()
  }\n`,
);
console.log(
  "| workload | thread | wall µs | CPU µs: all | main | worker | V8 | other | msgs to / from worker | switches |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const name of chosen) {
  const samples = new Map<string, Sample[]>(THREADS.map((t) => [t, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const thread of THREADS) samples.get(thread)!.push(await once(thread, name));
  }
  for (const thread of THREADS) {
    const xs = samples.get(thread)!;
    const m = (f: (s: Sample) => number) => median(xs.map(f));
    const all = (s: Sample) =>
      s.cpu.main.cpuMs + s.cpu.worker.cpuMs + s.cpu.v8.cpuMs + s.cpu.other.cpuMs;
    const sw = (s: Sample) =>
      s.cpu.main.switches + s.cpu.worker.switches + s.cpu.v8.switches + s.cpu.other.switches;
    console.log(
      `| ${name} | ${thread} | ${m((s) => s.wallUs).toFixed(0)} | ${m(all).toFixed(0)} | ${
        m((s) => s.cpu.main.cpuMs).toFixed(0)
      } | ${m((s) => s.cpu.worker.cpuMs).toFixed(0)} | ${m((s) => s.cpu.v8.cpuMs).toFixed(0)} | ${
        m((s) => s.cpu.other.cpuMs).toFixed(0)
      } | ${m((s) => s.sent).toFixed(2)} / ${m((s) => s.received).toFixed(2)} | ${
        m(sw).toFixed(1)
      } |`,
    );
  }
}
console.log(`\nload ${loadAverage()} at ${new Date().toISOString()}`);
