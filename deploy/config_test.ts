import assert from "node:assert/strict";
import { ConfigError, drivers, loadConfig } from "./config.ts";

Deno.test("loadConfig() gives the embedded defaults for an empty environment", () => {
  const c = loadConfig({});
  assert.equal(c.PORT, 8000);
  assert.equal(c.DATA_DIR, ".data");
  assert.equal(c.DATABASE_URL, undefined);
  assert.equal(c.RETENTION_DAYS, 7);
  assert.equal(c.LOG_LEVEL, "info");
  assert.equal(c.PGLITE_THREAD, "worker");
});

Deno.test("loadConfig() reads PGLITE_THREAD (main or worker) and names another value", () => {
  assert.equal(loadConfig({ PGLITE_THREAD: "main" }).PGLITE_THREAD, "main");
  assert.throws(
    () => loadConfig({ PGLITE_THREAD: "thread" }),
    (err: unknown) => err instanceof ConfigError && /PGLITE_THREAD:/.test(err.message),
  );
});

Deno.test("loadConfig() names each malformed variable", () => {
  try {
    loadConfig({
      PORT: "eighty",
      DATABASE_URL: "mysql://x",
      LOG_LEVEL: "loud",
      RETENTION_DAYS: "0",
    });
    assert.fail("expected a ConfigError");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const text = err.message;
    for (const name of ["PORT", "DATABASE_URL", "LOG_LEVEL", "RETENTION_DAYS"]) {
      assert.match(text, new RegExp(`${name}:`), `message should name ${name}: ${text}`);
    }
    assert.match(text, /"eighty"/);
  }
});

Deno.test("loadConfig() accepts a postgres URL and treats empty strings as unset", () => {
  const c = loadConfig({ DATABASE_URL: "postgres://u@127.0.0.1:5432/db", PORT: "" });
  assert.equal(c.DATABASE_URL, "postgres://u@127.0.0.1:5432/db");
  assert.equal(c.PORT, 8000);
});

Deno.test("loadConfig() names what a partial QStash or Upstash setup lacks", () => {
  assert.throws(
    () => loadConfig({ QSTASH_TOKEN: "tok", UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1" }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      for (
        const name of [
          "QSTASH_CURRENT_SIGNING_KEY",
          "QSTASH_NEXT_SIGNING_KEY",
          "PUBLIC_URL",
          "DATABASE_URL",
          "UPSTASH_REDIS_REST_TOKEN",
        ]
      ) {
        assert.match(err.message, new RegExp(`${name}:`));
      }
      return true;
    },
  );
});

Deno.test("loadConfig() never repeats a secret's value", () => {
  assert.throws(
    () => loadConfig({ DEV_API_KEY: "short-secret", DATABASE_URL: "mysql://user:pw@h/db" }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /DEV_API_KEY:/);
      assert.doesNotMatch(err.message, /short-secret|pw@h/);
      return true;
    },
  );
});

Deno.test("drivers() picks embedded, Postgres, Neon, QStash and Upstash from the variables", () => {
  assert.deepEqual(drivers(loadConfig({})), {
    database: "pglite",
    transport: "table-queue",
    cache: "memory",
    blobs: "fs",
    writer: "local",
    vectors: "postgres",
  });
  assert.equal(
    drivers(loadConfig({ DATABASE_URL: "postgres://u@127.0.0.1/db" })).database,
    "postgres",
  );
  assert.equal(
    drivers(loadConfig({ DATABASE_URL: "postgres://u@ep-x-1.eu-central-1.aws.neon.tech/db" }))
      .database,
    "neon",
  );
  const prod = drivers(loadConfig({
    DATABASE_URL: "postgres://u@127.0.0.1/db",
    NEON_WS_PROXY: "127.0.0.1:4444/v1?address={host}:{port}",
    QSTASH_TOKEN: "t",
    QSTASH_CURRENT_SIGNING_KEY: "sig_a",
    QSTASH_NEXT_SIGNING_KEY: "sig_b",
    PUBLIC_URL: "http://127.0.0.1:8000",
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079",
    UPSTASH_REDIS_REST_TOKEN: "r",
  }));
  assert.deepEqual(prod, {
    database: "neon",
    transport: "qstash",
    cache: "upstash",
    blobs: "postgres",
    writer: "local",
    vectors: "postgres",
  });
});

Deno.test("loadConfig() takes upload limits beyond 32 bits", () => {
  assert.equal(loadConfig({}).DATASET_MAX_BYTES, 2 ** 30);
  assert.equal(loadConfig({ DATASET_MAX_BYTES: "800823148000" }).DATASET_MAX_BYTES, 800823148000);
});

