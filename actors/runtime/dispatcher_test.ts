/** The dispatcher's foreground modes, as a state machine, without a database. */
import assert from "node:assert/strict";
import { Dispatcher, type DispatcherOptions } from "./dispatcher.ts";
import { jsonLogger, type SqlDatabase } from "./ports.ts";
import { PUBLIC_TABLES } from "./sql/tables.ts";

function dispatcher(foregroundDeferMs: number): { d: Dispatcher; claims: number[] } {
  const claims: number[] = [];
  const db = {
    // One tenant has queued jobs, but a claim finds none; the limit it asked for is recorded.
    transaction: (fn: (tx: SqlDatabase) => Promise<unknown>) =>
      fn({
        query: (sql: string, params?: unknown[]) => {
          if (sql.includes("WITH RECURSIVE")) return Promise.resolve([{ g: "" }]);
          if (Array.isArray(params) && typeof params[1] === "number") claims.push(params[1]);
          return Promise.resolve([]);
        },
      } as unknown as SqlDatabase),
  } as unknown as SqlDatabase;
  return { d: new Dispatcher(options({ db, foregroundDeferMs })), claims };
}

/** The options of a dispatcher of actor `a` on its own: no executor, committer nor leases. */
function options(overrides: Partial<DispatcherOptions>): DispatcherOptions {
  return {
    db: {} as SqlDatabase,
    tables: PUBLIC_TABLES,
    workerId: "w",
    actorNames: ["a"],
    concurrency: 8,
    claimBatch: 8,
    leaseMs: 30_000,
    foregroundDeferMs: 0,
    foregroundConcurrency: 2,
    executor: {} as DispatcherOptions["executor"],
    committer: {} as DispatcherOptions["committer"],
    leases: { heldKeys: () => [], nextInstanceFence: () => 1 } as unknown as DispatcherOptions[
      "leases"
    ],
    transport: { wake: () => {} },
    policy: () => ({}) as ReturnType<DispatcherOptions["policy"]>,
    pauseRecheckMs: 30_000,
    onDelivery: () => Promise.resolve(),
    events: { emit: () => {} },
    log: jsonLogger("silent"),
    ...overrides,
  };
}

Deno.test("dispatcher: open claims the free slots; a foreground request defers, then throttles", async () => {
  const { d, claims } = dispatcher(30);
  assert.equal(d.mode, "open");
  await d.pump();
  assert.deepEqual(claims, [8]);
  const close = d.foreground();
  assert.equal(d.mode, "deferring");
  assert.equal(await d.pump(), 0);
  assert.deepEqual(claims, [8], "nothing is claimed while deferring");
  const deadline = Date.now() + 10_000;
  while (d.mode === "deferring" && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    await d.pump();
  }
  assert.equal(d.mode, "throttled");
  assert.deepEqual(claims, [8, 2], "throttled: below foregroundConcurrency");
  close();
  close();
  assert.equal(d.mode, "open");
});

Deno.test("dispatcher: without a deferral a request throttles at once; stopping claims nothing", async () => {
  const { d, claims } = dispatcher(0);
  const close = d.foreground();
  assert.equal(d.mode, "throttled");
  d.beginStop();
  assert.equal(d.mode, "stopping");
  assert.equal(d.freeSlots(), 0);
  assert.equal(await d.pump(), 0);
  assert.deepEqual(claims, []);
  d.stopped();
  assert.equal(d.mode, "throttled", "a request still open keeps the throttle after a restart");
  close();
  assert.equal(d.mode, "open");
  assert.equal(d.freeSlots(), 8);
});

Deno.test("dispatcher: after a claim that walked past its held keys to find nothing, claims past the same keys wait", async () => {
  // Each claim answers the next of `answers`: a batch of jobs of key A, or none after `ms`.
  const answers: ({ jobs: number } | { ms: number })[] = [
    { jobs: 8 },
    { ms: 30 },
    { jobs: 8 },
    { ms: 400 },
  ];
  let claims = 0;
  let n = 0;
  // The first job of each batch runs until its gate opens: its chain holds key A till then.
  const gated = new Set<string>();
  const db = {
    transaction: (fn: (tx: SqlDatabase) => Promise<unknown>) =>
      fn({
        query: async (sql: string) => {
          if (sql.includes("WITH RECURSIVE")) return [{ g: "" }];
          if (!sql.includes("SKIP LOCKED")) return [];
          claims++;
          const answer = answers.shift() ?? { ms: 0 };
          if ("ms" in answer) {
            await new Promise((r) => setTimeout(r, answer.ms));
            return [];
          }
          gated.add(`j${n + 1}`);
          return Array.from({ length: answer.jobs }, (_, i) => ({
            id: `j${++n}`,
            actor: "a",
            key: "A",
            lease_fence: 1,
            lease_losses: 0,
            state: null,
            ord: i,
          }));
        },
      } as unknown as SqlDatabase),
  } as unknown as SqlDatabase;
  const gates: PromiseWithResolvers<void>[] = [];
  const held = new Set<string>();
  const executor = {
    execute: async (job: { id: string }) => {
      if (gated.has(job.id)) {
        const gate = Promise.withResolvers<void>();
        gates.push(gate);
        await gate.promise;
      }
      return { outcome: "succeeded", sends: [], effects: [] };
    },
    leaveQuarantine: () => {},
  } as unknown as DispatcherOptions["executor"];
  const committer = {
    commit: () => Promise.resolve("committed"),
    endChain: () => {},
  } as unknown as DispatcherOptions["committer"];
  const d = new Dispatcher(options({
    db,
    concurrency: 16,
    foregroundConcurrency: 1,
    executor,
    committer,
    leases: {
      heldKeys: () => [...held],
      nextInstanceFence: () => 1,
      hold: (job: { key: string }) => held.add(job.key),
      letGo: (job: { key: string }) => held.delete(job.key),
      giveBack: () => Promise.resolve(),
    } as unknown as DispatcherOptions["leases"],
  }));
  const until = async (what: () => boolean) => {
    const deadline = Date.now() + 5_000;
    while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    assert.ok(what());
  };
  assert.equal(await d.pump(), 8, "a full claim: one chain of key A, held by its gate");
  assert.equal(await d.pump(), 0, "the next claim walks past key A and finds nothing");
  assert.equal(claims, 2);
  await until(() => gates.length === 1);
  gates[0]!.resolve(); // the chain ends: key A is given back
  await until(() => d.inFlight === 0);
  assert.equal(await d.pump(), 8, "no key held: claimed at once");
  assert.equal(claims, 3);
  const waitedFrom = performance.now();
  assert.equal(await d.pump(), 0);
  assert.equal(claims, 3, "key A held again, within nine times the empty walk: no claim");
  while (performance.now() - waitedFrom < 400 && claims === 3) {
    await new Promise((r) => setTimeout(r, 10));
    await d.pump();
  }
  assert.equal(claims, 4, "claims again once the wait is over");
  assert.ok(performance.now() - waitedFrom >= 150, "waited about nine times the walk's 30 ms");
  // That claim was slow (400 ms, as one waiting for PGlite's connection): the wait it sets is
  // bounded by a second, not nine times 400 ms.
  const slowEnded = performance.now();
  while (performance.now() - slowEnded < 3_000 && claims === 4) {
    await new Promise((r) => setTimeout(r, 10));
    await d.pump();
  }
  assert.equal(claims, 5);
  const waited = performance.now() - slowEnded;
  assert.ok(waited >= 900 && waited < 2_500, `waited ${waited} ms: a second, not 3.6 s`);
  await until(() => gates.length === 2);
  gates[1]!.resolve();
  await until(() => d.inFlight === 0);
});
