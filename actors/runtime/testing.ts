/**
 * The fault kit: prove that *your* actors are effectively-once, in a few lines of `deno test`.
 *
 * {@link testWorld} opens an embedded world (in-memory PGlite with the runtime's tables and
 * those of the migration sets you name, a table queue, a runtime that runs only when told to)
 * and its {@link Faults}: a message delivered twice or concurrently, a handler's process
 * crashing before or after its commit, a lease lost while the handler runs, a message delayed,
 * messages reordered. Each fault goes through the runtime's real mechanisms (leases and fencing
 * tokens, the reaper, the processed-messages ledger, several runtimes sharing one database),
 * nothing is mocked.
 *
 * {@link assertEffectivelyOnce} runs the same messages fault-free and under each fault, and
 * fails when the outcome differs: an actor that writes outside `ctx.effect()` (a counter in
 * memory, an insert on its own connection, an e-mail) is caught, since faults run handlers
 * more than once and only `ctx.setState`, `ctx.send`, `ctx.insert` and `ctx.effect` commit once.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineActor } from "@troupe/runtime";
 * import { assertEffectivelyOnce } from "@troupe/runtime/testing";
 *
 * const deposit = defineActor({
 *   name: "bank.deposit",
 *   input: z.object({ account: z.string(), amount: z.number().int() }),
 *   key: (i) => `account:${i.account}`,
 *   initialState: () => ({ balance: 0 }),
 *   handler: (input, ctx) => {
 *     ctx.setState({ balance: ctx.state.balance + input.amount });
 *     ctx.effect(async (tx) => {
 *       await tx.query("INSERT INTO ledger (account, amount) VALUES ($1, $2)", [
 *         input.account,
 *         input.amount,
 *       ]);
 *     });
 *   },
 * });
 *
 * Deno.test("deposits are effectively-once under every fault", async () => {
 *   await assertEffectivelyOnce({
 *     actors: [deposit],
 *     setup: (world) => world.db.query("CREATE TABLE ledger (account text, amount int)"),
 *     inputs: [
 *       { actor: "bank.deposit", input: { account: "a", amount: 5 } },
 *       { actor: "bank.deposit", input: { account: "a", amount: 7 } },
 *     ],
 *     effectsOf: (world) => world.db.query("SELECT * FROM ledger ORDER BY amount"),
 *   });
 * });
 * ```
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import { openPglite } from "./drivers/pglite.ts";
import { Gate } from "./_testing/gate.ts";
import type { AnyActor } from "./define.ts";
import { migrate, MIGRATIONS_TABLE, type MigrationSet, runtimeMigrations } from "./migrate.ts";
import { jsonLogger, type SqlDatabase } from "./ports.ts";
import { type JobView, Runtime, type Tables } from "./runtime.ts";
import type { DeliveryOutcome } from "./transport.ts";
import { LEASE_KEY } from "./sql/claim_jobs.ts";
import { TableQueueTransport } from "./transports/table_queue.ts";

export { ManualClock } from "./_testing/clock.ts";

/** The faults the kit injects; see {@link Faults} for what each does. */
export const FAULTS = [
  "deliverTwice",
  "deliverConcurrently",
  "crashBeforeCommit",
  "crashAfterCommit",
  "loseLeaseMidHandler",
  "delay",
  "reorder",
] as const;
/** One of {@link FAULTS}. */
export type FaultName = (typeof FAULTS)[number];

/** Options of a message sent in a test world: those of `Runtime.enqueue`. */
export type EnqueueOptions = NonNullable<Parameters<Runtime["enqueue"]>[2]>;

/** Options of {@link testWorld}. */
export interface TestWorldOptions {
  /**
   * The actors under test, or a function making them from the world's database (for actors
   * that take their database as a parameter).
   */
  actors: readonly AnyActor[] | ((db: SqlDatabase) => readonly AnyActor[]);
  /** Handlers running at once in the world's main runtime. @default 16 */
  concurrency?: number;
  /**
   * The migration sets of your actors' tables, applied in order after the runtime's own
   * (which may be listed too: each set applies once).
   */
  migrations?: readonly MigrationSet[];
}

