import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "./define.ts";
import type { SqlDatabase } from "./ports.ts";
import {
  assertEffectivelyOnce,
  EffectivelyOnceError,
  type FaultName,
  type TestWorld,
  testWorld,
} from "./testing.ts";

const depositInput = z.object({ account: z.string(), amount: z.number().int() });

/** Correct: its state, its row and its message all commit with the message. */
const deposit = defineActor({
  name: "t.deposit",
  input: depositInput,
  key: (i) => `account:${i.account}`,
  initialState: () => ({ balance: 0 }),
  handler: (input, ctx) => {
    const balance = ctx.state.balance + input.amount;
    ctx.setState({ balance });
    ctx.effect(async (tx) => {
      await tx.query("INSERT INTO t_ledger (job_id, account, amount) VALUES ($1, $2, $3)", [
        ctx.jobId,
        input.account,
        input.amount,
      ]);
    });
    ctx.send("t.notify", { account: input.account, amount: input.amount });
    return { balance };
  },
});

const notify = defineActor({
  name: "t.notify",
  input: z.object({ account: z.string(), amount: z.number().int() }),
  key: (i) => `notify:${i.account}`,
  handler: (input, ctx) => {
    ctx.effect(async (tx) => {
      await tx.query("INSERT INTO t_notices (account, amount) VALUES ($1, $2)", [
        input.account,
        input.amount,
      ]);
    });
  },
});

async function setup(world: TestWorld): Promise<void> {
  await world.db.query("CREATE TABLE t_ledger (job_id text, account text, amount int)");
  await world.db.query("CREATE TABLE t_notices (account text, amount int)");
}

async function ledger(world: TestWorld): Promise<unknown> {
  return {
    ledger: await world.db.query(
      "SELECT account, amount FROM t_ledger ORDER BY account, amount",
    ),
    notices: await world.db.query(
      "SELECT account, amount FROM t_notices ORDER BY account, amount",
    ),
  };
}

const inputs = [
  { actor: "t.deposit", input: { account: "a", amount: 5 } },
  { actor: "t.deposit", input: { account: "a", amount: 7 } },
  { actor: "t.deposit", input: { account: "b", amount: 1 } },
];

/** The faults that make a handler run more than once. */
const RERUNS = [
  "deliverTwice",
  "crashBeforeCommit",
  "crashAfterCommit",
  "loseLeaseMidHandler",
] as const satisfies readonly FaultName[];

async function caughtBy(run: () => Promise<unknown>): Promise<FaultName[]> {
  try {
    await run();
  } catch (err) {
    if (err instanceof EffectivelyOnceError) return err.failures.map((f) => f.fault).sort();
    throw err;
  }
  return [];
}

/**
 * The faults that catch an actor `name` of `shape` (key, order) that counts its runs outside the
 * transaction, as an external system (a mailer, a metrics counter) would be asked once a run.
 */
async function caughtCounting(
  name: string,
  shape: { key?: (i: z.infer<typeof depositInput>) => string; ordered?: boolean },
  sends: typeof inputs,
): Promise<FaultName[]> {
  let sent = 0;
  const counting = defineActor({
    name,
    input: depositInput,
    ...shape,
    handler: () => {
      sent++;
    },
  });
  return await caughtBy(() =>
    assertEffectivelyOnce({
      actors: [counting],
      setup: () => sent = 0,
      inputs: sends,
      effectsOf: () => sent,
    })
  );
}

Deno.test({
  name: "assertEffectivelyOnce() passes an actor that writes only through ctx",
  async fn() {
    const outcome = await assertEffectivelyOnce({
      actors: [deposit, notify],
      setup,
      inputs,
      effectsOf: ledger,
      faults: "all",
    });
    assert.deepEqual(outcome, {
      effects: {
        ledger: [{ account: "a", amount: 5 }, { account: "a", amount: 7 }, {
          account: "b",
          amount: 1,
        }],
        notices: [{ account: "a", amount: 5 }, { account: "a", amount: 7 }, {
          account: "b",
          amount: 1,
        }],
      },
      states: { "account:a": { balance: 12 }, "account:b": { balance: 1 } },
      statuses: ["succeeded", "succeeded", "succeeded"],
    });
  },
});

Deno.test({
  name: "assertEffectivelyOnce() drives its faults through an unordered actor's instance lease",
  async fn() {
    // The same notices, sent by an actor with no order per key: the faults that take the
    // lease away take the instance lease of the worker that ran it.
    const loose = defineActor({
      name: "t.notify",
      input: z.object({ account: z.string(), amount: z.number().int() }),
      ordered: false,
      handler: (input, ctx) => {
        ctx.insert("t_notices", { account: input.account, amount: input.amount });
      },
    });
    const outcome = await assertEffectivelyOnce({
      actors: [loose],
      setup,
      inputs: inputs.map(({ input }) => ({ actor: "t.notify", input })),
      effectsOf: async (world) => (await ledger(world) as { notices: unknown }).notices,
      faults: "all",
    });
    assert.deepEqual(outcome.effects, [
      { account: "a", amount: 5 },
      { account: "a", amount: 7 },
      { account: "b", amount: 1 },
    ]);
    const caught = await caughtCounting(
      "t.notify",
      { ordered: false },
      inputs.map(({ input }) => ({ actor: "t.notify", input })),
    );
    assert.deepEqual(caught, [...RERUNS].sort());
  },
});

Deno.test({
  name: "assertEffectivelyOnce() catches a counter kept outside the transaction",
  async fn() {
    const caught = await caughtCounting(
      "t.deposit",
      { key: (i) => `account:${i.account}` },
      inputs,
    );
    assert.deepEqual(caught, [...RERUNS].sort());
  },
});

