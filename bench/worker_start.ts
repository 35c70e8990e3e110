/**
 * What a pool worker's start costs the thread that starts it, and what an idle worker costs in
 * memory: `n` workers of a pool's module (the dataset chunk worker by default) started one
 * after another, each 300 ms after the previous one answered its first task, then left idle.
 *
 *   deno run -A bench/worker_start.ts [--kind web,node,spawned] [--n 6] [--module PATH]
 *
 * `web`: `new Worker` in this thread; `node`: a `node:worker_threads` worker with the pools'
 * resource limits, in this thread; `spawned`: the same started by a `WorkerSpawner` (its host
 * started first, and warmed by one worker that is not counted). For each start: how long the
 * call held this thread (`hold`; for `spawned`, the pool's `run` until it returned), the
 * longest a 2 ms timer of this thread came late meanwhile (`late`), when the worker answered
 * its first task, and the process's resident set 500 ms after (RSS, `/proc/self/status`).
 */
import { parseArgs } from "node:util";
import { WorkerPool, WorkerSpawner } from "@troupe/runtime/workers";
import { loadAverage } from "./stats.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    kind: { type: "string", default: "web,node,spawned" },
    n: { type: "string", default: "6" },
    module: { type: "string" },
  },
});
const N = Number(args.n);
const url = args.module
  ? new URL(args.module, `file://${Deno.cwd()}/`)
  : new URL("../actors/datasets/chunk_worker.ts", import.meta.url);
const rss = () =>
  Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1]) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The longest lateness of a 2 ms timer of this thread while `fn` runs and its result settles. */
async function timed<T>(fn: () => Promise<T>): Promise<{ hold: number; late: number; at: number }> {
  let late = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    late = Math.max(late, now - last - 2);
    last = now;
  }, 2);
  const t = performance.now();
  const p = fn();
  const hold = performance.now() - t;
  await p.catch(() => {});
  const at = performance.now() - t;
  clearInterval(tick);
  return { hold, late, at };
}

for (const kind of args.kind.split(",")) {
  const limits = { youngGenerationMb: 8, heapMb: 1024 };
  const spawner = kind === "spawned" ? WorkerSpawner.start() : undefined;
  const pools: WorkerPool[] = [];
  const pool = () => {
    const p = new WorkerPool(
      url,
      1,
      kind === "web" ? {} : { ...limits, ...(spawner ? { spawner } : {}) },
    );
    pools.push(p);
    return p;
  };
  // An unknown method: the worker answers with an error once it runs.
  if (spawner) await pool().run("warm-up", []).catch(() => {});
  await sleep(500);
  const rss0 = rss();
  const rows: string[] = [];
  for (let i = 0; i < N; i++) {
    await sleep(300);
    const p = pool();
    const { hold, late, at } = await timed(() => p.run("start", []));
    await sleep(500);
    rows.push(
      `hold ${hold.toFixed(1)} ms, late ${late.toFixed(0)} ms, answered at ${at.toFixed(0)} ms, ` +
        `RSS +${(rss() - rss0).toFixed(1)} MB`,
    );
  }
  console.log(`${kind} (${url.pathname.split("/").slice(-2).join("/")}), load ${loadAverage()}:`);
  for (const r of rows) console.log(`  ${r}`);
  for (const p of pools) p.close();
  spawner?.close();
  await sleep(500);
}
Deno.exit(0);
