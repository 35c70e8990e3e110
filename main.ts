/**
 * The composition root: config -> drivers -> runtime -> routes; `run` (deploy/start.ts) serves
 * what `compose` builds. The only file that knows which database and transport run.
 *
 * Embedded-only modules (PGlite) and optional drivers (the database client not chosen, Chroma,
 * the OpenAI adapters) load by dynamic import when the configuration picks them, so a
 * production start neither loads nor needs them (`deno task deploy:check` guards this).
 */
import { join } from "node:path";
import {
  type AnyActor,
  jsonLogger,
  Runtime,
  type RuntimeObserver,
  type SqlDatabase,
  type SqlExecutor,
  startMallocTrim,
  TableQueueTransport,
  traceLogFields,
  type Transport,
  TroupeError,
} from "@troupe/runtime";
import { cleanupActor } from "./actors/system/cleanup.ts";
import { echoActor } from "./actors/system/echo.ts";
import { QStashTransport } from "@troupe/runtime/transports/qstash";
import { Client as QStashClient, Receiver } from "@upstash/qstash";
import { MemoryRateLimiter } from "./db/ratelimit/memory.ts";
import type { RateLimiter } from "./db/ratelimit/port.ts";
import { UpstashRateLimiter } from "./db/ratelimit/upstash.ts";
import { Cache } from "./db/cache/cache.ts";
import { MemoryCacheStore } from "./db/cache/memory.ts";
import { UpstashCacheStore } from "./db/cache/upstash.ts";
import { prepareMigrations } from "./db/migrate.ts";
import { datasetActors } from "./actors/datasets/pipeline.ts";
import { courseActors } from "./actors/courses/pipeline.ts";
import { courseTenantData } from "./actors/courses/delete.ts";
import { datasetTenantData } from "./actors/datasets/tenant_data.ts";
import { usageTenantData } from "./actors/usage/tenant_data.ts";
import { documentTenantData } from "./actors/documents/tenant_data.ts";
import { type TenantDataPart, tenantDeletionActor } from "./actors/tenants/delete.ts";
import { statementActor } from "./actors/usage/statement_job.ts";
import { pageExtractor } from "./actors/courses/extract.ts";
import { ChunkProcessor } from "./actors/datasets/chunk_work.ts";
import { cores } from "@troupe/runtime/workers";
import { LocalWriter } from "./actors/courses/writer/local.ts";
import { HashingEmbedder } from "./actors/courses/embeddings/hashing.ts";
import type { TextEmbedder } from "./actors/courses/embeddings/port.ts";
import { PgVectorStore } from "./actors/courses/vectors/pg.ts";
import type { VectorStore } from "./actors/courses/vectors/port.ts";
import { exists, FsBlobStore } from "./db/blobs/fs.ts";
import { hashWorkerSpawner, holdHashWorker } from "./db/blobs/hashing.ts";
import type { BlobStore } from "./db/blobs/port.ts";
import { PostgresBlobStore } from "./db/blobs/postgres.ts";
import type { S3BlobStore } from "./db/blobs/s3.ts";
import { TenantStore } from "./db/tenants.ts";
import {
  type Config,
  drivers,
  loadBackgroundTimers,
  loadS3Config,
  type Role,
  type S3Config,
} from "./deploy/config.ts";
import { healthProbes, openDatabase, openRedis } from "./deploy/open.ts";
export { openDatabase } from "./deploy/open.ts";
import { run as start, type RunOptions } from "./deploy/start.ts";
import { createApp } from "./routes/app.ts";
import type { PrometheusMetrics } from "./db/metrics/prometheus.ts";
import { RedisSharedCounters } from "./db/metrics/shared.ts";
import { usageActors, usageDefinitions } from "./actors/usage/actors.ts";
import { SourceStore } from "./actors/usage/sources.ts";
import type { UsageDeps } from "./actors/usage/sync.ts";
import { EgressPolicy } from "./actors/net/egress.ts";
import { Callbacks } from "./actors/system/callback.ts";
import { CallbackSecrets } from "./actors/system/callback_secrets.ts";
import { localKeys, parseKeys, SecretBox } from "./db/secrets.ts";
import { otelRegistered } from "./db/telemetry/registered.ts";

