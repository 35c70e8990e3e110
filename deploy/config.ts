/**
 * Configuration: environment variables, each parsed by its field (deploy/env_fields.ts). A
 * missing or malformed value stops the start with a message naming the variable.
 */
import { parseKeys } from "../db/secrets.ts";
import {
  bool,
  type Field,
  httpUrl as url,
  int,
  list,
  oneOf,
  type Output,
  parseFields,
  type Problem,
  text,
} from "./env_fields.ts";

/** Variables whose values never appear in messages. */
const SECRETS = new Set([
  "DATABASE_URL",
  "QSTASH_TOKEN",
  "QSTASH_CURRENT_SIGNING_KEY",
  "QSTASH_NEXT_SIGNING_KEY",
  "UPSTASH_REDIS_REST_TOKEN",
  "DEV_API_KEY",
  "OPENAI_API_KEY",
  "METRICS_TOKEN",
  "SECRET_KEYS",
]);

const fields = {
  PORT: int(1, 65_535).withDefault(8000),
  HOST: text({ min: 1 }).withDefault("127.0.0.1"),
  DATA_DIR: text({ min: 1 }).withDefault(".data"),
  /** Embedded PostgreSQL's buffer pool, in MiB (it lives in the process's memory). */
  PGLITE_SHARED_BUFFERS_MB: int(1, 65_536).withDefault(8),
  /**
   * Where the embedded database runs: `worker`, a thread of its own (requests are answered
   * while an ingest's COPY or a long query runs; each statement costs a message each way);
   * `main`, the server's thread (less CPU a statement, but no request is answered while one
   * runs). bench/README.md, "PGlite in a worker", measures both.
   */
  PGLITE_THREAD: oneOf(["main", "worker"]).withDefault("worker"),
  DATABASE_URL: text().check(
    (v) => /^postgres(ql)?:\/\/[^\s]+$/.test(v) && URL.canParse(v),
    "must be a postgres:// or postgresql:// URL",
  ).orUnset(),
  /**
   * Workers extracting PDF text; 0 extracts in the main thread, where nothing but the file's
   * checks (PDF_MAX_*) bounds what a hostile file costs. Workers extract under a heap and time
   * limit (UNTRUSTED_*), but each holds its own heap (bench/README.md, course scale).
   */
  EXTRACT_WORKERS: int(0, 64).withDefault(1),
  /**
   * Workers parsing, cleaning and profiling dataset chunks; 0: in the main thread.
   * @default the cores but one, 1 to 4 (one core is left to the main thread and the database)
   */
  DATASET_WORKERS: int(0, 64).orUnset(),
  /**
   * Dataset chunks one process works on at once (each holds its bytes, COPY text and profile):
   * two keep a parse and a COPY overlapped; a third holds its buffers and, with the database on
   * the same cores, takes them from the thread answering requests.
   */
  DATASET_CHUNK_CONCURRENCY: int(1, 64).withDefault(2),
  LOG_LEVEL: oneOf(["debug", "info", "warn", "error", "silent"]).withDefault("info"),
  RETENTION_DAYS: int(1, 3650).withDefault(7),
  WORKER_CONCURRENCY: int(1, 10_000).orUnset(),
  LEASE_MS: int(1000, 3_600_000).withDefault(30_000),
  DATABASE_POOL_SIZE: int(1, 500).withDefault(10),
  /** The runtime's hot statements prepared on each connection (`pg` driver; off for old PgBouncer). */
  DATABASE_PREPARED_STATEMENTS: bool().withDefault(true),
  /** `auto`: Neon's WebSocket driver for `*.neon.tech` hosts or when NEON_WS_PROXY is set. */
  DATABASE_DRIVER: oneOf(["auto", "pg", "neon"]).withDefault("auto"),
  /** WebSocket proxy for the Neon driver, e.g. `127.0.0.1:4444/v1?address={host}:{port}`. */
  NEON_WS_PROXY: text({ min: 1 }).orUnset(),
  /** Base URL QStash delivers to (this service as the internet sees it). */
  PUBLIC_URL: url().orUnset(),
  QSTASH_URL: url().withDefault("https://qstash.upstash.io"),
  QSTASH_TOKEN: text({ min: 1 }).orUnset(),
  QSTASH_CURRENT_SIGNING_KEY: text({ min: 1 }).orUnset(),
  QSTASH_NEXT_SIGNING_KEY: text({ min: 1 }).orUnset(),
  UPSTASH_REDIS_REST_URL: url().orUnset(),
  UPSTASH_REDIS_REST_TOKEN: text({ min: 1 }).orUnset(),
  /** Fixes the embedded dev tenant's API key (for scripts); at least 24 characters. */
  DEV_API_KEY: text({ min: 24, message: "must have at least 24 characters" }).orUnset(),
  RATE_LIMIT_PER_IP: int(1, 1_000_000).withDefault(100),
  RATE_LIMIT_PER_KEY: int(1, 10_000_000).withDefault(1000),
  /** Take client addresses from X-Forwarded-For (only behind a proxy you control). */
  TRUST_PROXY: bool().withDefault(false),
  /**
   * Browser origins allowed to call the API, comma-separated (`https://app.example.com`), or `*`
   * for any; none by default.
   */
  CORS_ORIGINS: list(
    (o) => o === "*" || (/^https?:\/\/[^/\s]+$/.test(o) && URL.canParse(o)),
    "each origin is scheme://host[:port] with no path, or *",
  ).withDefault([]),
  /** Where uploaded files go: `auto` = files under DATA_DIR when embedded, else PostgreSQL. */
  BLOB_STORE: oneOf(["auto", "fs", "postgres"]).withDefault("auto"),
  /** Target size of a dataset chunk (one message each), in bytes (default 1 MiB). */
  DATASET_CHUNK_BYTES: int(64 * 1024, 256 * 1024 * 1024).withDefault(1024 * 1024),
  /**
   * How long one delivery of a stepped job (`course.build`, `dataset.split`, `dataset.merge`)
   * may go on taking work, in ms: past half of it, a step commits its progress and hands the
   * rest to its next message. 0: none. Unset: 30 s on the edge entry (`deploy/edge.ts`), none
   * elsewhere.
   */
  DELIVERY_BUDGET_MS: int(0, 3_600_000).orUnset(),
  /** Largest dataset upload, in bytes (default 1 GiB). */
  DATASET_MAX_BYTES: int(1, 2 ** 40).withDefault(2 ** 30),
  /** ChromaDB for course embeddings (unset: vectors in the database). */
  CHROMA_URL: url().orUnset(),
  /** An OpenAI-compatible API for writing courses (unset: the local, extractive writer). */
  OPENAI_BASE_URL: url().withDefault("https://api.openai.com/v1"),
  OPENAI_API_KEY: text({ min: 1 }).orUnset(),
  OPENAI_MODEL: text({ min: 1 }).withDefault("gpt-4o-mini"),
  /** With OPENAI_API_KEY: embeddings from the API instead of the local lexical embedder. */
  OPENAI_EMBEDDING_MODEL: text({ min: 1 }).orUnset(),
  OPENAI_EMBEDDING_DIMENSIONS: int(8, 4096).withDefault(512),
  /** Largest PDF of a course upload, in bytes (default 100 MB). */
  COURSE_MAX_FILE_BYTES: int(1, 2 ** 34).withDefault(100 * 1024 * 1024),
  /**
   * An uploaded file no dataset or course holds is removed by the daily cleanup once it has
   * been unheld this long (ms; default 6 hours): longer than any upload takes to commit.
   */
  BLOB_GRACE_MS: int(0, 30 * 86_400_000).withDefault(6 * 3_600_000),
  // Runtime guards.
  /**
   * A job that was running when its process stopped (crashed, or stalled past its lease) this
   * many times is dead-lettered as `POISON_JOB` instead of being run again.
   */
  POISON_AFTER_CRASHES: int(1, 100).withDefault(2),
  /**
   * Most columns of a dataset: a wider CSV/TSV header is a 422 at upload, a JSON file with more
   * keys fails `TOO_MANY_COLUMNS` (PostgreSQL's own limit is 1,600 a table).
   */
  DATASET_MAX_COLUMNS: int(1, 1500).withDefault(1000),
  /** Longest CSV/TSV header line, in bytes: a longer one is a 422 `HEADER_TOO_LONG` (1 MiB). */
  DATASET_MAX_HEADER_BYTES: int(1024, 64 * 1024 * 1024).withDefault(1024 * 1024),

  // Slow and oversized requests: a client is let go, and nothing of its request kept, past these.
  /**
   * A connection whose request head (line and headers) is not complete within this many ms is
   * closed. 0 turns it off and serves with `Deno.serve` (faster on tiny requests, no header
   * timeout): for behind a proxy that has its own, such as Deno Deploy's.
   */
  HTTP_HEADER_TIMEOUT_MS: int(0, 3_600_000).withDefault(10_000),
  /** An idle keep-alive connection is closed after this many ms (with the header timeout). */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: int(100, 3_600_000).withDefault(5_000),
  /** Largest JSON body of the API, in bytes. */
  HTTP_MAX_JSON_BYTES: int(1024, 2 ** 30).withDefault(1024 * 1024),
  /** An upload whose next bytes take longer than this fails with 408 `UPLOAD_STALLED`. */
  UPLOAD_IDLE_MS: int(100, 3_600_000).withDefault(30_000),
  /**
   * An upload slower than this (bytes/s over UPLOAD_RATE_WINDOW_MS) fails with 408
   * `UPLOAD_TOO_SLOW`; it also sets the deadline: UPLOAD_DEADLINE_BASE_MS plus the declared size
   * (else the largest accepted) at this rate. 0 turns both off.
   */
  UPLOAD_MIN_BYTES_PER_SECOND: int(0, 2 ** 30).withDefault(8 * 1024),
  UPLOAD_RATE_WINDOW_MS: int(100, 3_600_000).withDefault(30_000),
  UPLOAD_DEADLINE_BASE_MS: int(0, 86_400_000).withDefault(60_000),
  /** Largest value of a form field that is not a file (413 past it, while it is read). */
  UPLOAD_MAX_FIELD_BYTES: int(1, 2 ** 30).withDefault(64 * 1024),
  /** Most parts of an upload form, fields and files together. */
  UPLOAD_MAX_PARTS: int(1, 100_000).withDefault(100),
  /** Largest header block of one part of an upload form, in bytes. */
  UPLOAD_MAX_PART_HEADER_BYTES: int(256, 2 ** 20).withDefault(16 * 1024),

  // Untrusted files: what one file may make the server do. Over any bound, the file fails with
  // PDF_TOO_COMPLEX (a dataset chunk: DATASET_TOO_COMPLEX), and is not retried.
  /** Bytes all the streams of one PDF may decompress to, together (default 256 MiB). */
  PDF_MAX_INFLATE_BYTES: int(1024 * 1024, 2 ** 36).withDefault(256 * 1024 * 1024),
  /** How many times its size a PDF stream that decompresses past 1 MiB may grow (default 200). */
  PDF_MAX_INFLATE_RATIO: int(2, 1_000_000).withDefault(200),
  /** Deepest PDF outline or page tree, in levels; loops count as too deep (default 64). */
  PDF_MAX_DEPTH: int(4, 100_000).withDefault(64),
  /** Heap limit of a worker parsing untrusted files (PDF text, dataset chunks), in MiB. */
  UNTRUSTED_WORKER_HEAP_MB: int(32, 65_536).withDefault(1024),
  /** Time limit of one task of such a worker (a PDF's page range, a dataset chunk), in ms. */
  UNTRUSTED_TASK_TIMEOUT_MS: int(1000, 3_600_000).withDefault(120_000),

  // Gzip dataset uploads are decompressed as they arrive (DATASET_MAX_BYTES bounds the result).
  /**
   * How many times its compressed size a gzip dataset upload may inflate once past 1 MiB: more
   * is a 413, a gzip bomb (default 200; CSV text compresses 5 to 20 times).
   */
  DATASET_MAX_INFLATE_RATIO: int(2, 1_000_000).withDefault(200),
  /**
   * Metrics (deploy/README.md, "Metrics"): off unless one of METRICS_TOKEN or METRICS_PORT is
   * set. METRICS_TOKEN serves `GET /metrics` on PORT to `Authorization: Bearer <token>`;
   * METRICS_PORT serves it on its own listener on HOST (with the token too when both are set).
   * METRICS_QUEUE_SCAN_LIMIT bounds the queued jobs one queue-depth reading looks at;
   * METRICS_QUEUE_CACHE_MS is how long a reading is reused by later scrapes. METRICS_COUNTERS:
   * `local`, each instance exposes its own counters; `redis`, every instance adds its gains to
   * Upstash Redis every METRICS_FLUSH_MS and at each scrape, and exposes the sums (for Deno
   * Deploy, where a scrape reaches any isolate; needs UPSTASH_REDIS_REST_*).
   */
  METRICS_TOKEN: text({ min: 16, message: "must be at least 16 characters" }).orUnset(),
  METRICS_PORT: int(1, 65_535).orUnset(),
  METRICS_QUEUE_SCAN_LIMIT: int(100, 1_000_000).withDefault(10_000),
  METRICS_QUEUE_CACHE_MS: int(0, 600_000).withDefault(5000),
  METRICS_COUNTERS: oneOf(["local", "redis"]).withDefault("local"),
  METRICS_FLUSH_MS: int(1000, 3_600_000).withDefault(10_000),

  /**
   * Every this many ms the server gives the C heap's free pages back to the system (glibc
   * `malloc_trim`; nothing elsewhere); 0 never. Buffers freed by the collector in bursts leave
   * pages resident between the live ones (actors/runtime/malloc_trim.ts). Default 500.
   */
  MALLOC_TRIM_MS: int(0, 3_600_000).withDefault(500),

  /**
   * Keys sealing secrets at rest (report sources' tokens): `id:base64-32-bytes[,id:...]`, the
   * first sealing new values, any opening (rotation: put the new key first, keep the old).
   * @default a key made once under DATA_DIR (`secret.key`)
   */
  SECRET_KEYS: text({ min: 1 }).check((v) => {
    try {
      return parseKeys(v).length > 0;
    } catch {
      return false;
    }
  }, "must be id:base64-of-32-bytes, comma-separated, distinct ids").orUnset(),
  /**
   * Hosts, addresses or CIDR ranges a tenant's URL (a report source's `baseUrl`) may reach
   * although private or loopback, comma-separated, e.g. `127.0.0.1,10.1.0.0/16`.
   */
  EGRESS_ALLOW: list().orUnset(),
  /** Tenants' URLs must be `https:`. @default true with DATABASE_URL (production), else false */
  EGRESS_REQUIRE_HTTPS: bool().orUnset(),
  /** Time limit of one call to a usage API, ms. */
  USAGE_CALL_TIMEOUT_MS: int(100, 600_000).withDefault(15_000),
} satisfies Record<string, Field<unknown, boolean>>;

