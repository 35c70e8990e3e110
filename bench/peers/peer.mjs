/**
 * One run of one peer queue on the work of bench/throughput.ts, under Node.
 *
 *   node bench/peers/peer.mjs SYSTEM MODE WORKLOAD [N=20000] [KEYS=256]
 *
 * SYSTEM: bullmq | graphile | graphile-keyed | pgboss. MODE: end-to-end (the consumer runs while the producer
 * enqueues in batches of 500) | processing (everything enqueued first). WORKLOAD: noop | row
 * (the handler inserts one row into PostgreSQL in a transaction of its own: a peer has no way
 * to commit a job's write with the job).
 *
 * Prints its settings on stderr and one JSON line on stdout: `{ system, rate, clientMs,
 * serverMs, settings, versions }` (CPU ms over the timed part: this process, and the server's
 * processes it used, from /proc: redis-server, the backends of its PostgreSQL database).
 * Every peer has a store of its own: BullMQ a fresh queue under a prefix of its own on Redis
 * (REDIS_URL, its keys deleted afterwards), graphile-worker and pg-boss a database of their own
 * on PostgreSQL (PG_URL's server), created here and dropped afterwards. The row workload writes
 * into a `bench_rows` table of that database (BullMQ's: `bench_bullmq`).
 *
 * Jobs carry their key in the payload. Only `graphile-keyed` serializes a key's jobs as Troupe does:
 * each job goes to graphile-worker's named queue of its key (`queueName`), whose jobs run one at a
 * time in order; the other peers run a key's jobs concurrently.
 */
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";

const [system, mode, workload, nArg, keysArg] = process.argv.slice(2);
const N = Number(nArg ?? 20_000);
const KEYS = Number(keysArg ?? 256);
const BATCH = 500;
const PG_URL = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
if (!["end-to-end", "processing"].includes(mode) || !["noop", "row"].includes(workload)) {
  console.error("usage: peer.mjs bullmq|graphile|graphile-keyed|pgboss end-to-end|processing noop|row [N] [KEYS]");
  process.exit(2);
}

/** CPU ms of the processes whose command line matches `match`, by pid (see bench/proc_cpu.ts). */
function serverCpu(match) {
  const out = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " ");
      if (!match.test(cmd)) continue;
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(name), (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

/** Starts a CPU meter of this process and the matched server processes. */
function meter(match) {
  const c0 = process.cpuUsage();
  const s0 = serverCpu(match);
  return () => {
    const c = process.cpuUsage(c0);
    let serverMs = 0;
    for (const [pid, t] of serverCpu(match)) serverMs += t - (s0.get(pid) ?? 0);
    return { clientMs: (c.user + c.system) / 1000, serverMs };
  };
}

const backendsOf = (db) => new RegExp(`^postgres: (\\S+: )?\\S+ ${db} `);
const versionOf = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), "utf8"))
    .version;

const dbUrl = (name) => {
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  return u.toString();
};

