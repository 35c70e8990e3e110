/**
 * Where the server's CPU goes per message on PostgreSQL, by phase: the runtime's enqueues
 * (`enqueueMany`, batches of 500), then its claim and commit SQL in a loop (`floorLoop`, batches
 * of 256, no runtime around it), N no-op messages over 256 keys enqueued first.
 *
 *   deno run -A bench/queue_phases.ts [--n 20000] [--runs 1]
 *
 * Server CPU: the PostgreSQL backends of the run's database, from /proc (bench/proc_cpu.ts);
 * client CPU: this process. Each run on a database of its own (`TEST_PG_URL`, as the tests).
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { defineActor, jsonLogger, Runtime, TableQueueTransport } from "@troupe/runtime";
import { openPostgres } from "@troupe/runtime/postgres";
import { migrate } from "../db/migrate.ts";
import { createPgDatabase } from "../tests/harness.ts";
import { backendsOf, cpuBetween, ownCpu, serverCpu } from "./proc_cpu.ts";
import { floorLoop } from "./queue_floor.ts";
import { loadAverage, median } from "./stats.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string", default: "20000" }, runs: { type: "string", default: "1" } },
});
const N = Number(args.n);
const RUNS = Number(args.runs);
const input = z.object({ i: z.number().int() });
const noop = defineActor({
  name: "bench.noop",
  input,
  key: (x) => `bench:${x.i % 256}`,
  handler: () => {},
});

type Phase = "enqueue" | "claim" | "commit";
/** µs per message of one run, by phase: server CPU, client CPU, wall. */
type Figures = Record<Phase, { server: number; client: number; wall: number }>;

async function run(): Promise<Figures> {
  const pg = await createPgDatabase();
  const db = openPostgres(pg.url, { max: 4 });
  try {
    await migrate(db);
    const runtime = new Runtime({
      db,
      actors: [noop],
      transport: new TableQueueTransport(db),
      logger: jsonLogger("warn"),
    }); // never started: enqueues only
    const match = backendsOf(new URL(pg.url).pathname.slice(1));
    const sums: Figures = {
      enqueue: { server: 0, client: 0, wall: 0 },
      claim: { server: 0, client: 0, wall: 0 },
      commit: { server: 0, client: 0, wall: 0 },
    };
    let s0 = serverCpu(match);
    let c0 = ownCpu();
    let w0 = performance.now();
    const lap = (phase: Phase) => {
      const s1 = serverCpu(match);
      const c1 = ownCpu();
      const w1 = performance.now();
      sums[phase].server += cpuBetween(s0, s1);
      sums[phase].client += c1 - c0;
      sums[phase].wall += w1 - w0;
      [s0, c0, w0] = [s1, c1, w1];
    };
    for (let start = 0; start < N; start += 500) {
      const inputs = Array.from({ length: Math.min(500, N - start) }, (_, j) => ({ i: start + j }));
      await runtime.enqueueMany("bench.noop", inputs);
    }
    lap("enqueue");
    await floorLoop(db, N, lap);
    const per = (ms: number) => ms / N * 1000;
    return Object.fromEntries(
      Object.entries(sums).map((
        [k, v],
      ) => [k, { server: per(v.server), client: per(v.client), wall: per(v.wall) }]),
    ) as Figures;
  } finally {
    await db.close();
    await pg.drop();
  }
}

const all: Figures[] = [];
for (let r = 0; r < RUNS; r++) all.push(await run());
console.log(
  `${
    N.toLocaleString("en")
  } no-op messages over 256 keys, ${RUNS} run(s), medians (load ${loadAverage()})\n`,
);
console.log("| phase | server CPU µs/msg | client CPU µs/msg | wall µs/msg |");
console.log("|---|---|---|---|");
for (const phase of ["enqueue", "claim", "commit"] as const) {
  const m = (k: "server" | "client" | "wall") => median(all.map((f) => f[phase][k])).toFixed(1);
  console.log(`| ${phase} | ${m("server")} | ${m("client")} | ${m("wall")} |`);
}
