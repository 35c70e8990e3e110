/**
 * What the request-timing middleware (routes/metrics.ts) adds to one request, in process:
 * `app.fetch` of `GET /api/jobs/:id` through a Hono app shaped like Troupe's (a `*` and an
 * `/api/*` middleware, the route in a sub-app), with and without `httpMetrics`, in interleaved
 * rounds. No server, no database: the difference is the middleware's own cost.
 *
 *   deno run -A bench/http_metrics.ts [--requests 100000] [--rounds 5]
 */
import { Hono } from "hono";
import { parseArgs } from "node:util";
import { PrometheusMetrics } from "../db/metrics/prometheus.ts";
import { httpMetrics } from "../routes/metrics.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    requests: { type: "string", default: "100000" },
    rounds: { type: "string", default: "5" },
  },
});
const N = Number(args.requests);

function app(withMetrics: boolean) {
  const a = new Hono();
  if (withMetrics) a.use("*", httpMetrics(new PrometheusMetrics()));
  a.use("*", async function requestId(c, next) {
    c.header("x-request-id", "r");
    await next();
  });
  a.use("/api/*", async function auth(_c, next) {
    await next();
  });
  const jobs = new Hono();
  jobs.get("/jobs/:id", (c) => c.json({ id: c.req.param("id"), status: "succeeded" }));
  a.route("/api", jobs);
  return a;
}

const ids = Array.from({ length: 1000 }, (_, i) => `0190${String(i).padStart(4, "0")}-0000-7000`);
async function run(a: Hono): Promise<number> {
  const began = performance.now();
  for (let i = 0; i < N; i++) {
    const res = await a.fetch(new Request(`http://x/api/jobs/${ids[i % ids.length]}`));
    await res.arrayBuffer();
  }
  return (performance.now() - began) * 1000 / N;
}

const off = app(false);
const on = app(true);
await run(off);
await run(on); // warm-up
const results: { off: number; on: number }[] = [];
for (let r = 0; r < Number(args.rounds); r++) {
  results.push({ off: await run(off), on: await run(on) });
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const offUs = median(results.map((r) => r.off));
const onUs = median(results.map((r) => r.on));
console.log(
  `rounds (µs/request, off / on): ${
    results.map((r) => `${r.off.toFixed(2)} / ${r.on.toFixed(2)}`).join(", ")
  }`,
);
console.log(
  `median: ${offUs.toFixed(2)} µs without, ${onUs.toFixed(2)} µs with metrics: +${
    (onUs - offUs).toFixed(2)
  } µs per request`,
);
