/**
 * Typed actor references and message versions (actors/runtime/versions.ts): a message queued
 * before a deploy that changed its actor's input runs upgraded. Against PGlite and PostgreSQL.
 * The `@ts-expect-error` lines are checked by `deno check`: a wrong input is a type error.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor, message, NonRetryableError } from "@troupe/runtime";
import { settle, waitFor } from "../harness.ts";
import { contractSuite } from "./suite.ts";

/** Version 1 of `<p>.greet` takes a full name; version 2 a first and a last name. */
function greet(p: string, options: { broken?: boolean } = {}) {
  const v1 = defineActor({
    name: `${p}.greet`,
    input: z.object({ name: z.string() }),
    key: (i) => `${p}:${i.name}`,
    retries: 0,
    handler: ({ name }) => {
      if (options.broken) throw new NonRetryableError("down");
      return `hello ${name}`;
    },
  });
  const v2 = defineActor({
    name: `${p}.greet`,
    version: 2,
    input: z.object({ first: z.string(), last: z.string() }),
    upgrade: {
      1: (old) => {
        const [first = "", ...rest] = (old as { name: string }).name.split(" ");
        return { first, last: rest.join(" ") };
      },
    },
    handler: ({ first, last }) => `hello ${last}, ${first}`,
  });
  return { v1, v2 };
}

contractSuite("versions", {
  "a message queued before a deploy runs upgraded by the new definition": async (
    { runtime, db },
  ) => {
    const { v1, v2 } = greet("v1");
    const before = await runtime([v1], { start: false });
    const { job } = await before.enqueue(v1, { name: "Ada Lovelace" });
    const [stored] = await db.query<{ input_version: number }>(
      "SELECT input_version FROM troupe_jobs WHERE id = $1",
      [job.id],
    );
    assert.equal(stored?.input_version, 1);
    // The deploy: a new runtime with the new definition, on the same database.
    const after = await runtime([v2]);
    const done = await settle(after, job.id);
    assert.equal(done.status, "succeeded");
    assert.equal(done.result, "hello Lovelace, Ada");
    // New messages are stored at version 2 and run as they are.
    const { job: fresh } = await after.enqueue(v2, { first: "Grace", last: "Hopper" });
    assert.equal((await settle(after, fresh.id)).result, "hello Hopper, Grace");
    const [next] = await db.query<{ input_version: number }>(
      "SELECT input_version FROM troupe_jobs WHERE id = $1",
      [fresh.id],
    );
    assert.equal(next?.input_version, 2);
  },

  "a dead letter of an older version replays upgraded": async ({ runtime }) => {
    const { v1, v2 } = greet("v2", { broken: true });
    const before = await runtime([v1]);
    const { job } = await before.enqueue(v1, { name: "Alan Turing" });
    assert.equal((await settle(before, job.id)).status, "failed");
    await before.stop();
    const after = await runtime([v2]);
    const [dl] = (await after.listDeadLetters({ actor: "v2.greet" })).items;
    const replay = await after.replay(dl!.id);
    assert.equal((await settle(after, replay.id)).result, "hello Turing, Alan");
  },

  "a version with no upgrade path fails for good, saying so": async ({ runtime }) => {
    const { v1 } = greet("v3");
    const v3 = defineActor({
      name: "v3.greet",
      version: 3,
      input: z.object({ full: z.string() }),
      upgrade: { 2: (old) => old },
      handler: () => "never",
    });
    const before = await runtime([v1], { start: false });
    const { job } = await before.enqueue(v1, { name: "Ada" });
    const after = await runtime([v3]);
    const done = await settle(after, job.id);
    assert.equal(done.status, "failed");
    assert.equal((done.error as { code: string }).code, "INPUT_VERSION_UNKNOWN");
  },

  "references type send, enqueue, enqueueMany and onDeadLetter, and route like names": async (
    { runtime, db },
  ) => {
    const heard: unknown[] = [];
    const record = defineActor({
      name: "r1.record",
      input: z.object({ what: z.string() }),
      handler: ({ what }) => {
        heard.push(what);
      },
    });
    const fail = defineActor({
      name: "r1.fail",
      input: z.object({ id: z.number() }),
      retries: 0,
      handler: () => {
        throw new NonRetryableError("always");
      },
      onDeadLetter: (i, error) => [
        { actor: record, input: { what: `${i.id}:${error.code}` } },
        message(record, { what: `${i.id}:late` }, { delayMs: 3_600_000, priority: 7 }),
      ],
    });
    const bad = defineActor({
      name: "r1.bad",
      input: z.object({ id: z.number() }),
      handler: () => {},
      // @ts-expect-error the dead-letter message's input is typed by its reference
      onDeadLetter: () => ({ actor: record, input: { what: 1 } }),
    });
    const relay = defineActor({
      name: "r1.relay",
      input: z.object({ id: z.number() }),
      handler: ({ id }, ctx) => {
        ctx.send(fail, { id });
        // @ts-expect-error a message's input is typed by its actor's reference
        if (id < 0) ctx.send(fail, { id: "1" });
      },
    });
    const rt = await runtime([record, fail, bad, relay]);
    // @ts-expect-error enqueue's input is typed by the reference
    await assert.rejects(rt.enqueue(fail, { id: "x" }));
    // @ts-expect-error so is each of enqueueMany's
    await assert.rejects(rt.enqueueMany(record, [{ what: 1 }]));
    const { job } = await rt.enqueue(relay, { id: 7 });
    await settle(rt, job.id);
    await rt.enqueueMany(fail, [{ id: 8 }]);
    await waitFor(() => heard.length === 2, { what: "both dead letters to be heard" });
    assert.deepEqual(heard.toSorted(), ["7:NON_RETRYABLE", "8:NON_RETRYABLE"]);
    assert.equal(message(record, { what: "x" }).actor, record);
    // A `message()` keeps its options: delayed an hour, at its priority.
    const late = await db.query<{ priority: number; later: boolean }>(
      `SELECT priority, run_at > now() + interval '50 minutes' AS later FROM troupe_jobs
       WHERE actor = 'r1.record' AND input->>'what' LIKE '%:late' ORDER BY id`,
    );
    assert.deepEqual(late, [{ priority: 7, later: true }, { priority: 7, later: true }]);
  },

  "a message sent by a handler is validated once, and parsed once when it runs": async (
    { runtime },
  ) => {
    let checks = 0;
    const target = defineActor({
      name: "r2.target",
      input: z.object({ n: z.number() }).refine(() => ++checks > 0),
      handler: () => {},
    });
    const sender = defineActor({
      name: "r2.sender",
      input: z.object({}),
      handler: (_i, ctx) => ctx.send(target, { n: 1 }),
    });
    const rt = await runtime([target, sender]);
    const { job } = await rt.enqueue(sender, {});
    await settle(rt, job.id);
    const [sent] = (await rt.listJobs({ actor: "r2.target" })).items;
    await settle(rt, sent!.id);
    assert.equal(checks, 2);
  },
});
