/**
 * The Prometheus adapter (prom-client): counters and histograms of this process, and gauges
 * read at scrape time (queue depth from the database, cache lookups from the cache's own
 * counters). It is the runtime's {@link RuntimeObserver}, the HTTP middleware's sink
 * (`routes/metrics.ts`) and the wrapper of external API calls ({@link PrometheusMetrics.fetch}).
 *
 * Counters live in this process: each instance exposes its own, and Prometheus sums them over
 * the scraped instances; with a `shared` store, every instance adds its counters' gains to it and
 * exposes the sums instead (for deployments where a scrape reaches any instance). Queue gauges
 * come from the database, so every instance reports the same figures (aggregate them with `max`,
 * not `sum`). See deploy/README.md, "Metrics".
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Cache } from "../cache/cache.ts";
import type { DeadLetterReason, JobOutcome, QueueDepth, RuntimeObserver } from "@troupe/runtime";
import type { SharedCounterStore } from "./shared.ts";

/** What the queue gauges read: the runtime's bounded depth query and its actors. */
export interface QueueSource {
  readonly actors: ReadonlyMap<string, unknown>;
  queueDepths(limit: number): Promise<{ actors: QueueDepth[]; capped: boolean }>;
}

export interface PrometheusMetricsOptions {
  /** Most queued jobs one depth reading looks at (see `sql/queue_depth.ts`). @default 10000 */
  queueScanLimit?: number;
  /** How long a depth reading is reused by later scrapes, in ms. @default 5000 */
  queueCacheMs?: number;
  /** @default Date.now */
  now?: () => number;
  /**
   * Sums counters and histograms across instances: {@link PrometheusMetrics.flush} adds what
   * they gained here, `render` shows the sums (deploy/README.md, "Metrics"). @default none
   */
  shared?: SharedCounterStore;
  /** Told when the shared store fails (the scrape then shows this instance's counters). */
  onSharedError?: (err: unknown) => void;
}

/** What a counter's or histogram's `get()` gives. */
interface Summable {
  get(): Promise<{
    name: string;
    help: string;
    type: unknown;
    values: {
      value: number;
      labels: Partial<Record<string, string | number>>;
      metricName?: string;
    }[];
  }>;
}