export interface Composed {
  config: Config;
  db: SqlDatabase;
  runtime: Runtime;
  tenants: TenantStore;
  /** The embedded dev tenant's key when this start created it (shown once). */
  newDevKey: string | null;
  app: ReturnType<typeof createApp>;
  /** What this instance serves over HTTP: `app`, or the worker role's health-only surface. */
  fetch: (req: Request) => Response | Promise<Response>;
  /** Present when METRICS_TOKEN or METRICS_PORT turns metrics on. */
  metrics: PrometheusMetrics | null;
  /** The runtime's start: settled when `compose` returns, unless `startBehind` let it run on. */
  started: Promise<void>;
  close(): Promise<void>;
}

/** The actors this deployment runs (also what `deno task schedules:sync` reconciles). */
export function actorsFor(
  config: Config,
  db: SqlExecutor,
  extra: AnyActor[] = [],
  workloads: AnyActor[] = [],
  blobs?: { store: BlobStore; db: SqlDatabase },
): AnyActor[] {
  return [
    cleanupActor({
      db,
      retentionDays: config.RETENTION_DAYS,
      ...(blobs ? { blobs: { ...blobs, graceMs: config.BLOB_GRACE_MS } } : {}),
    }),
    echoActor,
    ...workloads,
    ...extra,
  ];
}

/**
 * The actors a deployment runs, as definitions (what `deno task schedules:sync` reconciles,
 * workload actors' own schedules included); `db` is never queried.
 */
export function deployedActors(config: Config, db: SqlExecutor): AnyActor[] {
  return actorsFor(config, db, [], usageDefinitions());
}

/** What the report-sync actors and routes need, from the configuration. */
export function usageDeps(
  config: Config,
  db: SqlDatabase,
  rest: Pick<UsageDeps, "limiter" | "cache" | "runtime">,
): UsageDeps {
  // Several instances share one database: they must share the keys too, so only the embedded
  // default makes its own (under DATA_DIR, on the first token sealed).
  const secrets = config.SECRET_KEYS
    ? new SecretBox(parseKeys(config.SECRET_KEYS))
    : config.DATABASE_URL === undefined
    ? async () => new SecretBox(await localKeys(config.DATA_DIR))
    : () =>
      Promise.reject(
        new TroupeError(
          "SECRET_KEYS_MISSING",
          "source tokens are sealed with SECRET_KEYS, which this deployment does not set",
        ),
      );
  const egress = new EgressPolicy({
    requireHttps: config.EGRESS_REQUIRE_HTTPS ?? config.DATABASE_URL !== undefined,
    allow: config.EGRESS_ALLOW ?? [],
  });
  return {
    db,
    sources: new SourceStore(db, secrets, egress),
    callTimeoutMs: config.USAGE_CALL_TIMEOUT_MS,
    ...rest,
  };
}

/**
 * The blob store the configuration names: the bucket when one is configured (its client loaded
 * then only).
 */
export async function openBlobs(
  config: Config,
  db: SqlDatabase,
  s3: S3Config | null = null,
): Promise<BlobStore> {
  if (s3) {
    return new (await import("./db/blobs/s3.ts")).S3BlobStore({
      endpoint: s3.S3_ENDPOINT!,
      bucket: s3.S3_BUCKET!,
      region: s3.S3_REGION,
      accessKeyId: s3.S3_ACCESS_KEY_ID!,
      secretAccessKey: s3.S3_SECRET_ACCESS_KEY!,
      forcePathStyle: s3.S3_FORCE_PATH_STYLE,
      prefix: s3.S3_PREFIX,
      partSize: s3.S3_PART_BYTES,
      requestTimeoutMs: s3.S3_REQUEST_TIMEOUT_MS,
    });
  }
  return drivers(config).blobs === "fs"
    ? new FsBlobStore(join(config.DATA_DIR, "blobs"))
    : new PostgresBlobStore(db, {
      writers: Math.max(1, config.DATABASE_POOL_SIZE - 2),
    });
}

