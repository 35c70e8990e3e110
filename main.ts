/**
 * The composition root: config -> drivers -> runtime -> routes -> serve.
 * The only file that knows which database and transport run.
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
  type Transport,
  TroupeError,
} from "@troupe/runtime";
import { cleanupActor } from "./actors/system/cleanup.ts";
import { echoActor } from "./actors/system/echo.ts";
import { QStashTransport } from "@troupe/runtime/transports/qstash";
import { Client as QStashClient, Receiver } from "@upstash/qstash";
import { Redis } from "@upstash/redis";
import { MemoryRateLimiter } from "./db/ratelimit/memory.ts";
import type { RateLimiter } from "./db/ratelimit/port.ts";
import { UpstashRateLimiter } from "./db/ratelimit/upstash.ts";
import { Cache } from "./db/cache/cache.ts";
import { MemoryCacheStore } from "./db/cache/memory.ts";
import { UpstashCacheStore } from "./db/cache/upstash.ts";
import { checkMigrations, migrate, MigrationsPendingError } from "./db/migrate.ts";
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
import type { BlobStore } from "./db/blobs/port.ts";
import { PostgresBlobStore } from "./db/blobs/postgres.ts";
import { S3BlobStore } from "./db/blobs/s3.ts";
import { databaseWriteProbe, diskWriteProbe } from "./db/write_probe.ts";
import { TenantStore } from "./db/tenants.ts";
import {
  type Config,
  ConfigError,
  drivers,
  loadBackgroundTimers,
  loadConfig,
  loadRole,
  loadS3Config,
  type Role,
  type S3Config,
} from "./deploy/config.ts";
import { workerApp } from "./deploy/roles.ts";
import { createApp } from "./routes/app.ts";
import { serve } from "./routes/serve.ts";
import type { PrometheusMetrics } from "./db/metrics/prometheus.ts";
import { RedisSharedCounters } from "./db/metrics/shared.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { localUrl, writeServerFile } from "./deploy/server_file.ts";
import { usageActors, usageDefinitions } from "./actors/usage/actors.ts";
import { SourceStore } from "./actors/usage/sources.ts";
import type { UsageDeps } from "./actors/usage/sync.ts";
import { EgressPolicy } from "./actors/net/egress.ts";
import { localKeys, parseKeys, SecretBox } from "./db/secrets.ts";

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

/** The blob store the configuration names: the bucket when one is configured. */
export function openBlobs(config: Config, db: SqlDatabase, s3: S3Config | null = null): BlobStore {
  if (s3) {
    return new S3BlobStore({
      endpoint: s3.S3_ENDPOINT!,
      bucket: s3.S3_BUCKET!,
      region: s3.S3_REGION,
      accessKeyId: s3.S3_ACCESS_KEY_ID!,
      secretAccessKey: s3.S3_SECRET_ACCESS_KEY!,
      forcePathStyle: s3.S3_FORCE_PATH_STYLE,
      prefix: s3.S3_PREFIX,
      partSize: s3.S3_PART_BYTES,
    });
  }
  return drivers(config).blobs === "fs"
    ? new FsBlobStore(join(config.DATA_DIR, "blobs"))
    : new PostgresBlobStore(db);
}

