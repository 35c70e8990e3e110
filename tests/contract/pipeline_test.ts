/**
 * Pipelines: a parent job whose status, progress and error follow the jobs sent within it
 * (see actors/runtime/sql/pipelines.ts). Against PGlite and PostgreSQL.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { type AnyActor, defineActor, InputError } from "@troupe/runtime";
import { settle, sleep, waitFor } from "../harness.ts";
import { contractSuite } from "./suite.ts";

/**
 * `<p>.split` fans out `parts` `<p>.part` messages (each waits for `gate`), each reports to
 * `<p>.done` (one key), which sets the progress and completes the pipeline at the last part.
 * A part whose index is in `bad` throws an `InputError`; `<p>.aborted` records its hook calls.
 */
function fanOut(p: string, options: { gate?: Promise<void>; bad?: number[] } = {}) {
  const aborted: unknown[] = [];
  const ran: number[] = [];
  const split = defineActor({
    name: `${p}.split`,
    input: z.object({ parts: z.number().int() }),
    key: () => `${p}:split`,
    handler: ({ parts }, ctx) => {
      for (let i = 0; i < parts; i++) ctx.send(`${p}.part`, { i, parts });
      ctx.pipeline.progress(0, parts, "parts");
    },
  });
  const part = defineActor({
    name: `${p}.part`,
    input: z.object({ i: z.number().int(), parts: z.number().int() }),
    key: (x) => `${p}:part:${x.i}`,
    retries: 0,
    handler: async ({ i, parts }, ctx) => {
      ran.push(i);
      await Promise.race([
        options.gate,
        new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
        ),
      ]);
      if (options.bad?.includes(i)) throw new InputError("BAD_PART", `part ${i} is bad`);
      ctx.send(`${p}.done`, { i, parts });
    },
  });
  const done = defineActor({
    name: `${p}.done`,
    input: z.object({ i: z.number().int(), parts: z.number().int() }),
    key: () => `${p}:done`,
    initialState: () => ({ done: 0 }),
    handler: ({ parts }, ctx) => {
      const n = ctx.state.done + 1;
      ctx.setState({ done: n });
      ctx.pipeline.progress(n, parts, "parts");
      if (n === parts) ctx.pipeline.complete({ parts: n });
    },
  });
  const abortedActor = defineActor({
    name: `${p}.aborted`,
    input: z.object({ tag: z.string(), pipeline: z.unknown() }),
    handler: (input) => {
      aborted.push(input);
    },
  });
  return { actors: [split, part, done, abortedActor] as AnyActor[], aborted, ran };
}

