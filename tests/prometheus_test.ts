/**
 * The metrics end to end: Troupe composed as `main.ts` composes it (METRICS_TOKEN set) serves
 * `/metrics`; Debian's `prometheus` (installed by tests/services.sh) scrapes it with the bearer
 * token and loads deploy/prometheus/alerts.yml; jobs run through the HTTP API; PromQL over
 * Prometheus's HTTP API sees them; every `expr` of deploy/grafana/troupe.json and every alert
 * rule evaluates without error. `promtool check rules` passes on the alert rules.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { z } from "zod";
import { defineActor, NonRetryableError } from "@troupe/runtime";
import { loadConfig } from "../deploy/config.ts";
import { compose } from "../main.ts";
import { Redis } from "@upstash/redis";
import { PrometheusMetrics } from "../db/metrics/prometheus.ts";
import { RedisSharedCounters } from "../db/metrics/shared.ts";
import { startRedisBridge } from "./fixtures/upstash_redis_bridge.ts";
import { waitFor } from "./harness.ts";
import { freePort, untilUp } from "./start_task.ts";

const PROMETHEUS = "/usr/bin/prometheus";
const PROMTOOL = "/usr/bin/promtool";
const ROOT = new URL("..", import.meta.url).pathname;
const ALERTS = join(ROOT, "deploy/prometheus/alerts.yml");
const DASHBOARD = join(ROOT, "deploy/grafana/troupe.json");
const TOKEN = "prometheus-test-token-0123456789";
const API_KEY = "tr_prometheus_test_key_0123456789abcdef";

function installed(path: string): void {
  try {
    Deno.statSync(path);
  } catch {
    throw new Error(`${path} is missing: run tests/services.sh (it installs Debian's prometheus)`);
  }
}

Deno.test("promtool checks the alert rules", async () => {
  installed(PROMTOOL);
  const out = await new Deno.Command(PROMTOOL, { args: ["check", "rules", ALERTS] }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /SUCCESS: \d+ rules found/);
});

const ok = defineActor({
  name: "p.ok",
  input: z.object({ n: z.number() }),
  key: (i) => `p.ok:${i.n}`,
  handler: (input) => ({ n: input.n }),
});
const bad = defineActor({
  name: "p.bad",
  input: z.object({ n: z.number() }),
  key: (i) => `p.bad:${i.n}`,
  handler: () => {
    throw new NonRetryableError("refused", { code: "REFUSED" });
  },
});

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

Deno.test(
  { name: "Prometheus scrapes /metrics and answers PromQL about the jobs" },
  async () => {
    installed(PROMETHEUS);
    const dir = await Deno.makeTempDir({ prefix: "troupe-prometheus-" });
    const config = loadConfig({
      DATA_DIR: join(dir, "data"),
      LOG_LEVEL: "silent",
      METRICS_TOKEN: TOKEN,
      DEV_API_KEY: API_KEY,
      LEASE_MS: "3000",
      EXTRACT_WORKERS: "0",
      DATASET_WORKERS: "0",
      RATE_LIMIT_PER_IP: "100000",
      RATE_LIMIT_PER_KEY: "100000",
    });
    await Deno.mkdir(config.DATA_DIR, { recursive: true });
    const troupe = await compose(config, [ok, bad]);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      troupe.app.fetch,
    );
    const target = `127.0.0.1:${server.addr.port}`;
    const promPort = freePort();
    const prometheusUrl = `http://127.0.0.1:${promPort}`;
    await Deno.writeTextFile(
      join(dir, "prometheus.yml"),
      [
        "global: { scrape_interval: 1s, evaluation_interval: 1s }",
        `rule_files: [${JSON.stringify(ALERTS)}]`,
        "scrape_configs:",
        "  - job_name: troupe",
        "    metrics_path: /metrics",
        `    authorization: { type: Bearer, credentials: ${JSON.stringify(TOKEN)} }`,
        `    static_configs: [{ targets: [${JSON.stringify(target)}] }]`,
        "",
      ].join("\n"),
    );
    const prometheus = new Deno.Command(PROMETHEUS, {
      args: [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        "--log.level=warn",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(prometheus.stderr).text();
    const query = async (promql: string): Promise<Sample[]> => {
      const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = await res.json();
      if (body.status !== "success") {
        throw new Error(`${promql}: ${body.errorType}: ${body.error}`);
      }
      return body.data.resultType === "vector" ? body.data.result : [];
    };
    const scalar = async (promql: string) => Number((await query(promql))[0]?.value[1] ?? NaN);
    try {
      await untilUp(`${prometheusUrl}/-/ready`, prometheus, { timeoutMs: 30_000 });
      await waitFor(async () => (await scalar('up{job="troupe"}')) === 1, {
        timeoutMs: 30_000,
        intervalMs: 250,
        what: "a successful scrape with the token",
      });

      const headers = { "x-api-key": API_KEY, "content-type": "application/json" };
      const enqueue = async (actor: string, n: number) => {
        const res = await fetch(`http://${target}/api/actors/${actor}/jobs`, {
          method: "POST",
          headers,
          body: JSON.stringify({ input: { n } }),
        });
        assert.equal(res.status, 202, await res.clone().text());
        return (await res.json()).jobId as string;
      };
      const ids = [];
      for (let n = 0; n < 5; n++) ids.push(await enqueue("p.ok", n));
      for (let n = 0; n < 2; n++) ids.push(await enqueue("p.bad", n));
      for (const id of ids) {
        await waitFor(async () => {
          const res = await fetch(`http://${target}/api/jobs/${id}`, { headers });
          const job = await res.json();
          return ["succeeded", "failed"].includes(job.status);
        }, { timeoutMs: 30_000, intervalMs: 100, what: `job ${id} to finish` });
      }

      await waitFor(
        async () =>
          (await scalar('sum(troupe_jobs_total{actor="p.ok",outcome="succeeded"})')) === 5 &&
          (await scalar('sum(troupe_dead_letters_total{actor="p.bad",reason="failed"})')) === 2 &&
          // The status polls above, scraped after their last answer.
          (await scalar('sum(troupe_http_requests_total{route="/api/jobs/:id"})')) >= 7,
        { timeoutMs: 30_000, intervalMs: 250, what: "the jobs' counters in Prometheus" },
      );
      assert.equal(await scalar('sum(troupe_jobs_total{outcome="succeeded"})') >= 5, true);
      assert.equal(await scalar('sum(troupe_jobs_total{actor="p.bad",outcome="failed"})'), 2);
      assert.equal(
        await scalar(
          'sum(troupe_http_requests_total{route="/api/actors/:name/jobs",method="POST",status="202"})',
        ),
        7,
      );
      assert.ok(await scalar('sum(troupe_http_requests_total{route="/api/jobs/:id"})') >= 7);
      assert.equal(
        (await query('troupe_http_requests_total{route=~".*[0-9a-f]{8}-.*"}')).length,
        0,
      );
      assert.equal(
        await scalar('sum(troupe_job_duration_seconds_count{actor="p.ok",outcome="succeeded"})'),
        5,
      );
      assert.equal(await scalar('troupe_queue_depth{actor="p.ok"}'), 0);
      assert.equal(await scalar('troupe_queue_oldest_seconds{actor="p.bad"}'), 0);
      await waitFor(async () => (await scalar("sum(troupe_instance_heartbeats_total)")) > 0, {
        timeoutMs: 15_000,
        intervalMs: 250,
        what: "a heartbeat in Prometheus",
      });
      const stale = await scalar(
        "time() - max(troupe_instance_last_heartbeat_timestamp_seconds)",
      );
      assert.ok(stale < 10, `last heartbeat ${stale} s ago`);
      // rate() needs the series to rise between two samples: the first jobs may all have finished
      // between two scrapes, the series appearing at its final value. Run more, then wait.
      for (let n = 10; n < 13; n++) await enqueue("p.ok", n);
      await waitFor(
        async () => (await query(`sum by (actor) (rate(troupe_jobs_total[1m])) > 0`)).length > 0,
        { timeoutMs: 15_000, intervalMs: 250, what: "a rate over the jobs" },
      );

      // Every expr of the dashboard, with Grafana's variables as Grafana would fill them.
      const dashboard = JSON.parse(await Deno.readTextFile(DASHBOARD));
      const exprs: { title: string; expr: string }[] = [];
      for (const panel of dashboard.panels) {
        for (const t of panel.targets ?? []) exprs.push({ title: panel.title, expr: t.expr });
      }
      for (const v of dashboard.templating.list) {
        const q = typeof v.query === "string" ? v.query : v.query?.query;
        const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q ?? "");
        if (m) exprs.push({ title: `variable ${v.name}`, expr: `group by (${m[2]}) (${m[1]})` });
      }
      assert.ok(exprs.length >= 15, `${exprs.length} exprs`);
      const filled = (e: string) =>
        e.replaceAll("$__rate_interval", "1m").replaceAll('"$actor"', '".*"');
      const answered: string[] = [];
      for (const { title, expr } of exprs) {
        assert.doesNotMatch(filled(expr), /\$/, `${title}: an unknown variable`);
        const result = await query(filled(expr)); // throws on a PromQL error
        if (result.length > 0) answered.push(title);
      }
      for (
        const title of [
          "Requests per second by route and status",
          "Attempts per second by actor and outcome",
          "Queue depth by actor (from the database; lower bound when capped)",
          "Dead letters by actor and reason",
          "Seconds since each instance's last heartbeat",
          "variable actor",
        ]
      ) assert.ok(answered.includes(title), `no data for ${title}`);

      // The alert rules loaded and evaluated without error.
      const rules = await waitFor(async () => {
        const res = await fetch(`${prometheusUrl}/api/v1/rules`);
        const groups = (await res.json()).data.groups as {
          rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[];
        }[];
        const all = groups.flatMap((g) => g.rules);
        return all.length > 0 && all.every((r) => !r.lastEvaluation.startsWith("0001"))
          ? all
          : null;
      }, { timeoutMs: 15_000, intervalMs: 250, what: "the alert rules to be evaluated" });
      for (const r of rules) assert.equal(r.health, "ok", `${r.name}: ${r.lastError}`);
      assert.ok(rules.some((r) => r.name === "TroupeQueueOldestJobWaiting"));
    } finally {
      try {
        prometheus.kill("SIGTERM");
      } catch { /* exited */ }
      const status = await prometheus.status;
      const log = await stderr;
      if (!status.success && status.signal !== "SIGTERM") console.error(log);
      await server.shutdown();
      await troupe.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  { name: "two instances summed in Redis: promtool accepts the exposition" },
  async () => {
    installed(PROMTOOL);
    const bridge = await startRedisBridge({ token: "metrics-test" });
    const redis = new Redis({ url: bridge.url, token: "metrics-test", retry: { retries: 0 } });
    const key = `test:metrics:${crypto.randomUUID()}`;
    try {
      const a = new PrometheusMetrics({ shared: new RedisSharedCounters(redis, { key }) });
      const b = new PrometheusMetrics({ shared: new RedisSharedCounters(redis, { key }) });
      a.jobFinished("x", "succeeded", 12);
      a.request("GET", '/api/"odd"\\route', 200, 2);
      b.jobFinished("x", "succeeded", 1500);
      b.jobFinished("x", "retry", 4);
      b.heartbeat("w-b");
      await a.flush();
      const text = await b.render();
      assert.match(text, /^troupe_jobs_total\{actor="x",outcome="succeeded"\} 2$/m);
      assert.match(text, /^troupe_job_retries_total\{actor="x"\} 1$/m);
      assert.match(
        text,
        /^troupe_job_duration_seconds_bucket\{actor="x",le="\+Inf",outcome="succeeded"\} 2$/m,
      );
      const check = new Deno.Command(PROMTOOL, {
        args: ["check", "metrics"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = check.stdin.getWriter();
      await writer.write(new TextEncoder().encode(text));
      await writer.close();
      const out = await check.output();
      const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      // promtool lints too (exit 3 for lint findings only); a parse error is exit 1.
      assert.ok(out.code === 0 || out.code === 3, `promtool exit ${out.code}: ${said}`);
      assert.doesNotMatch(said, /error while linting|parse/i, said);
    } finally {
      await redis.del(key);
      await bridge.close();
    }
  },
);