export type Config = Output<typeof fields>;

/** Variables that only make sense together. */
function crossChecks(
  c: Config,
  problem: (name: keyof typeof fields, message: string) => void,
): void {
  const need = (when: boolean, names: (keyof typeof c)[], why: string) => {
    if (!when) return;
    for (const name of names) {
      if (c[name] === undefined) problem(name, why);
    }
  };
  need(
    c.QSTASH_TOKEN !== undefined || c.QSTASH_CURRENT_SIGNING_KEY !== undefined,
    ["QSTASH_TOKEN", "QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY", "PUBLIC_URL"],
    "required when QStash is configured",
  );
  need(
    c.UPSTASH_REDIS_REST_URL !== undefined || c.UPSTASH_REDIS_REST_TOKEN !== undefined,
    ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"],
    "required when Upstash Redis is configured",
  );
  need(
    c.DATABASE_DRIVER === "neon" || c.NEON_WS_PROXY !== undefined,
    ["DATABASE_URL"],
    "required by the Neon driver",
  );
  need(
    c.QSTASH_TOKEN !== undefined,
    ["DATABASE_URL"],
    "required with QStash: webhook deliveries may reach any instance, so state must be shared",
  );
  need(
    c.METRICS_COUNTERS === "redis",
    ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"],
    "required by METRICS_COUNTERS=redis (counters are summed in Upstash Redis)",
  );
  if (c.METRICS_PORT !== undefined && c.METRICS_PORT === c.PORT) {
    problem("METRICS_PORT", "must differ from PORT");
  }
}