/** Seconds: from a fast job-status request to a long report build. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const JOB_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900];
const EXTERNAL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

interface Child {
  inc(value?: number): void;
}
interface Observer {
  observe(value: number): void;
}

export class PrometheusMetrics implements RuntimeObserver {
  readonly registry = new Registry();
  readonly #httpRequests: Counter<"method" | "route" | "status">;
  readonly #httpDuration: Histogram<"method" | "route" | "status">;
  readonly #jobs: Counter<"actor" | "outcome">;
  readonly #jobDuration: Histogram<"actor" | "outcome">;
  readonly #retries: Counter<"actor">;
  readonly #deadLetters: Counter<"actor" | "reason">;
  readonly #heartbeats: Counter<"worker">;
  readonly #lastHeartbeat: Gauge<"worker">;
  readonly #external: Counter<"service" | "status">;
  readonly #externalDuration: Histogram<"service">;
  /** Label children by joined label values: a lookup per request instead of a label hash. */
  readonly #httpChildren = new Map<string, [Child, Observer]>();
  readonly #queueScanLimit: number;
  readonly #queueCacheMs: number;
  readonly #now: () => number;
  readonly #shared: SharedCounterStore | undefined;
  readonly #onSharedError: (err: unknown) => void;
  /** Counters and histograms: what a shared store sums. */
  readonly #summed: Summable[] = [];
  /** Each summed series' value at the last flush. */
  readonly #flushed = new Map<string, number>();
  /** Gains not yet added to the shared store (a failed flush keeps them). */
  #unsent = new Map<string, number>();
  #queue: QueueSource | undefined;
  #cache: Cache | undefined;
  readonly #queueGauges: { depth: Gauge<"actor">; oldest: Gauge<"actor">; capped: Gauge };
  /** The last depth reading, applied to the gauges when it settles. */
  #reading: { at: number; applied: Promise<void> } | null = null;

  constructor(
    {
      queueScanLimit = 10_000,
      queueCacheMs = 5000,
      now = Date.now,
      shared,
      onSharedError = () => {},
    }: PrometheusMetricsOptions = {},
  ) {
    this.#shared = shared;
    this.#onSharedError = onSharedError;
    this.#queueScanLimit = queueScanLimit;
    this.#queueCacheMs = queueCacheMs;
    this.#now = now;
    const registers = [this.registry];
    this.#httpRequests = new Counter({
      name: "troupe_http_requests_total",
      help: "HTTP requests answered, by method, route template and status.",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.#httpDuration = new Histogram({
      name: "troupe_http_request_duration_seconds",
      help: "Time from a request's arrival to its response's headers, by route template.",
      labelNames: ["method", "route", "status"],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.#jobs = new Counter({
      name: "troupe_jobs_total",
      help: "Committed attempts of actors' handlers, by outcome (retry: failed, will run again).",
      labelNames: ["actor", "outcome"],
      registers,
    });
    this.#jobDuration = new Histogram({
      name: "troupe_job_duration_seconds",
      help: "Time in the handler of committed attempts, by actor and outcome.",
      labelNames: ["actor", "outcome"],
      buckets: JOB_BUCKETS,
      registers,
    });
    this.#retries = new Counter({
      name: "troupe_job_retries_total",
      help: "Attempts that failed and were scheduled to run again.",
      labelNames: ["actor"],
      registers,
    });
    this.#deadLetters = new Counter({
      name: "troupe_dead_letters_total",
      help:
        "Jobs that became dead letters, by reason (failed, lease_expired, poison, undeliverable).",
      labelNames: ["actor", "reason"],
      registers,
    });
    this.#heartbeats = new Counter({
      name: "troupe_instance_heartbeats_total",
      help: "Lease heartbeats of this instance (one every third of a lease).",
      labelNames: ["worker"],
      registers,
    });
    this.#lastHeartbeat = new Gauge({
      name: "troupe_instance_last_heartbeat_timestamp_seconds",
      help: "When this instance last renewed its leases (Unix time).",
      labelNames: ["worker"],
      registers,
    });
    this.#external = new Counter({
      name: "troupe_external_requests_total",
      help: "Calls to external APIs, by service and HTTP status (error: no response).",
      labelNames: ["service", "status"],
      registers,
    });
    this.#externalDuration = new Histogram({
      name: "troupe_external_request_duration_seconds",
      help: "Time to the response headers of calls to external APIs.",
      labelNames: ["service"],
      buckets: EXTERNAL_BUCKETS,
      registers,
    });
    const queueReady = () => this.#queueReady();
    const cache = () => this.#cache;
    const depth = new Gauge({
      name: "troupe_queue_depth",
      help: "Queued jobs per actor (due or delayed); a lower bound when troupe_queue_depth_capped.",
      labelNames: ["actor"],
      registers,
      async collect() {
        await queueReady();
      },
    });
    const oldest = new Gauge({
      name: "troupe_queue_oldest_seconds",
      help: "How long the longest-waiting due job of each actor has waited past its run time.",
      labelNames: ["actor"],
      registers,
      async collect() {
        await queueReady();
      },
    });
    const capped = new Gauge({
      name: "troupe_queue_depth_capped",
      help: "1 when the depth reading stopped at its scan limit (depths are lower bounds).",
      registers,
      async collect() {
        await queueReady();
      },
    });
    this.#queueGauges = { depth, oldest, capped };
    this.#summed.push(
      this.#httpRequests,
      this.#httpDuration,
      this.#jobs,
      this.#jobDuration,
      this.#retries,
      this.#deadLetters,
      this.#heartbeats,
      this.#external,
      this.#externalDuration,
    );
    for (const result of ["hits", "misses", "bypasses"] as const) {
      const counter = new Counter({
        name: `troupe_cache_${result}_total`,
        help: `Cache lookups that were ${
          result === "bypasses" ? "bypassed (store failing)" : result
        }, by TTL class (kind of data).`,
        labelNames: ["ttl_class"],
        registers,
        collect() {
          const watched = cache();
          if (!watched) return;
          this.reset();
          for (const [kind, c] of watched.countsByKind()) {
            if (c[result] > 0) this.inc({ ttl_class: kind }, c[result]);
          }
        },
      });
      this.#summed.push(counter);
    }
  }

  /** Reads queue depth per actor at scrape time from `source` (cached `queueCacheMs`). */
  watchQueue(source: QueueSource): this {
    this.#queue = source;
    return this;
  }

  /** Reports `cache`'s lookups by TTL class at scrape time. */
  watchCache(cache: Cache): this {
    this.#cache = cache;
    return this;
  }

  /**
   * The exposition text (`text/plain; version=0.0.4`). With a shared store: flushes, then shows
   * the summed counters and histograms; if the store fails, this instance's own (the error goes
   * to `onSharedError`).
   */
  async render(): Promise<string> {
    if (!this.#shared) return await this.registry.metrics();
    let totals: Map<string, number>;
    try {
      await this.flush();
      totals = await this.#shared.read();
    } catch (err) {
      this.#onSharedError(err);
      return await this.registry.metrics();
    }
    const summed = new Set<string>();
    const parts: string[] = [];
    for (const metric of this.#summed) {
      const { name, help, type } = await metric.get();
      summed.add(name);
      const family = [name, `${name}_bucket`, `${name}_sum`, `${name}_count`];
      const lines = [...totals]
        .filter(([field]) => family.includes(field.slice(0, field.indexOf("{"))))
        .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
        .map(([field, value]) => `${field} ${value}`);
      parts.push(
        [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${String(type)}`, ...lines].join(
          "\n",
        ),
      );
    }
    for (const metric of this.registry.getMetricsAsArray()) {
      if (!summed.has(metric.name)) {
        parts.push((await this.registry.getSingleMetricAsString(metric.name)).trimEnd());
      }
    }
    return parts.join("\n\n") + "\n";
  }

  /**
   * Adds what this instance's counters and histograms gained since the last flush to the shared
   * store (a no-op without one). Gains that fail to go are kept for the next flush.
   */
  async flush(): Promise<void> {
    const shared = this.#shared;
    if (!shared) return;
    const deltas = this.#unsent;
    this.#unsent = new Map();
    for (const metric of this.#summed) {
      const { name, values } = await metric.get();
      for (const v of values) {
        const field = seriesOf(v.metricName ?? name, v.labels);
        const gained = v.value - (this.#flushed.get(field) ?? 0);
        this.#flushed.set(field, v.value);
        if (gained > 0) deltas.set(field, (deltas.get(field) ?? 0) + gained);
      }
    }
    try {
      await shared.add(deltas);
    } catch (err) {
      for (const [field, d] of deltas) this.#unsent.set(field, (this.#unsent.get(field) ?? 0) + d);
      throw err;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  // ---------------------------------------------------------------- RuntimeObserver

  jobFinished(actor: string, outcome: JobOutcome, ms: number): void {
    this.#jobs.inc({ actor, outcome });
    this.#jobDuration.observe({ actor, outcome }, ms / 1000);
    if (outcome === "retry") this.#retries.inc({ actor });
  }

  deadLettered(actor: string, reason: DeadLetterReason): void {
    this.#deadLetters.inc({ actor, reason });
  }

  heartbeat(workerId: string): void {
    this.#heartbeats.inc({ worker: workerId });
    this.#lastHeartbeat.set({ worker: workerId }, this.#now() / 1000);
  }

  // ---------------------------------------------------------------- HTTP and external calls

  /** Records one answered request; `route` is the matched route template, never the raw path. */
  request(method: string, route: string, status: number, ms: number): void {
    const key = `${method} ${status} ${route}`;
    let child = this.#httpChildren.get(key);
    if (!child) {
      const labels = { method, route, status: String(status) };
      child = [this.#httpRequests.labels(labels), this.#httpDuration.labels(labels)];
      this.#httpChildren.set(key, child);
    }
    child[0].inc();
    child[1].observe(ms / 1000);
  }

  /** `fetch` that counts and times each call as `service` (e.g. `openai_chat`). */
  fetch(service: string, inner: typeof fetch = globalThis.fetch): typeof fetch {
    return async (input, init) => {
      const began = performance.now();
      let status = "error";
      try {
        const res = await inner(input, init);
        status = String(res.status);
        return res;
      } finally {
        this.#external.inc({ service, status });
        this.#externalDuration.observe({ service }, (performance.now() - began) / 1000);
      }
    };
  }

  /**
   * Settles once the queue gauges hold a reading at most `queueCacheMs` old. The three gauges
   * are collected concurrently by one scrape and share the reading.
   */
  #queueReady(): Promise<void> {
    const source = this.#queue;
    if (!source) return Promise.resolve();
    const now = this.#now();
    if (this.#reading && now - this.#reading.at < this.#queueCacheMs) return this.#reading.applied;
    const applied = source.queueDepths(this.#queueScanLimit).then((reading) => {
      const { depth, oldest, capped } = this.#queueGauges;
      depth.reset();
      oldest.reset();
      const seen = new Map(reading.actors.map((a) => [a.actor, a]));
      // Every actor gets a series, 0 when nothing is queued, so alerts see it.
      for (const actor of new Set([...source.actors.keys(), ...seen.keys()])) {
        depth.set({ actor }, seen.get(actor)?.depth ?? 0);
        oldest.set({ actor }, seen.get(actor)?.oldestSeconds ?? 0);
      }
      capped.set(reading.capped ? 1 : 0);
    }).catch(() => {
      // The database did not answer: the scrape goes on without queue series (an absent
      // series, not a stale one), and the next scrape tries again.
      this.#queueGauges.depth.reset();
      this.#queueGauges.oldest.reset();
      this.#queueGauges.capped.reset();
      if (this.#reading?.applied === applied) this.#reading = null;
    });
    this.#reading = { at: now, applied };
    return applied;
  }
}

/** `name{a="1",b="2"}`, labels sorted and escaped as in the text format. */
function seriesOf(name: string, labels: Partial<Record<string, string | number>>): string {
  const keys = Object.keys(labels).sort();
  const escape = (v: string) =>
    v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
  return `${name}{${keys.map((k) => `${k}="${escape(String(labels[k]))}"`).join(",")}}`;
}

function escapeHelp(help: string): string {
  return help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}
