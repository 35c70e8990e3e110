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
  const options: DispatcherOptions = {
    db,
    tables: PUBLIC_TABLES,
    workerId: "w",
    actorNames: ["a"],
    concurrency: 8,
    claimBatch: 8,
    leaseMs: 30_000,
    foregroundDeferMs,
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
  };
  return { d: new Dispatcher(options), claims };
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
