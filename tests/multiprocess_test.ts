/**
 * Guarantees across processes: two workers sharing one PostgreSQL, a worker killed with
 * SIGKILL mid-handler (PostgreSQL and an embedded PGlite directory), and a poison job that
 * kills every process that runs it.
 */
import assert from "node:assert/strict";
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
import { createPgDatabase, waitFor } from "./harness.ts";

const WORKER = new URL("./fixtures/worker.ts", import.meta.url).pathname;

/** What a worker printed so far; `changed` resolves at its next output or its end. */
interface Printed {
  text: string;
  ended: boolean;
  changed: PromiseWithResolvers<void>;
}
const printed = new WeakMap<Deno.ChildProcess, Printed>();

/** Starts a worker process and resolves once it printed READY. */
async function spawnWorker(target: string, id: string, env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WORKER, target],
    env: { WORKER_ID: id, LEASE_MS: "1000", ...env },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out: Printed = { text: "", ended: false, changed: Promise.withResolvers() };
  printed.set(child, out);
  // Drained to the end, so the child never blocks on a full pipe.
  (async () => {
    try {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        out.text += chunk;
        out.changed.resolve();
        out.changed = Promise.withResolvers();
      }
    } catch { /* closed */ }
    out.ended = true;
    out.changed.resolve();
  })();
  await said(child, "READY", `worker ${id} did not start`);
  return child;
}

