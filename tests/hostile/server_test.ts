/**
 * The hostile suite: one real server (`deno task start`'s command, embedded drivers) attacked
 * from outside with each hostile file and client the generators in this folder make. Throughout
 * every attack the server's resident memory stays under a bound and `/api/health` answers within
 * 1 s; afterwards the server still does ordinary work, and each attack ended as a 4xx or a
 * failed job with its code, run once.
 */
import assert from "node:assert/strict";
import {
  cyclicOutline,
  deepArray,
  deepOutline,
  flateBomb,
  lzwBomb,
  pageTreeLoop,
} from "./pdf_files.ts";
import { hugeFieldForm, rawRequest, slowloris, trickleBody } from "./http_attacks.ts";
import { gzipBomb, millionColumnCsv, wideCsv, wideNdjson } from "./input_files.ts";
import { type HostileServer, jobOutcome, startHostileServer, type Watch } from "./server.ts";
import { sharedWorld } from "../shared_world.ts";

/**
 * The memory bound the server must stay under, in MiB: the platform's 512 MB of Deno Deploy
 * would leave no room for the embedded database and a worker's heap, so the embedded server is
 * held to the same figure as its worker limits allow (the base process, a 256 MiB worker heap
 * and its buffers).
 */
const RSS_BOUND_MB = 768;
/** Slowest acceptable health answer during an attack. */
const HEALTH_BOUND_MS = 1000;