/** Which drivers a configuration selects. */
export function drivers(c: Config) {
  const neon = c.DATABASE_URL !== undefined &&
    (c.DATABASE_DRIVER === "neon" ||
      (c.DATABASE_DRIVER === "auto" &&
        (c.NEON_WS_PROXY !== undefined ||
          new URL(c.DATABASE_URL).hostname.endsWith(".neon.tech"))));
  return {
    database: c.DATABASE_URL === undefined ? "pglite" : neon ? "neon" : "postgres",
    transport: c.QSTASH_TOKEN !== undefined ? "qstash" : "table-queue",
    cache: c.UPSTASH_REDIS_REST_URL !== undefined ? "upstash" : "memory",
    blobs: c.BLOB_STORE === "auto"
      ? (c.DATABASE_URL === undefined ? "fs" : "postgres")
      : c.BLOB_STORE,
    writer: c.OPENAI_API_KEY !== undefined ? "openai" : "local",
    vectors: c.CHROMA_URL !== undefined ? "chroma" : "postgres",
  } as const;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Parses `env`; empty strings count as unset. Throws `ConfigError` naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = parseFields(fields, env, crossChecks);
  if (!parsed.ok) throw configError(parsed.problems, env, (name) => SECRETS.has(name));
  return parsed.value;
}

