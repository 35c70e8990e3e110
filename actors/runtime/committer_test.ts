/**
 * The committer alone, on an embedded database: completions made by hand for jobs claimed by
 * hand, no dispatcher or transport around it.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { migrate } from "../../db/migrate.ts";
import { openPglite } from "./drivers/pglite.ts";
import { Committer } from "./committer.ts";
import { defineActor } from "./define.ts";
import { Executor, prepareJobNow } from "./executor.ts";
import { silentObserver } from "./observer.ts";
import { jsonLogger, type SqlDatabase } from "./ports.ts";
import { type ClaimedJob, claimJobs } from "./sql/claim_jobs.ts";
import type { Completion } from "./sql/complete_jobs.ts";
import { insertJobs } from "./sql/insert_jobs.ts";
import { PUBLIC_TABLES as T } from "./sql/tables.ts";

const WORKER = "committer-test";
const step = defineActor({
  name: "commit.step",
  input: z.object({ key: z.string(), n: z.number() }),
  key: (i) => i.key,
  handler: () => null,
});
const actors = new Map([[step.name, step]] as const);

interface World {
  db: SqlDatabase;
  committer: Committer;
  /** Transactions begun (one per group commit, and one more when a commit is made again). */
  transactions: number;
  /** Transactions committed. */
  committed: number;
  close(): Promise<void>;
}

async function world(commitBatch = 512): Promise<World> {
  const raw = await openPglite();
  await migrate(raw);
  const w: World = {
    db: raw,
    committer: undefined as unknown as Committer,
    transactions: 0,
    committed: 0,
    close: () => raw.close(),
  };
  // Counts the transactions the committer opens (one per group commit).
  w.db = Object.assign(Object.create(raw), {
    transaction: async <T>(fn: Parameters<SqlDatabase["transaction"]>[0]) => {
      w.transactions++;
      const result = await raw.transaction(fn) as T;
      w.committed++;
      return result;
    },
  });
  const log = jsonLogger("silent");
  w.committer = new Committer({
    db: w.db,
    tables: T,
    workerId: WORKER,
    commitBatch,
    actors,
    executor: new Executor({ db: raw, tables: T, actors, logger: log }),
    publisher: {
      writes: { outbox: false, notify: true },
      hook: () => null,
      afterCommit: () => Promise.resolve(),
      afterCommitOrLog: () => Promise.resolve(),
      stopped: () => {},
    },
    observer: silentObserver,
    log,
  });
  return w;
}

async function claim(db: SqlDatabase, inputs: { key: string; n: number }[]): Promise<ClaimedJob[]> {
  await insertJobs(db, T, inputs.map((i) => prepareJobNow(step, i)), {
    outbox: false,
    notify: true,
  });
  const jobs = await claimJobs(db, T, {
    actors: [step.name],
    limit: inputs.length,
    workerId: WORKER,
    leaseMs: 30_000,
  });
  // In input order (ids made in one millisecond do not sort in the order they were made).
  const n = (j: ClaimedJob) => (j.input as { n: number }).n;
  return jobs.sort((a, b) => n(a) - n(b));
}

function success(job: ClaimedJob, state: unknown, over: Partial<Completion> = {}): Completion {
  return {
    id: job.id,
    key: job.key,
    fence: job.lease_fence,
    outcome: "succeeded",
    result: null,
    state: { value: state },
    sends: [],
    effects: [],
    release: false,
    ...over,
  };
}

async function statuses(db: SqlDatabase): Promise<Record<string, string>> {
  const rows = await db.query<{ n: number; status: string }>(
    "SELECT (input->>'n')::int AS n, status FROM troupe_jobs ORDER BY 1",
  );
  return Object.fromEntries(rows.map((r) => [String(r.n), r.status]));
}

Deno.test("committer: completions of one turn go in one transaction, those queued while it runs in the next", async () => {
  const w = await world();
  try {
    const jobs = await claim(w.db, [1, 2, 3, 4, 5].map((n) => ({ key: `k${n}`, n })));
    w.transactions = 0;
    const commit = (j: ClaimedJob) =>
      w.committer.commit(success(j, { n: 1 }, { release: true }), j, 1);
    // The first two in one turn of the event loop: the flush starts a timer tick later with both.
    const early = jobs.slice(0, 2).map(commit);
    await new Promise((tick) => setTimeout(tick, 0));
    assert.equal(w.transactions, 1);
    // Queued while that commit runs: the three share the next one.
    const late = jobs.slice(2).map(commit);
    const results = await Promise.all([...early, ...late]);
    assert.deepEqual(results, ["committed", "committed", "committed", "committed", "committed"]);
    assert.equal(w.transactions, 2);
    assert.deepEqual(await statuses(w.db), {
      1: "succeeded",
      2: "succeeded",
      3: "succeeded",
      4: "succeeded",
      5: "succeeded",
    });
  } finally {
    await w.close();
  }
});

