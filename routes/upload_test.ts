/**
 * `stallGuard`: a body whose client stops sending fails with `UploadStalledError` after the
 * idle time; a reader that is itself slow does not count; bytes and errors pass through.
 */
import assert from "node:assert/strict";
import { UploadStalledError } from "../actors/runtime/errors.ts";
import { sleep, stalledBody } from "../tests/harness.ts";
import { stallGuard } from "./upload.ts";

const enc = new TextEncoder();

async function readAll(body: ReadableStream<Uint8Array>, pauseMs = 0): Promise<string> {
  let text = "";
  for await (const chunk of body) {
    text += new TextDecoder().decode(chunk);
    if (pauseMs) await sleep(pauseMs);
  }
  return text;
}

Deno.test("stallGuard: a client that stops sending fails the body with 408 after the idle time", async () => {
  const source = stalledBody("first bytes");
  const t0 = performance.now();
  await assert.rejects(() => readAll(stallGuard(source.body, 300)), (err: Error) => {
    assert.ok(err instanceof UploadStalledError);
    assert.equal(err.status, 408);
    assert.equal(err.code, "UPLOAD_STALLED");
    return true;
  });
  const waited = performance.now() - t0;
  assert.ok(waited >= 290 && waited < 5_000, `failed after ${waited} ms`);
  assert.ok(source.cancelled() instanceof UploadStalledError, "the client's body was cancelled");
});

Deno.test("stallGuard: a slow reader is not a stalled client; bytes and errors pass through", async () => {
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