/** The error naming each problem, with the value given unless it is a secret. */
function configError(
  problems: Problem[],
  env: Record<string, string | undefined>,
  secret: (name: string) => boolean,
): ConfigError {
  return new ConfigError(problems.map(({ name, message }) => {
    const got = env[name];
    const shown = got === undefined || got.trim() === "" || secret(name)
      ? ""
      : ` (got ${JSON.stringify(got)})`;
    return `${name}: ${message}${shown}`;
  }));
}

/**
 * Object storage for uploaded files (db/blobs/s3.ts): set S3_BUCKET and the blobs go to an
 * S3-compatible bucket (AWS S3, Cloudflare R2, MinIO), and `POST /api/v1/uploads` hands out
 * presigned `PUT` URLs (deploy/README.md, "Object storage"). Unset: BLOB_STORE decides.
 */
const s3Fields = {
  S3_BUCKET: text({ min: 3, max: 63 }).orUnset(),
  /** The API's URL: `https://s3.<region>.amazonaws.com`, `https://<account>.r2.cloudflarestorage.com`. */
  S3_ENDPOINT: url().orUnset(),
  /** `auto` for R2. */
  S3_REGION: text({ min: 1 }).withDefault("us-east-1"),
  S3_ACCESS_KEY_ID: text({ min: 1 }).orUnset(),
  S3_SECRET_ACCESS_KEY: text({ min: 1 }).orUnset(),
  /** `true`: `endpoint/bucket/key` (MinIO); `false`: `bucket.endpoint/key` (AWS S3). */
  S3_FORCE_PATH_STYLE: bool().withDefault(false),
  /** Prepended to every key (several deployments in one bucket). */
  S3_PREFIX: text().withDefault(""),
  /** How long a presigned upload URL stays valid, in seconds (default 1 hour). */
  S3_UPLOAD_EXPIRES_S: int(60, 7 * 86_400).withDefault(3600),
  /** Part size of multipart uploads, in bytes (S3's minimum is 5 MiB; default 8 MiB). */
  S3_PART_BYTES: int(5 * 1024 * 1024, 512 * 1024 * 1024).withDefault(8 * 1024 * 1024),
  /** How long a request waits for the bucket's answer before it is sent again (default 60 s). */
  S3_REQUEST_TIMEOUT_MS: int(1000, 3_600_000).withDefault(60_000),
} satisfies Record<string, Field<unknown, boolean>>;

