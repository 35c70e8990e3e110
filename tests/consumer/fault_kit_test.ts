/**
 * A user's own actor proven effectively-once with the package's fault kit, imported by name
 * (`@troupe/runtime/testing`) as a user's project would: the kit's in-memory world brings the
 * runtime's tables and the user's own migration set.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor, type MigrationSet, type SqlDatabase } from "@troupe/runtime";
import { assertEffectivelyOnce, EffectivelyOnceError, testWorld } from "@troupe/runtime/testing";

/** The user's tables, as a migration set of their own. */
const bank: MigrationSet = {
  name: "bank",
  load: () =>
    Promise.resolve([{
      tag: "0000_ledger",
      sql: "CREATE TABLE ledger (account text, amount int)",
    }]),
};

const deposit = defineActor({
  name: "bank.deposit",
  input: z.object({ account: z.string(), amount: z.number().int() }),
  key: (i) => `account:${i.account}`,
  initialState: () => ({ balance: 0 }),
  handler: (input, ctx) => {
    ctx.setState({ balance: ctx.state.balance + input.amount });
    ctx.effect(async (tx) => {
      await tx.query("INSERT INTO ledger VALUES ($1, $2)", [input.account, input.amount]);
    });
  },
});

Deno.test(
  { name: "a user's deposit actor is effectively-once under every fault" },
  async () => {
    const outcome = await assertEffectivelyOnce({
      actors: [deposit],
      migrations: [bank],
      inputs: [5, 7].map((amount) => ({ actor: deposit, input: { account: "a", amount } })),
      effectsOf: (world) => world.db.query("SELECT account, amount FROM ledger ORDER BY amount"),
    });
    assert.deepEqual(outcome, {
      effects: [{ account: "a", amount: 5 }, { account: "a", amount: 7 }],
      states: { "account:a": { balance: 12 } },
      statuses: ["succeeded", "succeeded"],
    });
  },
);

Deno.test(
  { name: "the kit catches a user's actor that writes outside ctx.effect()" },
  async () => {
    // Writes on its own connection, outside the transaction that commits the message once.
    const careless = (db: SqlDatabase) => [
      defineActor({
        name: "bank.careless",
        input: z.object({ amount: z.number().int() }),
        handler: async (input) => {
          await db.query("INSERT INTO ledger VALUES ('b', $1)", [input.amount]);
        },
      }),
    ];
    const error = await assertEffectivelyOnce({
      actors: careless,
      migrations: [bank],
      inputs: [{ actor: "bank.careless", input: { amount: 1 } }],
      effectsOf: (world) => world.db.query("SELECT amount FROM ledger"),
      faults: ["deliverTwice", "crashAfterCommit"],
    }).then(() => null, (err: unknown) => err);
    assert.ok(error instanceof EffectivelyOnceError, String(error));
    assert.deepEqual(error.failures.map((f) => f.fault), ["deliverTwice", "crashAfterCommit"]);
  },
);

Deno.test(
  { name: "the in-memory world runs a user's actor through a crash after commit" },
  async () => {
    const world = await testWorld({ actors: [deposit], migrations: [bank] });
    try {
      const jobId = await world.send(deposit, { account: "c", amount: 3 });
      await world.faults.crashAfterCommit(jobId);
      await world.settle();
      assert.equal((await world.job(jobId)).status, "succeeded");
      assert.deepEqual(await world.state("account:c"), { balance: 3 });
      assert.deepEqual(await world.db.query("SELECT amount FROM ledger"), [{ amount: 3 }]);
    } finally {
      await world.close();
    }
  },
);