Deno.test("loadConfig() reads POISON_AFTER_CRASHES (default 2, at least 1)", () => {
  assert.equal(loadConfig({}).POISON_AFTER_CRASHES, 2);
  assert.equal(loadConfig({ POISON_AFTER_CRASHES: "3" }).POISON_AFTER_CRASHES, 3);
  assert.throws(() => loadConfig({ POISON_AFTER_CRASHES: "0" }), /POISON_AFTER_CRASHES:/);
});

Deno.test("loadConfig() keeps the dataset column limit under PostgreSQL's 1,600", () => {
  assert.equal(loadConfig({}).DATASET_MAX_COLUMNS, 1000);
  assert.equal(loadConfig({}).DATASET_MAX_HEADER_BYTES, 1024 * 1024);
  assert.equal(loadConfig({ DATASET_MAX_COLUMNS: "1500" }).DATASET_MAX_COLUMNS, 1500);
  assert.throws(() => loadConfig({ DATASET_MAX_COLUMNS: "1600" }), /DATASET_MAX_COLUMNS/);
  assert.throws(() => loadConfig({ DATASET_MAX_HEADER_BYTES: "10" }), /DATASET_MAX_HEADER_BYTES/);
});

Deno.test("loadConfig() bounds how far a gzip dataset upload may inflate", () => {
  assert.equal(loadConfig({}).DATASET_MAX_INFLATE_RATIO, 200);
  assert.equal(loadConfig({ DATASET_MAX_INFLATE_RATIO: "50" }).DATASET_MAX_INFLATE_RATIO, 50);
  assert.throws(() => loadConfig({ DATASET_MAX_INFLATE_RATIO: "1" }), /DATASET_MAX_INFLATE_RATIO/);
});

Deno.test("loadConfig() gives slow-client and form limits defaults, and names bad ones", () => {
  const c = loadConfig({});
  assert.equal(c.HTTP_HEADER_TIMEOUT_MS, 10_000);
  assert.equal(c.UPLOAD_MIN_BYTES_PER_SECOND, 8 * 1024);
  assert.equal(c.UPLOAD_MAX_FIELD_BYTES, 64 * 1024);
  const set = loadConfig({
    HTTP_HEADER_TIMEOUT_MS: "0",
    UPLOAD_MIN_BYTES_PER_SECOND: "0",
    UPLOAD_RATE_WINDOW_MS: "5000",
    UPLOAD_MAX_PARTS: "30",
  });
  assert.equal(set.HTTP_HEADER_TIMEOUT_MS, 0);
  assert.equal(set.UPLOAD_MIN_BYTES_PER_SECOND, 0);
  assert.equal(set.UPLOAD_RATE_WINDOW_MS, 5000);
  assert.equal(set.UPLOAD_MAX_PARTS, 30);
  assert.throws(
    () => loadConfig({ UPLOAD_MAX_FIELD_BYTES: "64k", UPLOAD_MAX_PARTS: "0" }),
    (err: Error) =>
      /UPLOAD_MAX_FIELD_BYTES/.test(err.message) && /UPLOAD_MAX_PARTS/.test(err.message),
  );
});

Deno.test("CORS_ORIGINS: none by default, a comma-separated list, *, and a malformed origin refused", () => {
  assert.deepEqual(loadConfig({}).CORS_ORIGINS, []);
  assert.deepEqual(
    loadConfig({ CORS_ORIGINS: "https://a.example, http://localhost:5173" }).CORS_ORIGINS,
    ["https://a.example", "http://localhost:5173"],
  );
  assert.deepEqual(loadConfig({ CORS_ORIGINS: "*" }).CORS_ORIGINS, ["*"]);
  assert.throws(() => loadConfig({ CORS_ORIGINS: "https://a.example/path" }), /CORS_ORIGINS/);
  assert.throws(() => loadConfig({ CORS_ORIGINS: "a.example" }), /CORS_ORIGINS/);
});

Deno.test("loadConfig() reads DATASET_CHUNK_CONCURRENCY (unset: 2)", () => {
  assert.equal(loadConfig({}).DATASET_CHUNK_CONCURRENCY, 2);
  assert.equal(loadConfig({ DATASET_CHUNK_CONCURRENCY: "3" }).DATASET_CHUNK_CONCURRENCY, 3);
  assert.throws(
    () => loadConfig({ DATASET_CHUNK_CONCURRENCY: "0" }),
    (err: unknown) => err instanceof ConfigError && /DATASET_CHUNK_CONCURRENCY:/.test(err.message),
  );
});
