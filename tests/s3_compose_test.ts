/**
 * The composition root with S3_* set: blobs go to the bucket and direct uploads are on, from
 * presigning to a ready dataset; without a bucket the same start keeps files on disk.
 */
import assert from "node:assert/strict";
import { loadConfig, loadS3Config } from "../deploy/config.ts";
import { compose } from "../main.ts";
import { startS3 } from "./fixtures/s3_server.ts";
import { waitFor } from "./harness.ts";

Deno.test({
  name: "S3_BUCKET chooses the bucket for blobs and turns direct uploads on",
}, async () => {
  const s3 = await startS3();
  const dir = await Deno.makeTempDir({ prefix: "troupe-s3-compose-" });
  const o = s3.options;
  const troupe = await compose(
    loadConfig({ DATA_DIR: dir, LOG_LEVEL: "silent" }),
    [],
    {
      s3: loadS3Config({
        S3_BUCKET: o.bucket,
        S3_ENDPOINT: o.endpoint,
        S3_ACCESS_KEY_ID: o.accessKeyId,
        S3_SECRET_ACCESS_KEY: o.secretAccessKey,
        S3_FORCE_PATH_STYLE: "true",
        S3_UPLOAD_EXPIRES_S: "120",
      }),
    },
  );
  try {
    const key = troupe.newDevKey!;
    const post = async (path: string, body: unknown) =>
      await troupe.app.request(path, {
        method: "POST",
        headers: { "x-api-key": key, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const csv = "a,b\n1,x\n2,y\n3,z\n";
    const up = await (await post("/api/v1/uploads", {
      filename: "t.csv",
      contentType: "text/csv",
      size: csv.length,
    })).json();
    const expires = Date.parse(up.expiresAt) - Date.now();
    assert.ok(expires > 100_000 && expires <= 120_000, `S3_UPLOAD_EXPIRES_S: ${expires} ms`);
    const put = await fetch(up.url, { method: "PUT", headers: up.headers, body: csv });
    await put.body?.cancel();
    assert.equal(put.status, 200);
    const made = await post("/api/v1/datasets", { uploadId: up.uploadId });
    assert.equal(made.status, 202);
    const { datasetId } = await made.json();
    const ready = await waitFor(async () => {
      const res = await troupe.app.request(`/api/v1/datasets/${datasetId}`, {
        headers: { "x-api-key": key },
      });
      const d = await res.json();
      return d.status === "ready" || d.status === "failed" ? d : null;
    }, { timeoutMs: 30_000, what: "the dataset" });
    assert.equal(ready.status, "ready", JSON.stringify(ready.error));
    assert.equal(ready.rowCount, 3);
    // The blob is in the bucket, not under DATA_DIR.
    const blobs = [];
    for await (const e of Deno.readDir(`${dir}`)) blobs.push(e.name);
    assert.ok(!blobs.includes("blobs"), `DATA_DIR holds ${blobs.join(", ")}`);
  } finally {
    await troupe.close();
    await s3.close();
    await Deno.remove(dir, { recursive: true });
  }
});