/** An embedded world: a database, a runtime that runs when told to, and faults to inject. */
export interface TestWorld {
  /** The world's database (in-memory PGlite, with its migrations): read your effects from it. */
  readonly db: SqlDatabase;
  /** The main runtime (not started: {@link TestWorld.settle} runs it). */
  readonly runtime: Runtime;
  /** The faults to inject into the world's messages. */
  readonly faults: Faults;
  /**
   * Enqueues a message (validated like any other); returns its job id. `options.effect` runs
   * in the enqueue's transaction (e.g. inserts the row the message works on).
   */
  send(actor: AnyActor | string, input: unknown, options?: EnqueueOptions): Promise<string>;
  /**
   * Runs every message to its end: claims and runs what is due, takes back lapsed leases and
   * skips time forward over delays and retry backoffs, until no message is queued or running.
   * Throws when that takes longer than `timeoutMs` (default 20000).
   */
  settle(options?: { timeoutMs?: number }): Promise<void>;
  /** A job as the API shows it. */
  job(jobId: string): Promise<JobView>;
  /** The committed state of an actor instance (`undefined`: none yet). */
  state(key: string): Promise<unknown>;
  /** Closes the database. */
  close(): Promise<void>;
}

/**
 * Faults for one message (by job id), each through the runtime's real mechanisms. Each runs
 * the message to its end (so the effects of the fault are in the database when it resolves)
 * and throws when the message is not in a state the fault applies to (e.g. already finished).
 */
export interface Faults {
  /**
   * Delivers the message, then again after it committed (the first acknowledgement was lost
   * and the job record requeued): the handler runs twice; the ledger stops the second commit.
   */
  deliverTwice(jobId: string): Promise<void>;
  /**
   * Delivers the message from `n` workers at once (default 3): the key's lease lets one
   * handler run; the others are told "busy" and redeliver until the message is done.
   */
  deliverConcurrently(jobId: string, n?: number): Promise<void>;
  /**
   * A worker runs the handler to its end and its process dies before the commit: nothing is
   * written, the lease lapses, the reaper requeues the message and another worker runs it.
   */
  crashBeforeCommit(jobId: string): Promise<void>;
  /**
   * A worker runs and commits the message, and its process dies before it is acknowledged:
   * the record still shows it running under a lapsed lease, so the reaper requeues it and
   * another worker runs the handler again; the ledger stops the second commit.
   */
  crashAfterCommit(jobId: string): Promise<void>;
  /**
   * A worker runs the handler; before it commits, its lease lapses and another worker takes the
   * message over and commits it; then the first one tries to commit and is fenced off.
   */
  loseLeaseMidHandler(jobId: string): Promise<void>;
  /** Holds the message back `ms` (queued, not run): messages due before it overtake it. */
  delay(jobId: string, ms: number): Promise<void>;
  /** Delivers these messages one after another in this order, whatever their queue order. */
  reorder(jobIds: readonly string[]): Promise<void>;
}

/** Opens an embedded world for `actors` (see {@link TestWorld}); close it after the test. */
export async function testWorld(options: TestWorldOptions): Promise<TestWorld> {
  return new World(await migratedPglite(options.migrations), options);
}

