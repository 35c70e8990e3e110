/**
 * The QStash webhook refuses every bad signature (missing, forged, wrong key, tampered body,
 * other URL, expired, replayed) and runs nothing for it; a good one delivers. Signatures are
 * made here the way QStash makes them (HS256 JWT over the body's SHA-256).
 */
import assert from "node:assert/strict";
import { Receiver } from "@upstash/qstash";
import { z } from "zod";
import { defineActor, InProcessTransport, jsonLogger, Runtime } from "@troupe/runtime";
import { TenantStore } from "../db/tenants.ts";
import { pgliteTarget } from "../tests/harness.ts";
import { createApp } from "./app.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";

const CURRENT = "sig_current_key_for_tests";
const NEXT = "sig_next_key_for_tests";
const PUBLIC = "https://troupe.example.com";

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
const text = (s: string) => b64url(new TextEncoder().encode(s));

async function sign(
  key: string,
  { url, body, exp, jti = crypto.randomUUID() }: {
    url: string;
    body: string;
    exp?: number;
    jti?: string;
  },
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const bodyHash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)),
  );
  const header = text(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = text(JSON.stringify({
    iss: "Upstash",
    sub: url,
    iat: now,
    nbf: now,
    exp: exp ?? now + 300,
    jti,
    body: b64url(bodyHash),
  }));
  const hmac = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign(
    "HMAC",
    hmac,
    new TextEncoder().encode(`${header}.${claims}`),
  );
  return `${header}.${claims}.${b64url(new Uint8Array(mac))}`;
}

let runs = 0;
const work = defineActor({
  name: "w.work",
  input: z.object({}),
  handler: () => ++runs,
});

async function setup() {
  const tdb = await pgliteTarget.open();
  const runtime = new Runtime({
    db: tdb.db,
    actors: [work],
    transport: new InProcessTransport(),
    logger: jsonLogger("silent"),
  });
  // Not started: deliveries run through deliver() from the webhook only.
  const app = createApp({
    limiter: new MemoryRateLimiter(),
    runtime,
    tenants: new TenantStore(tdb.db),
    logger: jsonLogger("silent"),
    webhooks: {
      receiver: new Receiver({ currentSigningKey: CURRENT, nextSigningKey: NEXT }),
      publicUrl: PUBLIC,
      db: tdb.db,
    },
  });
  return { tdb, runtime, app };
}

Deno.test(
  "the webhook refuses every bad signature and runs nothing",
  async () => {
    const { tdb, runtime, app } = await setup();
    try {
      const { job } = await runtime.enqueue("w.work", {});
      const body = JSON.stringify({ jobId: job.id });
      const url = `${PUBLIC}/actors/w.work`;
      const post = (signature: string | null, payload = body, path = "/actors/w.work") =>
        app.request(path, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(signature ? { "upstash-signature": signature } : {}),
          },
          body: payload,
        });
      const bad: [string, Response][] = [
        ["missing", await post(null)],
        ["garbage", await post("not.a.jwt")],
        ["unknown key", await post(await sign("sig_someone_else", { url, body }))],
        ["tampered body", await post(await sign(CURRENT, { url, body }), body.replace("}", " }"))],
        ["other URL", await post(await sign(CURRENT, { url: `${PUBLIC}/actors/other`, body }))],
        [
          "expired",
          await post(await sign(CURRENT, { url, body, exp: Math.floor(Date.now() / 1000) - 10 })),
        ],
      ];
      for (const [what, res] of bad) {
        assert.equal(res.status, 401, what);
        const json = await res.json();
        assert.equal(json.error.code, "INVALID_SIGNATURE", what);
      }
      assert.equal(runs, 0, "nothing ran");
      assert.equal((await runtime.getJob(job.id)).status, "queued");

      // The next signing key is accepted too (QStash rotates keys).
      const good = await sign(NEXT, { url, body });
      const ok = await post(good);
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { status: "succeeded" });
      assert.equal(runs, 1);

      const replayed = await post(good);
      assert.equal(replayed.status, 401);
      assert.equal((await replayed.json()).error.code, "REPLAYED_SIGNATURE");

      // A fresh signature for a message already done: acknowledged, nothing runs again.
      const again = await post(await sign(CURRENT, { url, body }));
      assert.equal(again.status, 200);
      assert.deepEqual(await again.json(), { status: "succeeded" });
      assert.equal(runs, 1);

      // A well-signed body that is not a message: non-retryable, nothing runs.
      const junk = '{"nope":1}';
      const odd = await post(await sign(CURRENT, { url, body: junk }), junk);
      assert.equal(odd.status, 489);
      assert.equal(odd.headers.get("upstash-nonretryable-error"), "true");
      await odd.body?.cancel();
    } finally {
      await runtime.stop();
      await tdb.cleanup();
    }
  },
);

Deno.test("a failure callback dead-letters a queued message once", async () => {
  const { tdb, runtime, app } = await setup();
  try {
    const { job } = await runtime.enqueue("w.work", {});
    const callback = JSON.stringify({
      status: 503,
      retried: 3,
      maxRetries: 3,
      sourceMessageId: "msg_1",
      url: `${PUBLIC}/actors/w.work`,
      sourceBody: btoa(JSON.stringify({ jobId: job.id })),
      dlqId: "dlq_1",
    });
    const url = `${PUBLIC}/actors/w.work/failure`;
    const send = async () =>
      await app.request("/actors/w.work/failure", {
        method: "POST",
        headers: { "upstash-signature": await sign(CURRENT, { url, body: callback }) },
        body: callback,
      });
    const first = await send();
    assert.equal(first.status, 200);
    assert.equal((await first.json()).outcome, "dead-lettered");
    const second = await send();
    assert.equal((await second.json()).outcome, "finished");
    const failed = await runtime.getJob(job.id);
    assert.equal(failed.status, "failed");
    assert.equal((failed.error as { code: string }).code, "DELIVERY_FAILED");
    const dls = await runtime.listDeadLetters({});
    assert.equal(dls.items.length, 1);
    assert.equal(dls.items[0]!.jobId, job.id);
  } finally {
    await runtime.stop();
    await tdb.cleanup();
  }
});
