import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "./config.ts";

Deno.test("metrics are off by default, with cheap queue readings", () => {
  const c = loadConfig({});
  assert.equal(c.METRICS_TOKEN, undefined);
  assert.equal(c.METRICS_PORT, undefined);
  assert.equal(c.METRICS_COUNTERS, "local");
  assert.equal(c.METRICS_QUEUE_SCAN_LIMIT, 10_000);
  assert.equal(c.METRICS_QUEUE_CACHE_MS, 5000);
});

Deno.test("a short METRICS_TOKEN is refused without showing it", () => {
  assert.throws(
    () => loadConfig({ METRICS_TOKEN: "short-secret" }),
    (err: unknown) =>
      err instanceof ConfigError && /METRICS_TOKEN: must be at least 16/.test(err.message) &&
      !err.message.includes("short-secret"),
  );
});

Deno.test("METRICS_COUNTERS=redis needs Upstash Redis", () => {
  assert.throws(
    () => loadConfig({ METRICS_COUNTERS: "redis", METRICS_TOKEN: "0123456789abcdefgh" }),
    (err: unknown) =>
      err instanceof ConfigError &&
      /UPSTASH_REDIS_REST_URL: required by METRICS_COUNTERS=redis/.test(err.message),
  );
  const c = loadConfig({
    METRICS_COUNTERS: "redis",
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079",
    UPSTASH_REDIS_REST_TOKEN: "t",
  });
  assert.equal(c.METRICS_COUNTERS, "redis");
});

Deno.test("METRICS_PORT must differ from PORT", () => {
  assert.throws(
    () => loadConfig({ PORT: "8000", METRICS_PORT: "8000" }),
    (err: unknown) =>
      err instanceof ConfigError && /METRICS_PORT: must differ from PORT/.test(err.message),
  );
  assert.equal(loadConfig({ METRICS_PORT: "9464" }).METRICS_PORT, 9464);
});