Deno.test({
  name: "assertEffectivelyOnce() catches an insert made outside ctx.effect()",
  async fn() {
    const direct = (db: SqlDatabase) => [
      defineActor({
        name: "t.deposit",
        input: depositInput,
        key: (i) => `account:${i.account}`,
        handler: async (input, ctx) => {
          await db.query("INSERT INTO t_ledger (job_id, account, amount) VALUES ($1, $2, $3)", [
            ctx.jobId,
            input.account,
            input.amount,
          ]);
        },
      }),
    ];
    const caught = await caughtBy(() =>
      assertEffectivelyOnce({
        actors: direct,
        setup,
        inputs,
        effectsOf: (world) => world.db.query("SELECT count(*)::int AS n FROM t_ledger"),
        faults: ["deliverTwice", "crashAfterCommit", "deliverConcurrently"],
      })
    );
    assert.deepEqual(caught, ["crashAfterCommit", "deliverTwice"]);
  },
});

Deno.test({
  name: "assertEffectivelyOnce() catches an outcome that depends on order with delay and reorder",
  async fn() {
    // Keeps the last amount: correct once per message, but the order of messages shows.
    const last = defineActor({
      name: "t.deposit",
      input: depositInput,
      key: (i) => `account:${i.account}`,
      initialState: () => ({ last: 0 }),
      handler: (input, ctx) => ctx.setState({ last: input.amount }),
    });
    const caught = await caughtBy(() =>
      assertEffectivelyOnce({
        actors: [last],
        inputs,
        faults: ["deliverTwice", "delay", "reorder"],
      })
    );
    assert.deepEqual(caught, ["delay", "reorder"]);
  },
});

/** A world with `deposit` whose handler runs are counted. */
async function countedWorld(): Promise<{ world: TestWorld; runs: string[] }> {
  const runs: string[] = [];
  const counted = {
    ...deposit,
    handler: (input: z.infer<typeof depositInput>, ctx: Parameters<typeof deposit.handler>[1]) => {
      runs.push(`${input.account}${input.amount}`);
      return deposit.handler(input, ctx);
    },
  };
  const world = await testWorld({ actors: [counted, notify] });
  await setup(world);
  return { world, runs };
}

async function rows(db: SqlDatabase, jobId: string): Promise<number> {
  const [r] = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM t_ledger WHERE job_id = $1",
    [jobId],
  );
  return r!.n;
}

Deno.test({
  name: "faults run the handler twice and the runtime commits it once",
  async fn() {
    const { world, runs } = await countedWorld();
    try {
      for (const fault of RERUNS) {
        runs.length = 0;
        const id = await world.send(deposit, { account: fault, amount: 1 });
        await world.faults[fault](id);
        assert.equal(runs.length, 2, `${fault}: the handler ran twice`);
        assert.equal(await rows(world.db, id), 1, `${fault}: one effect`);
        assert.deepEqual(await world.state(`account:${fault}`), { balance: 1 }, fault);
        assert.equal((await world.job(id)).status, "succeeded", fault);
      }
      const [lost] = await world.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM troupe_jobs WHERE lease_losses > 0",
      );
      // The crashes and the lost lease went through the reaper, which counted them.
      assert.equal(lost!.n, 3);
      runs.length = 0;
      const id = await world.send(deposit, { account: "c", amount: 2 });
      await world.faults.deliverConcurrently(id, 5);
      assert.equal(runs.length, 1, "concurrent deliveries: one handler ran");
      assert.equal(await rows(world.db, id), 1);
      await assert.rejects(() => world.faults.deliverTwice(id), /is succeeded/);
      await world.settle();
      const [notices] = await world.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM t_notices",
      );
      assert.equal(notices!.n, RERUNS.length + 1, "each message sent once");
    } finally {
      await world.close();
    }
  },
});

Deno.test({
  name: "delay() and reorder() change the order messages of one key run in",
  async fn() {
    const { world, runs } = await countedWorld();
    try {
      const a = await world.send(deposit, { account: "a", amount: 1 });
      await world.send(deposit, { account: "a", amount: 2 });
      await world.send(deposit, { account: "a", amount: 3 });
      await world.faults.delay(a, 60_000);
      await world.settle();
      assert.deepEqual(runs, ["a2", "a3", "a1"]);
      runs.length = 0;
      const ids = [];
      for (const amount of [4, 5, 6]) {
        ids.push(await world.send(deposit, { account: "b", amount }));
      }
      await world.faults.reorder(ids.toReversed());
      assert.deepEqual(runs, ["b6", "b5", "b4"]);
      assert.deepEqual(await world.state("account:b"), { balance: 15 });
    } finally {
      await world.close();
    }
  },
});

Deno.test({
  name: "settle() skips time forward over a retry's backoff",
  async fn() {
    let attempts = 0;
    const flaky = defineActor({
      name: "t.flaky",
      input: z.object({}),
      backoff: { baseMs: 600_000, maxMs: 600_000, jitter: 0 },
      handler: () => {
        if (++attempts < 3) throw new Error("upstream down");
        return "ok";
      },
    });
    const world = await testWorld({ actors: [flaky] });
    try {
      const id = await world.send(flaky, {});
      // Two backoffs of 10 minutes each: settle() gives up after 20 s unless it skips them.
      await world.settle();
      const job = await world.job(id);
      assert.equal(job.status, "succeeded");
      assert.equal(job.attempts, 3);
    } finally {
      await world.close();
    }
  },
});
