/**
 * Groups (fan-out / fan-in, actors/runtime/groups.ts), typed references and message versions.
 * Against PGlite and PostgreSQL.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  defineActor,
  type GroupOutcome,
  groupOutcomeSchema,
  InProcessTransport,
  message,
  NonRetryableError,
  type SqlExecutor,
} from "@troupe/runtime";
import { claimJobs } from "../../actors/runtime/sql/claim_jobs.ts";
import { completeJobs } from "../../actors/runtime/sql/complete_jobs.ts";
import { settle } from "../harness.ts";
import { contractSuite } from "./suite.ts";

async function groupRow(db: SqlExecutor, id: string) {
  const [row] = await db.query<{ status: string; remaining: number; continuation_id: string }>(
    "SELECT status, remaining, continuation_id FROM troupe_groups WHERE id = $1",
    [id],
  );
  return row;
}

async function jobsOf(db: SqlExecutor, actor: string): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM troupe_jobs WHERE actor = $1",
    [actor],
  );
  return row!.n;
}

/** `<p>.part` doubles `n` (fails for good when `n` is in `bad`, after `gate` when given). */
function actors(p: string, options: { bad?: number[]; gate?: Promise<void> } = {}) {
  const heard: { tag: string; group: GroupOutcome }[] = [];
  const part = defineActor({
    name: `${p}.part`,
    input: z.object({ n: z.number().int() }),
    key: (i) => `${p}:part:${i.n}`,
    retries: 0,
    handler: async ({ n }) => {
      if (options.bad?.includes(n)) throw new NonRetryableError(`part ${n} is bad`);
      if (options.gate) await options.gate;
      return { doubled: n * 2 };
    },
  });
  const then = defineActor({
    name: `${p}.then`,
    input: z.object({ tag: z.string(), group: groupOutcomeSchema }),
    handler: (input) => {
      heard.push(input);
    },
  });
  return { part, then, heard };
}

