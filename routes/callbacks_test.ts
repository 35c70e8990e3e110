/**
 * Completion callbacks through the API (actors/system/callback.ts): a job given a
 * `callbackUrl` POSTs one signed event when it ends, retried after a failure, its delivery on
 * the job's view; URLs the egress rule refuses are a 400 with nothing enqueued; the signing
 * key is read and rotated with a full key only. A real receiver on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { type AnyActor, defineActor, type SqlDatabase } from "@troupe/runtime";
import { echoActor } from "../actors/system/echo.ts";
import { type CallbackEvent, Callbacks, verifyCallback } from "../actors/system/callback.ts";
import { CallbackSecrets } from "../actors/system/callback_secrets.ts";
import { EgressPolicy } from "../actors/net/egress.ts";
import { generateKeyText, parseKeys, SecretBox } from "../db/secrets.ts";
import { openApiWorld } from "../tests/api_world.ts";
import { startCallbackReceiver } from "../tests/fixtures/callback_receiver.ts";
import { countRows, pgliteTarget, sleep, waitFor } from "../tests/harness.ts";
import { datasetActors } from "../actors/datasets/pipeline.ts";
import { courseActors } from "../actors/courses/pipeline.ts";
import { InlineExtractor } from "../actors/courses/extract.ts";
import { makePdf, sentences } from "../tests/fixtures/pdfs.ts";
import { FsBlobStore } from "../db/blobs/fs.ts";
import { localCourseAdapters, localDatasetAdapters } from "../tests/local_adapters.ts";
import { openUsageWorld, TOKEN } from "../tests/usage_world.ts";
import { tick } from "../actors/usage/schedule.ts";
import { generateReports, generateUsage } from "../tests/fixtures/usage_api.ts";

type Egress = ConstructorParameters<typeof EgressPolicy>[0];

/** The callbacks of a test world: a fresh signing key, retries 50 ms apart. */
function testCallbacks(
  db: SqlDatabase,
  egress: Egress = { allow: ["127.0.0.1"] },
  options: { retries?: number; timeoutMs?: number } = {},
): Callbacks {
  return new Callbacks({
    secrets: new CallbackSecrets(db, new SecretBox(parseKeys(generateKeyText("cb")))),
    egress: new EgressPolicy(egress),
    backoffBaseMs: 50,
    ...options,
  });
}