/** How {@link compose} starts. */
export interface ComposeOptions {
  /**
   * `apply` migrates at start (embedded and self-hosted); `check` only compares the database's
   * ledger with the code's migrations and throws `MigrationsPendingError` naming the missing
   * ones (the edge entry: `deno task migrate` applies them at deploy time).
   * @default "apply"
   */
  migrations?: "apply" | "check";
  /** What this instance does (see `ROLE` in deploy/config.ts). @default "all" */
  role?: Role;
  /** Object storage for blobs and direct uploads; null: the database or `DATA_DIR`. */
  s3?: S3Config | null;
  /** The runtime's periodic loops (see `BACKGROUND_TIMERS`). @default the environment's */
  backgroundTimers?: boolean;
  /**
   * The database, already opened (and its migrations checked or applied) by the caller, which
   * hands it over: `close()` closes it. `migrations` is then not looked at.
   * @default opened here from `config`
   */
  db?: SqlDatabase;
  /**
   * The delivery budget of stepped jobs when `DELIVERY_BUDGET_MS` is unset (see
   * deploy/config.ts); 0: none. @default 0
   */
  deliveryBudgetMs?: number;
  /** Told of every job attempt and dead letter, besides the metrics (benchmarks). */
  observer?: RuntimeObserver;
  /**
   * With QStash and a role that serves the API, return before the runtime's start (its reap,
   * instance heartbeat and outbox relay: round trips) has finished: the API answers meanwhile,
   * QStash's deliveries wait for it (the webhook routes load after it), and `Composed.started`
   * says how it ended (the edge entry ends the process when it fails). @default false
   */
  startBehind?: boolean;
}

/** One observer telling `a` and `b` (either may be absent). */
function bothObservers(
  a: RuntimeObserver | null | undefined,
  b: RuntimeObserver | undefined,
): RuntimeObserver {
  if (!a || !b) return (a ?? b)!;
  return {
    jobFinished: (...args) => (a.jobFinished(...args), b.jobFinished(...args)),
    deadLettered: (...args) => (a.deadLettered(...args), b.deadLettered(...args)),
    heartbeat: (...args) => (a.heartbeat(...args), b.heartbeat(...args)),
  };
}

/** How long a stop waits for running handlers: with the rest of the stop, under 5 s. */
export const STOP_GRACE_MS = 2_500;

