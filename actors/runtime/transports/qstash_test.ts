/**
 * The QStash transport's three parts, against the QStash stand-in (tests/fixtures) with the
 * official client: an outbox row in the enqueue transaction, a publish after the commit (the
 * relay publishing what a failed one left), and the signed webhook it owns as consumer side:
 * outcomes answered the way QStash understands, replays refused, nonces in the runtime's
 * schema; a message's trace context reaches the delivery as a `traceparent` header.
 */
import assert from "node:assert/strict";
import { Client, Receiver } from "@upstash/qstash";
import { z } from "zod";
import { startQStash, upstashSignature } from "../../../tests/fixtures/qstash_server.ts";
import { defineActor } from "../define.ts";
import { openPglite } from "../drivers/pglite.ts";
import { migrate, runtimeMigrations } from "../migrate.ts";
import { jsonLogger, type SqlDatabase } from "../ports.ts";
import { Runtime } from "../runtime.ts";
import { PUBLIC_TABLES as T } from "../sql/tables.ts";
import type { Consumer, DeliveryOutcome, OutgoingMessage } from "../transport.ts";
import { qstashMigrations, qstashReceiver, QStashTransport } from "./qstash.ts";

const TOKEN = "qstash-unit-token";
const CURRENT = "sig_unit_current_0123456789";
const NEXT = "sig_unit_next_0123456789";
const receiver = new Receiver({ currentSigningKey: CURRENT, nextSigningKey: NEXT });

const step = defineActor({
  name: "qs.step",
  input: z.object({ n: z.number() }),
  key: (i) => `qs:${i.n}`,
  handler: (input) => input.n,
});

const waitUntil = async (ok: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A free port on 127.0.0.1 (for a URL QStash must know before the server runs). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A QStash transport whose publish can be made to fail. */
class Flaky extends QStashTransport {
  down = false;
  override async afterCommit(messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.down) throw new Error("QStash unreachable");
    await super.afterCommit(messages);
  }
}

Deno.test("qstash: outbox row in the transaction, publish after it, relay of a failed publish, delivery through the webhook", async () => {
  const qstash = await startQStash({
    token: TOKEN,
    currentSigningKey: CURRENT,
    nextSigningKey: NEXT,
    retryDelayMs: () => 20,
  });
  const db = await openPglite();
  await migrate(db, [runtimeMigrations, qstashMigrations]);
  const port = freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const client = new Client({ baseUrl: qstash.url, token: TOKEN });
  const transport = new Flaky({ client, publicUrl });
  assert.deepEqual(transport.inTransaction, { outbox: true, notify: false });
  const runtime = new Runtime({
    db,
    actors: [step],
    transport,
    logger: jsonLogger("silent"),
    backgroundTimers: false,
  });
  const app = transport.receiver({ consumer: runtime, receiver, db });
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, app.fetch);
  const outbox = async () =>
    (await db.query<{ job_id: string }>(`SELECT job_id FROM ${T.outbox}`)).map((r) => r.job_id);
  try {
    await runtime.start();
    const first = await runtime.enqueue(step, { n: 1 });
    assert.deepEqual(await outbox(), [], "published: the outbox row is gone");
    await waitUntil(async () => (await runtime.getJob(first.job.id)).status === "succeeded");

    transport.down = true;
    await assert.rejects(runtime.enqueue(step, { n: 2 }), /QStash unreachable/);
    const [id] = await outbox();
    assert.ok(id, "a failed publish leaves the outbox row");
    transport.down = false;
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await runtime.maintenancePass()).relayed, 1);
    assert.deepEqual(await outbox(), []);
    await waitUntil(async () => (await runtime.getJob(id).then((j) => j.status)) === "succeeded");
    await qstash.idle();
  } finally {
    await runtime.stop();
    await server.shutdown();
    await qstash.close();
    await db.close();
  }
});