contractSuite("pipeline", {
  "a pipeline runs while its jobs run, reports their progress and succeeds when completed": async (
    { runtime },
  ) => {
    const gate = Promise.withResolvers<void>();
    const { actors } = fanOut("p1", { gate: gate.promise });
    const rt = await runtime(actors);
    const { job, firstJobId } = await rt.startPipeline("p1.ingest", {
      actor: "p1.split",
      input: { parts: 4 },
    });
    assert.equal(job.kind, "pipeline");
    assert.equal(job.status, "running");
    const first = await settle(rt, firstJobId);
    assert.equal(first.status, "succeeded");
    assert.equal(first.pipelineId, job.id);
    // The first job is done, its parts are waiting: the pipeline still runs.
    await sleep(200);
    const mid = await rt.getJob(job.id);
    assert.equal(mid.status, "running");
    assert.deepEqual(mid.pipeline, { done: 0, total: 4, unit: "parts" });
    assert.equal(mid.progressMessage, "0/4 parts");
    const counts = await rt.pipelineJobs(job.id);
    assert.equal(counts.total, 5);
    assert.equal(counts.succeeded, 1);
    gate.resolve();
    const end = await settle(rt, job.id);
    assert.equal(end.status, "succeeded");
    assert.equal(end.progress, 100);
    assert.deepEqual(end.result, { parts: 4 });
    assert.deepEqual(end.pipeline, { done: 4, total: 4, unit: "parts" });
    // Every job sent within the pipeline, transitively, carries its id.
    const all = await rt.pipelineJobs(job.id);
    assert.equal(all.total, 1 + 4 + 4);
    assert.equal(all.succeeded, 9);
    const listed = await rt.listJobs({ pipelineId: job.id, limit: 100 });
    assert.equal(listed.items.length, 9);
    assert.ok(listed.items.every((j) => j.pipelineId === job.id));
  },

  "a job that fails for good fails the pipeline with its error and cancels the rest": async (
    { runtime },
  ) => {
    const gate = Promise.withResolvers<void>();
    const { actors, aborted } = fanOut("p2", { gate: gate.promise, bad: [0] });
    const rt = await runtime(actors, { concurrency: 2, claimBatch: 1 });
    const { job } = await rt.startPipeline("p2.ingest", {
      actor: "p2.split",
      input: { parts: 6 },
    }, { onAbort: { actor: "p2.aborted", input: { tag: "x" } } });
    await waitFor(async () => (await rt.pipelineJobs(job.id)).total >= 7, {
      what: "the parts to be sent",
    });
    gate.resolve();
    const end = await settle(rt, job.id);
    assert.equal(end.status, "failed");
    assert.equal((end.error as { code: string }).code, "BAD_PART");
    await waitFor(async () => (await rt.pipelineJobs(job.id)).running === 0, {
      what: "running parts to stop",
    });
    const counts = await rt.pipelineJobs(job.id);
    assert.equal(counts.queued, 0);
    assert.equal(counts.running, 0);
    assert.equal(counts.failed, 1);
    await waitFor(() => aborted.length === 1, { what: "the abort hook" });
    assert.deepEqual(aborted[0], {
      tag: "x",
      pipeline: {
        id: job.id,
        status: "failed",
        error: { code: "BAD_PART", message: "part 0 is bad" },
      },
    });
    // The hook's job is not part of the pipeline (it has ended).
    assert.equal(
      counts.total,
      (await rt.listJobs({ pipelineId: job.id, limit: 100 })).items.length,
    );
  },

  "cancelling the pipeline cancels queued jobs, stops running ones and sends no more": async (
    { runtime },
  ) => {
    const gate = Promise.withResolvers<void>();
    const { actors, aborted, ran } = fanOut("p3", { gate: gate.promise });
    const rt = await runtime(actors, { concurrency: 2, claimBatch: 1 });
    const { job } = await rt.startPipeline("p3.ingest", {
      actor: "p3.split",
      input: { parts: 8 },
    }, { onAbort: { actor: "p3.aborted", input: { tag: "c" } } });
    await waitFor(() => ran.length >= 1, { what: "a part to run" });
    const cancelled = await rt.cancel(job.id);
    assert.equal(cancelled.status, "cancelled");
    gate.resolve();
    await waitFor(async () => {
      const c = await rt.pipelineJobs(job.id);
      return c.queued === 0 && c.running === 0;
    }, { what: "the pipeline's jobs to stop" });
    const counts = await rt.pipelineJobs(job.id);
    assert.ok(counts.cancelled >= 6, JSON.stringify(counts));
    assert.equal(counts.total, 9, "no part sent anything after the cancel");
    const before = ran.length;
    await sleep(300);
    assert.equal(ran.length, before, "no job of the pipeline ran after the cancel");
    await waitFor(() => aborted.length === 1, { what: "the abort hook" });
    assert.equal((aborted[0] as { pipeline: { status: string } }).pipeline.status, "cancelled");
    assert.equal((await rt.getJob(job.id)).status, "cancelled");
    await assert.rejects(() => rt.cancel(job.id), /already cancelled/);
  },

  "a pipeline that nobody completes succeeds when no job of it is left open": async (
    { runtime },
  ) => {
    const leaf = defineActor({
      name: "p4.leaf",
      input: z.object({ n: z.number() }),
      key: (i) => `p4:${i.n}`,
      handler: ({ n }, ctx) => {
        if (n > 0) ctx.send("p4.leaf", { n: n - 1 });
      },
    });
    const rt = await runtime([leaf]);
    const { job } = await rt.startPipeline("p4.chain", { actor: "p4.leaf", input: { n: 3 } });
    const end = await settle(rt, job.id);
    assert.equal(end.status, "succeeded");
    assert.equal((await rt.pipelineJobs(job.id)).succeeded, 4);
  },

  "a job that fails with an onDeadLetter leaves the pipeline to the workload": async (
    { runtime },
  ) => {
    const part = defineActor({
      name: "p5.part",
      input: z.object({}),
      key: () => "p5:part",
      retries: 0,
      onDeadLetter: (_i, error) => ({ actor: "p5.report", input: { code: error.code } }),
      handler: () => {
        throw new InputError("P5_BAD", "bad part");
      },
    });
    const report = defineActor({
      name: "p5.report",
      input: z.object({ code: z.string() }),
      key: () => "p5:report",
      handler: ({ code }, ctx) => {
        ctx.pipeline.fail({ code: `WRAPPED_${code}`, message: "the workload says so" });
      },
    });
    const rt = await runtime([part, report]);
    const { job } = await rt.startPipeline("p5.run", { actor: "p5.part", input: {} });
    const end = await settle(rt, job.id);
    assert.equal(end.status, "failed");
    assert.equal((end.error as { code: string }).code, "WRAPPED_P5_BAD");
  },

  "a job of a pipeline whose worker died out of attempts fails the pipeline (reaper)": async (
    { db, runtime },
  ) => {
    const leaf = defineActor({
      name: "p7.leaf",
      input: z.object({}),
      key: () => "p7:key",
      retries: 0,
      handler: () => {},
    });
    const api = await runtime([leaf], { start: false });
    const { job, firstJobId } = await api.startPipeline("p7.run", { actor: "p7.leaf", input: {} });
    // A worker claimed it, took the lease, then vanished without renewing it.
    await db.query(
      `INSERT INTO troupe_actor_state (key, fence, lease_owner, lease_until)
       VALUES ('p7:key', 7, 'dead-worker', now() - interval '1 second')
       ON CONFLICT (key) DO UPDATE SET fence = 7, lease_owner = 'dead-worker',
         lease_until = now() - interval '1 second'`,
    );
    await db.query(
      `UPDATE troupe_jobs SET status = 'running', attempts = 1, lease_owner = 'dead-worker',
         lease_fence = 7 WHERE id = $1`,
      [firstJobId],
    );
    const rt = await runtime([leaf], { leaseMs: 600 });
    const end = await settle(rt, job.id);
    assert.equal(end.status, "failed");
    assert.equal((end.error as { code: string }).code, "LEASE_EXPIRED");
  },

  "a job of a pipeline the transport gave up on fails the pipeline": async ({ runtime }) => {
    const leaf = defineActor({ name: "p8.leaf", input: z.object({}), handler: () => {} });
    const rt = await runtime([leaf], { start: false });
    const { job, firstJobId } = await rt.startPipeline("p8.run", { actor: "p8.leaf", input: {} });
    assert.equal(
      await rt.giveUp(firstJobId, { code: "GAVE_UP", message: "no more" }),
      "dead-lettered",
    );
    const end = await rt.getJob(job.id);
    assert.equal(end.status, "failed");
    assert.equal((end.error as { code: string }).code, "GAVE_UP");
  },

  "starting a pipeline with an idempotency key twice gives the first": async ({ runtime }) => {
    const leaf = defineActor({ name: "p6.leaf", input: z.object({}), handler: () => {} });
    const rt = await runtime([leaf]);
    const a = await rt.startPipeline("p6.run", { actor: "p6.leaf", input: {} }, {
      idempotencyKey: "k1",
    });
    const b = await rt.startPipeline("p6.run", { actor: "p6.leaf", input: {} }, {
      idempotencyKey: "k1",
    });
    assert.equal(a.job.id, b.job.id);
    assert.equal(b.created, false);
    await settle(rt, a.job.id);
    assert.equal((await rt.pipelineJobs(a.job.id)).total, 1);
    await assert.rejects(
      () => rt.startPipeline("p6.leaf", { actor: "p6.leaf", input: {} }),
      /invalid or an actor's/,
    );
  },

  "pipelines started together commit with their effect, or none of them does": async (
    { runtime },
  ) => {
    const ended: unknown[] = [];
    const leaf = defineActor({
      name: "p7.leaf",
      input: z.object({ n: z.number().int() }),
      handler: ({ n }, ctx) => {
        ctx.pipeline.complete({ n });
      },
    });
    const aborted = defineActor({
      name: "p7.aborted",
      input: z.object({ n: z.number().int(), pipeline: z.unknown() }),
      handler: () => {},
    });
    const end = defineActor({
      name: "p7.end",
      input: z.object({ n: z.number().int() }).passthrough(),
      handler: (input) => {
        ended.push(input.n);
      },
    });
    const rt = await runtime([leaf, aborted, end]);
    const seen: { pipelineId: string; jobId: string }[] = [];
    const started = await rt.startPipelines(
      [1, 2, 3].map((n) => ({
        name: "p7.run",
        first: { actor: "p7.leaf", input: { n } },
        tenantId: n === 2 ? "t2" : null,
        onAbort: { actor: "p7.aborted", input: { n } },
        ...(n === 3 ? { onEnd: { actor: "p7.end", input: { n } } } : {}),
      })),
      async (tx, ids) => {
        seen.push(...ids);
        const rows = await tx.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ${rt.tables.jobs} WHERE id = ANY($1::text[])`,
          [ids.flatMap((i) => [i.pipelineId, i.jobId])],
        );
        assert.equal(rows[0]!.n, 6);
      },
    );
    assert.deepEqual(
      started.map((s) => ({ pipelineId: s.pipelineId, jobId: s.firstJobId })),
      seen,
    );
    for (const [i, s] of started.entries()) {
      const job = await settle(rt, s.pipelineId);
      assert.equal(job.kind, "pipeline");
      assert.equal(job.actor, "p7.run");
      assert.equal(job.status, "succeeded");
      assert.equal(job.tenantId, i === 1 ? "t2" : null);
      assert.deepEqual(job.result, { n: i + 1 });
      assert.equal((await rt.getJob(s.firstJobId)).pipelineId, s.pipelineId);
    }
    await waitFor(() => Promise.resolve(ended.length === 1), { what: "the end message" });
    assert.deepEqual(ended, [3]);
    // An effect that throws: no pipeline of the batch is left.
    let ids: string[] = [];
    await assert.rejects(
      () =>
        rt.startPipelines(
          [4, 5].map((n) => ({ name: "p7.run", first: { actor: "p7.leaf", input: { n } } })),
          (_tx, given) => {
            ids = given.flatMap((i) => [i.pipelineId, i.jobId]);
            return Promise.reject(new Error("effect failed"));
          },
        ),
      /effect failed/,
    );
    assert.equal(ids.length, 4);
    for (const id of ids) await assert.rejects(() => rt.getJob(id), /not found/i);
    // An input its actor refuses: nothing is written.
    await assert.rejects(
      () => rt.startPipelines([{ name: "p7.run", first: { actor: "p7.leaf", input: { n: "x" } } }]),
    );
  },
});
