import assert from "node:assert/strict";
import { Cache } from "../cache/cache.ts";
import { MemoryCacheStore } from "../cache/memory.ts";
import type { QueueDepth } from "@troupe/runtime";
import { PrometheusMetrics, type QueueSource } from "./prometheus.ts";
import { MemorySharedCounters } from "./shared.ts";
import { OpenAiEmbedder } from "../../actors/courses/embeddings/openai.ts";

/** The value of the sample `name{labels}` in an exposition text, or undefined. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    if (
      Object.entries(labels).every(([k, v]) => got[k] === v) &&
      Object.keys(got).length === Object.keys(labels).length
    ) {
      return Number(m[3]);
    }
  }
  return undefined;
}

Deno.test("jobs are counted by actor and outcome, timed, and retries and dead letters counted", async () => {
  const m = new PrometheusMetrics();
  m.jobFinished("a", "succeeded", 20);
  m.jobFinished("a", "succeeded", 2000);
  m.jobFinished("a", "retry", 5);
  m.jobFinished("b", "failed", 7);
  m.deadLettered("b", "failed");
  m.deadLettered("b", "poison");
  const text = await m.render();
  assert.equal(sample(text, "troupe_jobs_total", { actor: "a", outcome: "succeeded" }), 2);
  assert.equal(sample(text, "troupe_jobs_total", { actor: "a", outcome: "retry" }), 1);
  assert.equal(sample(text, "troupe_jobs_total", { actor: "b", outcome: "failed" }), 1);
  assert.equal(sample(text, "troupe_job_retries_total", { actor: "a" }), 1);
  assert.equal(sample(text, "troupe_job_retries_total", { actor: "b" }), undefined);
  assert.equal(sample(text, "troupe_dead_letters_total", { actor: "b", reason: "failed" }), 1);
  assert.equal(sample(text, "troupe_dead_letters_total", { actor: "b", reason: "poison" }), 1);
  const labels = { actor: "a", outcome: "succeeded" };
  assert.equal(sample(text, "troupe_job_duration_seconds_count", labels), 2);
  assert.equal(sample(text, "troupe_job_duration_seconds_sum", labels), 2.02);
  assert.equal(sample(text, "troupe_job_duration_seconds_bucket", { ...labels, le: "0.05" }), 1);
  assert.equal(sample(text, "troupe_job_duration_seconds_bucket", { ...labels, le: "5" }), 2);
});

Deno.test("requests are recorded under their route template and status", async () => {
  const m = new PrometheusMetrics();
  m.request("GET", "/api/jobs/:id", 200, 3);
  m.request("GET", "/api/jobs/:id", 200, 4);
  m.request("GET", "/api/jobs/:id", 404, 1);
  const text = await m.render();
  const ok = { method: "GET", route: "/api/jobs/:id", status: "200" };
  assert.equal(sample(text, "troupe_http_requests_total", ok), 2);
  assert.equal(
    sample(text, "troupe_http_requests_total", { ...ok, status: "404" }),
    1,
  );
  assert.equal(sample(text, "troupe_http_request_duration_seconds_sum", ok), 0.007);
});

Deno.test("heartbeats are counted and stamped per worker", async () => {
  const m = new PrometheusMetrics({ now: () => 1_700_000_000_000 });
  m.heartbeat("w-1");
  m.heartbeat("w-1");
  const text = await m.render();
  assert.equal(sample(text, "troupe_instance_heartbeats_total", { worker: "w-1" }), 2);
  assert.equal(
    sample(text, "troupe_instance_last_heartbeat_timestamp_seconds", { worker: "w-1" }),
    1_700_000_000,
  );
});

Deno.test("external calls are counted by service and status, a network error as error", async () => {
  const m = new PrometheusMetrics();
  const statuses = [200, 429];
  const fake: typeof fetch = () => {
    const status = statuses.shift();
    return status
      ? Promise.resolve(new Response("{}", { status }))
      : Promise.reject(new TypeError("connection refused"));
  };
  const f = m.fetch("openai_chat", fake);
  assert.equal((await f("http://x/")).status, 200);
  assert.equal((await f("http://x/")).status, 429);
  await assert.rejects(f("http://x/"), TypeError);
  const text = await m.render();
  const s = (status: string) =>
    sample(text, "troupe_external_requests_total", { service: "openai_chat", status });
  assert.deepEqual([s("200"), s("429"), s("error")], [1, 1, 1]);
  assert.equal(
    sample(text, "troupe_external_request_duration_seconds_count", { service: "openai_chat" }),
    3,
  );
});

Deno.test("cache hits and misses are reported by TTL class", async () => {
  const m = new PrometheusMetrics();
  const cache = new Cache(new MemoryCacheStore());
  m.watchCache(cache);
  const compute = () => Promise.resolve({ rows: [1] });
  await cache.getOrCompute("queryResult", "t1:q:1", compute);
  await cache.getOrCompute("queryResult", "t1:q:1", compute);
  await cache.getOrCompute("queryResult", "t1:q:1", compute);
  await cache.getOrCompute("datasetMeta", "t1:d:1", compute);
  let text = await m.render();
  assert.equal(sample(text, "troupe_cache_hits_total", { ttl_class: "queryResult" }), 2);
  assert.equal(sample(text, "troupe_cache_misses_total", { ttl_class: "queryResult" }), 1);
  assert.equal(sample(text, "troupe_cache_misses_total", { ttl_class: "datasetMeta" }), 1);
  assert.equal(sample(text, "troupe_cache_hits_total", { ttl_class: "datasetMeta" }), undefined);
  // A second scrape reports the totals again, not their sum with the first.
  await cache.getOrCompute("datasetMeta", "t1:d:1", compute);
  text = await m.render();
  assert.equal(sample(text, "troupe_cache_hits_total", { ttl_class: "queryResult" }), 2);
  assert.equal(sample(text, "troupe_cache_hits_total", { ttl_class: "datasetMeta" }), 1);
});

/** A queue source whose readings are given by the test, counting its calls. */
class FakeQueue implements QueueSource {
  readonly actors = new Map([["a", {}], ["b", {}]]);
  calls: number[] = [];
  next: { actors: QueueDepth[]; capped: boolean } | Error = { actors: [], capped: false };
  queueDepths(limit: number) {
    this.calls.push(limit);
    const next = this.next;
    return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
  }
}

