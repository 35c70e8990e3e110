/**
 * The order lease rows are locked in, on PostgreSQL and Neon (PGlite has one connection): a
 * claim takes its keys' leases in the keys' byte order and keeps the row of a key whose lease
 * it found held (`ON CONFLICT ... DO UPDATE ... WHERE` locks the row it does not update); the
 * commit, the heartbeat's renewal and the release of leases take their rows in the same order,
 * so none of them waits on a claim that waits on it.
 */
import assert from "node:assert/strict";
import type { SqlExecutor } from "@troupe/runtime";
import { claimJobs, extendLeases, releaseLeases } from "../../actors/runtime/sql/claim_jobs.ts";
import { completeJobs } from "../../actors/runtime/sql/complete_jobs.ts";
import { PUBLIC_TABLES } from "../../actors/runtime/sql/tables.ts";
import { waitFor } from "../harness.ts";
import { contractSuite, succeeded } from "./suite.ts";

/** The lease upsert of a claim (claim_jobs.ts `leaseAndRun`) for one key, as another worker. */
const LOSING_CLAIM =
  `INSERT INTO troupe_actor_state AS s (key, actor, fence, lease_owner, lease_until)
  VALUES ($1, 'lock.work', 1, 'w-lock-other', now() + interval '30 seconds')
  ON CONFLICT (key) DO UPDATE SET fence = s.fence + 1, lease_owner = EXCLUDED.lease_owner,
    lease_until = EXCLUDED.lease_until
  WHERE s.lease_until IS NULL OR s.lease_until <= now()
  RETURNING s.key`;

/** Sessions of this database waiting on a lock held by another transaction. */
async function waitingOnLocks(db: SqlExecutor): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return row!.n;
}

contractSuite("lock order", {
  "a commit whose chains ended out of key order meets a claim that lost a key's race": async (
    { db },
  ) => {
    await db.query(
      `INSERT INTO troupe_jobs (id, actor, key, input, max_attempts)
       VALUES ('lock1-a', 'lock.work', 'lock1:a', '{}', 3),
              ('lock1-b', 'lock.work', 'lock1:b', '{}', 3)`,
    );
    const claimed = await claimJobs(db, PUBLIC_TABLES, {
      actors: ["lock.work"],
      limit: 10,
      workerId: "w-lock1",
      leaseMs: 30_000,
    });
    assert.deepEqual(claimed.map((j) => j.key), ["lock1:a", "lock1:b"]);
    // The chain of lock1:b ended first: its completion comes first.
    const completions = [...claimed].reverse().map((j) => succeeded(j));
    let commit: Promise<string> | null = null;
    // Another worker's claim: it found lock1:a held (the row stays locked) and goes on to
    // lock1:b once the commit waits on lock1:a.
    const claim = db.transaction(async (tx) => {
      assert.deepEqual(await tx.query(LOSING_CLAIM, ["lock1:a"]), []);
      commit = db.transaction((c) =>
        completeJobs(c, PUBLIC_TABLES, "w-lock1", completions, {
          writes: { outbox: false, notify: false },
          hook: () => null,
          allValid: "throw",
        })
      ).then(() => "committed", (err) => String(err));
      await waitFor(async () => await waitingOnLocks(db) > 0, {
        what: "the commit to wait on the claim's lock",
      });
      return await tx.query(LOSING_CLAIM, ["lock1:b"]);
    });
    // Neither fails as a deadlock; the claim took nothing, the commit released both leases.
    assert.deepEqual(await claim, []);
    assert.equal(await commit, "committed");
    assert.deepEqual(
      await db.query(
        `SELECT key, lease_owner FROM troupe_actor_state WHERE key LIKE 'lock1:%' ORDER BY key`,
      ),
      [{ key: "lock1:a", lease_owner: null }, { key: "lock1:b", lease_owner: null }],
    );
    assert.deepEqual(
      await db.query("SELECT id, status FROM troupe_jobs WHERE actor = 'lock.work' ORDER BY id"),
      [{ id: "lock1-a", status: "succeeded" }, { id: "lock1-b", status: "succeeded" }],
    );
  },

  "the heartbeat's renewal and a release meet a claim that lost a key's race": async ({ db }) => {
    // The later key's row first in the table: a scan in table order meets it first.
    await db.query(
      `INSERT INTO troupe_actor_state (key, actor, fence, lease_owner, lease_until)
       VALUES ('lock2:b', 'lock.work', 1, 'w-lock2', now() + interval '30 seconds'),
              ('lock2:a', 'lock.work', 1, 'w-lock2', now() + interval '30 seconds')`,
    );
    const writes: Record<string, (c: SqlExecutor) => Promise<unknown>> = {
      renewal: (c) =>
        extendLeases(c, PUBLIC_TABLES, {
          workerId: "w-lock2",
          keys: ["lock2:b", "lock2:a"],
          leaseMs: 30_000,
        }),
      release: (c) =>
        releaseLeases(c, PUBLIC_TABLES, "w-lock2", [
          { key: "lock2:b", fence: 1 },
          { key: "lock2:a", fence: 1 },
        ]),
    };
    for (const [name, write] of Object.entries(writes)) {
      let written: Promise<string> | null = null;
      const claim = db.transaction(async (tx) => {
        assert.deepEqual(await tx.query(LOSING_CLAIM, ["lock2:a"]), []);
        written = db.transaction(write).then(() => "written", (err) => String(err));
        await waitFor(async () => await waitingOnLocks(db) > 0, {
          what: `the ${name} to wait on the claim's lock`,
        });
        return await tx.query(LOSING_CLAIM, ["lock2:b"]);
      });
      assert.deepEqual(await claim, [], name);
      assert.equal(await written, "written", name);
    }
    assert.deepEqual(
      await db.query(
        `SELECT key, lease_owner FROM troupe_actor_state WHERE key LIKE 'lock2:%' ORDER BY key`,
      ),
      [{ key: "lock2:a", lease_owner: null }, { key: "lock2:b", lease_owner: null }],
    );
  },
}, { only: ["postgres", "neon"] });