contractSuite("groups", {
  "all parts succeed: the continuation runs once, with every result in order": async (
    { runtime, db },
  ) => {
    const { part, then, heard } = actors("g1");
    const rt = await runtime([part, then]);
    const { groupId, jobIds, continuationId } = await rt.enqueueGroup(
      [3, 1, 2].map((n) => message(part, { n })),
      { actor: then, input: { tag: "sum" } },
    );
    assert.equal(jobIds.length, 3);
    assert.equal((await settle(rt, continuationId)).status, "succeeded");
    assert.equal(heard.length, 1);
    assert.equal(heard[0]!.tag, "sum");
    assert.equal(heard[0]!.group.status, "succeeded");
    assert.equal(heard[0]!.group.failure, null);
    assert.deepEqual(
      heard[0]!.group.parts.map((p) => [p.jobId, p.status, p.result]),
      jobIds.map((id, i) => [id, "succeeded", { doubled: [3, 1, 2][i]! * 2 }]),
    );
    assert.deepEqual(await groupRow(db, groupId), {
      status: "succeeded",
      remaining: 0,
      continuation_id: continuationId,
    });
    assert.equal(await jobsOf(db, "g1.then"), 1);
  },

  "one part fails for good: the continuation runs once, at once, with the failure": async (
    { runtime, db },
  ) => {
    const gate = Promise.withResolvers<void>();
    const { part, then, heard } = actors("g2", { bad: [2], gate: gate.promise });
    const rt = await runtime([part, then]);
    const { groupId, jobIds, continuationId } = await rt.enqueueGroup(
      [1, 2, 3].map((n) => message(part, { n })),
      { actor: then, input: { tag: "fail" } },
    );
    // The continuation runs while the other parts still wait on the gate.
    assert.equal((await settle(rt, continuationId)).status, "succeeded");
    assert.equal(heard.length, 1);
    const group = heard[0]!.group;
    assert.equal(group.status, "failed");
    assert.equal(group.failure?.jobId, jobIds[1]);
    assert.equal(group.failure?.status, "failed");
    assert.equal(group.failure?.error.code, "NON_RETRYABLE");
    assert.deepEqual(group.parts.map((p) => p.status), ["running", "failed", "running"]);
    // The parts that end later find the group closed: nothing fires again.
    gate.resolve();
    for (const id of [jobIds[0]!, jobIds[2]!]) {
      assert.equal((await settle(rt, id)).status, "succeeded");
    }
    assert.equal(await jobsOf(db, "g2.then"), 1);
    assert.equal(heard.length, 1);
    assert.equal((await groupRow(db, groupId))?.status, "failed");
  },

  "a queued part cancelled fails its group": async ({ runtime }) => {
    const { part, then, heard } = actors("g3");
    const rt = await runtime([part, then], { start: false });
    const { jobIds, continuationId } = await rt.enqueueGroup(
      [1, 2].map((n) => message(part, { n })),
      { actor: then, input: { tag: "cancel" } },
    );
    await rt.cancel(jobIds[0]!);
    await rt.start();
    assert.equal((await settle(rt, continuationId)).status, "succeeded");
    assert.equal(heard[0]!.group.status, "failed");
    assert.equal(heard[0]!.group.failure?.status, "cancelled");
  },

  "a redelivered completion of a part is not counted twice": async ({ runtime, db }) => {
    const { part, then } = actors("g4");
    const rt = await runtime([part, then], { start: false });
    const { groupId, jobIds, continuationId } = await rt.enqueueGroup(
      [1, 2].map((n) => message(part, { n })),
      { actor: then, input: { tag: "once" } },
    );
    const claimed = await claimJobs(db, rt.tables, {
      actors: ["g4.part"],
      limit: 10,
      workerId: "w-test",
      leaseMs: 30_000,
    });
    assert.equal(claimed.length, 2);
    const completion = (id: string) => {
      const job = claimed.find((j) => j.id === id)!;
      return {
        id,
        key: job.key,
        fence: job.lease_fence,
        outcome: "succeeded" as const,
        result: { ok: true },
        sends: [],
        effects: [],
        release: true,
        groupId: job.group_id ?? null,
      };
    };
    const commit = (id: string) =>
      db.transaction((tx) =>
        completeJobs(tx, rt.tables, "w-test", [completion(id)], {
          writes: { outbox: false, notify: true },
          hook: () => null,
        })
      );
    assert.deepEqual((await commit(jobIds[0]!)).results, ["committed"]);
    // The same completion again (a redelivery, or a commit retried): refused, not counted.
    assert.deepEqual((await commit(jobIds[0]!)).results, ["fenced"]);
    assert.deepEqual(await groupRow(db, groupId), {
      status: "open",
      remaining: 1,
      continuation_id: null,
    });
    const last = await commit(jobIds[1]!);
    assert.deepEqual(last.sent.map((m) => m.id), [continuationId]);
    assert.equal((await groupRow(db, groupId))?.remaining, 0);
    assert.equal(await jobsOf(db, "g4.then"), 1);
  },

  "ctx.group fans out from a handler, typed by references": async ({ runtime }) => {
    const { part, then, heard } = actors("g5");
    const split = defineActor({
      name: "g5.split",
      input: z.object({ parts: z.number().int() }),
      handler: ({ parts }, ctx) => {
        const inputs = Array.from({ length: parts }, (_, n) => message(part, { n }));
        // @ts-expect-error a part's input is typed by its actor's reference
        message(part, { n: "1" });
        return { group: ctx.group(inputs, { actor: then, input: { tag: "ctx" } }) };
      },
    });
    const rt = await runtime([split, part, then]);
    const { job } = await rt.enqueue(split, { parts: 4 });
    const done = await settle(rt, job.id);
    const groupId = (done.result as { group: string }).group;
    assert.equal((await settle(rt, `${groupId}-then`)).status, "succeeded");
    assert.equal(heard.length, 1);
    assert.deepEqual(
      heard[0]!.group.parts.map((p) => p.result),
      [0, 2, 4, 6].map((d) => ({
        doubled: d,
      })),
    );
  },

  "a part the reaper dead-letters (its last attempt lost its lease) fails its group": async (
    { runtime, db },
  ) => {
    const { part, then, heard } = actors("g8");
    const rt = await runtime([part, then], { start: false });
    const { jobIds, continuationId } = await rt.enqueueGroup(
      [1, 2].map((n) => message(part, { n })),
      { actor: then, input: { tag: "reaped" } },
    );
    // Its process died while it ran its last attempt: the lease lapsed.
    const [job] = await db.query<{ key: string }>("SELECT key FROM troupe_jobs WHERE id = $1", [
      jobIds[0],
    ]);
    await db.query(
      `INSERT INTO troupe_actor_state (key, fence, lease_owner, lease_until)
       VALUES ($1, 7, 'dead-worker', now() - interval '1 second')`,
      [job!.key],
    );
    await db.query(
      `UPDATE troupe_jobs SET status = 'running', attempts = 1, lease_owner = 'dead-worker',
         lease_fence = 7 WHERE id = $1`,
      [jobIds[0]],
    );
    assert.equal(await rt.reap(), 1);
    await rt.start();
    assert.equal((await settle(rt, continuationId)).status, "succeeded");
    assert.equal(heard.length, 1);
    assert.equal(heard[0]!.group.failure?.jobId, jobIds[0]);
    assert.equal(heard[0]!.group.failure?.error.code, "LEASE_EXPIRED");
  },

  "a part the transport gave up on fails its group": async ({ runtime }) => {
    const { part, then, heard } = actors("g9");
    const rt = await runtime([part, then], { start: false });
    const { jobIds, continuationId } = await rt.enqueueGroup(
      [1, 2].map((n) => message(part, { n })),
      { actor: then, input: { tag: "undeliverable" } },
    );
    assert.equal(
      await rt.giveUp(jobIds[1]!, { code: "UNDELIVERABLE", message: "gave up" }),
      "dead-lettered",
    );
    // Idempotent: asked again, nothing changes and nothing fires again.
    assert.equal(
      await rt.giveUp(jobIds[1]!, { code: "UNDELIVERABLE", message: "gave up" }),
      "finished",
    );
    await rt.start();
    assert.equal((await settle(rt, continuationId)).status, "succeeded");
    await settle(rt, jobIds[0]!);
    assert.equal(heard.length, 1);
    assert.equal(heard[0]!.group.failure?.error.code, "UNDELIVERABLE");
  },

  "in a pipeline, a part's failure goes to the continuation, which ends the pipeline": async (
    { runtime },
  ) => {
    const { part } = actors("g10", { bad: [1] });
    const split = defineActor({
      name: "g10.split",
      input: z.object({}),
      handler: (_i, ctx) => {
        ctx.group([0, 1, 2].map((n) => message(part, { n })), { actor: "g10.then" });
      },
    });
    const then = defineActor({
      name: "g10.then",
      input: z.object({ group: groupOutcomeSchema }),
      handler: ({ group }, ctx) => {
        if (group.status === "failed") {
          ctx.pipeline.complete({ partial: true, failed: group.failure?.jobId });
        } else ctx.pipeline.complete({ partial: false });
      },
    });
    const rt = await runtime([split, part, then]);
    const { job } = await rt.startPipeline("g10.run", { actor: split, input: {} });
    const done = await settle(rt, job.id);
    assert.equal(done.status, "succeeded");
    assert.equal((done.result as { partial: boolean }).partial, true);
  },

  "groups work over a push transport (outbox, published after commit)": async ({ runtime }) => {
    const { part, then, heard } = actors("g11");
    const rt = await runtime([part, then], { transport: new InProcessTransport() });
    const { continuationId } = await rt.enqueueGroup(
      [1, 2, 3].map((n) => message(part, { n })),
      { actor: then, input: { tag: "push" } },
    );
    assert.equal((await settle(rt, continuationId)).status, "succeeded");
    assert.deepEqual(
      heard[0]!.group.parts.map((p) => p.result),
      [2, 4, 6].map((d) => ({
        doubled: d,
      })),
    );
  },

  "a group of no parts sends its continuation at once": async ({ runtime }) => {
    const { part, then, heard } = actors("g6");
    const rt = await runtime([part, then]);
    const { continuationId } = await rt.enqueueGroup([], { actor: then, input: { tag: "none" } });
    await settle(rt, continuationId);
    assert.equal(heard[0]!.group.status, "succeeded");
    assert.deepEqual(heard[0]!.group.parts, []);
  },

  "a continuation whose input cannot take the outcome is refused when the group is made": async (
    { runtime },
  ) => {
    const { part } = actors("g7");
    const strict = defineActor({
      name: "g7.strict",
      input: z.strictObject({ tag: z.string() }),
      handler: () => {},
    });
    const rt = await runtime([part, strict], { start: false });
    await assert.rejects(
      rt.enqueueGroup([message(part, { n: 1 })], { actor: strict, input: { tag: "x" } }),
      (err: Error & { code?: string }) => err.code === "INVALID_INPUT",
    );
  },
});
