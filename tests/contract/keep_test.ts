/**
 * `keepSucceeded: false`, against PGlite, PostgreSQL and Neon: the commit that ends a job well
 * deletes its row, with everything else of the commit written (rows, state, sends, ledger);
 * failures, retries, jobs with an end message and the jobs of other actors are kept.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  defineActor,
  jobEndSchema,
  NonRetryableError,
  NotFoundError,
  type SqlExecutor,
} from "@troupe/runtime";
import { claimJobs } from "../../actors/runtime/sql/claim_jobs.ts";
import { CommitMismatch, completeJobs } from "../../actors/runtime/sql/complete_jobs.ts";
import { PUBLIC_TABLES } from "../../actors/runtime/sql/tables.ts";
import { settle, waitFor } from "../harness.ts";
import { contractSuite, succeeded } from "./suite.ts";

async function jobRows(db: SqlExecutor, actor: string): Promise<{ id: string; status: string }[]> {
  return await db.query<{ id: string; status: string }>(
    "SELECT id, status FROM troupe_jobs WHERE actor = $1 ORDER BY id",
    [actor],
  );
}

async function count(db: SqlExecutor, sql: string, params: unknown[] = []): Promise<number> {
  const [row] = await db.query<{ n: number }>(sql, params);
  return row!.n;
}

contractSuite("keepSucceeded", {
  "a success deletes its job row in the commit that writes its rows, state and sends": async (
    { db, runtime },
  ) => {
    await db.query("CREATE TABLE keep_rows (n int PRIMARY KEY)");
    const next = defineActor({
      name: "keep1.next",
      input: z.object({ n: z.number().int() }),
      key: (i) => `keep1:next:${i.n}`,
      handler: ({ n }) => ({ n }),
    });
    const work = defineActor({
      name: "keep1.work",
      input: z.object({ n: z.number().int() }),
      key: () => "keep1:one",
      keepSucceeded: false,
      initialState: () => ({ sum: 0 }),
      handler: ({ n }, ctx) => {
        ctx.insert("keep_rows", { n });
        ctx.setState({ sum: ctx.state.sum + n });
        ctx.send(next, { n });
        return { n };
      },
    });
    const rt = await runtime([work, next]);
    const jobs = await Promise.all([1, 2, 3, 4, 5].map((n) => rt.enqueue(work, { n })));
    // What enqueue answers, whether or not the job was already done and gone when it read it.
    for (const [i, { job, created }] of jobs.entries()) {
      assert.ok(created);
      assert.equal(job.actor, "keep1.work");
      assert.deepEqual(job.input, { n: i + 1 });
    }
    await waitFor(async () => (await jobRows(db, "keep1.work")).length === 0, {
      what: "the succeeded jobs' rows to go",
    });
    assert.deepEqual(await db.query("SELECT n FROM keep_rows ORDER BY n"), [
      { n: 1 },
      { n: 2 },
      { n: 3 },
      { n: 4 },
      { n: 5 },
    ]);
    const [state] = await db.query<{ state: { sum: number } }>(
      "SELECT state FROM troupe_actor_state WHERE key = 'keep1:one'",
    );
    assert.deepEqual(state!.state, { sum: 15 });
    // The messages they sent are jobs of an actor that keeps its successes.
    await waitFor(async () => {
      const rows = await jobRows(db, "keep1.next");
      return rows.length === 5 && rows.every((r) => r.status === "succeeded");
    }, { what: "the five sent jobs to succeed and stay" });
    // Pulled from the table queue: no ledger row either.
    assert.equal(
      await count(
        db,
        "SELECT count(*)::int AS n FROM troupe_processed_messages WHERE message_id = ANY($1)",
        [jobs.map((j) => j.job.id)],
      ),
      0,
    );
    await assert.rejects(rt.getJob(jobs[0]!.job.id), NotFoundError);
  },

  "a pushed delivery answers succeeded, and its redelivery a duplicate": async (
    { db, runtime },
  ) => {
    let runs = 0;
    const work = defineActor({
      name: "keep2.work",
      input: z.object({}),
      keepSucceeded: false,
      handler: () => {
        runs++;
      },
    });
    const rt = await runtime([work], { start: false });
    const { job } = await rt.enqueue(work, {});
    assert.deepEqual(await rt.deliver(job.id), { status: "succeeded" });
    assert.deepEqual(await jobRows(db, "keep2.work"), []);
    assert.deepEqual(await rt.deliver(job.id), { status: "duplicate" });
    assert.equal(runs, 1);
  },

  "failures and retried attempts are kept; a retry that succeeds is deleted": async (
    { db, runtime },
  ) => {
    const tries = new Map<number, number>();
    const work = defineActor({
      name: "keep3.work",
      input: z.object({ n: z.number().int() }),
      key: (i) => `keep3:${i.n}`,
      keepSucceeded: false,
      retries: 1,
      backoff: { baseMs: 10, maxMs: 10 },
      handler: ({ n }) => {
        const tried = (tries.get(n) ?? 0) + 1;
        tries.set(n, tried);
        if (n === 1 && tried === 1) throw new Error("once");
        if (n === 2) throw new NonRetryableError("never");
      },
    });
    const rt = await runtime([work]);
    const flaky = await rt.enqueue(work, { n: 1 });
    const broken = await rt.enqueue(work, { n: 2 });
    assert.equal((await settle(rt, broken.job.id)).status, "failed");
    await waitFor(async () => (await jobRows(db, "keep3.work")).length === 1, {
      what: "the retried job's row to go",
    });
    assert.equal(tries.get(1), 2);
    assert.deepEqual(await jobRows(db, "keep3.work"), [{ id: broken.job.id, status: "failed" }]);
    assert.equal(
      await count(db, "SELECT count(*)::int AS n FROM troupe_dead_letters WHERE job_id = $1", [
        broken.job.id,
      ]),
      1,
    );
    await assert.rejects(rt.getJob(flaky.job.id), NotFoundError);
  },

  "a job that carries an end message is kept, and its end message sent": async ({ runtime }) => {
    const heard: unknown[] = [];
    const ended = defineActor({
      name: "keep4.ended",
      input: z.object({ job: jobEndSchema }),
      key: (i) => `keep4:ended:${i.job.id}`,
      handler: (i) => {
        heard.push(i.job.status);
      },
    });
    const work = defineActor({
      name: "keep4.work",
      input: z.object({}),
      keepSucceeded: false,
      handler: () => ({ ok: true }),
    });
    const rt = await runtime([work, ended]);
    const { job } = await rt.enqueue(work, {}, { onEnd: { actor: ended, input: {} } });
    const done = await settle(rt, job.id);
    assert.equal(done.status, "succeeded");
    assert.deepEqual(done.result, { ok: true });
    await waitFor(() => heard.length === 1, { what: "the end message" });
    assert.deepEqual(heard, ["succeeded"]);
  },

  "unordered successes that only delete their rows commit alone; a lost lease fences its own":
    async (
      { db },
    ) => {
      await db.query(
        `INSERT INTO troupe_jobs (id, actor, key, input, max_attempts)
       SELECT 'keep5-' || i, 'keep5.work', 'keep5', '{}', 3 FROM generate_series(1, 4) AS i`,
      );
      const claimed = await claimJobs(db, PUBLIC_TABLES, {
        actors: ["keep5.work"],
        limit: 10,
        workerId: "w-keep5",
        leaseMs: 30_000,
        unordered: ["keep5.work"],
      });
      assert.equal(claimed.length, 4);
      const drop = (j: (typeof claimed)[number]) => succeeded(j, { keep: false, unordered: true });
      // Another process took one job over (its instance lease lapsed here).
      await db.query(
        "UPDATE troupe_jobs SET lease_owner = 'w-other', lease_fence = lease_fence + 1 WHERE id = $1",
        [claimed[1]!.id],
      );
      const commit = (allValid: "throw" | "savepoint", jobs = claimed) =>
        db.transaction((tx) =>
          completeJobs(tx, PUBLIC_TABLES, "w-keep5", jobs.map(drop), {
            writes: { outbox: false, notify: false },
            hook: () => null,
            allValid,
          })
        );
      // The one-statement commit finds the fenced one and writes nothing.
      await assert.rejects(commit("throw"), CommitMismatch);
      assert.equal(
        await count(db, "SELECT count(*)::int AS n FROM troupe_jobs WHERE actor = 'keep5.work'"),
        4,
      );
      const { results } = await commit("savepoint");
      assert.deepEqual(results, ["committed", "fenced", "committed", "committed"]);
      assert.deepEqual((await jobRows(db, "keep5.work")).map((r) => [r.id, r.status]), [
        [claimed[1]!.id, "running"],
      ]);
      // A second commit of the same jobs is refused.
      const again = await commit("savepoint", [claimed[0]!]);
      assert.deepEqual(again.results, ["fenced"]);
    },
});
