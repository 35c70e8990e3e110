/**
 * The tracing port as the runtime drives it, with a recording tracer (no OpenTelemetry): an
 * enqueue's messages carry its span, a handler's span is a child of the span that made its
 * message, on the pull and the push path, and what a handler sends and groups carries the
 * handler's span.
 */
import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { z } from "zod";
import { defineActor, message } from "./define.ts";
import { openPglite } from "./drivers/pglite.ts";
import { migrateRuntime } from "./migrate.ts";
import { jsonLogger } from "./ports.ts";
import { Runtime } from "./runtime.ts";
import {
  formatTraceparent,
  noTracing,
  parseTraceparent,
  traceLogFields,
  type Tracing,
} from "./tracing.ts";
import { InProcessTransport } from "./transports/in_process.ts";
import { TableQueueTransport } from "./transports/table_queue.ts";

interface Recorded {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
}

const hex = (bytes: number) =>
  [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0"))
    .join("");

/** Spans kept in memory; the active one follows async work through AsyncLocalStorage. */
function recordingTracing(): Tracing & { spans: Recorded[]; root<T>(fn: () => T): T } {
  const spans: Recorded[] = [];
  const active = new AsyncLocalStorage<Recorded>();
  const open = (name: string, parent: { traceId: string; spanId: string } | undefined) => {
    const span = {
      name,
      traceId: parent?.traceId ?? hex(16),
      spanId: hex(8),
      parentSpanId: parent?.spanId ?? null,
    };
    spans.push(span);
    return span;
  };
  const context = (s: Recorded | undefined) =>
    s ? { traceparent: formatTraceparent(s.traceId, s.spanId, 1) } : undefined;
  return {
    spans,
    root: (fn) => active.run(open("request", undefined), fn),
    current: () => context(active.getStore()),
    enqueue: (info, fn) => {
      const span = open(`send ${info.actor}`, active.getStore());
      return active.run(span, () => fn(context(span)));
    },
    runHandler: (job, fn) => {
      const parent = job.traceparent ? parseTraceparent(job.traceparent) : undefined;
      return active.run(open(`process ${job.actor}`, parent), fn);
    },
  };
}

const leaf = defineActor({
  name: "t.leaf",
  input: z.object({ n: z.number() }),
  key: (i) => `leaf:${i.n}`,
  handler: ({ n }) => n,
});
const fanIn = defineActor({
  name: "t.fanin",
  input: z.object({ group: z.unknown() }),
  handler: () => "done",
});
const top = defineActor({
  name: "t.top",
  input: z.object({ n: z.number() }),
  key: (i) => `top:${i.n}`,
  handler: ({ n }, ctx) => {
    ctx.send(leaf, { n: n * 10 });
    ctx.group([message(leaf, { n: n * 10 + 1 })], { actor: fanIn, input: {} });
    return n;
  },
});

const doomed = defineActor({
  name: "t.doomed",
  input: z.object({ n: z.number() }),
  retries: 0,
  handler: () => {
    throw new Error("always");
  },
  onDeadLetter: ({ n }) => message(leaf, { n: n + 1000 }),
});

for (const push of [false, true]) {
  Deno.test(`tracing: handlers continue the span that made their message (${push ? "push" : "pull"})`, async () => {
    const db = await openPglite();
    await migrateRuntime(db);
    const tracing = recordingTracing();
    const runtime = new Runtime({
      db,
      actors: [top, leaf, fanIn, doomed],
      transport: push ? new InProcessTransport() : new TableQueueTransport(db, { pollMs: 20 }),
      logger: jsonLogger("silent"),
      tracing,
    });
    await runtime.start();
    try {
      const { job } = await tracing.root(() => runtime.enqueue(top, { n: 1 }));
      await tracing.root(() => runtime.enqueue(doomed, { n: 2 }));
      const done = async () => (await runtime.listJobs({ limit: 10 })).items;
      for (let i = 0; i < 200; i++) {
        const jobs = await done();
        if (
          jobs.length === 6 && jobs.every((j) => j.status !== "queued" && j.status !== "running")
        ) {
          break;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      const spans = tracing.spans;
      const named = (name: string) => spans.filter((s) => s.name === name);
      const [request] = named("request");
      const [send] = named("send t.top");
      const [handler] = named("process t.top");
      assert.ok(request && send && handler, JSON.stringify(spans));
      assert.equal(send.parentSpanId, request.spanId);
      assert.equal(handler.parentSpanId, send.spanId);
      assert.equal(handler.traceId, request.traceId);
      const [doomedSend] = named("send t.doomed");
      const leaves = named("process t.leaf").filter((s) => s.traceId === request.traceId);
      assert.equal(leaves.length, 2, "the sent and the grouped message");
      for (const l of leaves) assert.equal(l.parentSpanId, handler.spanId);
      const [continuation] = named("process t.fanin");
      assert.equal(continuation?.parentSpanId, handler.spanId);
      // A dead letter's message continues the trace of the message that died.
      const hooked = named("process t.leaf").filter((s) => s.traceId === doomedSend?.traceId);
      assert.equal(hooked.length, 1, JSON.stringify(spans));
      assert.equal(hooked[0]?.parentSpanId, doomedSend?.spanId);
      const rows = await db.query<{ id: string; traceparent: string | null }>(
        "SELECT id, traceparent FROM troupe_jobs WHERE id = $1",
        [job.id],
      );
      assert.equal(rows[0]?.traceparent, formatTraceparent(send.traceId, send.spanId, 1));
    } finally {
      await runtime.stop();
      await db.close();
    }
  });
}

Deno.test("tracing: without a tracer, messages carry no trace context", async () => {
  const db = await openPglite();
  await migrateRuntime(db);
  const runtime = new Runtime({
    db,
    actors: [leaf],
    transport: new TableQueueTransport(db),
    logger: jsonLogger("silent"),
  });
  try {
    const { job } = await runtime.enqueue(leaf, { n: 1 });
    const rows = await db.query<{ traceparent: string | null }>(
      "SELECT traceparent FROM troupe_jobs WHERE id = $1",
      [job.id],
    );
    assert.equal(rows[0]?.traceparent, null);
  } finally {
    await db.close();
  }
});

Deno.test("parseTraceparent() reads W3C traceparents and refuses bad ones", () => {
  const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  assert.deepEqual(parseTraceparent(tp), {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
    flags: 1,
  });
  assert.equal(formatTraceparent("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 1), tp);
  for (
    const bad of [
      "",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
    ]
  ) assert.equal(parseTraceparent(bad), undefined, bad);
  assert.equal(traceLogFields(noTracing)(), undefined);
  assert.deepEqual(traceLogFields({ current: () => ({ traceparent: tp }) })(), {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
  });
});
