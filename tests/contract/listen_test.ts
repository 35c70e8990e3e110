/**
 * `SqlDatabase.listen`: listeners of one channel each hear every notification until they stop;
 * on the pooled drivers every listen shares one connection outside the pool, its shared advisory
 * locks held once a listener, so that the pool's connections all run statements.
 */
import assert from "node:assert/strict";
import { jsonLogger, Runtime, type SqlDatabase, TableQueueTransport } from "@troupe/runtime";
import { openPostgres } from "@troupe/runtime/postgres";
import { settle, waitFor } from "../harness.ts";
import { startTcpProxy } from "../fixtures/tcp_proxy.ts";
import { contractSuite, echoActor, echoThrice, untilAborted } from "./suite.ts";

async function notify(db: SqlDatabase, channel: string, payload: string): Promise<void> {
  await db.query("SELECT pg_notify($1, $2)", [channel, payload]);
}

/** Whether another session can take the advisory lock `(a, b)` exclusively now. */
async function lockFree(db: SqlDatabase, a: number, b: number): Promise<boolean> {
  return await db.transaction(async (tx) => {
    const [row] = await tx.query<{ free: boolean }>(
      "SELECT pg_try_advisory_xact_lock($1, $2) AS free",
      [a, b],
    );
    return row!.free;
  });
}

contractSuite("listen", {
  "each listener of a channel hears every notification until it stops": async ({ db }) => {
    const a: string[] = [];
    const b: string[] = [];
    const toA = (p: string) => a.push(p);
    // The same function twice: two listeners, each stopped on its own.
    const stopA1 = await db.listen("listen_t1", toA);
    const stopA2 = await db.listen("listen_t1", toA);
    const stopB = await db.listen("listen_t1", (p) => b.push(p));
    const other: string[] = [];
    const stopOther = await db.listen("listen_t1_other", (p) => other.push(p));
    try {
      await notify(db, "listen_t1", "x");
      await waitFor(() => a.length === 2 && b.length === 1, { what: "x heard three times" });
      assert.deepEqual(a, ["x", "x"]);
      await stopA1();
      await stopA1(); // a second stop does nothing
      await notify(db, "listen_t1", "y");
      await waitFor(() => b.length === 2, { what: "y heard by b" });
      await notify(db, "listen_t1_other", "z");
      await waitFor(() => other.length === 1, { what: "z heard on the other channel" });
      assert.deepEqual(a, ["x", "x", "y"]);
      assert.deepEqual(b, ["x", "y"]);
      assert.deepEqual(other, ["z"]);
      await stopA2();
      await stopB();
      await stopOther();
      // The channel is listened to again after every listener stopped.
      const c: string[] = [];
      const stopC = await db.listen("listen_t1", (p) => c.push(p));
      await notify(db, "listen_t1", "w");
      await waitFor(() => c.length >= 1, { what: "w heard by a new listener" });
      // Once each: notifications come in order, so a second w would be in before v.
      await notify(db, "listen_t1", "v");
      await waitFor(() => c.includes("v"), { what: "v heard" });
      assert.deepEqual(c, ["w", "v"]);
      await stopC();
      assert.deepEqual(a, ["x", "x", "y"]);
      assert.deepEqual(b, ["x", "y"]);
    } finally {
      await stopOther();
    }
  },
});

contractSuite("listen", {
  "a shared lock is held while any listener that asked for it listens": async ({ db }) => {
    assert.ok(db.listenLocks);
    const stop1 = await db.listen("listen_t2", () => {}, { sharedLock: [7101, 1] });
    const stop2 = await db.listen("listen_t2b", () => {}, { sharedLock: [7101, 1] });
    assert.equal(await lockFree(db, 7101, 1), false);
    await stop1();
    assert.equal(await lockFree(db, 7101, 1), false, "the second listener still holds it");
    await stop2();
    assert.equal(await lockFree(db, 7101, 1), true);
  },
}, { only: ["postgres", "neon"] });

contractSuite("listen", {
  "a runtime runs on a pool of one connection (its listeners on one of their own)": async (
    { url },
  ) => {
    const db = openPostgres(url!, { max: 1, idleTimeoutMs: 0 });
    try {
      await echoThrice(db, "listen.echo");
    } finally {
      await db.close();
    }
  },
}, { only: ["postgres"] });

/** The pid of the one session holding the advisory lock `(a, b)` shared (a listener's). */
async function lockHolder(db: SqlDatabase, a: number, b: number): Promise<number> {
  const rows = await db.query<{ pid: number }>(
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2
       AND mode = 'ShareLock' AND granted`,
    [a, b],
  );
  assert.equal(rows.length, 1, "one session holds the lock");
  return rows[0]!.pid;
}

/** Ends the session a runtime listens on (the only one whose last statement was a LISTEN). */
async function killListener(db: SqlDatabase): Promise<void> {
  const [row] = await db.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database()
     AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid() LIMIT 1`,
  );
  await db.query("SELECT pg_terminate_backend($1)", [row!.pid]);
}

