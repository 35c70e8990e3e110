/**
 * End-to-end no-op messages per second, with the effectively-once guarantee kept (every
 * message goes through the lease, the fencing check, the ledger and the job row).
 *
 *   deno run -A bench/throughput.ts [--n 20000] [--keys 256] [--runs 3]
 *     [--db pglite-file,pglite-mem,postgres] [--peers]
 *
 * Two figures per database:
 * - end to end: a producer enqueues N messages (batches of 500) while the runtime runs; the
 *   clock stops when the last one succeeded;
 * - processing: N messages enqueued first, then the runtime starts; the clock stops when the
 *   last one succeeded.
 * `--peers` also runs BullMQ 5 + Redis (bench/peers/bullmq.ts) on the same N, in this run.
 * With `OTEL_DENO=true` the runtime traces as `main.ts` wires it (handler and enqueue spans,
 * statement spans inside them), exported by OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`: the figures
 * are then labelled `+traces`.
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
import { openPglite } from "@troupe/runtime/pglite";
import { openPostgres } from "@troupe/runtime/postgres";
import { createPgDatabase } from "../tests/harness.ts";
import { median } from "./stats.ts";
import { OtelTracing, telemetryActive } from "../db/telemetry/tracing.ts";
import { tracedDatabase } from "../db/telemetry/database.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "20000" },
    keys: { type: "string", default: "256" },
    runs: { type: "string", default: "3" },
    db: { type: "string", default: "pglite-file,pglite-mem,postgres" },
    peers: { type: "boolean", default: false },
    json: { type: "string", default: "bench/results/throughput.json" },
  },
});
const N = Number(args.n);
const KEYS = Number(args.keys);
const RUNS = Number(args.runs);
const BATCH = 500;

interface Opened {
  db: SqlDatabase;
  close(): Promise<void>;
}

const databases: Record<string, () => Promise<Opened>> = {
  "pglite-file": async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-bench-" });
    const db = await openPglite(dir);
    await migrate(db);
    return {
      db,
      close: async () => {
        await db.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
  "pglite-mem": async () => {
    const db = await openPglite();
    await migrate(db);
    return { db, close: () => db.close() };
  },
  postgres: async () => {
    const pg = await createPgDatabase();
    const db = openPostgres(pg.url, { max: 10 });
    await migrate(db);
    return {
      db,
      close: async () => {
        await db.close();
        await pg.drop();
      },
    };
  },
};

const noop = defineActor({
  name: "bench.noop",
  input: z.object({ i: z.number().int() }),
  key: (input) => `bench:${input.i % KEYS}`,
  handler: () => {},
});

async function succeeded(db: SqlDatabase): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM troupe_jobs WHERE status = 'succeeded'",
  );
  return row!.n;
}

async function untilDone(db: SqlDatabase, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (await succeeded(db) < N) {
    if (Date.now() > deadline) throw new Error("benchmark did not finish in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every message committed exactly once: N ledger rows, N successes, one attempt each. */
async function verify(db: SqlDatabase): Promise<string> {
  const [r] = await db.query<{ ledger: number; ok: number; retried: number; dead: number }>(
    `SELECT (SELECT count(*)::int FROM troupe_processed_messages) AS ledger,
            (SELECT count(*)::int FROM troupe_jobs WHERE status = 'succeeded') AS ok,
            (SELECT count(*)::int FROM troupe_jobs WHERE attempts > 1) AS retried,
            (SELECT count(*)::int FROM troupe_dead_letters) AS dead`,
  );
  const pass = r!.ledger === N && r!.ok === N && r!.retried === 0 && r!.dead === 0;
  return `${pass ? "PASS" : "FAIL"} (ledger ${r!.ledger}, succeeded ${r!.ok}, retried ${
    r!.retried
  }, dead ${r!.dead})`;
}

async function enqueueAll(runtime: Runtime): Promise<void> {
  for (let start = 0; start < N; start += BATCH) {
    const inputs = Array.from({ length: Math.min(BATCH, N - start) }, (_, j) => ({
      i: start + j,
    }));
    await runtime.enqueueMany("bench.noop", inputs);
  }
}

const tracing = telemetryActive() ? new OtelTracing() : null;
const traced = tracing ? " +traces" : "";

function runtimeFor(db: SqlDatabase): Runtime {
  return new Runtime({
    db: tracing ? tracedDatabase(db) : db,
    actors: [noop],
    transport: new TableQueueTransport(db),
    logger: jsonLogger("warn"),
    ...(tracing ? { tracing } : {}),
  });
}

interface Figure {
  system: string;
  mode: "end-to-end" | "processing";
  rates: number[];
  check: string;
}

async function endToEnd(name: string): Promise<Figure> {
  const rates: number[] = [];
  let check = "";
  for (let run = 0; run < RUNS; run++) {
    const { db, close } = await databases[name]!();
    const runtime = runtimeFor(db);
    try {
      await runtime.start();
      const t0 = performance.now();
      await enqueueAll(runtime);
      await untilDone(db);
      rates.push(N / ((performance.now() - t0) / 1000));
      await runtime.stop();
      check = await verify(db);
    } finally {
      await runtime.stop();
      await close();
    }
  }
  return { system: `troupe ${name}${traced}`, mode: "end-to-end", rates, check };
}

async function processing(name: string): Promise<Figure> {
  const rates: number[] = [];
  let check = "";
  for (let run = 0; run < RUNS; run++) {
    const { db, close } = await databases[name]!();
    const runtime = runtimeFor(db);
    try {
      await enqueueAll(runtime);
      if (!db.autovacuum) await runtime.maintain();
      const t0 = performance.now();
      await runtime.start();
      await untilDone(db);
      rates.push(N / ((performance.now() - t0) / 1000));
      await runtime.stop();
      check = await verify(db);
    } finally {
      await runtime.stop();
      await close();
    }
  }
  return { system: `troupe ${name}${traced}`, mode: "processing", rates, check };
}

async function peerBullmq(): Promise<Figure[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      // The peers' packages stay out of the lockfile, so the server's first start skips them.
      "--no-lock",
      new URL("./peers/bullmq.ts", import.meta.url).pathname,
      String(N),
      String(RUNS),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("the BullMQ peer failed");
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
  const result = JSON.parse(line) as { endToEnd: number[]; processing: number[] };
  return [
    { system: "bullmq+redis (c=50)", mode: "end-to-end", rates: result.endToEnd, check: "n/a" },
    { system: "bullmq+redis (c=50)", mode: "processing", rates: result.processing, check: "n/a" },
  ];
}

const fmt = (x: number) => Math.round(x).toLocaleString("en-US");

const figures: Figure[] = [];
for (const name of args.db.split(",").map((s) => s.trim()).filter(Boolean)) {
  if (!databases[name]) throw new Error(`unknown --db ${name}`);
  figures.push(await endToEnd(name));
  figures.push(await processing(name));
}
if (args.peers) figures.push(...await peerBullmq());

console.log(
  `\n${N.toLocaleString("en-US")} no-op messages over ${KEYS} keys, ${RUNS} runs each ` +
    `(Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores)\n`,
);
console.log("| system | mode | msgs/s median | min | max | exactly-once check |");
console.log("|---|---|---|---|---|---|");
for (const f of figures) {
  console.log(
    `| ${f.system} | ${f.mode} | ${fmt(median(f.rates))} | ${fmt(Math.min(...f.rates))} | ${
      fmt(Math.max(...f.rates))
    } | ${f.check} |`,
  );
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  args.json,
  JSON.stringify({ at: new Date().toISOString(), n: N, keys: KEYS, figures }, null, 2),
);
