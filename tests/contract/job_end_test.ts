/**
 * End messages (actors/runtime/job_end.ts): a job or pipeline that names `onEnd` sends that
 * message once, in the transaction that ends it, whichever way it ends. Against PGlite and
 * PostgreSQL.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  defineActor,
  endMessageId,
  InProcessTransport,
  type JobEnd,
  jobEndSchema,
  NonRetryableError,
  type SqlExecutor,
} from "@troupe/runtime";
import { settle, sleep } from "../harness.ts";
import { contractSuite } from "./suite.ts";

async function endJobs(db: SqlExecutor, actor: string): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM troupe_jobs WHERE actor = $1",
    [actor],
  );
  return row!.n;
}

/** `<p>.work` returns `n * 2`, fails for good on a negative `n`; `<p>.ended` records ends. */
function actors(p: string) {
  const heard: { tag: string; job: JobEnd }[] = [];
  const work = defineActor({
    name: `${p}.work`,
    input: z.object({ n: z.number().int() }),
    retries: 0,
    handler: ({ n }) => {
      if (n < 0) throw new NonRetryableError("negative");
      return { doubled: n * 2 };
    },
  });
  const ended = defineActor({
    name: `${p}.ended`,
    input: z.object({ tag: z.string().min(1), job: jobEndSchema }),
    key: (i) => `${p}:ended:${i.job.id}`,
    handler: (input) => {
      heard.push(input);
    },
  });
  return { work, ended, heard };
}

