/**
 * What the S3 store adds to the blob contract (db/blobs/blobs_test.ts runs that on it): a large
 * file in parts of S3's size, the two URL styles, and the keys of direct uploads.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startS3 } from "../../tests/fixtures/s3_server.ts";
import { S3BlobStore } from "./s3.ts";

Deno.test({ name: "s3: a 24 MiB file goes in 5 MiB parts and reads back" }, async () => {
  const s3 = await startS3();
  try {
    const store = new S3BlobStore({ ...s3.options, partSize: 5 * 1024 * 1024 });
    const size = 24 * 1024 * 1024 + 123;
    const hash = createHash("sha256");
    let sent = 0;
    let x = 7;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= size) return controller.close();
        const chunk = new Uint8Array(Math.min(256 * 1024, size - sent));
        for (let i = 0; i < chunk.length; i++) {
          chunk[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
        }
        hash.update(chunk);
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const put = await store.put(body);
    assert.equal(put.size, size);
    assert.equal(put.sha256, hash.digest("hex"));
    assert.equal(await s3.leftovers(), 0, "the parts and the temporary object are gone");
    const back = createHash("sha256");
    let got = 0;
    for await (const chunk of await store.read(put.sha256)) {
      back.update(chunk);
      got += chunk.byteLength;
    }
    assert.equal(got, size);
    assert.equal(back.digest("hex"), put.sha256);
    const tail = await store.bytes(put.sha256, { start: size - 10 });
    assert.equal(tail.length, 10);
  } finally {
    await s3.close();
  }
});

Deno.test("s3: path-style and virtual-host URLs, presigned with the length signed", async () => {
  const base = {
    endpoint: "https://s3.eu-west-1.amazonaws.com",
    bucket: "b1",
    region: "eu-west-1",
    accessKeyId: "AK",
    secretAccessKey: "SK",
  };
  const virtual = new S3BlobStore(base);
  const key = virtual.uploadKey("tenant 1", "u1");
  assert.equal(key, "uploads/tenant%201/u1");
  const v = await virtual.presignPut(key, {
    size: 42,
    contentType: "text/csv",
    expiresInSeconds: 600,
  });
  const vu = new URL(v.url);
  assert.equal(vu.host, "b1.s3.eu-west-1.amazonaws.com");
  assert.equal(vu.pathname, "/uploads/tenant%25201/u1");
  assert.equal(vu.searchParams.get("X-Amz-Expires"), "600");
  assert.equal(vu.searchParams.get("X-Amz-SignedHeaders"), "content-length;content-type;host");
  const path = new S3BlobStore({ ...base, forcePathStyle: true, endpoint: "http://minio:9000" });
  const p = new URL(
    (await path.presignPut("k", {
      size: 1,
      contentType: "text/csv",
      expiresInSeconds: 60,
    })).url,
  );
  assert.equal(p.host, "minio:9000");
  assert.equal(p.pathname, "/b1/k");
});