/** A test against the shared server; a failure says how the server fares and what it logged. */
function hostileTest(name: string, fn: (s: HostileServer) => Promise<void>): void {
  // The ops sanitizer off: the shared server's output is read between tests.
  Deno.test({ name: `hostile: ${name}`, sanitizeOps: false }, async () => {
    const s = await server();
    try {
      await fn(s);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${s.diagnosis()}`, { cause: err });
    }
  });
}

const shared = sharedWorld(() =>
  startHostileServer({
    // Small limits so that each attack is refused or cut off within seconds.
    UNTRUSTED_WORKER_HEAP_MB: "256",
    UNTRUSTED_TASK_TIMEOUT_MS: "20000",
    HTTP_HEADER_TIMEOUT_MS: "3000",
    UPLOAD_IDLE_MS: "3000",
    UPLOAD_MIN_BYTES_PER_SECOND: "4096",
    UPLOAD_RATE_WINDOW_MS: "2000",
    DATASET_WORKERS: "1",
    EXTRACT_WORKERS: "1",
  })
);
const server = shared.open;

function assertWithstood(what: string, watch: Watch): void {
  console.log(
    `${what}: peak RSS ${watch.peakRssMb.toFixed(0)} MiB, slowest health ${
      watch.slowestHealthMs.toFixed(0)
    } ms over ${watch.healthChecks} checks`,
  );
  assert.ok(
    watch.peakRssMb < RSS_BOUND_MB,
    `${what}: peak RSS ${watch.peakRssMb.toFixed(0)} MiB, bound ${RSS_BOUND_MB}`,
  );
  assert.deepEqual(watch.healthFailures, [], `${what}: health failed`);
  assert.ok(watch.healthChecks > 0, `${what}: health was checked`);
  assert.ok(
    watch.slowestHealthMs < HEALTH_BOUND_MS,
    `${what}: slowest health answer ${watch.slowestHealthMs.toFixed(0)} ms`,
  );
}

async function uploadCourse(s: HostileServer, name: string, pdf: Uint8Array) {
  const form = new FormData();
  form.set("title", name);
  form.set(
    "files",
    new File([pdf as Uint8Array<ArrayBuffer>], `${name}.pdf`, {
      type: "application/pdf",
    }),
  );
  const res = await fetch(`${s.url}/api/courses`, { method: "POST", headers: s.auth, body: form });
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  return body as { courseId: string; jobId: string };
}

async function courseOutcome(s: HostileServer, courseId: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await fetch(`${s.url}/api/courses/${courseId}`, { headers: s.auth });
    const course = await res.json();
    if (course.status === "failed" || course.status === "ready") return course;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`course ${courseId} did not end within ${timeoutMs} ms`);
}

/**
 * The jobs of every actor since `since`: each ran once (no retry), none is still queued or
 * running, and none became a dead letter (bad input is not worth replaying).
 */
async function assertNoRetries(s: HostileServer, since: string) {
  const res = await fetch(`${s.url}/api/jobs?limit=100`, { headers: s.auth });
  const { items } = await res.json() as {
    items: { id: string; actor: string; attempts: number; status: string; createdAt: string }[];
  };
  const recent = items.filter((j) => j.createdAt >= since);
  assert.ok(recent.length > 0, "the attack made jobs");
  for (const job of recent) {
    assert.ok(job.attempts <= 1, `${job.actor} ${job.id} ran ${job.attempts} times`);
    assert.ok(
      ["succeeded", "failed", "cancelled"].includes(job.status),
      `${job.actor} ${job.id} is ${job.status}`,
    );
  }
  const dead = await (await fetch(`${s.url}/api/dead-letters?limit=100`, { headers: s.auth }))
    .json() as { items: { jobId: string }[] };
  const ids = new Set(recent.map((j) => j.id));
  assert.deepEqual(dead.items.filter((d) => ids.has(d.jobId)), [], "no dead letters");
}

for (
  const [name, make] of [
    ["a Flate bomb (4 MB inflating to 4 GB)", () => flateBomb()],
    ["an LZW bomb", () => lzwBomb({ inflatedMb: 1024 })],
    ["an outline nested 100,000 deep", () => deepOutline()],
    ["a cyclic outline", () => cyclicOutline()],
    ["a page tree that loops", () => pageTreeLoop()],
    ["arrays nested 100,000 deep", () => deepArray()],
  ] as const
) {
  hostileTest(`${name} fails its course as PDF_TOO_COMPLEX, once`, async (s) => {
    const since = new Date().toISOString();
    const { watch, result } = await s.watch(async () => {
      const { courseId } = await uploadCourse(s, "hostile", make());
      return await courseOutcome(s, courseId);
    });
    assertWithstood(name, watch);
    assert.equal(result.status, "failed");
    assert.equal(result.error?.code, "PDF_TOO_COMPLEX", JSON.stringify(result.error));
    await assertNoRetries(s, since);
  });
}

hostileTest("a chunked form field that never ends is a 413 at once", async (s) => {
  const form = hugeFieldForm({ field: "name" });
  const { watch, result } = await s.watch(async () => {
    // Over a raw connection: the server answers early and closes, which a fetch client
    // still sending its body reports as a broken connection instead of the answer.
    const res = await rawRequest({
      port: Number(new URL(s.url).port),
      path: "/api/datasets",
      headers: { ...s.auth, "content-type": form.contentType },
      body: form.body,
    });
    return { status: res.status, body: JSON.parse(res.body) };
  });
  assertWithstood("huge field", watch);
  assert.equal(result.status, 413);
  assert.equal(result.body.error.code, "PAYLOAD_TOO_LARGE");
  assert.ok(form.pulled() < 64 << 20, `the server read ${form.pulled()} bytes of it`);
});

hostileTest("100 slowloris connections are closed; health answers meanwhile", async (s) => {
  const port = Number(new URL(s.url).port);
  const { watch, result } = await s.watch(async () => {
    const clients = await Promise.all(
      Array.from({ length: 100 }, () => slowloris({ port, intervalMs: 500 })),
    );
    const closed = await Promise.all(clients.map((c) => c.closed));
    return closed.map((c) => c.afterMs);
  });
  assertWithstood("slowloris", watch);
  const slowest = Math.max(...result);
  assert.ok(slowest < 15_000, `the last connection was closed after ${slowest.toFixed(0)} ms`);
});

hostileTest("an upload trickling below the minimum rate is cut off with 408", async (s) => {
  const csv = "a,b\n" + "1,2\n".repeat(50_000);
  const slow = trickleBody(csv, { chunkBytes: 100, intervalMs: 100 });
  const { watch, result } = await s.watch(async () => {
    const res = await fetch(`${s.url}/api/datasets?name=slow`, {
      method: "POST",
      headers: { ...s.auth, "content-type": "text/csv" },
      body: slow.body,
    });
    return { status: res.status, body: await res.json() };
  });
  assertWithstood("trickle", watch);
  assert.equal(result.status, 408);
  assert.equal(result.body.error.code, "UPLOAD_TOO_SLOW");
  assert.ok(!slow.done(), "cut off before the end");
});

hostileTest("wide CSVs are refused at upload from their header", async (s) => {
  for (
    const [what, body] of [["2,000 columns", wideCsv(2000)], [
      "1,000,000 columns",
      millionColumnCsv(),
    ]] as const
  ) {
    const { watch, result } = await s.watch(async () => {
      const res = await rawRequest({
        port: Number(new URL(s.url).port),
        path: "/api/datasets?name=wide",
        headers: { ...s.auth, "content-type": "text/csv" },
        body,
      });
      return { status: res.status, body: JSON.parse(res.body), sentBytes: res.sentBytes };
    });
    assertWithstood(what, watch);
    assert.equal(result.status, 422, `${what}: ${JSON.stringify(result.body)}`);
    assert.equal(result.body.error.code, "TOO_MANY_COLUMNS");
    // What the client wrote before the answer includes what the loopback's socket buffers took
    // (several MB on Linux): the million-column file is about 10 MB, refused from its header.
    assert.ok(result.sentBytes < 6 << 20, `${what}: ${result.sentBytes} bytes sent first`);
  }
});

hostileTest("a gzip bomb sent as a dataset is a 413 after a little of it", async (s) => {
  const bomb = gzipBomb();
  const { watch, result } = await s.watch(async () => {
    const res = await rawRequest({
      port: Number(new URL(s.url).port),
      path: "/api/datasets?name=bomb&format=csv",
      headers: { ...s.auth, "content-type": "application/gzip" },
      body: bomb.body,
    });
    return { status: res.status, body: JSON.parse(res.body) };
  });
  assertWithstood("gzip bomb", watch);
  assert.equal(result.status, 413, JSON.stringify(result.body));
  assert.equal(result.body.error.code, "PAYLOAD_TOO_LARGE");
  assert.ok(bomb.pulled() < 4 << 20, `the server read ${bomb.pulled()} bytes of it`);
});

hostileTest("NDJSON with 2,000 keys fails its dataset as TOO_MANY_COLUMNS, once", async (s) => {
  const since = new Date().toISOString();
  const { watch, result } = await s.watch(async () => {
    const res = await fetch(`${s.url}/api/datasets?name=wide-json&format=ndjson`, {
      method: "POST",
      headers: { ...s.auth, "content-type": "application/x-ndjson" },
      body: wideNdjson(2000),
    });
    const { datasetId } = await res.json();
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const d = await (await fetch(`${s.url}/api/datasets/${datasetId}`, { headers: s.auth }))
        .json();
      if (d.status === "failed" || d.status === "ready") return d;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error("the dataset did not end");
  });
  assertWithstood("wide NDJSON", watch);
  assert.equal(result.status, "failed");
  assert.equal(result.error?.code, "TOO_MANY_COLUMNS");
  await assertNoRetries(s, since);
});

hostileTest("after every attack the server still does ordinary work", async (s) => {
  const res = await fetch(`${s.url}/api/actors/system.echo/jobs`, {
    method: "POST",
    headers: { ...s.auth, "content-type": "application/json" },
    body: JSON.stringify({ input: { message: "still here" } }),
  });
  assert.equal(res.status, 202);
  const { jobId } = await res.json();
  const job = await jobOutcome(s, jobId);
  assert.equal(job.status, "succeeded");
  assert.ok(s.alive());
});