async function admin(sql) {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A fresh database of the peer's own (dropped by `dropDatabase`). */
async function createDatabase(name) {
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${name}`);
  const c = new pg.Client({ connectionString: dbUrl(name) });
  await c.connect();
  await c.query("CREATE TABLE bench_rows (i int NOT NULL, key text NOT NULL)");
  await c.end();
}

/** Drops the peer's database; its clients' connections that are still open end with it. */
async function dropDatabase(name) {
  // The measurement is over: a pool that sees its idle connection end must not fail the run.
  process.on("uncaughtException", (e) => {
    if (!/terminating connection/.test(String(e?.message))) throw e;
  });
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

async function countRows(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query("SELECT count(*)::int AS n FROM bench_rows");
  await c.end();
  return rows[0].n;
}

const payloads = (start) =>
  Array.from({ length: Math.min(BATCH, N - start) }, (_, j) => ({
    i: start + j,
    key: `bench:${(start + j) % KEYS}`,
  }));

/** Resolves once `count()` reaches N (polled every 5 ms, after the handlers saw N jobs). */
function waiter() {
  let seen = 0;
  let resolve;
  const handled = new Promise((r) => resolve = r);
  return {
    handled,
    saw(n = 1) {
      seen += n;
      if (seen >= N) resolve();
    },
    get seen() {
      return seen;
    },
  };
}

function timeout(what, get) {
  const t = setTimeout(() => {
    console.error(`${what}: only ${get()}/${N} after 300 s`);
    process.exit(1);
  }, 300_000);
  return () => clearTimeout(t);
}

async function bullmq() {
  const { Queue, Worker } = await import("bullmq");
  const connection = { host: REDIS_URL.hostname, port: Number(REDIS_URL.port || 6379) };
  const prefix = `troupe-bench-${crypto.randomUUID()}`;
  const concurrency = 50;
  const settings = { concurrency, addBulk: BATCH, removeOnComplete: false };
  const match = workload === "row"
    ? /^(redis-server |postgres: (\S+: )?\S+ bench_bullmq )/
    : /^redis-server /;
  let pool;
  if (workload === "row") {
    await createDatabase("bench_bullmq");
    pool = new pg.Pool({ connectionString: dbUrl("bench_bullmq"), max: 10 });
    pool.on("error", () => {}); // its connections end with the database
    settings.pgPool = 10;
  }
  console.error(`bullmq ${JSON.stringify(settings)}`);
  const queue = new Queue("bench", { connection, prefix });
  let done = 0;
  let finished;
  const allDone = new Promise((r) => finished = r);
  const handler = workload === "row"
    ? async (job) => {
      await pool.query("INSERT INTO bench_rows (i, key) VALUES ($1, $2)", [
        job.data.i,
        job.data.key,
      ]);
    }
    : async () => {};
  const startWorker = () => {
    const w = new Worker("bench", handler, { connection, prefix, concurrency });
    w.on("completed", () => {
      if (++done === N) finished();
    });
    return w;
  };
  const addAll = async () => {
    for (let s = 0; s < N; s += BATCH) {
      await queue.addBulk(payloads(s).map((data) => ({ name: "noop", data })));
    }
  };
  let worker;
  let t0;
  let cpu;
  if (mode === "end-to-end") {
    worker = startWorker();
    await worker.waitUntilReady();
    cpu = meter(match);
    t0 = performance.now();
    await addAll();
  } else {
    await addAll();
    cpu = meter(match);
    t0 = performance.now();
    worker = startWorker();
  }
  const stop = timeout("bullmq", () => done);
  await allDone;
  const rate = N / ((performance.now() - t0) / 1000);
  const used = cpu();
  stop();
  await worker.close();
  await queue.obliterate({ force: true });
  // obliterate leaves the queue's meta keys: delete every key under the prefix.
  const client = await queue.client;
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
  } while (cursor !== "0");
  await queue.close();
  if (pool) {
    const rows = await countRows(dbUrl("bench_bullmq"));
    if (rows !== N) throw new Error(`bullmq wrote ${rows} rows for ${N} jobs`);
    await pool.end();
    await dropDatabase("bench_bullmq");
  }
  return { rate, ...used, settings, versions: { bullmq: versionOf("bullmq") } };
}

async function graphile(keyed = false) {
  const { run, makeWorkerUtils, Logger } = await import("graphile-worker");
  await createDatabase("bench_graphile");
  const connectionString = dbUrl("bench_graphile");
  const worker = {
    connectionString,
    concurrentJobs: 50,
    maxPoolSize: 12,
    pollInterval: 1000,
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  };
  const settings = {
    ...worker,
    connectionString: undefined,
    addJobs: BATCH,
    ...(keyed ? { queueName: "one named queue a key" } : {}),
  };
  console.error(`graphile-worker ${JSON.stringify(settings)}`);
  const utils = await makeWorkerUtils({ connectionString });
  await utils.migrate();
  const w = waiter();
  const taskList = {
    noop: workload === "row"
      ? async (payload, helpers) => {
        await helpers.withPgClient((c) =>
          c.query("INSERT INTO bench_rows (i, key) VALUES ($1, $2)", [payload.i, payload.key])
        );
        w.saw();
      }
      : async () => {
        w.saw();
      },
  };
  const logger = new Logger(() => (level, message) => {
    if (level === "error") console.error(message);
  });
  const addAll = async () => {
    for (let s = 0; s < N; s += BATCH) {
      await utils.addJobs(
        payloads(s).map((payload) => ({
          identifier: "noop",
          payload,
          ...(keyed ? { queueName: payload.key } : {}),
        })),
      );
    }
  };
  const start = () => run({ taskList, logger, noHandleSignals: true, preset: { worker } });
  let runner;
  let t0;
  let cpu;
  if (mode === "end-to-end") {
    runner = await start();
    cpu = meter(backendsOf("bench_graphile"));
    t0 = performance.now();
    await addAll();
  } else {
    await addAll();
    cpu = meter(backendsOf("bench_graphile"));
    t0 = performance.now();
    runner = await start();
  }
  const stop = timeout("graphile-worker", () => w.seen);
  await w.handled;
  // A job is done once its completion (batched) deleted its row.
  const c = new pg.Client({ connectionString });
  await c.connect();
  while ((await c.query("SELECT count(*)::int AS n FROM graphile_worker._private_jobs")).rows[0].n) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const rate = N / ((performance.now() - t0) / 1000);
  const used = cpu();
  stop();
  await c.end();
  await runner.stop();
  await utils.release();
  if (workload === "row") {
    const rows = await countRows(connectionString);
    if (rows !== N) throw new Error(`graphile-worker wrote ${rows} rows for ${N} jobs`);
  }
  await dropDatabase("bench_graphile");
  return { rate, ...used, settings, versions: { "graphile-worker": versionOf("graphile-worker") } };
}

async function pgboss() {
  const { default: PgBoss } = await import("pg-boss");
  await createDatabase("bench_pgboss");
  const connectionString = dbUrl("bench_pgboss");
  const workers = 4;
  const work = { batchSize: 200, pollingIntervalSeconds: 0.5 };
  const settings = { workers, ...work, max: 10, insert: BATCH };
  console.error(`pg-boss ${JSON.stringify(settings)}`);
  const boss = new PgBoss({ connectionString, max: 10 });
  boss.on("error", (e) => console.error("pg-boss:", e.message));
  await boss.start();
  await boss.createQueue("bench");
  let pool;
  if (workload === "row") {
    settings.pgPool = 10;
    pool = new pg.Pool({ connectionString, max: 10 });
    pool.on("error", () => {}); // its connections end with the database
  }
  const w = waiter();
  const handler = async (jobs) => {
    if (pool) {
      await Promise.all(jobs.map((j) =>
        pool.query("INSERT INTO bench_rows (i, key) VALUES ($1, $2)", [j.data.i, j.data.key])
      ));
    }
    w.saw(jobs.length);
  };
  const addAll = async () => {
    for (let s = 0; s < N; s += BATCH) {
      await boss.insert(payloads(s).map((data) => ({ name: "bench", data })));
    }
  };
  const startWorkers = async () => {
    for (let i = 0; i < workers; i++) await boss.work("bench", work, handler);
  };
  let t0;
  let cpu;
  if (mode === "end-to-end") {
    await startWorkers();
    cpu = meter(backendsOf("bench_pgboss"));
    t0 = performance.now();
    await addAll();
  } else {
    await addAll();
    cpu = meter(backendsOf("bench_pgboss"));
    t0 = performance.now();
    await startWorkers();
  }
  const stop = timeout("pg-boss", () => w.seen);
  await w.handled;
  // A batch is done once pg-boss marked its jobs completed.
  const c = new pg.Client({ connectionString });
  await c.connect();
  const completed = async () =>
    (await c.query("SELECT count(*)::int AS n FROM pgboss.job WHERE state = 'completed'"))
      .rows[0].n;
  while (await completed() < N) await new Promise((r) => setTimeout(r, 5));
  const rate = N / ((performance.now() - t0) / 1000);
  const used = cpu();
  stop();
  await c.end();
  boss.removeAllListeners("error");
  boss.on("error", () => {}); // its connections end with the database
  await boss.stop({ graceful: false, wait: true });
  if (pool) {
    await pool.end();
    const rows = await countRows(connectionString);
    if (rows !== N) throw new Error(`pg-boss wrote ${rows} rows for ${N} jobs`);
  }
  await dropDatabase("bench_pgboss");
  return { rate, ...used, settings, versions: { "pg-boss": versionOf("pg-boss") } };
}

const systems = { bullmq, graphile, "graphile-keyed": () => graphile(true), pgboss };
if (!systems[system]) {
  console.error(`unknown peer ${system}`);
  process.exit(2);
}
const result = await systems[system]();
result.versions.node = process.version;
console.log(JSON.stringify({ system, mode, workload, ...result }));
process.exit(0);