contractSuite("job end messages", {
  "a job that succeeds sends its end message once, with its result": async ({ runtime, db }) => {
    const { work, ended, heard } = actors("e1");
    const rt = await runtime([work, ended]);
    const { job } = await rt.enqueue(work, { n: 21 }, {
      onEnd: { actor: ended, input: { tag: "t" } },
    });
    assert.deepEqual(job.onEnd, {
      jobId: endMessageId(job.id),
      actor: "e1.ended",
      input: { tag: "t" },
    });
    assert.equal((await settle(rt, job.id)).status, "succeeded");
    const end = await settle(rt, endMessageId(job.id));
    assert.equal(end.status, "succeeded");
    assert.equal(end.parentId, job.id);
    assert.equal(end.key, `e1:ended:${job.id}`);
    assert.equal(heard.length, 1);
    assert.equal(heard[0]!.tag, "t");
    assert.equal(heard[0]!.job.id, job.id);
    assert.equal(heard[0]!.job.kind, "job");
    assert.equal(heard[0]!.job.actor, "e1.work");
    assert.equal(heard[0]!.job.status, "succeeded");
    assert.deepEqual(heard[0]!.job.result, { doubled: 42 });
    assert.ok(!Number.isNaN(Date.parse(heard[0]!.job.finishedAt)));
    assert.equal(await endJobs(db, "e1.ended"), 1);
  },

  "a job that fails for good, is cancelled or given up on sends it with that status": async (
    { runtime, db },
  ) => {
    const { work, ended, heard } = actors("e2");
    const rt = await runtime([work, ended], { start: false });
    const onEnd = { actor: ended, input: { tag: "x" } };
    const failing = (await rt.enqueue(work, { n: -1 }, { onEnd })).job;
    const queued = (await rt.enqueue(work, { n: 1 }, { onEnd, delayMs: 60_000 })).job;
    assert.equal((await rt.cancel(queued.id)).status, "cancelled");
    // A message the transport gave up on is dead-lettered: that ends it too.
    const undelivered = (await rt.enqueue(work, { n: 2 }, { onEnd, delayMs: 60_000 })).job;
    assert.equal(
      await rt.giveUp(undelivered.id, { code: "UNDELIVERABLE", message: "gave up" }),
      "dead-lettered",
    );
    await rt.start();
    assert.equal((await settle(rt, failing.id)).status, "failed");
    await settle(rt, endMessageId(failing.id));
    await settle(rt, endMessageId(queued.id));
    await settle(rt, endMessageId(undelivered.id));
    const byId = new Map(heard.map((h) => [h.job.id, h.job]));
    assert.equal(byId.get(failing.id)?.status, "failed");
    assert.equal((byId.get(failing.id)?.error as { code: string }).code, "NON_RETRYABLE");
    assert.equal(byId.get(queued.id)?.status, "cancelled");
    assert.equal(byId.get(undelivered.id)?.status, "failed");
    assert.equal((byId.get(undelivered.id)?.error as { code: string }).code, "UNDELIVERABLE");
    assert.equal(heard.length, 3);
    // A cancel of a job that has ended changes nothing and sends nothing more.
    await rt.cancel(queued.id).catch(() => {});
    await sleep(200);
    assert.equal(await endJobs(db, "e2.ended"), 3);
  },

  "a pipeline sends its end message when it ends": async ({ runtime }) => {
    const { work, ended, heard } = actors("e3");
    const rt = await runtime([work, ended]);
    const { job } = await rt.startPipeline("e3.pipe", { actor: work, input: { n: 2 } }, {
      onEnd: { actor: ended, input: { tag: "p" } },
    });
    assert.equal((await settle(rt, job.id)).status, "succeeded");
    await settle(rt, endMessageId(job.id));
    assert.equal(heard.length, 1);
    assert.equal(heard[0]!.job.kind, "pipeline");
    assert.equal(heard[0]!.job.actor, "e3.pipe");
    assert.equal(heard[0]!.job.status, "succeeded");
  },

  "with a push transport, an end message is published right after the commit that made it": async (
    { runtime, db },
  ) => {
    const { work, ended, heard } = actors("e5");
    // No background loop: the outbox relay never runs, so only the commit can publish it.
    const rt = await runtime([work, ended], {
      transport: new InProcessTransport(),
      backgroundTimers: false,
    });
    const onEnd = { actor: ended, input: { tag: "push" } };
    const { job } = await rt.enqueue(work, { n: 4 }, { onEnd });
    const pipe = await rt.startPipeline("e5.pipe", { actor: work, input: { n: 5 } }, { onEnd });
    await settle(rt, endMessageId(job.id));
    await settle(rt, endMessageId(pipe.job.id));
    assert.deepEqual(heard.map((h) => h.job.id).sort(), [job.id, pipe.job.id].sort());
    const [outbox] = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM troupe_outbox WHERE job_id LIKE '%-end'",
    );
    assert.equal(outbox!.n, 0, "published, and their outbox rows gone");
  },

  "a replayed dead letter's job sends the end message again, for the new job": async (
    { runtime, db },
  ) => {
    const { work, ended, heard } = actors("e6");
    const rt = await runtime([work, ended]);
    const { job } = await rt.enqueue(work, { n: 3 }, {
      onEnd: { actor: ended, input: { tag: "again" } },
      delayMs: 60_000,
    });
    assert.equal(
      await rt.giveUp(job.id, { code: "UNDELIVERABLE", message: "gave up" }),
      "dead-lettered",
    );
    await settle(rt, endMessageId(job.id));
    const letter = (await rt.listDeadLetters({ actor: "e6.work" })).items[0]!;
    const replay = await rt.replay(letter.id);
    assert.deepEqual(replay.onEnd, {
      jobId: endMessageId(replay.id),
      actor: "e6.ended",
      input: { tag: "again" },
    });
    assert.equal((await settle(rt, replay.id)).status, "succeeded");
    const end = await settle(rt, endMessageId(replay.id));
    assert.equal(end.parentId, replay.id);
    const byId = new Map(heard.map((h) => [h.job.id, h]));
    assert.equal(byId.get(job.id)?.job.status, "failed");
    assert.equal(byId.get(replay.id)?.job.status, "succeeded");
    assert.equal(byId.get(replay.id)?.tag, "again");
    assert.deepEqual(byId.get(replay.id)?.job.result, { doubled: 6 });
    assert.equal(await endJobs(db, "e6.ended"), 2);
  },

  "an end message its actor refuses is refused at enqueue, and nothing is written": async (
    { runtime, db },
  ) => {
    const { work, ended } = actors("e4");
    const rt = await runtime([work, ended]);
    await assert.rejects(
      rt.enqueue(work, { n: 1 }, { onEnd: { actor: ended, input: { tag: "" } } }),
      (e) => (e as { code?: string }).code === "INVALID_INPUT",
    );
    assert.equal(await endJobs(db, "e4.work"), 0);
  },
});