export type S3Config = Output<typeof s3Fields>;

/** The object storage settings of `env`, or null when no bucket is configured. */
export function loadS3Config(env: Record<string, string | undefined>): S3Config | null {
  const parsed = parseFields(s3Fields, env, (c, problem) => {
    if (c.S3_BUCKET === undefined) return;
    for (const name of ["S3_ENDPOINT", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"] as const) {
      if (c[name] === undefined) problem(name, "required with S3_BUCKET");
    }
  });
  if (!parsed.ok) throw configError(parsed.problems, env, (name) => /SECRET|KEY_ID/.test(name));
  return parsed.value.S3_BUCKET === undefined ? null : parsed.value;
}

/**
 * ROLE: what this instance does. `api` accepts and serves (no claiming, no claiming loops);
 * `worker` claims and runs jobs, its HTTP surface `GET /api/health` (and, with QStash, the
 * signed delivery routes); `all` (the default) both. Read apart from {@link loadConfig}.
 */
export type Role = "api" | "worker" | "all";

/** The `ROLE` of `env` (unset or empty: `all`); throws `ConfigError` on another value. */
export function loadRole(env: Record<string, string | undefined>): Role {
  const value = env.ROLE?.trim() || "all";
  if (value === "api" || value === "worker" || value === "all") return value;
  throw new ConfigError([`ROLE: expected one of api, worker, all (got ${JSON.stringify(value)})`]);
}

/**
 * BACKGROUND_TIMERS: `off` starts none of the runtime's periodic loops (heartbeat, reaper,
 * outbox relay, vacuum), for hosts that stop an idle instance at any moment (Deno Deploy):
 * the maintenance pass (`POST /schedules/system.maintain`, the `troupe maintenance` cron)
 * does their work. `on` (the default) runs them. Read apart from {@link loadConfig}.
 */
export function loadBackgroundTimers(env: Record<string, string | undefined>): boolean {
  const value = env.BACKGROUND_TIMERS?.trim().toLowerCase() || "on";
  if (value === "on" || value === "off") return value === "on";
  throw new ConfigError([
    `BACKGROUND_TIMERS: expected on or off (got ${JSON.stringify(env.BACKGROUND_TIMERS)})`,
  ]);
}