Deno.test("queue gauges: one reading per cache period, a series for every actor", async () => {
  let now = 0;
  const m = new PrometheusMetrics({ queueScanLimit: 500, queueCacheMs: 5000, now: () => now });
  const queue = new FakeQueue();
  m.watchQueue(queue);
  queue.next = { actors: [{ actor: "a", depth: 7, oldestSeconds: 12.5 }], capped: false };
  let text = await m.render();
  assert.deepEqual(queue.calls, [500], "the three gauges share one reading");
  assert.equal(sample(text, "troupe_queue_depth", { actor: "a" }), 7);
  assert.equal(sample(text, "troupe_queue_depth", { actor: "b" }), 0);
  assert.equal(sample(text, "troupe_queue_oldest_seconds", { actor: "a" }), 12.5);
  assert.equal(sample(text, "troupe_queue_oldest_seconds", { actor: "b" }), 0);
  assert.equal(sample(text, "troupe_queue_depth_capped"), 0);

  queue.next = { actors: [{ actor: "b", depth: 500, oldestSeconds: 1 }], capped: true };
  now = 4999;
  text = await m.render();
  assert.equal(queue.calls.length, 1, "reused within the cache period");
  assert.equal(sample(text, "troupe_queue_depth", { actor: "a" }), 7);
  now = 5000;
  text = await m.render();
  assert.equal(queue.calls.length, 2);
  assert.equal(sample(text, "troupe_queue_depth", { actor: "a" }), 0);
  assert.equal(sample(text, "troupe_queue_depth", { actor: "b" }), 500);
  assert.equal(sample(text, "troupe_queue_depth_capped"), 1);
});