/** Resolves once `child` printed `text`; fails if it ends first or takes over 30 s. */
async function said(child: Deno.ChildProcess, text: string, what = `"${text}" from a worker`) {
  const out = printed.get(child)!;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), 30_000));
  try {
    while (!out.text.includes(text)) {
      if (out.ended) throw new Error(`${what}: the worker exited first`);
      if (await Promise.race([out.changed.promise, late]) === "late") {
        throw new Error(`${what}: not within 30 s`);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

async function stopWorker(child: Deno.ChildProcess, signal: Deno.Signal = "SIGTERM") {
  try {
    child.kill(signal);
  } catch { /* already gone */ }
  await child.status;
}

/** The API side: enqueues only (its runtime is never started). */
function apiRuntime(db: SqlDatabase) {
  return new Runtime({
    db,
    actors: [
      defineActor({
        name: "mp.rmw",
        input: z.object({ key: z.string() }),
        key: (i) => `mp:${i.key}`,
        handler: () => {},
      }),
      defineActor({
        name: "mp.slow",
        input: z.object({}),
        key: () => "mp:slow",
        handler: () => {},
      }),
      defineActor({
        name: "mp.crash",
        input: z.object({}),
        key: () => "mp:crash",
        retries: 5,
        handler: () => {},
      }),
      defineActor({
        name: "mp.neighbour",
        input: z.object({}),
        key: () => "mp:neighbour",
        retries: 5,
        handler: () => {},
      }),
    ],
    transport: new TableQueueTransport(db),
    logger: jsonLogger("silent"),
  });
}

Deno.test({
  name: "two worker processes sharing PostgreSQL run 1,000 read-modify-writes on 10 keys exactly",
}, async () => {
  const pg = await createPgDatabase();
  const db = openPostgres(pg.url);
  const workers: Deno.ChildProcess[] = [];
  try {
    await migrate(db);
    const api = apiRuntime(db);
    workers.push(await spawnWorker(pg.url, "A"), await spawnWorker(pg.url, "B"));
    const jobs = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i % 10}` }));
    await Promise.all(jobs.map((input) => api.enqueue("mp.rmw", input)));
    await waitFor(async () => {
      const [r] = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM troupe_jobs WHERE status = 'succeeded'",
      );
      return r!.n === 1000;
    }, { timeoutMs: 120_000, intervalMs: 200, what: "1,000 messages" });

    const states = await db.query<{ key: string; state: { count: number } }>(
      "SELECT key, state FROM troupe_actor_state WHERE key LIKE 'mp:k%' ORDER BY key",
    );
    assert.equal(states.length, 10);
    for (const s of states) assert.equal(s.state.count, 100, `${s.key} lost an update`);

    const runs = await db.query<
      { job_id: string; key: string; worker: string; started: number; ended: number }
    >("SELECT * FROM test_runs WHERE key LIKE 'mp:k%' ORDER BY key, started");
    assert.equal(runs.length, 1000, "one committed run per message");
    assert.equal(new Set(runs.map((r) => r.job_id)).size, 1000);
    for (let i = 1; i < runs.length; i++) {
      const [a, b] = [runs[i - 1]!, runs[i]!];
      if (a.key !== b.key) continue;
      assert.ok(
        b.started >= a.ended,
        `runs overlap on ${a.key}: ${a.worker} ${a.started}-${a.ended}, ${b.worker} ${b.started}`,
      );
    }
    const byWorker = new Map<string, number>();
    for (const r of runs) byWorker.set(r.worker, (byWorker.get(r.worker) ?? 0) + 1);
    assert.equal(byWorker.size, 2, `both workers took work: ${JSON.stringify([...byWorker])}`);
  } finally {
    for (const w of workers) await stopWorker(w);
    await db.close();
    await pg.drop();
  }
});

async function killMidHandler(url: string) {
  let worker = await spawnWorker(url, "first");
  const db = openPostgres(url);
  try {
    const { job } = await apiRuntime(db).enqueue("mp.slow", {});
    await waitFor(async () => (await db.query("SELECT 1 FROM test_started")).length > 0, {
      timeoutMs: 20_000,
      what: "the handler to start",
    });
    await stopWorker(worker, "SIGKILL");
    worker = await spawnWorker(url, "second");
    const done = await waitFor(async () => {
      const rows = await db.query<{ status: string; attempts: number; result: unknown }>(
        "SELECT status, attempts, result FROM troupe_jobs WHERE id = $1",
        [job.id],
      );
      return rows[0]?.status === "succeeded" ? rows[0] : null;
    }, { timeoutMs: 20_000, what: "the job to complete after the restart" });
    assert.equal(done.attempts, 2, "the killed attempt counts as one");
    assert.deepEqual(done.result, { attempt: 2 });
    const runs = await db.query("SELECT * FROM test_runs WHERE job_id = $1", [job.id]);
    assert.equal(runs.length, 1, "the message's effect committed exactly once");
  } finally {
    await stopWorker(worker);
    await db.close();
  }
}

Deno.test({
  name: "a worker SIGKILLed mid-handler is restarted and the message completes once (postgres)",
}, async () => {
  const pg = await createPgDatabase();
  try {
    const db = openPostgres(pg.url);
    await migrate(db);
    await db.close();
    await killMidHandler(pg.url);
  } finally {
    await pg.drop();
  }
});

Deno.test({
  name: "a worker SIGKILLed mid-handler is restarted and the message completes once (pglite dir)",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-pglite-" });
  try {
    await killMidHandlerPglite(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** PGlite is single-process: the test and the worker take turns on the directory. */
async function killMidHandlerPglite(dir: string) {
  const target = `pglite:${dir}`;
  let db = await openPglite(dir);
  await migrate(db);
  await db.query("CREATE TABLE IF NOT EXISTS test_started (job_id text NOT NULL, worker text)");
  await db.query(`CREATE TABLE IF NOT EXISTS test_runs (
    job_id text NOT NULL, key text NOT NULL, worker text NOT NULL,
    started double precision NOT NULL, ended double precision NOT NULL)`);
  const { job } = await apiRuntime(db).enqueue("mp.slow", {});
  await db.close();

  let worker = await spawnWorker(target, "first");
  // The worker cannot share its database: it says when the handler has started.
  await said(worker, `STARTED ${job.id}`);
  await stopWorker(worker, "SIGKILL");

  worker = await spawnWorker(target, "second");
  await said(worker, "FINISHED mp.slow succeeded");
  await stopWorker(worker);
  db = await openPglite(dir);
  try {
    const started = await db.query("SELECT * FROM test_started WHERE job_id = $1", [job.id]);
    assert.equal(started.length, 1, "the first worker had started the handler when killed");
    const rows = await db.query<{ status: string; attempts: number; result: unknown }>(
      "SELECT status, attempts, result FROM troupe_jobs WHERE id = $1",
      [job.id],
    );
    assert.equal(rows[0]?.status, "succeeded");
    assert.equal(rows[0]?.attempts, 2, "the killed attempt counts as one");
    const runs = await db.query("SELECT * FROM test_runs WHERE job_id = $1", [job.id]);
    assert.equal(runs.length, 1, "the message's effect committed exactly once");
  } finally {
    await db.close();
  }
}

/** Starts a worker expected to die (it may claim the poison job before it prints READY). */
async function spawnDoomed(url: string, id: string): Promise<Deno.CommandStatus> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WORKER, url],
    env: { WORKER_ID: id, LEASE_MS: "1000" },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      child.status,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`worker ${id} did not die`)), 60_000);
      }),
    ]);
  } catch (err) {
    await stopWorker(child, "SIGKILL");
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name:
    "a job whose handler killed its process twice is a dead letter and never runs a third time; " +
    "a job that ran beside it is not",
}, async () => {
  const pg = await createPgDatabase();
  const db = openPostgres(pg.url);
  let survivor: Deno.ChildProcess | undefined;
  try {
    await migrate(db);
    await db.query("CREATE TABLE test_started (job_id text NOT NULL, worker text)");
    // Due together, so that the first worker claims both in one batch and runs them at once.
    const api = apiRuntime(db);
    const { job: innocent } = await api.enqueue("mp.neighbour", {}, { delayMs: 1000 });
    const { job } = await api.enqueue("mp.crash", {}, { delayMs: 1000 });
    for (const id of ["first", "second"]) {
      const status = await spawnDoomed(pg.url, id);
      assert.equal(status.signal, "SIGKILL", `worker ${id} was killed by its handler`);
    }
    survivor = await spawnWorker(pg.url, "third");
    const done = await waitFor(async () => {
      const rows = await db.query<{ status: string; error: { code: string; message: string } }>(
        "SELECT status, error FROM troupe_jobs WHERE id = $1",
        [job.id],
      );
      return rows[0]?.status === "failed" ? rows[0] : null;
    }, { timeoutMs: 30_000, what: "the poison job to be dead-lettered" });
    assert.equal(done.error.code, "POISON_JOB");
    assert.match(done.error.message, /stopped 2 times/);
    const letters = await db.query("SELECT 1 FROM troupe_dead_letters WHERE job_id = $1", [
      job.id,
    ]);
    assert.equal(letters.length, 1);
    // Give a third run the time it would need, then check nothing ran it.
    await new Promise((r) => setTimeout(r, 1500));
    const runs = await db.query<{ worker: string }>(
      "SELECT worker FROM test_started WHERE job_id = $1 ORDER BY worker",
      [job.id],
    );
    assert.deepEqual(runs.map((r) => r.worker), ["first", "second"]);
    const alive = await Promise.race([
      survivor.status.then(() => false),
      new Promise((r) => setTimeout(() => r(true), 200)),
    ]);
    assert.ok(alive, "the third worker is still up");
    const neighbour = await waitFor(async () => {
      const rows = await db.query<{ status: string }>(
        "SELECT status FROM troupe_jobs WHERE id = $1",
        [innocent.id],
      );
      return rows[0]?.status === "succeeded" || rows[0]?.status === "failed" ? rows[0] : null;
    }, { timeoutMs: 30_000, what: "the neighbour to finish" });
    assert.equal(neighbour.status, "succeeded", "the job beside the poison job was not poisoned");
  } finally {
    if (survivor) await stopWorker(survivor);
    await db.close();
    await pg.drop();
  }
});
