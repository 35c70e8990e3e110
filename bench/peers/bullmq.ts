/**
 * Peer baseline: BullMQ 5 + Redis 7 on the same no-op work as bench/throughput.ts.
 *
 *   deno run -A bench/peers/bullmq.ts [N=20000] [RUNS=3]
 *
 * Prints one JSON line `{ endToEnd: number[], processing: number[] }` (jobs/s per run).
 * Worker concurrency 50, jobs added with `addBulk` in batches of 500, completed jobs kept
 * (BullMQ's default), Redis at REDIS_URL (default redis://127.0.0.1:6379). Each run uses a
 * fresh queue that is obliterated afterwards.
 */
// A benchmark peer only, run with --no-lock (bench/throughput.ts) and excluded from the
// project's checks, so the server's install never includes it.
// deno-lint-ignore no-import-prefix
import { Queue, Worker } from "npm:bullmq@5.81.5";

const N = Number(Deno.args[0] ?? 20_000);
const RUNS = Number(Deno.args[1] ?? 3);
const BATCH = 500;
const redisUrl = new URL(Deno.env.get("REDIS_URL") ?? "redis://127.0.0.1:6379");
const connection = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379) };

async function addAll(queue: Queue): Promise<void> {
  for (let start = 0; start < N; start += BATCH) {
    const jobs = Array.from({ length: Math.min(BATCH, N - start) }, (_, j) => ({
      name: "noop",
      data: { i: start + j },
    }));
    await queue.addBulk(jobs);
  }
}

async function run(mode: "endToEnd" | "processing"): Promise<number> {
  const name = `troupe-bench-${crypto.randomUUID()}`;
  const queue = new Queue(name, { connection });
  let done = 0;
  let finished!: () => void;
  const allDone = new Promise<void>((resolve) => finished = resolve);
  const startWorker = () => {
    const worker = new Worker(name, async () => {}, { connection, concurrency: 50 });
    worker.on("completed", () => {
      if (++done === N) finished();
    });
    return worker;
  };
  let worker: Worker | undefined;
  let t0: number;
  if (mode === "endToEnd") {
    worker = startWorker();
    await worker.waitUntilReady();
    t0 = performance.now();
    await addAll(queue);
  } else {
    await addAll(queue);
    t0 = performance.now();
    worker = startWorker();
  }
  const timeout = setTimeout(() => {
    console.error(`bullmq ${mode}: only ${done}/${N} after 300 s`);
    Deno.exit(1);
  }, 300_000);
  await allDone;
  const rate = N / ((performance.now() - t0) / 1000);
  clearTimeout(timeout);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return rate;
}

const endToEnd: number[] = [];
const processing: number[] = [];
for (let i = 0; i < RUNS; i++) {
  endToEnd.push(await run("endToEnd"));
  processing.push(await run("processing"));
}
console.log(JSON.stringify({ endToEnd, processing }));
Deno.exit(0);