Deno.test("queue gauges: a failed reading drops the series and is retried at the next scrape", async () => {
  const m = new PrometheusMetrics({ queueCacheMs: 60_000, now: () => 0 });
  const queue = new FakeQueue();
  m.watchQueue(queue);
  m.jobFinished("a", "succeeded", 1);
  queue.next = new Error("database down");
  let text = await m.render();
  assert.equal(sample(text, "troupe_queue_depth", { actor: "a" }), undefined);
  assert.equal(sample(text, "troupe_jobs_total", { actor: "a", outcome: "succeeded" }), 1);
  queue.next = { actors: [{ actor: "a", depth: 3, oldestSeconds: 0 }], capped: false };
  text = await m.render();
  assert.equal(queue.calls.length, 2, "not reused although within the cache period");
  assert.equal(sample(text, "troupe_queue_depth", { actor: "a" }), 3);
});

Deno.test("with a shared store, every instance shows the sums of all instances' counters", async () => {
  const shared = new MemorySharedCounters();
  const a = new PrometheusMetrics({ shared });
  const b = new PrometheusMetrics({ shared });
  a.jobFinished("x", "succeeded", 20);
  a.jobFinished("x", "succeeded", 20);
  b.jobFinished("x", "succeeded", 3000);
  b.request("GET", "/api/jobs/:id", 200, 1);
  await a.flush();
  await a.flush(); // nothing gained since: nothing added twice
  const text = await b.render(); // flushes b, reads the sums
  const labels = { actor: "x", outcome: "succeeded" };
  assert.equal(sample(text, "troupe_jobs_total", labels), 3);
  assert.equal(sample(text, "troupe_job_duration_seconds_count", labels), 3);
  assert.equal(sample(text, "troupe_job_duration_seconds_sum", labels), 3.04);
  assert.equal(sample(text, "troupe_job_duration_seconds_bucket", { ...labels, le: "0.05" }), 2);
  assert.equal(sample(text, "troupe_job_duration_seconds_bucket", { ...labels, le: "+Inf" }), 3);
  assert.equal(
    sample(text, "troupe_http_requests_total", {
      method: "GET",
      route: "/api/jobs/:id",
      status: "200",
    }),
    1,
  );
  assert.match(text, /^# TYPE troupe_jobs_total counter$/m);
  assert.match(text, /^# TYPE troupe_job_duration_seconds histogram$/m);
  // Gauges stay this instance's own.
  assert.match(text, /^# TYPE troupe_queue_depth gauge$/m);
  a.jobFinished("x", "succeeded", 1);
  assert.equal(sample(await a.render(), "troupe_jobs_total", labels), 4);
});

Deno.test("a failed flush keeps its gains for the next; render falls back to this instance's", async () => {
  const inner = new MemorySharedCounters();
  let down = true;
  const shared = {
    add: (d: ReadonlyMap<string, number>) =>
      down ? Promise.reject(new Error("redis down")) : inner.add(d),
    read: () => down ? Promise.reject(new Error("redis down")) : inner.read(),
  };
  const errors: unknown[] = [];
  const m = new PrometheusMetrics({ shared, onSharedError: (e) => errors.push(e) });
  m.deadLettered("x", "failed");
  const local = await m.render();
  assert.equal(errors.length, 1);
  assert.equal(sample(local, "troupe_dead_letters_total", { actor: "x", reason: "failed" }), 1);
  m.deadLettered("x", "failed");
  down = false;
  const text = await m.render();
  assert.equal(sample(text, "troupe_dead_letters_total", { actor: "x", reason: "failed" }), 2);
  assert.equal((await inner.read()).get('troupe_dead_letters_total{actor="x",reason="failed"}'), 2);
});

Deno.test("the OpenAI embedder's calls go through the fetch it is given, and are counted", async () => {
  const m = new PrometheusMetrics();
  const fake: typeof fetch = (_input, init) => {
    const { input } = JSON.parse(String(init?.body)) as { input: string[] };
    const data = input.map((_, index) => ({ index, embedding: [1, 0, 0] }));
    return Promise.resolve(Response.json({ data }));
  };
  const embedder = new OpenAiEmbedder({
    baseUrl: "http://openai.test/v1",
    apiKey: "k",
    model: "m",
    dimensions: 3,
    fetch: m.fetch("openai_embeddings", fake),
  });
  const vectors = await embedder.embed(["a", "b"]);
  assert.equal(vectors.length, 2);
  const text = await m.render();
  assert.equal(
    sample(text, "troupe_external_requests_total", { service: "openai_embeddings", status: "200" }),
    1,
  );
});
