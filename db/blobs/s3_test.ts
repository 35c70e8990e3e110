/**
 * What the S3 store adds to the blob contract (db/blobs/blobs_test.ts runs that on it): a large
 * file in parts of S3's size, the two URL styles, the keys of direct uploads, and requests sent
 * again when the bucket does not answer, drops the connection or answers 5xx (a raw TCP server
 * that misbehaves on cue). Last, the local S3 server of the tests keeps its connections usable.
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

/**
 * A bucket that misbehaves on its first connections: each connection reads one request and
 * then does what `plan` says for its turn (`hang`: no answer; `close`: drops the connection;
 * `stall`: half of a body, then nothing; a number: that status), and answers 200 with 5 bytes'
 * length once the plan is spent. An
 * answer closes its connection: each request comes on a connection of its own.
 */
function flakyBucket(plan: ("hang" | "close" | "stall" | number)[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let connections = 0;
  const answer = (conn: Deno.Conn, status: number, length: number) =>
    conn.write(
      new TextEncoder().encode(
        `HTTP/1.1 ${status} X\r\ncontent-length: ${length}\r\nconnection: close\r\n` +
          `last-modified: Mon, 07 Dec 2026 10:00:00 GMT\r\n\r\n`,
      ),
    );
  const serve = async (conn: Deno.Conn) => {
    open.add(conn);
    const turn = plan[connections++];
    try {
      const buf = new Uint8Array(16 * 1024);
      await conn.read(buf); // the request (a HEAD: headers only)
      if (turn === "hang") return; // closed by `close()`
      if (turn === "stall") {
        // 5 of the 10 bytes announced, then nothing (closed by `close()`).
        await conn.write(
          new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello"),
        );
        return;
      }
      if (turn === "close") conn.close();
      else {
        await answer(conn, turn ?? 200, turn === undefined ? 5 : 0);
        conn.close();
      }
    } catch {
      // closed under it
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) serve(conn);
  })();
  return {
    options: {
      endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
      bucket: "b",
      accessKeyId: "AK",
      secretAccessKey: "SK",
      forcePathStyle: true,
    },
    connections: () => connections,
    async close() {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch {
          // closed already
        }
      }
      await accepting;
    },
  };
}

Deno.test("s3: a request without an answer, a dropped connection and a 503 are sent again", async () => {
  const bucket = flakyBucket(["hang", "close", 503]);
  try {
    const store = new S3BlobStore({ ...bucket.options, retries: 4, requestTimeoutMs: 300 });
    const started = performance.now();
    assert.deepEqual(await store.head("k"), {
      size: 5,
      modified: Date.parse("Mon, 07 Dec 2026 10:00:00 GMT"),
    });
    assert.equal(bucket.connections(), 4, "each attempt on a connection of its own");
    assert.ok(performance.now() - started < 5_000);
  } finally {
    await bucket.close();
  }
});

Deno.test("s3: the last attempt's failure is an S3Error that says what happened", async () => {
  const bucket = flakyBucket(["close", "hang"]);
  try {
    const store = new S3BlobStore({ ...bucket.options, retries: 2, requestTimeoutMs: 300 });
    await assert.rejects(store.head("k"), (err: Error) => {
      assert.equal(err.name, "S3Error");
      assert.match(err.message, /HEAD .*\/b\/k: .*no answer in 300 ms/);
      return true;
    });
    assert.equal(bucket.connections(), 2);
  } finally {
    await bucket.close();
  }
  const always = flakyBucket([503, 503]);
  try {
    const store = new S3BlobStore({ ...always.options, retries: 2, requestTimeoutMs: 300 });
    await assert.rejects(store.head("k"), /HEAD k: 503/);
    assert.equal(always.connections(), 2);
  } finally {
    await always.close();
  }
});

Deno.test("s3: an object whose bytes stop coming fails its read with an S3Error", async () => {
  const bucket = flakyBucket(["stall"]);
  try {
    const store = new S3BlobStore({ ...bucket.options, retries: 1, requestTimeoutMs: 300 });
    const started = performance.now();
    await assert.rejects(store.bytes("ab".repeat(32)), (err: Error) => {
      assert.equal(err.name, "S3Error");
      assert.match(err.message, /no bytes for 300 ms/);
      return true;
    });
    assert.ok(performance.now() - started < 5_000);
  } finally {
    await bucket.close();
  }
});

Deno.test("s3 fixture: a body refused unread does not stall the next request on its connection", async () => {
  const s3 = await startS3();
  try {
    const refused = await fetch(`${s3.options.endpoint}/no-such-bucket/x`, {
      method: "PUT",
      body: new Uint8Array(300_000),
    });
    await refused.body?.cancel();
    assert.equal(refused.status, 404);
    const next = await fetch(`${s3.options.endpoint}/${s3.options.bucket}/none`, {
      signal: AbortSignal.timeout(5_000),
    });
    await next.body?.cancel();
    assert.equal(next.status, 404);
  } finally {
    await s3.close();
  }
});