Deno.test("committer: commitBatch bounds a transaction", async () => {
  const w = await world(2);
  try {
    const jobs = await claim(w.db, [1, 2, 3, 4, 5].map((n) => ({ key: `k${n}`, n })));
    w.transactions = 0;
    await Promise.all(jobs.map((j) => w.committer.commit(success(j, null), j, 1)));
    assert.equal(w.transactions, 3);
  } finally {
    await w.close();
  }
});

/** Another worker takes the key over (`by` 1) or gives it back (`by` -1): its fence moves. */
async function moveFence(db: SqlDatabase, key: string, by: number): Promise<void> {
  await db.query("UPDATE troupe_actor_state SET fence = fence + $2 WHERE key = $1", [key, by]);
}

Deno.test("committer: after a link that did not commit, the rest of its chain is stale until endChain", async () => {
  const w = await world();
  try {
    const [a, b, c] = await claim(w.db, [1, 2, 3].map((n) => ({ key: "chain", n })));
    await moveFence(w.db, "chain", 1);
    assert.equal(await w.committer.commit(success(a!, { v: 1 }), a!, 1), "fenced");
    // `b` and `c` ran on the state `a` left, which never existed: not written, not even tried.
    w.transactions = 0;
    assert.equal(await w.committer.commit(success(b!, { v: 2 }), b!, 1), "stale");
    assert.equal(await w.committer.commit(success(c!, { v: 3 }), c!, 1), "stale");
    assert.equal(w.transactions, 0);
    assert.deepEqual(await statuses(w.db), { 1: "running", 2: "running", 3: "running" });
    // Its owner reruns the rest on the committed state: the chain is whole again.
    await moveFence(w.db, "chain", -1);
    w.committer.endChain("chain", b!.lease_fence);
    assert.equal(await w.committer.commit(success(b!, { v: 2 }), b!, 1), "committed");
    const [state] = await w.db.query<{ state: unknown }>(
      "SELECT state FROM troupe_actor_state WHERE key = 'chain'",
    );
    assert.deepEqual(state?.state, { v: 2 });
  } finally {
    await w.close();
  }
});

Deno.test("committer: in one transaction, the links after one that did not commit are stale", async () => {
  const w = await world();
  try {
    const [x, a, b] = await claim(w.db, [
      { key: "other", n: 0 },
      { key: "same", n: 1 },
      { key: "same", n: 2 },
    ]);
    await moveFence(w.db, "same", 1);
    w.committed = 0;
    // Queued in one turn: the three go in one transaction.
    const [rx, first, second] = await Promise.all([
      w.committer.commit(success(x!, null), x!, 1),
      w.committer.commit(success(a!, { v: 1 }), a!, 1),
      w.committer.commit(success(b!, { v: 2 }), b!, 1),
    ]);
    assert.equal(w.committed, 1);
    assert.deepEqual([rx, first, second], ["committed", "fenced", "stale"]);
    assert.deepEqual(await statuses(w.db), { 0: "succeeded", 1: "running", 2: "running" });
  } finally {
    await w.close();
  }
});

Deno.test("committer: a failing effect sinks only its own success, recorded as a failed attempt", async () => {
  const w = await world();
  try {
    const [good, bad] = await claim(w.db, [{ key: "g", n: 1 }, { key: "b", n: 2 }]);
    const boom = () => Promise.reject(new Error("effect failed"));
    const [r1, r2] = await Promise.all([
      w.committer.commit(success(good!, { ok: true }, { release: true }), good!, 1),
      w.committer.commit(success(bad!, { ok: true }, { release: true, effects: [boom] }), bad!, 1),
    ]);
    assert.equal(r1, "committed");
    assert.equal(r2, "committed");
    // The failed attempt has attempts left: it is queued again, with the effect's error.
    const rows = await w.db.query<{ n: number; status: string; error: { message: string } | null }>(
      "SELECT (input->>'n')::int AS n, status, error FROM troupe_jobs ORDER BY 1",
    );
    assert.equal(rows[0]!.status, "succeeded");
    assert.equal(rows[1]!.status, "queued");
    assert.match(rows[1]!.error!.message, /effect failed/);
    // The state of the failed success was not written.
    const [state] = await w.db.query<{ state: unknown }>(
      "SELECT state FROM troupe_actor_state WHERE key = 'b'",
    );
    assert.equal(state?.state ?? null, null);
  } finally {
    await w.close();
  }
});