/** The database the configuration names. */
export async function openDatabase(config: Config): Promise<SqlDatabase> {
  const kind = drivers(config).database;
  if (kind === "pglite") {
    const { openPglite } = await import("@troupe/runtime/pglite");
    return await openPglite(join(config.DATA_DIR, "pglite"), {
      sharedBuffersMb: config.PGLITE_SHARED_BUFFERS_MB,
    });
  }
  const url = config.DATABASE_URL!;
  if (kind === "neon") {
    const { openNeon } = await import("@troupe/runtime/neon");
    return openNeon(url, {
      max: config.DATABASE_POOL_SIZE,
      ...(config.NEON_WS_PROXY ? { wsProxy: config.NEON_WS_PROXY, secure: false } : {}),
    });
  }
  const { openPostgres } = await import("@troupe/runtime/postgres");
  return openPostgres(url, { max: config.DATABASE_POOL_SIZE });
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
   * The delivery budget of stepped jobs when `DELIVERY_BUDGET_MS` is unset (see
   * deploy/config.ts); 0: none. @default 0
   */
  deliveryBudgetMs?: number;
  /** Told of every job attempt and dead letter, besides the metrics (benchmarks). */
  observer?: RuntimeObserver;
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
    deliveryBudgetMs = 0,
    observer,
  }: ComposeOptions = {},
): Promise<Composed> {
  const logger = jsonLogger(config.LOG_LEVEL);
  const budgetMs = config.DELIVERY_BUDGET_MS ?? deliveryBudgetMs;
  const trimmer = startMallocTrim({ intervalMs: config.MALLOC_TRIM_MS });
  const kinds = drivers(config);
  const db = await openDatabase(config);
  try {
    if (migrations === "check") await checkMigrations(db);
    else {
      const applied = await migrate(db);
      if (applied.length) logger.info("migrations applied", { applied });
    }
  } catch (err) {
    trimmer.stop();
    await db.close();
    throw err;
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
  // One quick retry: a cache that is down must degrade fast, not hold requests.
  const redis = kinds.cache === "upstash"
    ? new Redis({
      url: config.UPSTASH_REDIS_REST_URL!,
      token: config.UPSTASH_REDIS_REST_TOKEN!,
      retry: { retries: 1, backoff: () => 50 },
    })
    : null;
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
  const blobs = openBlobs(config, db, s3);
  const untrusted = {
    workerHeapMb: config.UNTRUSTED_WORKER_HEAP_MB,
    taskTimeoutMs: config.UNTRUSTED_TASK_TIMEOUT_MS,
  };
  const chunkProcessor = new ChunkProcessor(
    config.DATASET_WORKERS ?? Math.min(4, Math.max(1, cores() - 1)),
    untrusted,
  );
  const datasets = datasetActors({
    db,
    blobs,
    chunkBytes: config.DATASET_CHUNK_BYTES,
    processor: chunkProcessor,
    maxColumns: config.DATASET_MAX_COLUMNS,
    maxHeaderBytes: config.DATASET_MAX_HEADER_BYTES,
    deliveryBudgetMs: budgetMs,
  });
  const vectors: VectorStore = kinds.vectors === "chroma"
    ? new (await import("./actors/courses/vectors/chroma.ts")).ChromaVectorStore({
      url: config.CHROMA_URL!,
    })
    : new PgVectorStore(db);
  const embedder: TextEmbedder = config.OPENAI_API_KEY && config.OPENAI_EMBEDDING_MODEL
    ? new (await import("./actors/courses/embeddings/openai.ts")).OpenAiEmbedder({
      baseUrl: config.OPENAI_BASE_URL,
      apiKey: config.OPENAI_API_KEY,
      model: config.OPENAI_EMBEDDING_MODEL,
      dimensions: config.OPENAI_EMBEDDING_DIMENSIONS,
      ...fetchFor("openai_embeddings"),
    })
    : new HashingEmbedder();
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
  const usage = usageDeps(config, db, { limiter, cache, runtime: () => runtime });
  const runtime: Runtime = new Runtime({
    db,
    actors: actorsFor(config, db, extraActors, [
      ...datasets,
      ...courses,
      ...usageActors(usage),
      tenantDeletion,
      statementActor({ db, blobs }),
    ], { store: blobs, db }),
    transport,
    logger,
    concurrency: config.WORKER_CONCURRENCY,
    leaseMs: config.LEASE_MS,
    maxLeaseLosses: config.POISON_AFTER_CRASHES,
    backgroundTimers,
    ...(metrics || observer ? { observer: bothObservers(metrics, observer) } : {}),
  });
  metrics?.watchQueue(runtime).watchCache(cache);
  // An API-only instance claims nothing: with the table queue, starting the runtime is what
  // claims (and reaps); with QStash, start relays the outbox and deliveries go to workers.
  if (role !== "api" || runtime.transport.mode === "push") await runtime.start();
  const newDevKey = await bootstrapDevTenant(config, tenants);
  const health = {
    // The data directory holds the embedded database and the files: a full disk stops both.
    probes: [
      databaseWriteProbe(db),
      ...(kinds.database === "pglite" || kinds.blobs === "fs"
        ? [diskWriteProbe(config.DATA_DIR)]
        : []),
    ],
  };
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
      ? { webhooks: { receiver: qstash.receiver, publicUrl: qstash.publicUrl, db } }
      : {}),
    cache,
    statements: { blobs },
    ...(kinds.database === "pglite" ? { dataDir: config.DATA_DIR } : {}),
    maxBodyBytes: config.HTTP_MAX_JSON_BYTES,
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
        bucket: blobs instanceof S3BlobStore ? blobs : null,
        maxBytes: config.DATASET_MAX_BYTES,
        ...(s3 ? { expiresInSeconds: s3.S3_UPLOAD_EXPIRES_S } : {}),
      },
    },
    courses: { db, blobs, vectors, embedder, maxFileBytes: config.COURSE_MAX_FILE_BYTES },
    usage,
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
    ? workerApp({
      runtime,
      cache,
      health,
      ...(qstash
        ? { webhooks: { receiver: qstash.receiver, publicUrl: qstash.publicUrl, db } }
        : {}),
    }).fetch
    : app.fetch;
  return {
    config,
    db,
    runtime,
    tenants,
    newDevKey,
    app,
    fetch,
    metrics,
    async close() {
      clearInterval(flushTimer);
      await runtime.stop(STOP_GRACE_MS);
      await metrics?.flush().catch(() => {});
      extractor.close();
      chunkProcessor.close();
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
 * The process entry: reads the environment, composes, serves HTTP, registers cron schedules
 * (table queue only; with QStash, QStash schedules call `/schedules/:name`), and stops
 * gracefully on SIGINT/SIGTERM. `extraActors` is for tests and embedders.
 */
export async function run(
  extraActors: AnyActor[] = [],
  options: Pick<ComposeOptions, "migrations" | "deliveryBudgetMs"> & {
    maintenanceCron?: boolean;
  } = {},
): Promise<void> {
  let config: Config;
  let s3: S3Config | null;
  let role: Role;
  try {
    const env = Deno.env.toObject();
    config = loadConfig(env);
    s3 = loadS3Config(env);
    role = loadRole(env);
    loadBackgroundTimers(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    Deno.exit(1);
  }
  const portFree = portAvailable(config.HOST, config.PORT);
  if (portFree !== true) startFailed(portFree);
  let troupe: Composed;
  try {
    const { maintenanceCron: _, ...composeOptions } = options;
    troupe = await compose(config, extraActors, { ...composeOptions, role, s3 });
  } catch (err) {
    if (err instanceof MigrationsPendingError) startFailed(err.message);
    if (err instanceof Error && err.name === "DirectoryLockedError") startFailed(err.message);
    throw err;
  }
  const log = troupe.runtime.log;
  if (troupe.runtime.transport.mode === "pull" && role !== "api") {
    troupe.runtime.registerSchedules((name, schedule, fn) => Deno.cron(name, schedule, fn));
  }
  if (options.maintenanceCron) {
    // Deno Deploy runs its crons even with no instance up: the pass needs no timer of ours.
    Deno.cron("troupe maintenance", "* * * * *", async () => {
      log.info("maintenance pass", await troupe.runtime.maintenancePass());
    });
  }
  const server = await serve({
    port: config.PORT,
    hostname: config.HOST,
    headerTimeoutMs: config.HTTP_HEADER_TIMEOUT_MS,
    keepAliveTimeoutMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    onListen: ({ hostname, port }) =>
      log.info("troupe listening", {
        url: `http://${hostname}:${port}`,
        database: troupe.db.dialect,
        transport: troupe.runtime.transport.name,
        role,
        actors: [...troupe.runtime.actors.keys()],
      }),
  }, troupe.fetch);
  // The embedded directory has one user: `deno task run` finds this server here and calls it.
  const forgetServer = troupe.db.dialect === "pglite"
    ? await writeServerFile(config.DATA_DIR, localUrl(server.addr.hostname, server.addr.port))
    : async () => {};
  const metricsServer = troupe.metrics && config.METRICS_PORT !== undefined
    ? Deno.serve({
      port: config.METRICS_PORT,
      hostname: config.HOST,
      onListen: ({ hostname, port }) =>
        log.info("metrics listening", { url: `http://${hostname}:${port}/metrics` }),
    }, metricsRoutes({ sink: troupe.metrics, route: { token: config.METRICS_TOKEN } }).fetch)
    : null;
  if (troupe.newDevKey) {
    console.log(
      `\nDev tenant API key (shown once, also saved in ${
        join(config.DATA_DIR, "dev-api-key")
      }):\n  ${troupe.newDevKey}\nTry: curl -H "X-API-Key: ${troupe.newDevKey}" http://${config.HOST}:${config.PORT}/api/jobs\n`,
    );
  }
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down");
    // Whatever hangs, the process is gone within 5 s (hosts kill it soon after the signal).
    const deadline = setTimeout(() => Deno.exit(0), 4_500);
    Deno.unrefTimer(deadline);
    // Open keep-alive connections may hold the server's shutdown: the runtime's stop (handlers'
    // grace, lease release, outbox relay) gets the rest of the budget regardless.
    await Promise.race([server.shutdown(), new Promise((r) => setTimeout(r, 1_000))]);
    await metricsServer?.shutdown();
    await forgetServer();
    await troupe.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
}

/** `true`, or why `HOST:PORT` cannot be listened on (checked before anything starts). */
function portAvailable(hostname: string, port: number): true | string {
  try {
    Deno.listen({ hostname, port }).close();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      return `port ${port} on ${hostname} is already in use (another Troupe or another server); ` +
        "stop it or set PORT";
    }
    if (
      err instanceof Deno.errors.AddrNotAvailable || err instanceof Deno.errors.PermissionDenied
    ) {
      return `cannot listen on ${hostname}:${port}: ${(err as Error).message}; check HOST and PORT`;
    }
    throw err;
  }
}

/** A start that cannot go on for a reason the user can fix: one line, exit code 1. */
function startFailed(message: string): never {
  console.error(`troupe: ${message}`);
  Deno.exit(1);
}

if (import.meta.main) await run();