/** Builds every piece from `config` and starts the runtime (no HTTP listener). */
export async function compose(
  config: Config,
  extraActors: AnyActor[] = [],
  {
    migrations = "apply",
    role = "all",
    s3 = loadS3Config(Deno.env.toObject()),
    backgroundTimers = loadBackgroundTimers(Deno.env.toObject()),
    db: opened,
    deliveryBudgetMs = 0,
    observer,
    startBehind = false,
  }: ComposeOptions = {},
): Promise<Composed> {
  // Traces when a tracer provider is registered (Deno's built-in OpenTelemetry: OTEL_DENO); the
  // OpenTelemetry modules load only when one may be.
  const telemetry = otelRegistered()
    ? await Promise.all([
      import("./db/telemetry/tracing.ts"),
      import("./db/telemetry/database.ts"),
      import("./db/telemetry/vectors.ts"),
    ])
    : null;
  const tracing = telemetry?.[0].telemetryActive() ? new telemetry[0].OtelTracing() : null;
  const logger = jsonLogger(config.LOG_LEVEL, {}, tracing ? traceLogFields(tracing) : undefined);
  if (!tracing && Deno.env.get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
    logger.warn("OTEL_EXPORTER_OTLP_ENDPOINT is set but tracing is off: set OTEL_DENO=true");
  }
  const budgetMs = config.DELIVERY_BUDGET_MS ?? deliveryBudgetMs;
  const trimmer = startMallocTrim({ intervalMs: config.MALLOC_TRIM_MS });
  const kinds = drivers(config);
  const raw = opened ?? await openDatabase(config);
  const db = tracing ? telemetry![1].tracedDatabase(raw) : raw;
  if (!opened) {
    try {
      await prepareMigrations(db, migrations, logger);
    } catch (err) {
      trimmer.stop();
      await db.close();
      throw err;
    }
  }
  const qstash = kinds.transport === "qstash"
    ? {
      client: new QStashClient({ baseUrl: config.QSTASH_URL, token: config.QSTASH_TOKEN! }),
      receiver: new Receiver({
        currentSigningKey: config.QSTASH_CURRENT_SIGNING_KEY!,
        nextSigningKey: config.QSTASH_NEXT_SIGNING_KEY!,
      }),
      publicUrl: config.PUBLIC_URL!,
    }
    : null;
  const transport: Transport = qstash
    ? new QStashTransport({ client: qstash.client, publicUrl: qstash.publicUrl })
    : new TableQueueTransport(db);
  const redis = await openRedis(config);
  const cache = new Cache(redis ? new UpstashCacheStore(redis) : new MemoryCacheStore());
  const limiter: RateLimiter = redis ? new UpstashRateLimiter({ redis }) : new MemoryRateLimiter();
  const metrics = config.METRICS_TOKEN !== undefined || config.METRICS_PORT !== undefined
    ? new (await import("./db/metrics/prometheus.ts")).PrometheusMetrics({
      queueScanLimit: config.METRICS_QUEUE_SCAN_LIMIT,
      queueCacheMs: config.METRICS_QUEUE_CACHE_MS,
      ...(config.METRICS_COUNTERS === "redis" && redis
        ? {
          shared: new RedisSharedCounters(redis),
          onSharedError: (err: unknown) =>
            logger.warn("metrics: Redis counters unavailable; serving this instance's", {
              error: String(err),
            }),
        }
        : {}),
    })
    : null;
  /** `fetch` for calls to `service`, counted and timed when metrics are on. */
  const fetchFor = (service: string) => metrics ? { fetch: metrics.fetch(service) } : {};
  const blobs = await openBlobs(config, db, s3);
  // The pools' workers start in the thread of the uploads' hashing worker while it runs (a
  // server that answers requests holds it, below): a worker's start (the new isolate) would
  // otherwise hold this thread, which answers requests, 50–150 ms on first use of a pool and
  // again after its idle workers stopped. An instance that serves no API starts them here.
  const untrusted = {
    workerHeapMb: config.UNTRUSTED_WORKER_HEAP_MB,
    taskTimeoutMs: config.UNTRUSTED_TASK_TIMEOUT_MS,
    spawner: hashWorkerSpawner,
  };
  const chunkProcessor = new ChunkProcessor(
    config.DATASET_WORKERS ?? Math.min(4, Math.max(1, cores() - 1)),
    untrusted,
  );
  const datasets = datasetActors({
    db,
    blobs,
    chunkBytes: config.DATASET_CHUNK_BYTES,
    chunkConcurrency: config.DATASET_CHUNK_CONCURRENCY,
    processor: chunkProcessor,
    maxColumns: config.DATASET_MAX_COLUMNS,
    maxHeaderBytes: config.DATASET_MAX_HEADER_BYTES,
    deliveryBudgetMs: budgetMs,
  });
  const vectorStore: VectorStore = kinds.vectors === "chroma"
    ? new (await import("./actors/courses/vectors/chroma.ts")).ChromaVectorStore({
      url: config.CHROMA_URL!,
    })
    : new PgVectorStore(db);
  const vectors = tracing ? telemetry![2].tracedVectors(vectorStore) : vectorStore;
  const textEmbedder: TextEmbedder = config.OPENAI_API_KEY && config.OPENAI_EMBEDDING_MODEL
    ? new (await import("./actors/courses/embeddings/openai.ts")).OpenAiEmbedder({
      baseUrl: config.OPENAI_BASE_URL,
      apiKey: config.OPENAI_API_KEY,
      model: config.OPENAI_EMBEDDING_MODEL,
      dimensions: config.OPENAI_EMBEDDING_DIMENSIONS,
      ...fetchFor("openai_embeddings"),
    })
    : new HashingEmbedder();
  const embedder = tracing ? telemetry![2].tracedEmbedder(textEmbedder) : textEmbedder;
  const extractor = pageExtractor(config.EXTRACT_WORKERS, {
    maxInflateBytes: config.PDF_MAX_INFLATE_BYTES,
    maxInflateRatio: config.PDF_MAX_INFLATE_RATIO,
    maxDepth: config.PDF_MAX_DEPTH,
    ...untrusted,
  });
  const courses = courseActors({
    db,
    blobs,
    extractor,
    vectors,
    embedder,
    deliveryBudgetMs: budgetMs,
    writer: kinds.writer === "openai"
      ? new (await import("./actors/courses/writer/openai.ts")).OpenAiWriter({
        baseUrl: config.OPENAI_BASE_URL,
        apiKey: config.OPENAI_API_KEY!,
        model: config.OPENAI_MODEL,
        ...fetchFor("openai_chat"),
      })
      : new LocalWriter(),
  });
  // Each workload's part of a tenant's deletion (actors/tenants/part.ts), one line each.
  const tenantData: TenantDataPart[] = [
    datasetTenantData,
    courseTenantData(vectors),
    usageTenantData,
    documentTenantData,
  ];
  const tenants = new TenantStore(db);
  const tenantDeletion = tenantDeletionActor({
    db,
    blobs,
    parts: tenantData,
    cancel: (jobId, tenantId) => runtime.cancel(jobId, tenantId),
    onKeysRemoved: () => tenants.forgetAuthentications(),
  });
  const syncs = usageDeps(config, db, { limiter, cache, runtime: () => runtime });
  // Callback URLs follow the report sources' egress rule; their signing keys are sealed with
  // the same SECRET_KEYS.
  const callbacks = new Callbacks({
    secrets: new CallbackSecrets(db, () => syncs.sources.secrets),
    egress: syncs.sources.egress,
  });
  const usage: UsageDeps = { ...syncs, callbacks };
  const runtime: Runtime = new Runtime({
    db,
    actors: actorsFor(config, db, extraActors, [
      ...datasets,
      ...courses,
      ...usageActors(usage),
      tenantDeletion,
      statementActor({ db, blobs }),
      callbacks.actor(),
    ], { store: blobs, db }),
    transport,
    logger,
    ...(config.WORKER_CONCURRENCY ? { concurrency: config.WORKER_CONCURRENCY } : {}),
    leaseMs: config.LEASE_MS,
    maxLeaseLosses: config.POISON_AFTER_CRASHES,
    backgroundTimers,
    ...(metrics || observer ? { observer: bothObservers(metrics, observer) } : {}),
    ...(tracing ? { tracing } : {}),
  });
  metrics?.watchQueue(runtime).watchCache(cache);
  // An API-only instance claims nothing: with the table queue, starting the runtime is what
  // claims (and reaps); with QStash, start relays the outbox and deliveries go to workers.
  // The start's round trips and the dev tenant's are independent: both at once. With QStash,
  // nothing is claimed: behind, the API answers while the runtime starts (see `startBehind`).
  const started = role !== "api" || qstash ? runtime.start() : Promise.resolve();
  const behind = startBehind && qstash !== null && role !== "worker";
  if (behind) started.catch(() => {}); // the caller's, through `Composed.started`
  const [, newDevKey] = await Promise.all([
    behind ? undefined : started,
    bootstrapDevTenant(config, tenants),
  ]);
  const health = { probes: healthProbes(config, db) };
  const app = createApp({
    runtime,
    tenants,
    logger,
    limiter,
    perIpPerMinute: config.RATE_LIMIT_PER_IP,
    perKeyPerMinute: config.RATE_LIMIT_PER_KEY,
    trustProxy: config.TRUST_PROXY,
    corsOrigins: config.CORS_ORIGINS,
    ...(qstash && role !== "api"
      ? { webhooks: { receiver: qstash.receiver, publicUrl: qstash.publicUrl, db, ready: started } }
      : {}),
    cache,
    statements: { blobs },
    ...(kinds.database === "pglite" ? { dataDir: config.DATA_DIR } : {}),
    maxBodyBytes: config.HTTP_MAX_JSON_BYTES,
    tracing: tracing !== null,
    uploads: {
      idleMs: config.UPLOAD_IDLE_MS,
      minBytesPerSecond: config.UPLOAD_MIN_BYTES_PER_SECOND,
      rateWindowMs: config.UPLOAD_RATE_WINDOW_MS,
      deadlineBaseMs: config.UPLOAD_DEADLINE_BASE_MS,
      maxFieldBytes: config.UPLOAD_MAX_FIELD_BYTES,
      maxParts: config.UPLOAD_MAX_PARTS,
      maxHeaderBytes: config.UPLOAD_MAX_PART_HEADER_BYTES,
    },
    health,
    datasets: {
      db,
      blobs,
      maxBytes: config.DATASET_MAX_BYTES,
      maxColumns: config.DATASET_MAX_COLUMNS,
      maxHeaderBytes: config.DATASET_MAX_HEADER_BYTES,
      maxInflateRatio: config.DATASET_MAX_INFLATE_RATIO,
      directUploads: {
        db,
        bucket: s3 ? blobs as S3BlobStore : null,
        maxBytes: config.DATASET_MAX_BYTES,
        ...(s3 ? { expiresInSeconds: s3.S3_UPLOAD_EXPIRES_S } : {}),
      },
    },
    courses: { db, blobs, vectors, embedder, maxFileBytes: config.COURSE_MAX_FILE_BYTES },
    usage,
    callbacks,
    ...(metrics
      ? {
        metrics: {
          sink: metrics,
          // With METRICS_PORT, /metrics is served on that port only (see `run`).
          ...(config.METRICS_PORT === undefined ? { route: { token: config.METRICS_TOKEN } } : {}),
        },
      }
      : {}),
  });
  const flushTimer = metrics && config.METRICS_COUNTERS === "redis"
    ? setInterval(() => {
      metrics.flush().catch((err) =>
        logger.warn("metrics: flush to Redis failed; kept for the next", { error: String(err) })
      );
    }, config.METRICS_FLUSH_MS)
    : undefined;
  const fetch = role === "worker"
    ? (await import("./deploy/roles.ts")).workerApp({
      runtime,
      cache,
      health,
      tracing: tracing !== null,
      ...(qstash
        ? { webhooks: { receiver: qstash.receiver, publicUrl: qstash.publicUrl, db } }
        : {}),
    }).fetch
    : app.fetch;
  // Uploads' hashing worker runs as long as the server does (a role that takes no upload
  // has none).
  const releaseHashing = role === "worker" ? () => {} : holdHashWorker();
  return {
    config,
    db,
    runtime,
    tenants,
    newDevKey,
    app,
    fetch,
    metrics,
    started,
    async close() {
      clearInterval(flushTimer);
      await started.catch(() => {});
      await runtime.stop(STOP_GRACE_MS);
      await metrics?.flush().catch(() => {});
      extractor.close();
      chunkProcessor.close();
      releaseHashing();
      trimmer.stop();
      await db.close();
    },
  };
}

