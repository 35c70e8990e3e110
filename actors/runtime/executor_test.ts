/**
 * The executor alone: a claimed job in, a completion out. Its database is a recorder, so each
 * test also shows that a handler's effects are buffered in the completion, never written here.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "./define.ts";
import { CancelledError } from "./errors.ts";
import { Executor } from "./executor.ts";
import { jsonLogger, type SqlDatabase } from "./ports.ts";
import type { ClaimedJob } from "./sql/claim_jobs.ts";
import { PUBLIC_TABLES } from "./sql/tables.ts";

function recorder(): SqlDatabase & { queries: string[] } {
  const queries: string[] = [];
  const db = {
    queries,
    shared: false,
    autovacuum: true,
    query: (sql: string) => {
      queries.push(sql);
      return Promise.resolve([]);
    },
    transaction: () => Promise.reject(new Error("the executor never opens a transaction")),
    listen: () => Promise.resolve(() => Promise.resolve()),
    close: () => Promise.resolve(),
  };
  return db as unknown as SqlDatabase & { queries: string[] };
}

function claimed(actor: string, input: unknown, over: Partial<ClaimedJob> = {}): ClaimedJob {
  return {
    id: crypto.randomUUID(),
    actor,
    key: actor,
    tenant_id: null,
    input,
    attempts: 1,
    max_attempts: 3,
    lease_fence: 7,
    state: null,
    cancel_requested: false,
    lease_losses: 0,
    pipeline_id: null,
    ...over,
  };
}

const sink = defineActor({
  name: "exec.sink",
  input: z.object({ v: z.number() }),
  handler: () => 1,
});
const counter = defineActor({
  name: "exec.counter",
  input: z.object({ by: z.number() }),
  initialState: () => ({ total: 0 }),
  handler: (input, ctx) => {
    ctx.setState({ total: ctx.state.total + input.by });
    ctx.send("exec.sink", { v: input.by });
    ctx.effect(() => Promise.resolve());
    return { total: ctx.state.total };
  },
});
const flaky = defineActor({
  name: "exec.flaky",
  input: z.object({}),
  backoff: { baseMs: 100, maxMs: 100, jitter: 0 },
  onDeadLetter: () => ({ actor: "exec.sink", input: { v: -1 } }),
  handler: (_input, ctx) => {
    ctx.send("exec.sink", { v: 0 });
    throw new Error("boom");
  },
});
const waiting = defineActor({
  name: "exec.waiting",
  input: z.object({}),
  concurrency: 1,
  timeoutMs: 60_000,
  handler: (_input, ctx) =>
    new Promise((_, reject) =>
      ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
    ),
});
const slow = defineActor({
  name: "exec.slow",
  input: z.object({}),
  timeoutMs: 20,
  handler: () => new Promise(() => {}),
});

function executor(db: SqlDatabase) {
  const actors = new Map([sink, counter, flaky, waiting, slow].map((a) => [a.name, a] as const));
  return new Executor({ db, tables: PUBLIC_TABLES, actors, logger: jsonLogger("silent") });
}

Deno.test("executor: a success carries its state, sends and effects, and writes nothing", async () => {
  const db = recorder();
  const c = await executor(db).execute(claimed("exec.counter", { by: 2 }), { total: 40 });
  assert.equal(c.outcome, "succeeded");
  assert.deepEqual(c.result, { total: 42 });
  assert.deepEqual(c.state, { value: { total: 42 } });
  assert.equal(c.fence, 7);
  assert.equal(c.sends.length, 1);
  assert.equal(c.sends[0]!.actor, "exec.sink");
  assert.equal(c.effects.length, 1);
  assert.deepEqual(db.queries, []);
});

Deno.test("executor: a re-run sends the same message ids (deterministic)", async () => {
  const ex = executor(recorder());
  const job = claimed("exec.counter", { by: 1 });
  const first = await ex.execute(job, null);
  const again = await ex.execute(job, null);
  assert.equal(first.sends[0]!.id, again.sends[0]!.id);
});

Deno.test("executor: a failure with attempts left is a retry with backoff, without sends", async () => {
  const c = await executor(recorder()).execute(claimed("exec.flaky", {}), null);
  assert.equal(c.outcome, "retry");
  assert.equal(c.retryInMs, 100);
  assert.equal(c.error?.message, "boom");
  assert.deepEqual(c.sends, []);
  assert.deepEqual(c.effects, []);
  assert.equal(c.state, undefined);
});

Deno.test("executor: the last failed attempt is final and sends what onDeadLetter asks", async () => {
  const c = await executor(recorder()).execute(
    claimed("exec.flaky", {}, { attempts: 3, max_attempts: 3 }),
    null,
  );
  assert.equal(c.outcome, "failed");
  assert.equal(c.sends.length, 1);
  assert.deepEqual(c.sends[0]!.input, { v: -1 });
});

Deno.test("executor: an unknown actor or a stored input that no longer parses fails for good", async () => {
  const ex = executor(recorder());
  const unknown = await ex.execute(claimed("exec.nobody", {}), null);
  assert.equal(unknown.outcome, "failed");
  assert.equal(unknown.error?.code, "UNKNOWN_ACTOR");
  const bad = await ex.execute(claimed("exec.counter", { by: "x" }), null);
  assert.equal(bad.outcome, "failed");
  assert.equal(bad.error?.code, "INVALID_INPUT");
});

Deno.test("executor: a cancel requested before the run cancels without running", async () => {
  const db = recorder();
  const c = await executor(db).execute(
    claimed("exec.counter", { by: 1 }, { cancel_requested: true }),
    null,
  );
  assert.equal(c.outcome, "cancelled");
  assert.deepEqual(c.sends, []);
});

Deno.test("executor: abort, abortKey and runningJobs reach running handlers only", async () => {
  const ex = executor(recorder());
  const a = claimed("exec.waiting", {}, { key: "k1" });
  const running = ex.execute(a, null);
  await Promise.resolve();
  assert.deepEqual(ex.runningJobs(), [a.id]);
  assert.equal(ex.abortKey("other", new Error("no")), 0);
  assert.equal(ex.abort("not-running", new CancelledError()), false);
  assert.equal(ex.abortKey("k1", new CancelledError()), 1);
  const c = await running;
  assert.equal(c.outcome, "cancelled");
  assert.deepEqual(ex.runningJobs(), []);
});

Deno.test("executor: an actor's concurrency holds the next handler until one ends", async () => {
  const ex = executor(recorder());
  const a = claimed("exec.waiting", {});
  const b = claimed("exec.waiting", {});
  const first = ex.execute(a, null);
  const second = ex.execute(b, null);
  await Promise.resolve();
  assert.deepEqual(ex.runningJobs(), [a.id]);
  ex.abort(a.id, new CancelledError());
  await first;
  for (let i = 0; i < 10 && !ex.runningJobs().includes(b.id); i++) await Promise.resolve();
  assert.deepEqual(ex.runningJobs(), [b.id]);
  ex.abort(b.id, new CancelledError());
  assert.equal((await second).outcome, "cancelled");
});

Deno.test("executor: a handler past its time limit fails with TIMEOUT", async () => {
  const c = await executor(recorder()).execute(claimed("exec.slow", {}), null);
  assert.equal(c.outcome, "retry");
  assert.equal(c.error?.code, "TIMEOUT");
});

Deno.test("executor: a suspect records its start before it runs", async () => {
  const db = recorder();
  const c = await executor(db).execute(
    claimed("exec.counter", { by: 1 }, { lease_losses: 1 }),
    null,
  );
  assert.equal(c.outcome, "succeeded");
  assert.equal(db.queries.length, 1);
  assert.match(db.queries[0]!, /started_fence/);
});
