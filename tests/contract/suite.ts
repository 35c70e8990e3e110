/**
 * Registers a group of contract tests once per database target: the database is opened
 * before the file's first test and closed after its last.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  type AnyActor,
  defineActor,
  jsonLogger,
  Runtime,
  type RuntimeOptions,
  type SqlDatabase,
  TableQueueTransport,
  type Transport,
} from "@troupe/runtime";
import type { ClaimedJob } from "../../actors/runtime/sql/claim_jobs.ts";
import type { Completion } from "../../actors/runtime/sql/complete_jobs.ts";
import { type DbTarget, settle, targets, type TestDatabase } from "../harness.ts";

/**
 * The completion of `job`, claimed by a test, as a success with nothing to write, no ledger row,
 * ending its chain (`release`); `more` sets the rest.
 */
export function succeeded(job: ClaimedJob, more: Partial<Completion> = {}): Completion {
  return {
    id: job.id,
    key: job.key,
    fence: job.lease_fence,
    outcome: "succeeded",
    sends: [],
    effects: [],
    release: true,
    ledger: false,
    ...more,
  };
}

export interface SuiteContext {
  target: DbTarget["name"];
  db: SqlDatabase;
  url?: string;
  /** A started runtime over the suite's database, stopped after the test. */
  runtime(
    actors: AnyActor[],
    options?: Partial<Omit<RuntimeOptions, "db" | "actors" | "transport">> & {
      transport?: Transport;
      start?: boolean;
    },
  ): Promise<Runtime>;
}

export function contractSuite(
  group: string,
  tests: Record<string, (ctx: SuiteContext) => Promise<void>>,
  { only }: { only?: DbTarget["name"][] } = {},
): void {
  // PostgreSQL first: a PGlite timer armed by an earlier group could end during its tests.
  const ordered = [...targets].sort((a, b) =>
    Number(b.name === "postgres") - Number(a.name === "postgres")
  );
  for (const target of ordered) {
    if (only && !only.includes(target.name)) continue;
    // Sanitizers on where stop is deterministic. PGlite's backend arms its idle statistics
    // timer after a statement (a timer counts for both sanitizers); the Neon pool's
    // WebSockets are opened by whichever test first needs them and read between tests.
    const sanitized = target.name === "postgres";
    // A sanitized target's database is opened before the file's first test (hooks are per file)
    // and closed after its last, so each test is checked for what it opens itself. The others
    // open in their first test: opened in the hook, before every test of the file, PGlite's
    // timer would end during a sanitized test.
    let opened: Promise<TestDatabase> | null = null;
    if (sanitized) {
      Deno.test.beforeAll(async () => {
        await (opened ??= target.open());
      });
    }
    Deno.test.afterAll(async () => {
      if (opened) await (await opened).cleanup();
    });
    for (const name of Object.keys(tests)) {
      Deno.test({
        name: `${group} [${target.name}]: ${name}`,
        sanitizeOps: sanitized,
        sanitizeResources: sanitized,
        async fn() {
          const tdb = await (opened ??= target.open());
          const started: Runtime[] = [];
          const ctx: SuiteContext = {
            target: target.name,
            db: tdb.db,
            ...(tdb.url ? { url: tdb.url } : {}),
            async runtime(actors, options = {}) {
              const { transport, start = true, ...rest } = options;
              const rt = new Runtime({
                db: tdb.db,
                actors,
                transport: transport ?? new TableQueueTransport(tdb.db, { pollMs: 100 }),
                logger: jsonLogger("silent"),
                ...rest,
              });
              started.push(rt);
              if (start) await rt.start();
              return rt;
            },
          };
          try {
            await tests[name]!(ctx);
          } finally {
            for (const rt of started) await rt.stop(2000);
          }
        },
      });
    }
  }
}

/** An actor named `name` that answers its input `{ n }`, a key per `n`. */
export function echoActor(name: string) {
  return defineActor({
    name,
    input: z.object({ n: z.number().int() }),
    key: (i) => `${name}:${i.n}`,
    handler: ({ n }) => ({ n }),
  });
}

/** An actor named `name` whose handler runs until its signal aborts it, and fails with why. */
export function untilAborted(name: string) {
  return defineActor({
    name,
    input: z.object({}),
    handler: (_i, ctx) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
      ),
  });
}

/**
 * Runs three messages of an echo actor named `name` to success on a runtime over `db` of its
 * own (the table queue, polled every 100 ms), stopped before this resolves: for a database
 * opened by the test itself, with settings of its own.
 */
export async function echoThrice(db: SqlDatabase, name: string): Promise<void> {
  const echo = echoActor(name);
  const rt = new Runtime({
    db,
    actors: [echo],
    transport: new TableQueueTransport(db, { pollMs: 100 }),
    logger: jsonLogger("silent"),
  });
  try {
    await rt.start();
    const jobs = await Promise.all([1, 2, 3].map((n) => rt.enqueue(echo, { n })));
    for (const { job } of jobs) assert.equal((await settle(rt, job.id)).status, "succeeded");
  } finally {
    await rt.stop(2000);
  }
}

/**
 * Races twenty pushed deliveries of job `id` and a pull claim on a runtime not started yet,
 * then starts it and waits for the job to settle; deliveries told "busy" come again, as a
 * transport would redeliver them. Returns the first outcomes (`pumped` for the claim).
 */
export async function deliverAtOnce(rt: Runtime, id: string): Promise<{ status: string }[]> {
  const outcomes = await Promise.all([
    ...Array.from({ length: 20 }, () => rt.deliver(id)),
    rt.pump().then(() => ({ status: "pumped" })),
  ]);
  await rt.start();
  await settle(rt, id);
  for (const o of outcomes) if (o.status === "busy") await rt.deliver(id);
  return outcomes;
}