/**
 * The `dev` tenant: with DEV_API_KEY, that key is (idempotently) the dev tenant's; otherwise the
 * embedded start creates the tenant and a key the first time, returns it to be shown once, and
 * leaves it in `DATA_DIR/dev-api-key` for scripts on this machine. Production starts (a
 * `DATABASE_URL`) create nothing unless DEV_API_KEY asks.
 */
async function bootstrapDevTenant(config: Config, tenants: TenantStore): Promise<string | null> {
  if (config.DEV_API_KEY) {
    const dev = await tenants.ensureTenant("dev");
    await tenants.createKey(dev.id, { name: "DEV_API_KEY", key: config.DEV_API_KEY });
    return null;
  }
  if (config.DATABASE_URL) return null;
  const keyFile = join(config.DATA_DIR, "dev-api-key");
  if (await exists(keyFile)) return null;
  const dev = await tenants.ensureTenant("dev");
  const { key } = await tenants.createKey(dev.id, { name: "embedded dev key" });
  await Deno.writeTextFile(keyFile, key + "\n", { mode: 0o600 });
  return key;
}

/**
 * The process entry (deploy/start.ts): reads the environment, composes, serves HTTP, registers
 * cron schedules, and stops gracefully on SIGINT/SIGTERM. `extraActors` is for tests and
 * embedders.
 */
export function run(extraActors: AnyActor[] = [], options: RunOptions = {}): Promise<void> {
  return start(extraActors, { compose, ...options });
}

if (import.meta.main) await run();