async function callbackWorld(
  { egress = { allow: ["127.0.0.1"] }, retries = 3, actors = [] }: {
    egress?: Egress;
    retries?: number;
    actors?: AnyActor[];
  } = {},
) {
  let callbacks: Callbacks | undefined;
  const world = await openApiWorld((tdb) => {
    callbacks = testCallbacks(tdb.db, egress, { retries, timeoutMs: 2_000 });
    return [echoActor, ...actors, callbacks.actor()];
  }, () => ({ callbacks: callbacks!, perIpPerMinute: 100_000, perKeyPerMinute: 100_000 }));
  const tenant = await world.tenants.createTenant("acme");
  const key = (await world.tenants.createKey(tenant.id)).key;
  const call = async (method: string, path: string, body?: unknown, apiKey = key) => {
    const res = await world.app.request(path, {
      method,
      headers: { "content-type": "application/json", "x-api-key": apiKey },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: await res.json() };
  };
  const enqueue = (input: unknown, callbackUrl: string) =>
    call("POST", "/api/v1/actors/system.echo/jobs", { input, callbackUrl });
  /** The job's view once its callback is no longer pending. */
  const settled = (jobId: string) =>
    waitFor(async () => {
      const { body } = await call("GET", `/api/v1/jobs/${jobId}`);
      return body.callback && body.callback.status !== "pending" ? body : null;
    }, { timeoutMs: 20_000, what: "the callback to settle" });
  return { world, tenant, key, call, enqueue, settled };
}

Deno.test("a job's callback arrives once, signed, and its delivery is on the job", async () => {
  const { world, call, enqueue, settled } = await callbackWorld();
  const receiver = startCallbackReceiver();
  try {
    const queued = await enqueue({ message: "hi" }, receiver.url);
    assert.equal(queued.status, 202, JSON.stringify(queued.body));
    const { jobId } = queued.body;
    const before = await call("GET", `/api/v1/jobs/${jobId}`);
    assert.equal(before.body.callback.url, receiver.url);

    const job = await settled(jobId);
    assert.equal(job.status, "succeeded");
    assert.equal(job.callback.status, "delivered");
    assert.equal(job.callback.attempts, 1);
    assert.equal(job.callback.lastResponseStatus, 200);
    assert.equal(job.callback.lastError, null);
    assert.ok(!Number.isNaN(Date.parse(job.callback.deliveredAt)));

    await sleep(300);
    assert.equal(receiver.received.length, 1, "exactly one delivery");
    const [got] = receiver.received;
    const { body: secret } = await call("GET", "/api/v1/callbacks/secret");
    assert.match(secret.secret, /^whsec_[0-9a-f]{64}$/);
    const signature = got!.headers.get("troupe-signature")!;
    assert.ok(await verifyCallback(secret.secret, signature, got!.body), "the HMAC checks");
    const t = Number(/t=(\d+)/.exec(signature)![1]);
    assert.ok(Math.abs(t * 1000 - got!.at) < 5_000, "the timestamp is the send time");
    assert.equal(await verifyCallback(secret.secret, signature, got!.body + " "), false);
    assert.equal(await verifyCallback("whsec_other", signature, got!.body), false);
    assert.equal(
      await verifyCallback(secret.secret, signature, got!.body, { now: got!.at + 600_000 }),
      false,
      "an old signature is refused",
    );
    const event = JSON.parse(got!.body) as CallbackEvent;
    assert.equal(event.id, job.callback.eventId);
    assert.equal(got!.headers.get("troupe-event-id"), event.id);
    assert.equal(event.type, "job.succeeded");
    assert.equal(event.job.id, jobId);
    assert.equal(event.job.actor, "system.echo");
    assert.equal((event.job.result as { message: string }).message, "hi");
    assert.equal(got!.headers.get("content-type"), "application/json");
  } finally {
    await receiver.close();
    await world.close();
  }
});

Deno.test("a callback answered 500 is retried with backoff, the same event each time", async () => {
  const { world, enqueue, settled } = await callbackWorld();
  const receiver = startCallbackReceiver({ failFirst: 2, failStatus: 500 });
  try {
    const { body } = await enqueue({}, receiver.url);
    const job = await settled(body.jobId);
    assert.equal(job.callback.status, "delivered");
    assert.equal(job.callback.attempts, 3);
    assert.equal(job.callback.lastResponseStatus, 200);
    assert.equal(receiver.received.length, 3);
    const ids = new Set(receiver.received.map((r) => r.headers.get("troupe-event-id")));
    assert.equal(ids.size, 1, "one event id on every attempt");
    const bodies = new Set(receiver.received.map((r) => r.body));
    assert.equal(bodies.size, 1, "the same event on every attempt");
    const gaps = receiver.received.slice(1).map((r, i) => r.at - receiver.received[i]!.at);
    assert.ok(gaps.every((g) => g >= 20), `retried after a delay: ${gaps}`);
  } finally {
    await receiver.close();
    await world.close();
  }
});

Deno.test("a redirect is not followed: it is a failed attempt, retried", async () => {
  const { world, enqueue, settled } = await callbackWorld();
  const receiver = startCallbackReceiver({ failFirst: 1, failStatus: 302 });
  try {
    const { body } = await enqueue({}, receiver.url);
    const job = await settled(body.jobId);
    assert.equal(job.callback.status, "delivered");
    assert.equal(job.callback.attempts, 2);
    assert.deepEqual(receiver.received.map((r) => r.method), ["POST", "POST"]);
  } finally {
    await receiver.close();
    await world.close();
  }
});

Deno.test("a callback never accepted ends failed, with the receiver's last status", async () => {
  const { world, enqueue, settled } = await callbackWorld({ retries: 1 });
  const receiver = startCallbackReceiver({ failFirst: 100, failStatus: 503 });
  try {
    const { body } = await enqueue({}, receiver.url);
    const job = await settled(body.jobId);
    assert.equal(job.status, "succeeded", "the job itself is not failed by its callback");
    assert.equal(job.callback.status, "failed");
    assert.equal(job.callback.attempts, 2);
    assert.equal(job.callback.lastResponseStatus, 503);
    assert.equal(job.callback.lastError.code, "CALLBACK_HTTP_503");
    assert.equal(job.callback.deliveredAt, null);
    assert.equal(receiver.received.length, 2);
  } finally {
    await receiver.close();
    await world.close();
  }
});

/** `test.flaky`: fails (no retry, so it dead-letters) while `down` holds. */
function flakyActor(down: { value: boolean }) {
  return defineActor({
    name: "test.flaky",
    input: z.object({ n: z.number().int(), tenantId: z.string().nullable().optional() }),
    key: (input) => `flaky:${input.n}`,
    retries: 0,
    handler: (input) => {
      if (down.value) throw new Error("the service is down");
      return { n: input.n };
    },
  });
}

Deno.test("a replayed dead letter's job calls back when it ends, by id and by a bulk retry", async () => {
  const down = { value: true };
  const { world, call, settled } = await callbackWorld({ actors: [flakyActor(down)] });
  const receiver = startCallbackReceiver();
  const events = () => receiver.received.map((r) => JSON.parse(r.body) as CallbackEvent);
  try {
    const enqueue = (n: number) =>
      call("POST", "/api/v1/actors/test.flaky/jobs", { input: { n }, callbackUrl: receiver.url });
    const first = (await enqueue(1)).body.jobId as string;
    const second = (await enqueue(2)).body.jobId as string;
    for (const id of [first, second]) {
      const job = await settled(id);
      assert.equal(job.status, "failed");
      assert.equal(job.callback.status, "delivered");
    }
    assert.deepEqual(
      events().map((e) => [e.job.id, e.type]).sort(),
      [[first, "job.failed"], [second, "job.failed"]].sort(),
    );
    down.value = false;

    // One dead letter replayed by its id.
    const letters = await call("GET", "/api/v1/dead-letters?actor=test.flaky");
    const letter = letters.body.items.find((d: { jobId: string }) => d.jobId === first);
    assert.ok(letter, JSON.stringify(letters.body));
    const replayed = await call("POST", `/api/v1/dead-letters/${letter.id}/replay`);
    assert.equal(replayed.status, 202, JSON.stringify(replayed.body));
    const replayId = replayed.body.jobId as string;
    const pending = await call("GET", `/api/v1/jobs/${replayId}`);
    assert.equal(pending.body.callback?.url, receiver.url, "the replay has the callback");
    const replayedJob = await settled(replayId);
    assert.equal(replayedJob.status, "succeeded");
    assert.equal(replayedJob.callback.status, "delivered");
    const event = events().find((e) => e.job.id === replayId);
    assert.ok(event, "the replay's completion was called back");
    assert.equal(event.type, "job.succeeded");
    assert.equal(event.id, replayedJob.callback.eventId);
    assert.deepEqual(event.job.result, { n: 1 });

    // The other by a retry of the failed jobs matching a filter.
    const retried = await call("POST", "/api/v1/jobs/retry", { actor: "test.flaky" });
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    assert.equal(retried.body.count, 1);
    const retryId = retried.body.jobs[0].retryJobId as string;
    const retryJob = await settled(retryId);
    assert.equal(retryJob.status, "succeeded");
    assert.equal(retryJob.callback.status, "delivered");
    const retryEvent = events().find((e) => e.job.id === retryId);
    assert.equal(retryEvent?.type, "job.succeeded");
    assert.deepEqual(retryEvent?.job.result, { n: 2 });

    await sleep(300);
    assert.equal(receiver.received.length, 4, "one event per job that ended, no more");
  } finally {
    await receiver.close();
    await world.close();
  }
});

Deno.test("callback URLs the egress rule refuses are a 400 and nothing is enqueued", async () => {
  const { world, call, enqueue } = await callbackWorld({
    egress: { requireHttps: true, resolve: () => Promise.resolve(["93.184.216.34"]) },
  });
  try {
    const cases: [string, string][] = [
      ["http://hooks.example.com/x", "SCHEME_NOT_ALLOWED"],
      ["https://127.0.0.1/x", "ADDRESS_NOT_ALLOWED"],
      ["https://10.1.2.3/x", "ADDRESS_NOT_ALLOWED"],
      ["https://[::1]/x", "ADDRESS_NOT_ALLOWED"],
      ["https://169.254.169.254/latest/meta-data", "ADDRESS_NOT_ALLOWED"],
      ["https://localhost/x", "ADDRESS_NOT_ALLOWED"],
      ["https://user:pw@hooks.example.com/x", "CREDENTIALS_IN_URL"],
      ["ftp://hooks.example.com/x", "SCHEME_NOT_ALLOWED"],
      ["not a url", "BAD_URL"],
    ];
    for (const [url, reason] of cases) {
      const res = await enqueue({}, url);
      assert.equal(res.status, 400, `${url}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, "CALLBACK_URL_NOT_ALLOWED", url);
      assert.equal(res.body.error.details.reason, reason, url);
      assert.equal(res.body.error.details.field, "callbackUrl");
    }
    assert.equal(await countRows(world.tdb.db, "troupe_jobs"), 0);
    // A public https URL is accepted (the job waits: nothing calls that host here).
    const ok = await call("POST", "/api/v1/actors/system.echo/jobs", {
      input: {},
      delayMs: 600_000,
      callbackUrl: "https://hooks.example.com/x",
    });
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
  } finally {
    await world.close();
  }
});

Deno.test("the signing key: made once, rotated with a full key, hidden from read-only keys", async () => {
  const { world, tenant, call } = await callbackWorld();
  try {
    const first = await call("GET", "/api/v1/callbacks/secret");
    assert.equal(first.status, 200);
    assert.equal((await call("GET", "/api/v1/callbacks/secret")).body.secret, first.body.secret);
    const rotated = await call("POST", "/api/v1/callbacks/secret");
    assert.equal(rotated.status, 201);
    assert.notEqual(rotated.body.secret, first.body.secret);
    assert.equal((await call("GET", "/api/v1/callbacks/secret")).body.secret, rotated.body.secret);
    const reader = (await world.tenants.createKey(tenant.id, { name: "r", scope: "read" })).key;
    const refused = await call("GET", "/api/v1/callbacks/secret", undefined, reader);
    assert.equal(refused.status, 403);
    // Another tenant has a key of its own.
    const other = await world.tenants.createTenant("other");
    const otherKey = (await world.tenants.createKey(other.id)).key;
    const theirs = await call("GET", "/api/v1/callbacks/secret", undefined, otherKey);
    assert.notEqual(theirs.body.secret, rotated.body.secret);
  } finally {
    await world.close();
  }
});

Deno.test("a dataset upload with a callbackUrl gets one event when the dataset is ready", async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-callbacks-" });
  let callbacks: Callbacks | undefined;
  const blobs = new FsBlobStore(dir);
  const world = await openApiWorld((tdb) => {
    callbacks = testCallbacks(tdb.db);
    return [
      ...datasetActors({ ...localDatasetAdapters(), db: tdb.db, blobs }),
      callbacks.actor(),
    ];
  }, (tdb) => ({ callbacks: callbacks!, datasets: { db: tdb.db, blobs } }));
  const receiver = startCallbackReceiver();
  try {
    const key = (await world.tenants.createKey((await world.tenants.createTenant("acme")).id)).key;
    const url = `/api/v1/datasets?name=people&callbackUrl=${encodeURIComponent(receiver.url)}`;
    const res = await world.app.request(url, {
      method: "POST",
      headers: { "content-type": "text/csv", "x-api-key": key },
      body: "name,age\nada,36\nalan,41\n",
    });
    const uploaded = await res.json();
    assert.equal(res.status, 202, JSON.stringify(uploaded));
    const event = await waitFor(
      () => receiver.received[0] ? JSON.parse(receiver.received[0].body) as CallbackEvent : null,
      { timeoutMs: 20_000, what: "the dataset's callback" },
    );
    const dataset = await (await world.app.request(`/api/v1/datasets/${uploaded.datasetId}`, {
      headers: { "x-api-key": key },
    })).json();
    assert.equal(dataset.status, "ready", "ready before its callback is sent");
    assert.equal(event.type, "job.succeeded");
    assert.deepEqual(event.subject, { type: "dataset", id: uploaded.datasetId });
    assert.equal(event.job.id, uploaded.jobId);
    assert.equal(event.job.kind, "pipeline");
    assert.equal(event.job.actor, "dataset.ingest");
    await sleep(300);
    assert.equal(receiver.received.length, 1);
    const job = await waitFor(async () => {
      const j = await (await world.app.request(`/api/v1/jobs/${uploaded.jobId}`, {
        headers: { "x-api-key": key },
      })).json();
      return j.callback.status === "delivered" ? j : null;
    }, { what: "the delivery to show" });
    assert.equal(job.callback.url, receiver.url);

    // A refused URL in the query is a 400 before the file is read; nothing is stored.
    const refused = await world.app.request(
      `/api/v1/datasets?callbackUrl=${encodeURIComponent("http://10.0.0.1/x")}`,
      {
        method: "POST",
        headers: { "content-type": "text/csv", "x-api-key": key },
        body: "a\n1\n",
      },
    );
    const body = await refused.json();
    assert.equal(refused.status, 400);
    assert.equal(body.error.code, "CALLBACK_URL_NOT_ALLOWED");
    assert.equal(await countRows(world.tdb.db, "troupe_datasets"), 1);
  } finally {
    await receiver.close();
    await world.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a report source's callbackUrl is called back when its sync ends", async () => {
  const w = await openUsageWorld(pgliteTarget, {
    messages: generateUsage({ count: 20, reports: 2 }),
    reports: generateReports(2),
  }, { callbacks: true });
  const receiver = startCallbackReceiver();
  try {
    const refused = await w.call("POST", "/api/v1/sources", {
      name: "u",
      baseUrl: w.api.url,
      token: TOKEN,
      callbackUrl: "http://192.168.1.1/x",
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.code, "CALLBACK_URL_NOT_ALLOWED");
    const sourceId = await w.addSource({ callbackUrl: receiver.url });
    assert.equal(
      (await w.call("GET", `/api/v1/sources/${sourceId}`)).body.callbackUrl,
      receiver.url,
    );
    const sync = await w.sync(sourceId);
    assert.equal(sync.status, "succeeded");
    const event = await waitFor(
      () => receiver.received[0] ? JSON.parse(receiver.received[0].body) as CallbackEvent : null,
      { timeoutMs: 20_000, what: "the sync's callback" },
    );
    assert.equal(event.type, "job.succeeded");
    assert.deepEqual(event.subject, { type: "source", id: sourceId });
    assert.equal(event.job.id, sync.id);
    assert.equal(event.job.actor, "usage.sync");
    // A scheduled sync calls back too.
    const [scheduled] = await tick(w.deps, new Date(Date.now() + 3 * 86_400_000));
    assert.ok(scheduled, "the tick started a sync");
    await w.settled(sourceId, scheduled!);
    const second = await waitFor(
      () => receiver.received[1] ? JSON.parse(receiver.received[1].body) as CallbackEvent : null,
      { timeoutMs: 20_000, what: "the scheduled sync's callback" },
    );
    assert.equal(second.job.id, scheduled);
    // Cleared: the next sync calls nobody back.
    await w.call("PATCH", `/api/v1/sources/${sourceId}`, { callbackUrl: null });
    await w.sync(sourceId);
    await sleep(300);
    assert.equal(receiver.received.length, 2);
  } finally {
    await receiver.close();
    await w.close();
  }
});

Deno.test("a course upload with a callbackUrl form field gets one event when it ends", async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-callbacks-" });
  let callbacks: Callbacks | undefined;
  const blobs = new FsBlobStore(dir);
  // Closed with the world: it keeps a read PDF open for a while, for the next page range.
  const extractor = new InlineExtractor();
  const world = await openApiWorld((tdb) => {
    callbacks = testCallbacks(tdb.db);
    return [
      ...courseActors({ ...localCourseAdapters(tdb.db), extractor, db: tdb.db, blobs }),
      callbacks.actor(),
    ];
  }, (tdb) => ({
    callbacks: callbacks!,
    courses: { ...localCourseAdapters(tdb.db), db: tdb.db, blobs },
  }));
  const receiver = startCallbackReceiver();
  try {
    const key = (await world.tenants.createKey((await world.tenants.createTenant("school")).id))
      .key;
    const pdf = await makePdf([{ heading: "Tides", paragraphs: [sentences("tide", 12)] }]);
    const form = new FormData();
    form.append("title", "Tides");
    form.append("callbackUrl", receiver.url);
    form.append("files", new File([new Uint8Array(pdf)], "tides.pdf", { type: "application/pdf" }));
    const req = new Request("http://x/", { method: "POST", body: form });
    const res = await world.app.request("/api/v1/courses", {
      method: "POST",
      body: await req.arrayBuffer(),
      headers: { "content-type": req.headers.get("content-type")!, "x-api-key": key },
    });
    const uploaded = await res.json();
    assert.equal(res.status, 202, JSON.stringify(uploaded));
    const event = await waitFor(
      () => receiver.received[0] ? JSON.parse(receiver.received[0].body) as CallbackEvent : null,
      { timeoutMs: 30_000, what: "the course's callback" },
    );
    assert.deepEqual(event.subject, { type: "course", id: uploaded.courseId });
    assert.equal(event.job.id, uploaded.jobId);
    assert.equal(event.job.actor, "course.ingest");
    assert.equal(event.type, "job.succeeded");
    await sleep(300);
    assert.equal(receiver.received.length, 1);
  } finally {
    await receiver.close();
    await world.close();
    extractor.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a deployment without callbacks refuses a callbackUrl with a 409", async () => {
  const world = await openApiWorld([echoActor]);
  try {
    const key = (await world.tenants.createKey((await world.tenants.createTenant("acme")).id)).key;
    const res = await world.app.request("/api/v1/actors/system.echo/jobs", {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": key },
      body: JSON.stringify({ input: {}, callbackUrl: "https://hooks.example.com/x" }),
    });
    const body = await res.json();
    assert.equal(res.status, 409, JSON.stringify(body));
    assert.equal(body.error.code, "CALLBACKS_UNAVAILABLE");
    assert.equal(await countRows(world.tdb.db, "troupe_jobs"), 0);
  } finally {
    await world.close();
  }
});
