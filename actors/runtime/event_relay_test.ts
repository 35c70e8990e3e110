/**
 * The job event relay sends its NOTIFYs only while some instance watches: on a shared database
 * another instance's watcher (its own pool, its own listening session) makes the sender notify,
 * and none makes it send nothing; on an embedded PGlite every watcher is in this process. A
 * plain `LISTEN` on the channel, which registers no watcher, is how the tests see what is sent.
 */
import assert from "node:assert/strict";
import { openPglite } from "./drivers/pglite.ts";
import { openPostgres } from "./drivers/postgres.ts";
import { JobEventRelay, watcherLock } from "./event_relay.ts";
import { jsonLogger, type SqlDatabase } from "./ports.ts";

const PG_URL = Deno.env.get("TEST_PG_URL_DB") ?? "postgres://postgres@127.0.0.1:5432/test";
const log = jsonLogger("silent");
/** The probe's own payload, never a job id. */
const MARK = "~mark";

/** Waits (bounded) until `check()` holds. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(check(), `timed out waiting for ${what}`);
}

/** What a plain LISTEN on `channel` hears, after a round trip that lets late ones in. */
async function probe(db: SqlDatabase, channel: string) {
  const heard: string[] = [];
  const stop = await db.listen(channel, (p) => heard.push(p));
  return {
    heard,
    /** Everything sent before this call has arrived: a notification of its own came after. */
    async settle() {
      await db.query("SELECT pg_notify($1, $2)", [channel, MARK]);
      await until(() => heard.includes(MARK), "the probe's mark");
      heard.splice(heard.indexOf(MARK), 1);
    },
    stop,
  };
}

Deno.test("event relay (postgres): notifies only while another instance watches", async () => {
  const channel = `troupe_events_test_${crypto.randomUUID().replaceAll("-", "")}`;
  const sender = openPostgres(PG_URL, { max: 2, idleTimeoutMs: 0 });
  const watcher = openPostgres(PG_URL, { max: 2, idleTimeoutMs: 0 });
  const plain = openPostgres(PG_URL, { max: 2, idleTimeoutMs: 0 });
  const out = new JobEventRelay(sender, channel, log, 10);
  const other = new JobEventRelay(watcher, channel, log, 10);
  const p = await probe(plain, channel);
  try {
    out.startPublishing();
    out.changed("a");
    await out.flush();
    await p.settle();
    assert.deepEqual(p.heard, [], "nobody watches: nothing sent");

    const seen: string[] = [];
    const unwatch = await other.watch((id) => id !== MARK && seen.push(id));
    out.changed("b");
    out.changed("c");
    await out.flush();
    await until(() => seen.length === 2, "the other instance's watcher");
    assert.deepEqual(seen, ["b", "c"]);
    await p.settle();
    assert.deepEqual(p.heard, ["b,c"]);

    unwatch();
    await other.unwatched();
    p.heard.length = 0;
    out.changed("d");
    await out.flush();
    await p.settle();
    assert.deepEqual(p.heard, [], "the last watcher left: nothing sent");
    assert.deepEqual(seen, ["b", "c"]);
  } finally {
    await out.stopPublishing();
    await p.stop();
    await Promise.all([sender.close(), watcher.close(), plain.close()]);
  }
});

Deno.test("event relay (postgres): a watcher whose connection ends stops the notifications", async () => {
  const channel = `troupe_events_test_${crypto.randomUUID().replaceAll("-", "")}`;
  const sender = openPostgres(PG_URL, { max: 2, idleTimeoutMs: 0 });
  const watcher = openPostgres(PG_URL, { max: 2, idleTimeoutMs: 0 });
  const plain = openPostgres(PG_URL, { max: 2, idleTimeoutMs: 0 });
  const out = new JobEventRelay(sender, channel, log, 10);
  const other = new JobEventRelay(watcher, channel, log, 10);
  const p = await probe(plain, channel);
  try {
    out.startPublishing();
    const unwatch = await other.watch(() => {});
    out.changed("a");
    await out.flush();
    await p.settle();
    assert.deepEqual(p.heard, ["a"]);
    // The watching instance dies: its listening session ends without a word.
    const [classId, key] = watcherLock(channel);
    const [killed] = await plain.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_locks
        WHERE locktype = 'advisory' AND classid = ($1::int)::oid AND objid = ($2::bigint & 4294967295)::oid
          AND objsubid = 2 AND mode = 'ShareLock' AND granted`,
      [classId, key],
    );
    assert.ok(killed!.n >= 1, "the watcher's session was found");
    p.heard.length = 0;
    let sent = true;
    for (let i = 0; i < 100 && sent; i++) {
      out.changed(`x${i}`);
      await out.flush();
      await p.settle();
      sent = p.heard.length > 0;
      p.heard.length = 0;
    }
    assert.equal(sent, false, "no NOTIFY once the watcher's session is gone");
    unwatch();
    await other.unwatched();
  } finally {
    await out.stopPublishing();
    await p.stop();
    await Promise.all([sender.close(), watcher.close(), plain.close()]);
  }
});

Deno.test("event relay (pglite): notifies only while a watcher of this process listens", async () => {
  const db = await openPglite();
  const channel = "troupe_job_events_test";
  const a = new JobEventRelay(db, channel, log, 10);
  const b = new JobEventRelay(db, channel, log, 10);
  const p = await probe(db, channel);
  try {
    a.startPublishing();
    a.changed("a");
    await a.flush();
    await p.settle();
    assert.deepEqual(p.heard, [], "nobody watches: nothing sent");

    const seen: string[] = [];
    const unwatch = await b.watch((id) => id !== MARK && seen.push(id));
    a.changed("b");
    await a.flush();
    await until(() => seen.length === 1, "the watcher");
    assert.deepEqual(seen, ["b"]);

    unwatch();
    await b.unwatched();
    p.heard.length = 0;
    a.changed("c");
    await a.flush();
    await p.settle();
    assert.deepEqual(p.heard, [], "the last watcher left: nothing sent");
  } finally {
    await a.stopPublishing();
    await p.stop();
    await db.close();
  }
});
