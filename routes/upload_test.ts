/**
 * `guardUpload`: a body whose client stops sending fails with `UploadStalledError` after the
 * idle time, one that trickles under the minimum rate or past its deadline with
 * `UploadTooSlowError`; a reader that is itself slow does not count; bytes and errors pass
 * through.
 */
import assert from "node:assert/strict";
import { PayloadTooLargeError, UploadStalledError, UploadTooSlowError } from "@troupe/runtime";
import { sleep, stalledBody } from "../tests/harness.ts";
import { endlessBody, trickleBody } from "../tests/hostile/http_attacks.ts";
import { statusOf } from "./errors.ts";
import { guardUpload, type UploadPolicy } from "./upload.ts";

/** Only the idle guard, as `stallGuard` was. */
const stallGuard = (body: ReadableStream<Uint8Array>, idleMs: number) =>
  guardUpload(body, { idleMs, minBytesPerSecond: 0 });

const enc = new TextEncoder();

async function readAll(body: ReadableStream<Uint8Array>, pauseMs = 0): Promise<string> {
  let text = "";
  for await (const chunk of body) {
    text += new TextDecoder().decode(chunk);
    if (pauseMs) await sleep(pauseMs);
  }
  return text;
}

Deno.test("guardUpload: a client that stops sending fails the body with 408 after the idle time", async () => {
  const source = stalledBody("first bytes");
  const t0 = performance.now();
  await assert.rejects(() => readAll(stallGuard(source.body, 300)), (err: Error) => {
    assert.ok(err instanceof UploadStalledError);
    assert.equal(statusOf(err), 408);
    assert.equal(err.code, "UPLOAD_STALLED");
    return true;
  });
  const waited = performance.now() - t0;
  assert.ok(waited >= 290 && waited < 5_000, `failed after ${waited} ms`);
  assert.ok(source.cancelled() instanceof UploadStalledError, "the client's body was cancelled");
});

Deno.test("guardUpload: a slow reader is not a stalled client; bytes and errors pass through", async () => {
  const parts = ["a", "bb", "ccc", "dddd"];
  const ready = () =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(enc.encode(p));
        c.close();
      },
    });
  // The reader waits 3 idle times between reads; the client always had the bytes ready.
  assert.equal(await readAll(stallGuard(ready(), 100), 300), parts.join(""));
  // A client that sends slowly, but within the idle time, is fine too.
  const slow = new ReadableStream<Uint8Array>({
    async pull(c) {
      await sleep(50);
      const p = parts.shift();
      if (p === undefined) c.close();
      else c.enqueue(enc.encode(p));
    },
  });
  assert.equal(await readAll(stallGuard(slow, 400)), "abbcccdddd");
  // The client's own error is the body's error.
  const broken = new ReadableStream<Uint8Array>({
    pull(c) {
      c.error(new Error("connection reset"));
    },
  });
  await assert.rejects(() => readAll(stallGuard(broken, 1000)), /connection reset/);
});

/** Reads `body` to its end; the error it fails with, if any. */
async function outcome(body: ReadableStream<Uint8Array>): Promise<unknown> {
  try {
    await readAll(body);
    return null;
  } catch (err) {
    return err;
  }
}

Deno.test("guardUpload: a client under the minimum rate is cut off with 408, never idle though it is", async () => {
  // A byte every 50 ms (20 B/s) against a minimum of 1000 B/s over 400 ms; idle is 5 s.
  const policy: UploadPolicy = { idleMs: 5000, minBytesPerSecond: 1000, rateWindowMs: 400 };
  const slow = trickleBody("x".repeat(10_000), { chunkBytes: 1, intervalMs: 50 });
  const t0 = performance.now();
  const err = await outcome(guardUpload(slow.body, policy));
  assert.ok(err instanceof UploadTooSlowError, String(err));
  assert.equal(statusOf(err), 408);
  assert.equal(err.code, "UPLOAD_TOO_SLOW");
  assert.equal((err.details as { reason: string }).reason, "rate");
  assert.ok(performance.now() - t0 < 5000, "before the idle time");
  assert.ok(slow.cancelled() instanceof UploadTooSlowError, "the client's body was let go");
  assert.ok(!slow.done());
});

Deno.test("guardUpload: a client above the minimum rate gets through, however long it takes", async () => {
  // 100 bytes every 20 ms (~5 KB/s) for ~1 s, against 1000 B/s over 300 ms.
  const policy: UploadPolicy = { idleMs: 5000, minBytesPerSecond: 1000, rateWindowMs: 300 };
  const text = "y".repeat(5000);
  const ok = trickleBody(text, { chunkBytes: 100, intervalMs: 20 });
  assert.equal(await readAll(guardUpload(ok.body, policy)), text);
});

Deno.test("guardUpload: an upload still arriving at its deadline (base + size at the minimum rate) is cut off", async () => {
  // Declared 2000 bytes at a minimum of 10 KB/s: a deadline of 1 s + 0.2 s. The client sends
  // 400 B/s, which the rate's window (a minute) would take long to judge; the deadline does not.
  const policy: UploadPolicy = {
    idleMs: 5000,
    minBytesPerSecond: 10_000,
    rateWindowMs: 60_000,
    deadlineBaseMs: 1000,
  };
  const long = trickleBody("z".repeat(2000), { chunkBytes: 20, intervalMs: 50 });
  const t0 = performance.now();
  const err = await outcome(guardUpload(long.body, policy, 2000));
  const took = performance.now() - t0;
  assert.ok(err instanceof UploadTooSlowError, String(err));
  assert.equal((err.details as { reason: string }).reason, "deadline");
  assert.ok(took >= 1150 && took < 10_000, `cut off after ${took} ms`);
  assert.ok(!long.done());
  // The same pace for 100 bytes ends well within its deadline.
  const fits = trickleBody("z".repeat(100), { chunkBytes: 20, intervalMs: 50 });
  assert.equal((await readAll(guardUpload(fits.body, policy, 100))).length, 100);
});

Deno.test("guardUpload: time the reader spends elsewhere is not the client's", async () => {
  // The client has everything ready; the reader takes 100 ms a chunk, so 1000 bytes take a
  // second: far under the rate, were it the client's time.
  const policy: UploadPolicy = { idleMs: 5000, minBytesPerSecond: 100_000, rateWindowMs: 200 };
  const ready = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 10; i++) c.enqueue(enc.encode("w".repeat(100)));
      c.close();
    },
  });
  assert.equal((await readAll(guardUpload(ready, policy), 100)).length, 1000);
});

Deno.test("guardUpload: a body past its size (a chunked one declares none) is a 413, read no further", async () => {
  const endless = endlessBody({ chunkBytes: 1000 });
  const err = await outcome(guardUpload(endless.body, {}, 50_000));
  assert.ok(err instanceof PayloadTooLargeError, String(err));
  assert.ok(endless.pulled() <= 52_000, `pulled ${endless.pulled()} bytes`);
  assert.ok(endless.cancelled() instanceof PayloadTooLargeError);
  const exact = endlessBody({ chunkBytes: 1000, totalBytes: 50_000 });
  assert.equal((await readAll(guardUpload(exact.body, {}, 50_000))).length, 50_000);
});