contractSuite("listen", {
  "a lost listening session is replaced: its listeners hear again, hold their locks, are told":
    async ({ db }) => {
      const a: string[] = [];
      const b: string[] = [];
      let resumedA = 0;
      let resumedB = 0;
      const stopA = await db.listen("listen_t3", (p) => a.push(p), {
        sharedLock: [7102, 1],
        onResume: () => resumedA++,
      });
      const stopB = await db.listen("listen_t3b", (p) => b.push(p), {
        onResume: () => resumedB++,
      });
      let stopC: (() => Promise<void>) | undefined;
      try {
        const pid = await lockHolder(db, 7102, 1);
        await db.query("SELECT pg_terminate_backend($1)", [pid]);
        // A listener that stops while the session is replaced is not listened to again.
        const stopGone = await db.listen("listen_t3c", () => {}).catch(() => null);
        await stopGone?.();
        await waitFor(() => resumedA === 1 && resumedB === 1, { what: "both told of the gap" });
        assert.notEqual(await lockHolder(db, 7102, 1), pid, "a new session holds the lock");
        await notify(db, "listen_t3", "x");
        await notify(db, "listen_t3b", "y");
        await waitFor(() => a.length === 1 && b.length === 1, { what: "x and y heard" });
        assert.deepEqual([a, b], [["x"], ["y"]]);
        // A listener that joins afterwards is heard on the same session, and not told.
        const c: string[] = [];
        stopC = await db.listen("listen_t3", (p) => c.push(p));
        await notify(db, "listen_t3", "z");
        await waitFor(() => c.length === 1 && a.length === 2, { what: "z heard twice" });
        assert.deepEqual([resumedA, resumedB], [1, 1]);
      } finally {
        await stopA();
        await stopB();
        await stopC?.();
      }
      assert.equal(await lockFree(db, 7102, 1), true, "the lock is given back with the last");
      const gone = await db.query(
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND state = 'idle' AND pid <> pg_backend_pid()",
      );
      assert.equal(gone.length, 0, "no session is left listening");
    },

  "a job enqueued while the listening session is replaced runs without waiting for the poll":
    async ({ db }) => {
      const echo = echoActor("listen.resume");
      // A poll far longer than the test: only a notification or a wake-up runs the job.
      const rt = new Runtime({
        db,
        actors: [echo],
        transport: new TableQueueTransport(db, { pollMs: 600_000 }),
        logger: jsonLogger("silent"),
      });
      // Another instance enqueues (an API that runs no jobs): only its NOTIFY tells `rt`.
      const producer = new Runtime({
        db,
        actors: [echo],
        transport: new TableQueueTransport(db),
        logger: jsonLogger("silent"),
      });
      try {
        await rt.start();
        const first = await producer.enqueue(echo, { n: 1 });
        assert.equal((await settle(rt, first.job.id, 5000)).status, "succeeded");
        await killListener(db);
        // Its NOTIFY goes to no one: the session that listened is gone, the next not there yet.
        const second = await producer.enqueue(echo, { n: 2 });
        assert.equal((await settle(rt, second.job.id, 10_000)).status, "succeeded");
      } finally {
        await rt.stop(2000);
      }
    },
}, { only: ["postgres", "neon"] });

contractSuite("listen", {
  "a cancel asked while the listening session is replaced reaches the running handler": async (
    { db, runtime },
  ) => {
    const wait = untilAborted("listen.cancel");
    // A heartbeat every 20 s: only the cancel channel, or its resume, aborts the handler here.
    const worker = await runtime([wait], { leaseMs: 60_000 });
    const api = await runtime([wait], { start: false });
    const { job } = await api.enqueue(wait, {});
    await waitFor(async () => (await api.getJob(job.id)).status === "running");
    await killListener(db);
    // Its NOTIFY goes to no one: the session that listened is gone, the next not there yet.
    await api.cancel(job.id);
    const done = await settle(worker, job.id, 5000);
    assert.equal(done.status, "cancelled");
  },
}, { only: ["postgres", "neon"] });

contractSuite("listen", {
  "a listening connection that stops answering without being closed is replaced": async (
    { db, url },
  ) => {
    const target = new URL(url!);
    const proxy = startTcpProxy({ hostname: target.hostname, port: Number(target.port || 5432) });
    const through = new URL(url!);
    through.host = `127.0.0.1:${proxy.port}`;
    const proxied = openPostgres(through.href, { idleTimeoutMs: 0, listenCheckMs: 200 });
    const heard: string[] = [];
    let resumed = 0;
    try {
      const stop = await proxied.listen("listen_t5", (p) => heard.push(p), {
        onResume: () => resumed++,
      });
      // Notified from the suite's own connection: the proxy carries only the listener.
      await notify(db, "listen_t5", "x");
      await waitFor(() => heard.length === 1, { what: "x heard" });
      proxy.freeze();
      await notify(db, "listen_t5", "unheard");
      await waitFor(() => resumed === 1, { what: "the listener told of the gap", timeoutMs: 5000 });
      await notify(db, "listen_t5", "y");
      await waitFor(() => heard.includes("y"), { what: "y heard on the new connection" });
      assert.deepEqual(heard, ["x", "y"]);
      assert.equal(resumed, 1);
      await stop();
    } finally {
      await proxied.close();
      await proxy.close();
    }
  },
}, { only: ["postgres"] });