Deno.test("committer: a success committed twice is a duplicate and breaks its chain", async () => {
  const w = await world();
  try {
    const [a, b] = await claim(w.db, [1, 2].map((n) => ({ key: "dup", n })));
    assert.equal(await w.committer.commit(success(a!, { v: 1 }), a!, 1), "committed");
    // Same message again under the same lease (a redelivery that ran again).
    await w.db.query("UPDATE troupe_jobs SET status = 'running' WHERE id = $1", [a!.id]);
    assert.equal(await w.committer.commit(success(a!, { v: 9 }), a!, 1), "duplicate");
    assert.equal(await w.committer.commit(success(b!, { v: 2 }), b!, 1), "stale");
    w.committer.endChain("dup", a!.lease_fence);
    assert.equal(await w.committer.commit(success(b!, { v: 2 }), b!, 1), "committed");
  } finally {
    await w.close();
  }
});

Deno.test("committer: one fenced completion in a transaction: the others commit once, it writes nothing", async () => {
  const w = await world();
  try {
    const jobs = await claim(w.db, [1, 2, 3].map((n) => ({ key: `fence${n}`, n })));
    // The lease of fence2 was taken over meanwhile (its token moved on).
    await w.db.query("UPDATE troupe_actor_state SET fence = fence + 1 WHERE key = 'fence2'");
    w.transactions = 0;
    w.committed = 0;
    const results = await Promise.all(
      jobs.map((j, i) => w.committer.commit(success(j, { v: i + 1 }, { release: true }), j, 1)),
    );
    // The one-statement commit is rolled back, and the batch committed through the checks.
    assert.equal(w.transactions, 2);
    assert.equal(w.committed, 1);
    assert.deepEqual(results, ["committed", "fenced", "committed"]);
    const ledger = await w.db.query<{ message_id: string }>(
      "SELECT message_id FROM troupe_processed_messages ORDER BY 1",
    );
    assert.deepEqual(ledger.map((r) => r.message_id), [jobs[0]!.id, jobs[2]!.id].sort());
    assert.deepEqual(await statuses(w.db), { 1: "succeeded", 2: "running", 3: "succeeded" });
    const states = await w.db.query<{ key: string; state: unknown; version: number }>(
      "SELECT key, state, version, lease_owner FROM troupe_actor_state ORDER BY key",
    );
    assert.deepEqual(states.map((s) => [s.key, s.state, s.version]), [
      ["fence1", { v: 1 }, 1],
      ["fence2", null, 0],
      ["fence3", { v: 3 }, 1],
    ]);
  } finally {
    await w.close();
  }
});

Deno.test("committer: in one transaction, a link after a duplicate is stale and leaves no ledger row", async () => {
  const w = await world();
  try {
    const [a, b] = await claim(w.db, [1, 2].map((n) => ({ key: "dup1", n })));
    // `a` was committed before (its ledger row is there): a redelivery that ran again.
    await w.db.query("INSERT INTO troupe_processed_messages (message_id) VALUES ($1)", [a!.id]);
    w.committed = 0;
    const results = await Promise.all([
      w.committer.commit(success(a!, { v: 1 }), a!, 1),
      w.committer.commit(success(b!, { v: 2 }), b!, 1),
    ]);
    assert.equal(w.committed, 1);
    assert.deepEqual(results, ["duplicate", "stale"]);
    const ledger = await w.db.query<{ message_id: string }>(
      "SELECT message_id FROM troupe_processed_messages",
    );
    assert.deepEqual(ledger.map((r) => r.message_id), [a!.id]);
    assert.deepEqual(await statuses(w.db), { 1: "succeeded", 2: "running" });
    const [state] = await w.db.query<{ state: unknown }>(
      "SELECT state FROM troupe_actor_state WHERE key = 'dup1'",
    );
    assert.equal(state?.state, null);
  } finally {
    await w.close();
  }
});