/** An in-memory PGlite with the runtime's tables, then those of `migrations`. */
async function migratedPglite(migrations: readonly MigrationSet[] = []): Promise<SqlDatabase> {
  const db = await openPglite();
  try {
    const own = migrations.filter((set) => set.name !== runtimeMigrations.name);
    await migrate(db, [runtimeMigrations, ...own]);
    return db;
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** Options of {@link assertEffectivelyOnce}. */
export interface EffectivelyOnceOptions {
  /** The actors under test (see {@link TestWorldOptions.actors}). */
  actors: TestWorldOptions["actors"];
  /** The migration sets of your actors' tables (see {@link TestWorldOptions.migrations}). */
  migrations?: TestWorldOptions["migrations"];
  /** The messages, enqueued in this order in each run. */
  inputs: readonly { actor: AnyActor | string; input: unknown; options?: EnqueueOptions }[];
  /**
   * Prepares each run's world before the messages are sent (e.g. creates your tables). Runs
   * share one database, emptied between them: the tables and views made since the migrations
   * are dropped, the runtime's tables emptied.
   */
  setup?: (world: TestWorld) => Promise<unknown> | unknown;
  /**
   * What your actors did, as data compared across runs (e.g. rows of your tables, sorted).
   * The actors' committed states and the jobs' final statuses are compared as well.
   */
  effectsOf?: (world: TestWorld) => Promise<unknown> | unknown;
  /**
   * The faults to run. `delay` and `reorder` change the order messages run in: leave them
   * out for actors whose outcome depends on that order. @default "all"
   */
  faults?: "all" | readonly FaultName[];
}

/** What {@link assertEffectivelyOnce} compares across runs. */
export interface Outcome {
  /** What `effectsOf` returned. */
  effects: unknown;
  /** The committed state of each actor instance, by key. */
  states: Record<string, unknown>;
  /** The final status of each input's job, in input order. */
  statuses: string[];
}

/** Raised by {@link assertEffectivelyOnce}: the faults under which the outcome differed. */
export class EffectivelyOnceError extends Error {
  /** The error's name. */
  override readonly name = "EffectivelyOnceError";
  /** An error listing `failures`. */
  constructor(
    /** Each failing fault with the fault-free outcome and the one under the fault. */
    readonly failures: readonly { fault: FaultName; expected: unknown; actual: unknown }[],
  ) {
    super(
      `not effectively-once under ${failures.map((f) => f.fault).join(", ")}:\n` +
        failures.map((f) =>
          `  ${f.fault}: expected ${brief(f.expected)}\n` +
          `  ${" ".repeat(f.fault.length)}  actual   ${brief(f.actual)}`
        ).join("\n"),
    );
  }
}

/** An outcome in an error message, cut short (the whole is in `failures`). */
function brief(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 2000 ? `${text.slice(0, 2000)}...` : text;
}

/**
 * Runs `inputs` fault-free, then once under each fault, and throws
 * {@link EffectivelyOnceError} when an outcome (`effectsOf`, the actors' states, the jobs'
 * statuses) differs from the fault-free one. Returns the fault-free outcome: assert on it too,
 * since an outcome that is wrong every time is the same every time.
 *
 * The per-message faults hit every message, those the handlers send included, one after
 * another in queue order; `delay` holds the first input back and `reorder` delivers the inputs
 * last to first.
 */
export async function assertEffectivelyOnce(
  options: EffectivelyOnceOptions,
): Promise<Outcome> {
  const faults = options.faults === undefined || options.faults === "all" ? FAULTS : options.faults;
  // One database for every run, emptied between runs: far cheaper than a fresh PGlite each.
  const db = await migratedPglite(options.migrations);
  try {
    const migrated = new Set(await tablesOf(db));
    const expected = await outcomeUnder(options, null, db, migrated);
    const failures: { fault: FaultName; expected: unknown; actual: unknown }[] = [];
    for (const fault of faults) {
      const actual = await outcomeUnder(options, fault, db, migrated);
      if (!isDeepStrictEqual(actual, expected)) failures.push({ fault, expected, actual });
    }
    if (failures.length > 0) throw new EffectivelyOnceError(failures);
    return expected;
  } finally {
    await db.close();
  }
}

async function outcomeUnder(
  options: EffectivelyOnceOptions,
  fault: FaultName | null,
  db: SqlDatabase,
  migrated: ReadonlySet<string>,
): Promise<Outcome> {
  const world = new World(db, { actors: options.actors }, { closeDb: false });
  const t = world.runtime.tables;
  try {
    await options.setup?.(world);
    const ids: string[] = [];
    for (const m of options.inputs) ids.push(await world.send(m.actor, m.input, m.options));
    const f = world.faults;
    if (fault === "reorder") await f.reorder(ids.toReversed());
    else if (fault === "delay") await f.delay(ids[0]!, 60_000);
    else if (fault !== null) {
      for (let n = 0;; n++) {
        const [next] = await world.db.query<{ id: string }>(
          `SELECT id FROM ${t.jobs} WHERE status = 'queued' AND kind = 'job'
           ORDER BY priority DESC, run_at, id LIMIT 1`,
        );
        if (!next) break;
        if (n === MAX_FAULTED) throw new Error(`${fault}: more than ${n} messages`);
        await f[fault](next.id);
      }
    }
    await world.settle();
    const states = await world.db.query<{ key: string; state: unknown }>(
      `SELECT key, state FROM ${t.actorState} WHERE state IS NOT NULL ORDER BY key`,
    );
    const statuses = await Promise.all(ids.map(async (id) => (await world.job(id)).status));
    return {
      effects: await options.effectsOf?.(world),
      states: Object.fromEntries(states.map((r) => [r.key, r.state])),
      statuses,
    };
  } finally {
    await world.close();
    await reset(db, migrated);
  }
}

/** The tables and views of the database, as `table:name` and `view:name`. */
async function tablesOf(db: SqlDatabase): Promise<string[]> {
  const rows = await db.query<{ name: string }>(
    `SELECT 'table:' || tablename AS name FROM pg_tables WHERE schemaname = current_schema()
     UNION ALL
     SELECT 'view:' || viewname FROM pg_views WHERE schemaname = current_schema()`,
  );
  return rows.map((r) => r.name);
}

/** Back to a freshly migrated database: tables and views made since dropped, the rest emptied. */
async function reset(db: SqlDatabase, migrated: ReadonlySet<string>): Promise<void> {
  const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
  const now = await tablesOf(db);
  for (const made of now.filter((t) => !migrated.has(t)).sort().reverse()) {
    const [kind, name] = made.split(/:(.*)/s) as [string, string];
    await db.query(`DROP ${kind === "view" ? "VIEW" : "TABLE"} IF EXISTS ${quote(name)} CASCADE`);
  }
  const kept = [...migrated].filter((t) =>
    t.startsWith("table:") && t !== `table:${MIGRATIONS_TABLE}`
  )
    .map((t) => quote(t.slice("table:".length)));
  if (kept.length > 0) await db.query(`TRUNCATE ${kept.join(", ")} CASCADE`);
}

// ------------------------------------------------------------------ the world

/** Most messages one run of `assertEffectivelyOnce` injects a fault into. */
const MAX_FAULTED = 10_000;

/** Attempts at a delivery told "busy" before the kit gives up on it. */
const REDELIVERIES = 200;

class World implements TestWorld {
  readonly db: SqlDatabase;
  readonly runtime: Runtime;
  /** The faults to inject into the world's messages. */
  readonly faults: Faults;
  readonly #actors: readonly AnyActor[];
  readonly #gate = new Gate();
  readonly #concurrency: number;
  readonly #closeDb: boolean;
  #workers = 0;

  constructor(
    db: SqlDatabase,
    { actors, concurrency = 16 }: TestWorldOptions,
    { closeDb = true }: { closeDb?: boolean } = {},
  ) {
    this.db = db;
    this.#closeDb = closeDb;
    this.#actors = typeof actors === "function" ? actors(db) : actors;
    this.#concurrency = concurrency;
    this.runtime = this.#worker("main", concurrency);
    this.faults = new WorldFaults(this);
  }

  get #t(): Tables {
    return this.runtime.tables;
  }

  /** A runtime over the world's database, as another process would run one. */
  #worker(name: string, concurrency = 4): Runtime {
    return new Runtime({
      db: this.db,
      actors: this.#gate.wrap(this.#actors, name),
      transport: new TableQueueTransport(this.db),
      logger: jsonLogger("silent"),
      workerId: name,
      concurrency,
    });
  }

  /** A fresh worker: the runtime of another process over the same database. */
  worker(): Runtime {
    return this.#worker(`worker-${++this.#workers}`);
  }

  hold(jobId: string, worker: Runtime): ReturnType<Gate["arm"]> {
    return this.#gate.arm(jobId, worker.workerId);
  }

  async send(actor: AnyActor | string, input: unknown, options?: EnqueueOptions): Promise<string> {
    const name = typeof actor === "string" ? actor : actor.name;
    const { job } = await this.runtime.enqueue(name, input, options);
    return job.id;
  }

  async settle({ timeoutMs = 20_000 }: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      await this.runtime.reap();
      await this.runtime.pump();
      await this.#idle(deadline);
      const [open] = await this.db.query<{ due: number; later: number; running: number }>(
        `SELECT
           count(*) FILTER (WHERE status = 'queued' AND run_at <= now())::int AS due,
           count(*) FILTER (WHERE status = 'queued' AND run_at > now())::int AS later,
           count(*) FILTER (WHERE status = 'running')::int AS running
         FROM ${this.#t.jobs} WHERE kind = 'job'`,
      );
      if (!open || open.due + open.later + open.running === 0) return;
      if (performance.now() > deadline) {
        throw new Error(
          `settle(): messages still open after ${timeoutMs} ms: ` +
            `${open.due} due, ${open.later} delayed, ${open.running} running`,
        );
      }
      if (open.due === 0 && open.running === 0) {
        // Nothing runnable: skip time forward to the next message due (a delay, a backoff).
        await this.db.query(
          `UPDATE ${this.#t.jobs} SET run_at = now() WHERE status = 'queued' AND kind = 'job'
             AND run_at = (SELECT min(run_at) FROM ${this.#t.jobs}
                           WHERE status = 'queued' AND kind = 'job')`,
        );
      } else if (open.due > 0 && this.runtime.freeSlots() === this.#concurrency) {
        // Due but not claimable: its key is leased; let a lapsing lease run out.
        await sleep(5);
      }
    }
  }

  /** Waits until the main runtime has no message in flight. */
  async #idle(deadline: number): Promise<void> {
    while (this.runtime.freeSlots() < this.#concurrency && performance.now() < deadline) {
      await sleep(2);
    }
  }

  job(jobId: string): Promise<JobView> {
    return this.runtime.getJob(jobId);
  }

  async state(key: string): Promise<unknown> {
    const [row] = await this.db.query<{ state: unknown }>(
      `SELECT state FROM ${this.#t.actorState} WHERE key = $1`,
      [key],
    );
    return row?.state ?? undefined;
  }

  async close(): Promise<void> {
    await this.runtime.stop(0);
    if (this.#closeDb) await this.db.close();
  }
}

