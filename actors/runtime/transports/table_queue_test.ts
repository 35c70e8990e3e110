/**
 * The table queue's three parts: a notification of the jobs channel in the enqueue
 * transaction and no outbox row, a wake-up after the commit, and a claim loop as consumer.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "../define.ts";
import { openPglite } from "../drivers/pglite.ts";
import { migrateRuntime } from "../migrate.ts";
import { jsonLogger } from "../ports.ts";
import { Runtime } from "../runtime.ts";
import { PUBLIC_TABLES as T } from "../sql/tables.ts";
import type { Consumer, OutgoingMessage } from "../transport.ts";
import { TableQueueTransport } from "./table_queue.ts";

const noop = defineActor({ name: "tq.noop", input: z.object({}), handler: () => null });

/** A consumer that counts the claims the loop asks for and claims nothing. */
function counting(): Consumer & { pumps: number } {
  const c = {
    pumps: 0,
    pump: () => {
      c.pumps++;
      return Promise.resolve(0);
    },
    deliver: () => Promise.reject(new Error("the table queue never pushes")),
    giveUp: () => Promise.resolve("unknown" as const),
    freeSlots: () => 1,
  };
  return c;
}

const waitUntil = async (ok: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
};

Deno.test("table queue: the enqueue transaction notifies the jobs channel and writes no outbox row", async () => {
  const db = await openPglite();
  try {
    await migrateRuntime(db);
    const transport = new TableQueueTransport(db, { pollMs: 60_000 });
    assert.deepEqual(transport.inTransaction, { outbox: false, notify: true });
    const heard: string[] = [];
    const unlisten = await db.listen(T.jobsChannel, (p) => heard.push(p));
    // Not started: the notification comes from the transaction, not from a loop.
    const runtime = new Runtime({
      db,
      actors: [noop],
      transport,
      logger: jsonLogger("silent"),
    });
    await runtime.enqueue(noop, {});
    await waitUntil(() => heard.length > 0);
    const [outbox] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${T.outbox}`);
    assert.equal(outbox?.n, 0);
    assert.equal(await runtime.relayOutbox(), 0, "no outbox: nothing to relay");
    await unlisten();
  } finally {
    await db.close();
  }
});

Deno.test("table queue: afterCommit wakes the claim loop long before its poll interval", async () => {
  const db = await openPglite();
  try {
    const transport = new TableQueueTransport(db, { pollMs: 60_000 });
    const consumer = counting();
    await transport.start(consumer);
    await waitUntil(() => consumer.pumps === 1);
    const message: OutgoingMessage = {
      id: "j1",
      actor: "tq.noop",
      key: "k",
      runAt: new Date(),
      policy: noop.policy,
    };
    await transport.afterCommit([message]);
    await waitUntil(() => consumer.pumps === 2);
    await transport.stop();
    const after = consumer.pumps;
    transport.wake();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(consumer.pumps, after, "a stopped loop claims nothing");
  } finally {
    await db.close();
  }
});

Deno.test("table queue: a notification from another writer wakes the loop", async () => {
  const db = await openPglite();
  try {
    await migrateRuntime(db);
    const transport = new TableQueueTransport(db, { pollMs: 60_000 });
    const consumer = counting();
    await transport.start(consumer);
    await waitUntil(() => consumer.pumps === 1);
    await db.query(`SELECT pg_notify('${T.jobsChannel}', '')`);
    await waitUntil(() => consumer.pumps === 2);
    await transport.stop();
  } finally {
    await db.close();
  }
});
