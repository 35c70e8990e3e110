import assert from "node:assert/strict";
import { ConfigError, loadS3Config } from "./config.ts";

Deno.test("config: no S3_BUCKET, no object storage; a bucket needs its endpoint and key", () => {
  assert.equal(loadS3Config({}), null);
  assert.equal(loadS3Config({ S3_ENDPOINT: "https://x.example" }), null);
  let problems = "";
  try {
    loadS3Config({ S3_BUCKET: "files", S3_SECRET_ACCESS_KEY: "hidden" });
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    problems = e.problems.join("\n");
  }
  assert.match(problems, /S3_ENDPOINT: required with S3_BUCKET/);
  assert.match(problems, /S3_ACCESS_KEY_ID: required with S3_BUCKET/);
  const c = loadS3Config({
    S3_BUCKET: "files",
    S3_ENDPOINT: "http://127.0.0.1:9000",
    S3_ACCESS_KEY_ID: "a",
    S3_SECRET_ACCESS_KEY: "b",
    S3_FORCE_PATH_STYLE: "true",
  });
  assert.equal(c?.S3_FORCE_PATH_STYLE, true);
  assert.equal(c?.S3_REGION, "us-east-1");
  assert.equal(c?.S3_PART_BYTES, 8 * 1024 * 1024);
  assert.equal(c?.S3_REQUEST_TIMEOUT_MS, 60_000);
  assert.throws(
    () => loadS3Config({ S3_BUCKET: "files", S3_REQUEST_TIMEOUT_MS: "5" }),
    ConfigError,
  );
  // Parts under S3's 5 MiB minimum are refused.
  assert.throws(() => loadS3Config({ S3_BUCKET: "files", S3_PART_BYTES: "1000" }), ConfigError);
});