class WorldFaults implements Faults {
  readonly #world: World;

  constructor(world: World) {
    this.#world = world;
  }

  get #t(): Tables {
    return this.#world.runtime.tables;
  }

  async deliverTwice(jobId: string): Promise<void> {
    await this.#runnable(jobId);
    const first = await this.#deliver(this.#world.worker(), jobId);
    if (first.status !== "succeeded") return; // a message that failed has nothing to repeat
    await this.#world.db.query(
      `UPDATE ${this.#t.jobs} SET status = 'queued', finished_at = NULL, run_at = now()
       WHERE id = $1`,
      [jobId],
    );
    await this.#deliver(this.#world.worker(), jobId);
  }

  async deliverConcurrently(jobId: string, n = 3): Promise<void> {
    await this.#runnable(jobId);
    const workers = Array.from({ length: Math.max(2, n) }, () => this.#world.worker());
    await Promise.all(workers.map((w) => this.#deliver(w, jobId)));
  }

  async crashBeforeCommit(jobId: string): Promise<void> {
    await this.#takenOver(jobId, "crash");
  }

  async crashAfterCommit(jobId: string): Promise<void> {
    await this.#runnable(jobId);
    const crashed = this.#world.worker();
    const first = await this.#deliver(crashed, jobId);
    if (first.status !== "succeeded") return;
    // The record as the process left it: running, under its lease, which then lapses.
    await this.#world.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE ${this.#t.jobs} SET status = 'running', finished_at = NULL, lease_owner = $2
         WHERE id = $1`,
        [jobId, crashed.workerId],
      );
      await tx.query(
        `UPDATE ${this.#t.actorState} SET lease_owner = $2,
           lease_until = now() - interval '1 second' WHERE key = ${this.#leaseOf("$1")}`,
        [jobId, crashed.workerId],
      );
    });
    await this.#world.runtime.reap();
    await this.#deliver(this.#world.worker(), jobId);
  }

  async loseLeaseMidHandler(jobId: string): Promise<void> {
    await this.#takenOver(jobId, "continue");
  }

  /** The lease row the job `id` (a parameter) runs under: its key's, or its owner's instance. */
  #leaseOf(id: string): string {
    return `(SELECT ${LEASE_KEY("j")} FROM ${this.#t.jobs} j WHERE j.id = ${id})`;
  }

  async delay(jobId: string, ms: number): Promise<void> {
    const rows = await this.#world.db.query(
      `UPDATE ${this.#t.jobs} SET run_at = greatest(run_at, now()) + make_interval(secs => $2)
       WHERE id = $1 AND status = 'queued' RETURNING id`,
      [jobId, ms / 1000],
    );
    if (rows.length === 0) throw new Error(`delay(): job ${jobId} is not queued`);
  }

  async reorder(jobIds: readonly string[]): Promise<void> {
    for (const id of jobIds) await this.#runnable(id);
    const worker = this.#world.worker();
    for (const id of jobIds) await this.#deliver(worker, id);
  }

  /**
   * A worker runs the handler and is held before its commit; its lease lapses, the reaper
   * requeues the message and another worker runs it to its end; then the held worker goes on
   * ("continue": its commit is fenced off) or dies ("crash").
   */
  async #takenOver(jobId: string, how: "continue" | "crash"): Promise<void> {
    await this.#runnable(jobId);
    const first = this.#world.worker();
    let held: ReturnType<World["hold"]> | undefined;
    let running: Promise<DeliveryOutcome> | undefined;
    for (let i = 0; i < REDELIVERIES && !held; i++) {
      const hold = this.#world.hold(jobId, first);
      const run = first.deliver(jobId);
      const reached = await Promise.race([
        hold.reached.then(() => true),
        run.then(() => false, () => false),
      ]);
      if (reached) {
        [held, running] = [hold, run];
        break;
      }
      hold.cancel();
      const outcome = await run;
      // The handler threw (a retry comes) or the message ended without a handler returning.
      if (outcome.status !== "busy" && outcome.status !== "retry") return;
      await this.#due(jobId);
    }
    if (!held || !running) throw new Error(`job ${jobId}: its handler never returned`);
    await this.#world.db.query(
      `UPDATE ${this.#t.actorState} SET lease_until = now() - interval '1 second'
       WHERE key = ${this.#leaseOf("$1")}`,
      [jobId],
    );
    await this.#world.runtime.reap();
    await this.#deliver(this.#world.worker(), jobId);
    held.release(how);
    const late = await running;
    if (late.status !== "busy") {
      throw new Error(`job ${jobId}: the worker that lost its lease got ${late.status}`);
    }
  }

  /** Throws unless the message is queued (a fault needs a message to deliver). */
  async #runnable(jobId: string): Promise<void> {
    const [row] = await this.#world.db.query<{ status: string }>(
      `SELECT status FROM ${this.#t.jobs} WHERE id = $1`,
      [jobId],
    );
    if (!row) throw new Error(`job ${jobId} does not exist`);
    if (row.status !== "queued") {
      throw new Error(`job ${jobId} is ${row.status}: a fault needs a queued message`);
    }
  }

  /**
   * Delivers as a push transport does: "busy" and "retry" come again (time skipped forward
   * over a retry's backoff) until the message is done.
   */
  async #deliver(worker: Runtime, jobId: string): Promise<DeliveryOutcome> {
    for (let i = 0; i < REDELIVERIES; i++) {
      const outcome = await worker.deliver(jobId);
      if (outcome.status !== "busy" && outcome.status !== "retry") return outcome;
      await this.#due(jobId);
    }
    throw new Error(`job ${jobId}: still busy after ${REDELIVERIES} deliveries`);
  }

  /** Skips time forward over the message's backoff, as a redelivery later would see it. */
  async #due(jobId: string): Promise<void> {
    await this.#world.db.query(
      `UPDATE ${this.#t.jobs} SET run_at = now() WHERE id = $1 AND status = 'queued'`,
      [jobId],
    );
    await sleep(2);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
