/**
 * PGlite in the calling thread and in a worker of its own behave alike (rows, errors with
 * their SQLSTATE, transactions, COPY, LISTEN/NOTIFY, hold, close); the worker leaves the
 * calling thread's event loop free while a statement runs.
 */
import assert from "node:assert/strict";
import { openPglite, pgliteWorkerTraffic } from "@troupe/runtime/pglite";
import type { SqlDatabase } from "@troupe/runtime";
import { sqlState, storageFailure } from "./errors.ts";

const threads = ["main", "worker"] as const;

/** `fn` on a fresh PGlite in memory, in `thread`, with table `t`; closed after. */
async function withDb(
  thread: (typeof threads)[number],
  fn: (db: SqlDatabase) => Promise<void>,
): Promise<void> {
  const db = await openPglite(undefined, { thread });
  try {
    await db.query("CREATE TABLE t (id int PRIMARY KEY, doc jsonb, at timestamptz, raw bytea)");
    await fn(db);
  } finally {
    await db.close();
  }
}

for (const thread of threads) {
  Deno.test(`PGlite (${thread}): rows, parameters and errors with their SQLSTATE`, async () => {
    await withDb(thread, async (db) => {
      const at = new Date("2026-01-02T03:04:05.678Z");
      await db.query("INSERT INTO t VALUES ($1, $2, $3, $4)", [
        1,
        JSON.stringify({ a: [1, "x"] }),
        at,
        new Uint8Array([0, 255, 7]),
      ]);
      const [row] = await db.query<{ id: number; doc: unknown; at: Date; raw: Uint8Array }>(
        "SELECT * FROM t",
      );
      assert.deepEqual(row, { id: 1, doc: { a: [1, "x"] }, at, raw: new Uint8Array([0, 255, 7]) });

      const duplicate = await db.query("INSERT INTO t (id) VALUES (1)").catch((e) => e);
      assert.ok(duplicate instanceof Error);
      assert.equal(sqlState(duplicate), "23505");
      assert.match(duplicate.message, /duplicate key/);
      assert.equal((duplicate as { constraint?: string }).constraint, "t_pkey");
      const bad = await db.query("SELECT $1::int", ["nope"]).catch((e) => e);
      assert.equal(sqlState(bad), "22P02");
      assert.equal(storageFailure(bad), "bad_value");
    });
  });

  Deno.test(`PGlite (${thread}): a transaction commits, rolls back, and is exclusive`, async () => {
    await withDb(thread, async (db) => {
      await db.transaction(async (tx) => {
        await tx.query("INSERT INTO t (id) VALUES (1)");
      });
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query("INSERT INTO t (id) VALUES (2)");
          throw new Error("changed my mind");
        }),
        /changed my mind/,
      );
      // A failed statement fails its transaction with the database's error.
      const err = await db.transaction(async (tx) => {
        await tx.query("INSERT INTO t (id) VALUES (3)");
        await tx.query("INSERT INTO t (id) VALUES (1)");
      }).catch((e) => e);
      assert.equal(sqlState(err), "23505");
      assert.deepEqual(await db.query("SELECT id FROM t ORDER BY id"), [{ id: 1 }]);

      // A statement outside waits until the transaction ends, and sees what it committed.
      const order: string[] = [];
      let outside: Promise<unknown> | null = null;
      await db.transaction(async (tx) => {
        await tx.query("INSERT INTO t (id) VALUES (4)");
        outside = db.query<{ n: number }>("SELECT count(*)::int AS n FROM t").then((r) => {
          order.push("outside");
          return r;
        });
        await new Promise((r) => setTimeout(r, 50));
        await tx.query("INSERT INTO t (id) VALUES (5)");
        order.push("commit");
      });
      assert.deepEqual(await outside, [{ n: 3 }]);
      assert.deepEqual(order, ["commit", "outside"]);
    });
  });

  Deno.test(`PGlite (${thread}): COPY from text and from byte segments`, async () => {
    await withDb(thread, async (db) => {
      await db.copyIn!("t", ["id", "doc"], '1\t{"k": "a\\\\\\\\b"}\n2\t\\N\n');
      const enc = new TextEncoder();
      const shared = enc.encode("3\t[]\n4\t{}\n");
      await db.transaction(async (tx) => {
        await tx.copyIn!("t", ["id", "doc"], [shared.subarray(0, 5), shared.subarray(5)]);
      });
      // The caller's buffer is left as it was.
      assert.equal(new TextDecoder().decode(shared), "3\t[]\n4\t{}\n");
      assert.deepEqual(await db.query("SELECT id, doc FROM t ORDER BY id"), [
        { id: 1, doc: { k: "a\\b" } },
        { id: 2, doc: null },
        { id: 3, doc: [] },
        { id: 4, doc: {} },
      ]);
      const err = await db.copyIn!("t", ["id"], "x\n").catch((e) => e);
      assert.equal(sqlState(err), "22P02");
    });
  });

  Deno.test(`PGlite (${thread}): LISTEN delivers NOTIFY payloads until unsubscribed`, async () => {
    await withDb(thread, async (db) => {
      const got: string[] = [];
      const stop = await db.listen("ch", (p) => got.push(p));
      await db.query("SELECT pg_notify('ch', 'one')");
      await db.transaction(async (tx) => {
        await tx.query("NOTIFY ch, 'two'");
      });
      for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(got, ["one", "two"]);
      await stop();
      await db.query("SELECT pg_notify('ch', 'three')");
      await db.query("SELECT 1");
      assert.deepEqual(got, ["one", "two"]);
    });
  });

  Deno.test(`PGlite (${thread}): hold keeps statements out while it runs`, async () => {
    await withDb(thread, async (db) => {
      const order: string[] = [];
      let during: Promise<unknown> | null = null;
      const held = await db.hold!(async () => {
        during = db.query("INSERT INTO t (id) VALUES (1)").then(() => order.push("insert"));
        await new Promise((r) => setTimeout(r, 50));
        order.push("held");
        return "done";
      });
      await during;
      assert.equal(held, "done");
      assert.deepEqual(order, ["held", "insert"]);
    });
  });

  Deno.test(`PGlite (${thread}): a directory keeps its data; a closed database refuses calls`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-pglite-thread-" });
    try {
      const data = `${dir}/pglite`;
      let db = await openPglite(data, { thread });
      await db.query("CREATE TABLE kept (v text)");
      await db.query("INSERT INTO kept VALUES ('x')");
      await db.close();
      await assert.rejects(() => Deno.stat(`${data}.lock`), Deno.errors.NotFound);
      const err = await db.query("SELECT 1").catch((e) => e);
      assert.equal(storageFailure(err), "database_unavailable");

      db = await openPglite(data, { thread });
      assert.deepEqual(await db.query("SELECT v FROM kept"), [{ v: "x" }]);
      await db.close();
      await db.close(); // twice is harmless
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("PGlite in a worker leaves the event loop free while a statement runs", async () => {
  await withDb("worker", async (db) => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    let rows: unknown;
    try {
      // Long enough for the timer to fire several times if the loop is free.
      rows = await db.query(
        "SELECT count(*)::int AS n FROM generate_series(1, 3000000) a, generate_series(1, 2) b",
      );
    } finally {
      clearInterval(timer);
    }
    assert.deepEqual(rows, [{ n: 6_000_000 }]);
    assert.ok(ticks >= 3, `the event loop ran ${ticks} timer ticks during the statement`);
  });
});

Deno.test("PGlite in a worker: statements made together go in one message, each answered on its own", async () => {
  await withDb("worker", async (db) => {
    const before = pgliteWorkerTraffic();
    const enc = new TextEncoder();
    // 64 statements, one of them failing, and two COPYs whose buffers move with the message.
    const calls: Promise<unknown>[] = Array.from(
      { length: 64 },
      (_, i) => db.query("SELECT $1::int AS v", [i]),
    );
    const bad = db.query("SELECT $1::int", ["nope"]).catch((e) => e);
    const copies = [
      db.copyIn!("t", ["id"], enc.encode("1\n2\n")),
      db.copyIn!("t", ["id"], [enc.encode("3\n"), enc.encode("4\n")]),
    ];
    const rows = await Promise.all(calls);
    await Promise.all(copies);
    const after = pgliteWorkerTraffic();
    assert.deepEqual(rows, Array.from({ length: 64 }, (_, i) => [{ v: i }]));
    assert.equal(sqlState(await bad), "22P02");
    assert.equal(after.statements - before.statements, 67);
    assert.equal(after.sent - before.sent, 1, "one message to the worker");
    // Answers come back as they are ready (before the next statement runs), errors and all.
    assert.ok(after.received - before.received <= 67);
    assert.deepEqual(await db.query("SELECT id FROM t ORDER BY id"), [
      { id: 1 },
      { id: 2 },
      { id: 3 },
      { id: 4 },
    ]);
  });
});

Deno.test("PGlite in a worker: a transaction's statement is answered while one outside waits behind it", async () => {
  await withDb("worker", async (db) => {
    const order: string[] = [];
    let outside: Promise<unknown> | null = null;
    await db.transaction(async (tx) => {
      // Both in one message: the outside statement waits for the transaction, which waits for
      // this answer.
      const first = tx.query("INSERT INTO t VALUES (1)");
      outside = db.query("SELECT count(*)::int AS n FROM t").then((r) => {
        order.push("outside");
        return r;
      });
      await first;
      await tx.query("INSERT INTO t VALUES (2)");
      order.push("last statement");
    });
    assert.deepEqual(await outside, [{ n: 2 }]);
    assert.deepEqual(order, ["last statement", "outside"]);
  });
});

for (const thread of threads) {
  Deno.test(`PGlite (${thread}): a statement's notifications are heard before its caller resumes`, async () => {
    await withDb(thread, async (db) => {
      const got: string[] = [];
      const stop = await db.listen("ch", (p) => got.push(p));
      try {
        await db.query("SELECT pg_notify('ch', 'one'), pg_notify('ch', 'two')");
        assert.deepEqual(got, ["one", "two"]);
        await db.transaction(async (tx) => {
          await tx.query("NOTIFY ch, 'three'");
        });
        assert.deepEqual(got, ["one", "two", "three"]);
      } finally {
        await stop();
      }
    });
  });
}

Deno.test("PGlite in a worker: an answer is not held behind a long statement queued after it", async () => {
  await withDb("worker", async (db) => {
    const t0 = performance.now();
    let quickAt = 0;
    let longAt = 0;
    await Promise.all([
      db.query("SELECT 1").then(() => quickAt = performance.now() - t0),
      db.query(
        "SELECT count(*) FROM generate_series(1, 3000000) a, generate_series(1, 2) b",
      ).then(() => longAt = performance.now() - t0),
    ]);
    assert.ok(quickAt < longAt / 2, `the quick answer at ${quickAt} ms, the long one ${longAt} ms`);
  });
});
