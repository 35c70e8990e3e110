/**
 * Direct uploads end to end against a local S3-compatible server (s3rver): presign, `PUT` with
 * fetch, `POST /datasets {uploadId}`, and the dataset made of it compared with one sent to the
 * app; the refusals (another tenant, never sent, wrong size, expired, used twice, no bucket).
 * s3rver does not check signatures: that the bucket refuses another length than the
 * signed one is S3's part (the URL's signed headers are checked here).
 */
import { localDatasetAdapters } from "../tests/local_adapters.ts";
import assert from "node:assert/strict";
import { datasetActors } from "../actors/datasets/pipeline.ts";
import { S3BlobStore } from "../db/blobs/s3.ts";
import { openApiWorld } from "../tests/api_world.ts";
import { startS3 } from "../tests/fixtures/s3_server.ts";
import { DATASET_ENDS, settledBody } from "../tests/harness.ts";

function csvOf(rows: number): string {
  const lines = ["id,city,amount"];
  for (let i = 1; i <= rows; i++) lines.push(`${i},${["Paris", "Köln"][i % 2]},${i * 1.5}`);
  return lines.join("\n") + "\n";
}

async function world(withBucket = true) {
  const s3 = await startS3();
  const bucket = new S3BlobStore({ ...s3.options, partSize: 64 * 1024 });
  const w = await openApiWorld(
    (tdb) =>
      datasetActors({
        ...localDatasetAdapters(),
        db: tdb.db,
        blobs: bucket,
        chunkBytes: 16 * 1024,
      }),
    (tdb) => ({
      perIpPerMinute: 1_000_000,
      perKeyPerMinute: 1_000_000,
      datasets: {
        db: tdb.db,
        blobs: bucket,
        directUploads: { db: tdb.db, bucket: withBucket ? bucket : null, maxBytes: 5_000_000 },
      },
    }),
  );
  const key = (await w.tenants.createKey((await w.tenants.createTenant("acme")).id)).key;
  const otherKey = (await w.tenants.createKey((await w.tenants.createTenant("other")).id)).key;
  // deno-lint-ignore no-explicit-any
  const call = async (path: string, init: RequestInit & { key?: string } = {}): Promise<any> => {
    const headers = new Headers(init.headers);
    headers.set("x-api-key", init.key ?? key);
    const res = await w.app.request(path, { ...init, headers });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const json = (path: string, body: unknown, k = key) =>
    call(path, {
      method: "POST",
      key: k,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const settled = (id: string) =>
    settledBody(() => call(`/api/v1/datasets/${id}`), DATASET_ENDS, { what: `dataset ${id}` });
  const rows = async (id: string) =>
    (await call(`/api/v1/datasets/${id}/rows?limit=1000`)).body.items;
  return {
    ...w,
    s3,
    bucket,
    otherKey,
    call,
    json,
    settled,
    rows,
    async close() {
      await w.close();
      await s3.close();
    },
  };
}

Deno.test(
  "uploads: presign, PUT to the bucket, a dataset as from a direct upload",
  async () => {
    const w = await world();
    try {
      const csv = new TextEncoder().encode(csvOf(3000));
      const up = await w.json("/api/v1/uploads", {
        filename: "sales.csv",
        contentType: "text/csv",
        size: csv.byteLength,
      });
      assert.equal(up.status, 201, JSON.stringify(up.body));
      assert.equal(up.body.method, "PUT");
      assert.ok(Date.parse(up.body.expiresAt) > Date.now());
      assert.match(new URL(up.body.url).searchParams.get("X-Amz-SignedHeaders")!, /content-length/);
      // Not sent yet: a clear 409.
      const early = await w.json("/api/v1/datasets", { uploadId: up.body.uploadId });
      assert.equal(early.status, 409);
      assert.equal(early.body.error.code, "UPLOAD_NOT_RECEIVED");
      const put = await fetch(up.body.url, { method: "PUT", headers: up.body.headers, body: csv });
      await put.body?.cancel();
      assert.equal(put.status, 200);
      // Another tenant's upload is not found.
      const stolen = await w.json("/api/v1/datasets", { uploadId: up.body.uploadId }, w.otherKey);
      assert.equal(stolen.status, 404);
      const made = await w.json("/api/v1/datasets", { uploadId: up.body.uploadId, name: "s3" });
      assert.equal(made.status, 202, JSON.stringify(made.body));
      const again = await w.json("/api/v1/datasets", { uploadId: up.body.uploadId });
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, "UPLOAD_USED");
      // The same file sent to the app.
      const direct = await w.call("/api/v1/datasets?name=direct", {
        method: "POST",
        headers: { "content-type": "text/csv" },
        body: csv,
      });
      assert.equal(direct.status, 202, JSON.stringify(direct.body));
      const a = await w.settled(made.body.datasetId);
      const b = await w.settled(direct.body.datasetId);
      assert.equal(a.status, "ready", JSON.stringify(a.error));
      assert.equal(a.name, "s3");
      assert.equal(a.rowCount, 3000);
      assert.equal(a.rowCount, b.rowCount);
      assert.deepEqual(a.columns, b.columns);
      assert.deepEqual(await w.rows(a.id), await w.rows(b.id));
      // The staging object is gone once its bytes are a blob.
      const [row] = await w.tdb.db.query<{ key: string }>(
        "SELECT key FROM troupe_uploads WHERE id = $1",
        [up.body.uploadId],
      );
      assert.equal(await w.bucket.head(row!.key), null);
    } finally {
      await w.close();
    }
  },
);

Deno.test(
  "uploads: wrong size, expired, unknown, bad input, JSON files still upload",
  async () => {
    const w = await world();
    try {
      const csv = new TextEncoder().encode(csvOf(10));
      const up = await w.json("/api/v1/uploads", {
        filename: "a.csv",
        contentType: "text/csv",
        size: csv.byteLength + 5,
      });
      assert.equal(up.status, 201);
      // Written past the URL (as a bucket without signed lengths would let a client do).
      const [row] = await w.tdb.db.query<{ key: string }>(
        "SELECT key FROM troupe_uploads WHERE id = $1",
        [up.body.uploadId],
      );
      const signed = await w.bucket.presignPut(row!.key, {
        size: csv.byteLength,
        contentType: "text/csv",
        expiresInSeconds: 60,
      });
      const put = await fetch(signed.url, { method: "PUT", headers: signed.headers, body: csv });
      await put.body?.cancel();
      assert.equal(put.status, 200);
      const wrong = await w.json("/api/v1/datasets", { uploadId: up.body.uploadId });
      assert.equal(wrong.status, 422);
      assert.equal(wrong.body.error.code, "UPLOAD_SIZE_MISMATCH");
      await w.tdb.db.query(
        "UPDATE troupe_uploads SET expires_at = now() - interval '1 second' WHERE id = $1",
        [up.body.uploadId],
      );
      const expired = await w.json("/api/v1/datasets", { uploadId: up.body.uploadId });
      assert.equal(expired.status, 410);
      assert.equal(expired.body.error.code, "UPLOAD_EXPIRED");
      const unknown = await w.json("/api/v1/datasets", { uploadId: crypto.randomUUID() });
      assert.equal(unknown.status, 404);
      const big = await w.json("/api/v1/uploads", {
        filename: "a.csv",
        contentType: "text/csv",
        size: 6_000_000,
      });
      assert.equal(big.status, 413);
      const bad = await w.json("/api/v1/uploads", { filename: "", contentType: "csv", size: 0 });
      assert.equal(bad.status, 400);
      // A JSON array is a file, as before.
      const array = await w.call("/api/v1/datasets?name=arr", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify([{ a: 1 }, { a: 2 }]),
      });
      assert.equal(array.status, 202, JSON.stringify(array.body));
      assert.equal((await w.settled(array.body.datasetId)).rowCount, 2);
    } finally {
      await w.close();
    }
  },
);

Deno.test("uploads: without a bucket, a clear 409", async () => {
  const w = await world(false);
  try {
    const up = await w.json("/api/v1/uploads", {
      filename: "a.csv",
      contentType: "text/csv",
      size: 10,
    });
    assert.equal(up.status, 409);
    assert.equal(up.body.error.code, "DIRECT_UPLOADS_UNAVAILABLE");
    const made = await w.json("/api/v1/datasets", { uploadId: "x" });
    assert.equal(made.status, 409);
    assert.equal(made.body.error.code, "DIRECT_UPLOADS_UNAVAILABLE");
  } finally {
    await w.close();
  }
});