Deno.test("qstash: a message's traceparent is forwarded to its delivery as a header", async () => {
  const qstash = await startQStash({
    token: TOKEN,
    currentSigningKey: CURRENT,
    nextSigningKey: NEXT,
  });
  const heard: (string | null)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    heard.push(req.headers.get("traceparent"));
    return new Response("{}", { headers: { "content-type": "application/json" } });
  });
  const transport = new QStashTransport({
    client: new Client({ baseUrl: qstash.url, token: TOKEN }),
    publicUrl: `http://127.0.0.1:${server.addr.port}`,
  });
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const message = (id: string, trace?: string): OutgoingMessage => ({
    id,
    actor: step.name,
    key: "qs:1",
    runAt: new Date(),
    policy: step.policy,
    ...(trace ? { traceparent: trace } : {}),
  });
  try {
    assert.equal((await transport.request(message("plain"))).headers, undefined);
    await transport.afterCommit([message("traced", traceparent)]);
    await qstash.idle();
    // A batch (two messages) forwards it too.
    await transport.afterCommit([message("b1", traceparent), message("b2")]);
    await qstash.idle();
    assert.deepEqual(heard.sort(), [null, traceparent, traceparent].sort());
  } finally {
    await server.shutdown();
    await qstash.close();
  }
});

/** Answers each delivery with the next outcome; records what it was asked. */
function scripted(outcomes: DeliveryOutcome[]) {
  const asked: string[] = [];
  const givenUp: { jobId: string; code: string }[] = [];
  const consumer: Pick<Consumer, "deliver" | "giveUp"> = {
    deliver: (jobId) => {
      asked.push(jobId);
      return Promise.resolve(outcomes.shift() ?? { status: "succeeded" });
    },
    giveUp: (jobId, error) => {
      givenUp.push({ jobId, code: error.code });
      return Promise.resolve("dead-lettered");
    },
  };
  return { consumer, asked, givenUp };
}

Deno.test("qstash receiver: outcomes are answered as QStash understands, replays and bad bodies refused, nonces in the schema", async () => {
  const db: SqlDatabase = await openPglite();
  await migrate(db, [qstashMigrations], { schema: "qs_unit" });
  const publicUrl = "https://troupe.example.com/";
  const s = scripted([
    { status: "succeeded" },
    { status: "busy", retryInMs: 1500 },
    { status: "failed" },
  ]);
  const app = qstashReceiver({ consumer: s.consumer, receiver, publicUrl, db, schema: "qs_unit" });
  const post = async (path: string, body: string, signature?: string) =>
    await app.request(path, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "upstash-signature": signature ??
          await upstashSignature(
            CURRENT,
            `https://troupe.example.com${path}`,
            new TextEncoder().encode(body),
          ),
      },
      body,
    });
  try {
    const body = JSON.stringify({ jobId: "j1" });
    const signature = await upstashSignature(
      CURRENT,
      "https://troupe.example.com/actors/qs.step",
      new TextEncoder().encode(body),
    );
    const ok = await post("/actors/qs.step", body, signature);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { status: "succeeded" });

    const replay = await post("/actors/qs.step", body, signature);
    assert.equal(replay.status, 401);
    assert.equal((await replay.json()).error.code, "REPLAYED_SIGNATURE");

    const busy = await post("/actors/qs.step", body);
    assert.equal(busy.status, 503);
    assert.equal(busy.headers.get("retry-after"), "2");

    const failed = await post("/actors/qs.step", body);
    assert.equal(failed.status, 489);
    assert.equal(failed.headers.get("upstash-nonretryable-error"), "true");

    const bad = await post("/actors/qs.step", JSON.stringify({ job: 1 }));
    assert.equal(bad.status, 489);
    assert.equal((await bad.json()).error.code, "BAD_MESSAGE");
    assert.deepEqual(s.asked, ["j1", "j1", "j1"]);

    const callback = JSON.stringify({
      status: 500,
      retried: 3,
      maxRetries: 3,
      sourceBody: btoa(body),
    });
    const gaveUp = await post("/actors/qs.step/failure", callback);
    assert.equal(gaveUp.status, 200);
    assert.deepEqual(await gaveUp.json(), { jobId: "j1", outcome: "dead-lettered" });
    assert.deepEqual(s.givenUp, [{ jobId: "j1", code: "DELIVERY_FAILED" }]);

    const big = await post("/actors/qs.step", JSON.stringify({ jobId: "x".repeat(300_000) }));
    assert.equal(big.status, 413);

    const [nonces] = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "qs_unit"."troupe_webhook_nonces"`,
    );
    assert.equal(nonces?.n, 5, "each accepted signature's id, in the schema given");
  } finally {
    await db.close();
  }
});
